//! How a deal is shown: the row every deal query returns, the view clients
//! get, and the status they see, which the stored status and the window
//! decide together (`list_deals.sql` filters by the same rule).

use chrono::{DateTime, Utc};
use flashdeal_schemas::DealId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A deal as every deal query returns it.
#[derive(Clone, Debug)]
pub struct DealRow {
    pub deal_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    pub sold_count: i32,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Stored: `scheduled`, `paused` or `ended`.
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

/// A deal as clients see it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DealView {
    #[schema(value_type = Uuid)]
    pub deal_id: DealId,
    pub product_id: Uuid,
    pub product_name: String,
    pub price_cents: i64,
    pub stock: i32,
    /// Units still available to reserve (from Redis); absent if unknown.
    pub remaining: Option<i64>,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `upcoming`, `active`, `ended` or `paused`.
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// What the catalog API answers for a deal: the view plus what only the
/// catalog knows.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DealDetail {
    #[serde(flatten)]
    pub deal: DealView,
    /// Units confirmed sold (learned from the order log).
    pub sold_count: i32,
}

impl DealDetail {
    pub fn new(row: DealRow, remaining: Option<i64>, now: DateTime<Utc>) -> Self {
        Self {
            deal: DealView {
                deal_id: DealId(row.deal_id),
                product_id: row.product_id,
                status: display_status(&row.status, row.starts_at, row.ends_at, now),
                product_name: row.product_name,
                price_cents: row.price_cents,
                stock: row.stock,
                remaining,
                per_user_limit: row.per_user_limit,
                starts_at: row.starts_at,
                ends_at: row.ends_at,
                created_at: row.created_at,
            },
            sold_count: row.sold_count,
        }
    }
}

/// The status clients see: `ended` once stored so or the window is over,
/// then a stored `paused`, otherwise where `now` falls in the window.
/// `list_deals.sql` filters by the same rule.
pub fn display_status(
    stored: &str,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    match stored {
        "ended" => "ended",
        _ if now >= ends => "ended",
        "paused" => "paused",
        _ if now < starts => "upcoming",
        _ => "active",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn ended_wins_then_paused_then_the_window() {
        let t = Utc::now();
        let end = t + Duration::minutes(1);
        let s = |stored, now| display_status(stored, t, end, now);
        assert_eq!(s("scheduled", t - Duration::seconds(1)), "upcoming");
        assert_eq!(s("scheduled", t), "active");
        assert_eq!(s("scheduled", end), "ended");
        assert_eq!(s("paused", t - Duration::seconds(1)), "paused");
        assert_eq!(s("paused", t), "paused");
        assert_eq!(s("paused", end), "ended");
        assert_eq!(s("ended", t), "ended");
    }
}
