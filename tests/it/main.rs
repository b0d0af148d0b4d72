//! Integration tests against the real PostgreSQL and Redis of this machine
//! and an embedded broker per test. Each test gets its own database, broker
//! (port, storage) and deal ids, so tests run in parallel without sharing
//! anything but the servers.

mod audit;
mod auth_events;
mod bad_input;
mod burst;
mod catalog;
mod chaos;
mod expiry;
mod harness;
mod journey;
mod lag;
mod outbox;
mod poison;
mod rate_limit;
mod read_model;
mod redis_loss;
mod replay;
mod scaling;
mod schema_registry;
mod tracing_e2e;
mod writer_crash;
