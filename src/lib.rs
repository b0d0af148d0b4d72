//! The `flashdeal` binary's library half: command line, configuration,
//! telemetry and the wiring of each role. Logic lives in the member crates
//! (`schemas`, `producers`, `consumers`, `gateway`); this crate only builds
//! clients from the environment and hands them over.
//!
//! # Layout
//! - [`cli`]: clap commands and flags.
//! - [`config`]: typed, validated settings; secrets.
//! - [`telemetry`]: logs, OpenTelemetry traces and the Prometheus recorder.
//! - [`database`]: create, migrate and pool.
//! - [`broker`]: the embedded broker (feature `embedded-broker`).
//! - [`roles`]: `up` and each role's run function.
//! - [`seed`]: admin and demo deal.
//! - [`audit`]: do catalog, orders, Redis and the projections agree?
//! - [`replay`]: `replay`, rewinding a group or replaying into its sink.
//! - [`dlq`]: `dlq list|show|requeue`.
//! - [`broker_client`]: the blocking Kafka client operator commands use.
//! - [`recover`]: `recover-redis`, rebuilding the deals Redis lost.

pub mod audit;
#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod broker_client;
pub mod cli;
pub mod config;
pub mod database;
pub mod dlq;
pub mod recover;
pub mod replay;
pub mod roles;
pub mod seed;
pub mod telemetry;
