//! Shared vocabulary of FlashDeal: ids, topic names and the Avro events that
//! travel on the log.
//!
//! Every role depends on this crate, so the wire format is defined in
//! exactly one place. Nothing here does I/O except the optional schema
//! registry client (feature `registry`).
//!
//! # Layout
//! - [`ids`]: newtypes parsed at the edge (`OrderId`, `DealId`, `UserId`,
//!   `Quantity`, `IdempotencyKey`).
//! - [`topics`]: topic names and the DLQ naming rule.
//! - [`events`]: the event structs, one per `avro/*.avsc` file.
//! - [`store_events`]: auth and catalog events (published from the outboxes).
//! - [`codec`]: Avro encoding (single-object) and the per-topic decoders
//!   (single-object and Confluent framing).
//! - [`confluent`]: Confluent framing, the producer's [`Encoding`] and the
//!   writer schemas by registry id.
//! - [`registry`] (feature `registry`): the schema registry client.
//! - [`compat`]: the check that a schema change keeps old readers working.
//! - [`redis_keys`]: Redis key names.

pub mod codec;
pub mod compat;
pub mod confluent;
pub mod events;
pub mod ids;
pub mod redis_keys;
#[cfg(feature = "registry")]
pub mod registry;
pub mod store_events;
pub mod topics;

pub use codec::{AuthEvent, CatalogEvent, CodecError, IntentEvent, StatusEvent};
pub use confluent::Encoding;
pub use events::{OrderConfirmed, OrderExpired, OrderPlaced, OrderRejected, ReservationReleased};
pub use ids::{DealId, IdError, IdempotencyKey, OrderId, Quantity, UserId};
