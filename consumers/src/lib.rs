//! Everything in FlashDeal that reads the log.
//!
//! Every consumer is the same dumb loop around a "process one batch"
//! function: fetch a size- and time-bounded batch, apply it durably, then
//! commit offsets. Delivery is at-least-once; each sink is idempotent, so the
//! effect is exactly once.
//!
//! # Layout
//! - [`consume_loop`]: batching, retry of transient failures, commit-after-effect, shutdown.
//! - [`message_span`]: a consumed message's span, continuing the trace in its headers.
//! - [`dead_letter`]: sending a message the handler can never apply to `<topic>.dlq`.
//! - [`dead_letters`]: the operators' side: list, show and requeue DLQ messages.
//! - [`replay`]: rewinding an inactive group, or a one-off replay into a group's own sink.
//! - [`tally`]: applied / duplicate counts every sink reports per batch.
//! - [`lag`]: consumer-group lag per partition, measured beside the loop.
//! - `partition_watch`: owned partitions and their lag, exported as metrics.
//! - [`order_writer`]: `orders.intents` → PostgreSQL `orders.orders` → `orders.status`.
//! - [`projector`]: `orders.status` → Redis order status and pending reservations.
//! - [`catalog_projector`]: `catalog.events` → each deal's Redis state (meta, remaining stock).
//! - [`deal_read_model`]: `catalog.events` → `orders.deals`, the order-writer's price/limit snapshot.
//! - [`sold_count`]: `orders.status` confirmations → `catalog.deals.sold_count`.
//! - [`recover`]: rebuilding deals Redis lost, from PostgreSQL and the unconsumed tail of `orders.intents`.

pub mod catalog_projector;
pub mod consume_loop;
pub mod dead_letter;
pub mod dead_letters;
pub mod deal_read_model;
pub mod lag;
pub mod message_span;
pub mod order_writer;
mod partition_watch;
pub mod projector;
pub mod recover;
pub mod replay;
pub mod sold_count;
pub mod tally;

pub use consume_loop::{BatchHandler, ConsumeError, HandlerError, LoopSettings, run_consumer};
