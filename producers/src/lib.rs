//! Everything in FlashDeal that writes to the log.
//!
//! The gateway appends intents, the order-writer appends verdicts; both go
//! through one [`EventPublisher`] so the producer settings that make the
//! log trustworthy (idempotence, `acks=all`) are named in one place.
//!
//! # Layout
//! - [`kafka`]: the broker address and the named client settings.
//! - [`publisher`]: encode an event, attach its headers, wait for the ack.
//! - [`admin`]: create topics up front with their final partition counts.
//! - [`reconciler`]: expired reservations → `OrderExpired` on the log.

pub mod admin;
pub mod kafka;
pub mod publisher;
pub mod reconciler;

pub use kafka::KafkaSettings;
pub use publisher::{EventPublisher, PublishError};
