//! What the catalog reads from the deals' Redis projection. It never writes
//! there: the catalog projector owns those keys and fills them from
//! `catalog.events` (and the order path moves the remaining stock).

use flashdeal_schemas::{DealId, redis_keys::DealKeys};
use redis::aio::ConnectionManager;

/// Remaining stock per deal; `None` where unknown or Redis is down (a
/// listing still works without the hot-path store).
pub async fn remaining(redis: &mut ConnectionManager, deals: &[DealId]) -> Vec<Option<i64>> {
    if deals.is_empty() {
        return Vec::new();
    }
    let mut pipe = redis::pipe();
    for d in deals {
        pipe.get(DealKeys::new(*d).stock);
    }
    match pipe.query_async::<Vec<Option<i64>>>(redis).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "reading remaining stock");
            vec![None; deals.len()]
        }
    }
}

/// [`remaining`] of one deal.
pub async fn remaining_one(redis: &mut ConnectionManager, deal: DealId) -> Option<i64> {
    remaining(redis, &[deal]).await.into_iter().next().flatten()
}

/// One deal's stock as the projection holds it, read in one MULTI so both
/// numbers come from the same projected version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectedStock {
    /// Units left to reserve (`{deal:D}:stock`).
    pub remaining: i64,
    /// The deal's total stock as of the last event applied (`meta.stock`).
    pub stock: i64,
}

impl ProjectedStock {
    /// Units free to take away, given the catalog's `stock` now: what
    /// Redis has left, plus the adjustments the projector has not applied
    /// yet (`stock - self.stock`).
    pub fn free(self, catalog_stock: i32) -> i64 {
        self.remaining + i64::from(catalog_stock) - self.stock
    }
}

/// Reads [`ProjectedStock`]; `None` when Redis has no state for the deal
/// (not projected yet, or lost with Redis: its reservations may then live
/// only in the log, so nothing can be said about what is free). Errors
/// (Redis down) go to the caller: refusing is safer than guessing.
pub async fn stock(
    redis: &mut ConnectionManager,
    deal: DealId,
) -> Result<Option<ProjectedStock>, redis::RedisError> {
    let keys = DealKeys::new(deal);
    let (remaining, stock): (Option<i64>, Option<i64>) = redis::pipe()
        .atomic()
        .get(&keys.stock)
        .hget(&keys.meta, "stock")
        .query_async(redis)
        .await?;
    Ok(stock.map(|stock| ProjectedStock {
        remaining: remaining.unwrap_or(0),
        stock,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_units_count_adjustments_not_projected_yet() {
        // In sync: 10 in stock, 3 reserved or sold.
        let p = ProjectedStock {
            remaining: 7,
            stock: 10,
        };
        assert_eq!(p.free(10), 7);
        // The catalog already took 4 away; the projector has not seen it.
        assert_eq!(p.free(6), 3);
        // …or added 5.
        assert_eq!(p.free(15), 12);
        // Not projected yet: nothing can be reserved.
        assert_eq!(ProjectedStock::default().free(10), 10);
    }
}
