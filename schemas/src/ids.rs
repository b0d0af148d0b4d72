//! Newtypes for the values that cross the system's edges. They are parsed
//! once (HTTP body, header, Avro field) and trusted afterwards.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

/// Why a raw value is not a valid id, quantity or key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("`{0}` is not a UUID")]
    NotAUuid(String),
    #[error("quantity must be between 1 and {max}, got {got}")]
    QuantityOutOfRange { got: i64, max: u32 },
    #[error("idempotency key must be 1 to {max} visible ASCII characters")]
    BadIdempotencyKey { max: usize },
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::NotAUuid(s.chars().take(64).collect()))
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// Identifies one order; also the Kafka key of every order event.
    OrderId
);
uuid_id!(
    /// Identifies a deal (a product sold at a price, with a stock, in a window).
    DealId
);
uuid_id!(
    /// Identifies a user of the auth store.
    UserId
);

/// Units in one order: at least 1, at most [`Quantity::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// No single order may take more than this many units.
    pub const MAX: u32 = 1_000;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = IdError;
    fn try_from(got: i64) -> Result<Self, IdError> {
        match u32::try_from(got) {
            Ok(q) if (1..=Self::MAX).contains(&q) => Ok(Self(q)),
            _ => Err(IdError::QuantityOutOfRange {
                got,
                max: Self::MAX,
            }),
        }
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// A client-chosen key that makes a retried `POST /orders` return the first
/// order instead of reserving again.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        let ok =
            !s.is_empty() && s.len() <= Self::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s))
        } else {
            Err(IdError::BadIdempotencyKey { max: Self::MAX_LEN })
        }
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_accepts_only_its_range() {
        assert_eq!(Quantity::try_from(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::try_from(1_000).map(Quantity::get), Ok(1_000));
        for bad in [0, -1, 1_001, i64::MAX, i64::MIN] {
            assert!(Quantity::try_from(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn quantity_parses_from_json_with_a_reason() {
        let err = serde_json::from_str::<Quantity>("0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 1 and 1000"), "{err}");
        assert!(serde_json::from_str::<Quantity>("2.5").is_err());
        assert_eq!(
            serde_json::from_str::<Quantity>("3")
                .map(Quantity::get)
                .ok(),
            Some(3)
        );
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::try_from("retry-1".to_owned()).is_ok());
        for bad in ["", "has space", "tab\t", "é"] {
            assert!(
                IdempotencyKey::try_from(bad.to_owned()).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(IdempotencyKey::try_from("k".repeat(129)).is_err());
    }

    #[test]
    fn ids_parse_uuids_only() {
        assert!("not-a-uuid".parse::<DealId>().is_err());
        let id = DealId::new_v7();
        assert_eq!(id.to_string().parse::<DealId>(), Ok(id));
    }
}
