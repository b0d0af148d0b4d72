//! Redis key names (ARCHITECTURE §4). Every key of one deal carries the
//! `{deal:<id>}` hash tag, so one Lua script only touches one cluster slot.

use crate::ids::{DealId, OrderId, UserId};

/// The keys of one deal's hot-path state.
#[derive(Clone, Debug)]
pub struct DealKeys {
    /// Hash: status, starts_at/ends_at (ms), price_cents, per_user_limit, stock.
    pub meta: String,
    /// Integer: units left to reserve.
    pub stock: String,
    /// Hash: user id → units held (reserved or sold).
    pub users: String,
    /// Sorted set: order ids reserved but not yet settled, score = expiry (ms).
    pub pending: String,
    /// Hash: order id → "user_id quantity" for pending reservations.
    pub reservations: String,
    tag: String,
}

impl DealKeys {
    pub fn new(deal: DealId) -> Self {
        let tag = format!("{{deal:{deal}}}");
        Self {
            meta: format!("{tag}:meta"),
            stock: format!("{tag}:stock"),
            users: format!("{tag}:users"),
            pending: format!("{tag}:pending"),
            reservations: format!("{tag}:resv"),
            tag,
        }
    }

    /// String: the order id first reserved with this user's idempotency key.
    pub fn idempotency(&self, user: UserId, key: &str) -> String {
        format!("{}:idem:{user}:{key}", self.tag)
    }
}

/// Hash: the projected status of one order (`status`, `user_id`, `deal_id`, `quantity`).
pub fn order_status(order: OrderId) -> String {
    format!("order:{order}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_deal_key_shares_one_hash_tag() {
        let d = DealId::new_v7();
        let k = DealKeys::new(d);
        let tag = format!("{{deal:{d}}}");
        for key in [&k.meta, &k.stock, &k.users, &k.pending, &k.reservations] {
            assert!(key.starts_with(&tag), "{key}");
        }
        assert!(k.idempotency(UserId::new_v7(), "x").starts_with(&tag));
    }
}
