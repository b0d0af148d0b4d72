//! Everything in FlashDeal that writes to the log.
//!
//! The gateway appends intents, the order-writer appends verdicts, the
//! relays publish the auth and catalog outboxes; all go
//! through one [`EventPublisher`] so the producer settings that make the
//! log trustworthy (idempotence, `acks=all`) are named in one place.
//!
//! # Layout
//! - [`kafka`]: the broker address and the named client settings.
//! - [`publisher`]: encode an event, attach its headers, wait for the ack.
//! - [`admin`]: create topics up front with their final partition counts.
//! - [`reconciler`]: expired reservations → `OrderExpired` on the log.
//! - [`outbox`]: add an event to a store's outbox inside its transaction.
//! - [`relay`]: publish an outbox to the log (one active relay per outbox).
//! - [`trace_headers`]: the W3C trace context every record carries.

pub mod admin;
pub mod kafka;
pub mod outbox;
pub mod publisher;
pub mod reconciler;
pub mod relay;
pub mod trace_headers;

pub use kafka::KafkaSettings;
pub use publisher::{EventPublisher, PublishError};
