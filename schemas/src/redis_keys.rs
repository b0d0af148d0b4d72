//! Redis key names (ARCHITECTURE §4). Every key of one deal carries the
//! `{deal:<id>}` hash tag, so one Lua script only touches one cluster slot.

use crate::ids::{DealId, OrderId, UserId};
use std::str::FromStr;

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

/// The deal a `{deal:<id>}:…` key belongs to.
pub fn deal_of_key(key: &str) -> Option<DealId> {
    key.strip_prefix("{deal:")?.split_once('}')?.0.parse().ok()
}

/// A pending reservation as `reserve.lua` records it in the deal's
/// reservation hash: `"user_id quantity unit_price_cents reserved_at_ms
/// expires_at_ms"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRecord {
    pub user: UserId,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub reserved_at_ms: i64,
    pub expires_at_ms: i64,
}

/// The record is not in `reserve.lua`'s format.
#[derive(Debug, thiserror::Error)]
#[error("malformed reservation record `{0}`")]
pub struct MalformedRecord(String);

impl FromStr for ReservationRecord {
    type Err = MalformedRecord;

    fn from_str(s: &str) -> Result<Self, MalformedRecord> {
        let bad = || MalformedRecord(s.chars().take(120).collect());
        let f: Vec<&str> = s.split(' ').collect();
        let [user, q, p, r, e] = f.as_slice() else {
            return Err(bad());
        };
        Ok(Self {
            user: user.parse().map_err(|_| bad())?,
            quantity: q.parse().map_err(|_| bad())?,
            unit_price_cents: p.parse().map_err(|_| bad())?,
            reserved_at_ms: r.parse().map_err(|_| bad())?,
            expires_at_ms: e.parse().map_err(|_| bad())?,
        })
    }
}

/// The format `reserve.lua` writes (`recover-redis` writes it too), the
/// inverse of [`FromStr`].
impl std::fmt::Display for ReservationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.user,
            self.quantity,
            self.unit_price_cents,
            self.reserved_at_ms,
            self.expires_at_ms
        )
    }
}

/// How long `order:{id}` lives in Redis; PostgreSQL answers after that.
pub const ORDER_STATUS_TTL_SECS: i64 = 7 * 24 * 3600;

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
        assert_eq!(deal_of_key(&k.pending), Some(d));
        assert_eq!(deal_of_key("order:123"), None);
    }

    #[test]
    fn reservation_records_parse_as_reserve_lua_writes_them() {
        let user = UserId::new_v7();
        let r: ReservationRecord = format!("{user} 2 1999 1700000000000 1700000600000")
            .parse()
            .unwrap();
        assert_eq!(
            r,
            ReservationRecord {
                user,
                quantity: 2,
                unit_price_cents: 1999,
                reserved_at_ms: 1_700_000_000_000,
                expires_at_ms: 1_700_000_600_000
            }
        );
        assert_eq!(r.to_string().parse::<ReservationRecord>().unwrap(), r);
        assert!("garbage".parse::<ReservationRecord>().is_err());
        assert!(
            format!("{user} 2 x 1 2")
                .parse::<ReservationRecord>()
                .is_err()
        );
    }
}
