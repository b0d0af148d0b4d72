//! A sink a replay can feed: each handler's own "process one batch"
//! function, reporting what was new and what its idempotency absorbed.
//! The behaviour is the handler's, unchanged: a replay is a redelivery.

use crate::{
    HandlerError, catalog_projector::CatalogProjector, deal_read_model::DealReadModel,
    order_writer::OrderWriter, projector::Projector, sold_count::SoldCount, tally::Tally,
};
use rdkafka::message::OwnedMessage;

/// Applies one replayed batch and counts it.
pub trait ReplaySink: Send {
    /// The role, for logs (`order-writer`, `projector`).
    fn name(&self) -> &'static str;
    fn replay_batch(
        &mut self,
        batch: &[OwnedMessage],
    ) -> impl Future<Output = Result<Tally, HandlerError>> + Send;
}

impl ReplaySink for OrderWriter {
    fn name(&self) -> &'static str {
        "order-writer"
    }

    async fn replay_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        Ok(self.write_batch(batch).await?.tally(batch.len()))
    }
}

impl ReplaySink for Projector {
    fn name(&self) -> &'static str {
        "projector"
    }

    async fn replay_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        self.project_batch(batch).await
    }
}

impl ReplaySink for CatalogProjector {
    fn name(&self) -> &'static str {
        "catalog-projector"
    }

    async fn replay_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        self.project_batch(batch).await
    }
}

impl ReplaySink for DealReadModel {
    fn name(&self) -> &'static str {
        "order-writer-deals"
    }

    async fn replay_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        self.apply_batch(batch).await
    }
}

impl ReplaySink for SoldCount {
    fn name(&self) -> &'static str {
        "catalog-sold-count"
    }

    async fn replay_batch(&mut self, batch: &[OwnedMessage]) -> Result<Tally, HandlerError> {
        self.count_batch(batch).await
    }
}
