//! Avro single-object encoding (`C3 01` + 8-byte CRC-64-AVRO fingerprint +
//! datum) for every event, so a reader can tell which record a message holds
//! without a registry. The schema files are compiled in with `include_str!`.

use crate::{
    events::{OrderConfirmed, OrderExpired, OrderPlaced, OrderRejected, ReservationReleased},
    store_events::{DealChanged, ProductChanged, SigningKeyRotated, UserChanged},
};
use apache_avro::{
    Schema,
    headers::{HeaderBuilder, RabinFingerprintHeader},
    reader::datum::GenericDatumReader,
    writer::datum::GenericDatumWriter,
};
use serde::{Serialize, de::DeserializeOwned};
use std::sync::LazyLock;

/// Why bytes could not be turned into an event (or an event into bytes).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message has no Avro single-object header")]
    NoHeader,
    #[error("unknown schema fingerprint {0:02x?} for this topic")]
    UnknownSchema(Vec<u8>),
    #[error("Avro: {0}")]
    Avro(#[from] Box<apache_avro::Error>),
}

impl From<apache_avro::Error> for CodecError {
    fn from(e: apache_avro::Error) -> Self {
        Self::Avro(Box::new(e))
    }
}

/// A parsed schema with its single-object header, built once per process.
pub struct SchemaInfo {
    pub schema: Schema,
    pub header: Vec<u8>,
}

fn parse(text: &str) -> SchemaInfo {
    // The schema files are part of the binary and covered by tests, so a
    // parse failure is a build defect, not a runtime condition.
    #[allow(clippy::expect_used)]
    let schema = Schema::parse_str(text).expect("embedded Avro schema is valid");
    let header = RabinFingerprintHeader::from_schema(&schema).build_header();
    SchemaInfo { schema, header }
}

/// An event type with an Avro schema from `schemas/avro/`.
pub trait AvroEvent: Serialize + DeserializeOwned {
    /// The Avro record name, also sent as the `event_type` header.
    const NAME: &'static str;
    fn info() -> &'static SchemaInfo;

    /// Single-object encoding of `self`.
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let info = Self::info();
        let body = GenericDatumWriter::builder(&info.schema)
            .human_readable(true)
            .build()?
            .write_ser_to_vec(self)?;
        let mut out = Vec::with_capacity(info.header.len() + body.len());
        out.extend_from_slice(&info.header);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes a datum already known to be of this type (header stripped).
    fn decode_body(mut body: &[u8]) -> Result<Self, CodecError> {
        Ok(GenericDatumReader::builder(&Self::info().schema)
            .human_readable(true)
            .build()?
            .read_deser(&mut body)?)
    }
}

macro_rules! avro_event {
    ($ty:ty, $name:literal, $file:literal) => {
        impl AvroEvent for $ty {
            const NAME: &'static str = $name;
            fn info() -> &'static SchemaInfo {
                static INFO: LazyLock<SchemaInfo> =
                    LazyLock::new(|| parse(include_str!(concat!("../avro/", $file))));
                &INFO
            }
        }
    };
}

avro_event!(OrderPlaced, "OrderPlaced", "order_placed.avsc");
avro_event!(OrderConfirmed, "OrderConfirmed", "order_confirmed.avsc");
avro_event!(OrderRejected, "OrderRejected", "order_rejected.avsc");
avro_event!(OrderExpired, "OrderExpired", "order_expired.avsc");
avro_event!(
    ReservationReleased,
    "ReservationReleased",
    "reservation_released.avsc"
);

avro_event!(UserChanged, "UserChanged", "user_changed.avsc");
avro_event!(
    SigningKeyRotated,
    "SigningKeyRotated",
    "signing_key_rotated.avsc"
);
avro_event!(ProductChanged, "ProductChanged", "product_changed.avsc");
avro_event!(DealChanged, "DealChanged", "deal_changed.avsc");

/// Every schema file the codec embeds, by file name (for the compatibility
/// check against `avro/history/`).
pub fn embedded_schemas() -> Vec<(&'static str, &'static Schema)> {
    vec![
        ("order_placed", &OrderPlaced::info().schema),
        ("order_confirmed", &OrderConfirmed::info().schema),
        ("order_rejected", &OrderRejected::info().schema),
        ("order_expired", &OrderExpired::info().schema),
        ("reservation_released", &ReservationReleased::info().schema),
        ("user_changed", &UserChanged::info().schema),
        ("signing_key_rotated", &SigningKeyRotated::info().schema),
        ("product_changed", &ProductChanged::info().schema),
        ("deal_changed", &DealChanged::info().schema),
    ]
}

/// Splits `bytes` into header and body if it carries `T`'s fingerprint.
fn body_of<T: AvroEvent>(bytes: &[u8]) -> Option<&[u8]> {
    bytes.strip_prefix(T::info().header.as_slice())
}

fn unknown(bytes: &[u8]) -> CodecError {
    if bytes.len() < 10 || bytes[..2] != [0xC3, 0x01] {
        CodecError::NoHeader
    } else {
        CodecError::UnknownSchema(bytes[2..10].to_vec())
    }
}

/// What `orders.intents` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentEvent {
    Placed(OrderPlaced),
    Expired(OrderExpired),
}

impl IntentEvent {
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if let Some(body) = body_of::<OrderPlaced>(bytes) {
            return OrderPlaced::decode_body(body).map(Self::Placed);
        }
        if let Some(body) = body_of::<OrderExpired>(bytes) {
            return OrderExpired::decode_body(body).map(Self::Expired);
        }
        Err(unknown(bytes))
    }
}

/// What `orders.status` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusEvent {
    Confirmed(OrderConfirmed),
    Rejected(OrderRejected),
    Released(ReservationReleased),
}

impl StatusEvent {
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if let Some(body) = body_of::<OrderConfirmed>(bytes) {
            return OrderConfirmed::decode_body(body).map(Self::Confirmed);
        }
        if let Some(body) = body_of::<OrderRejected>(bytes) {
            return OrderRejected::decode_body(body).map(Self::Rejected);
        }
        if let Some(body) = body_of::<ReservationReleased>(bytes) {
            return ReservationReleased::decode_body(body).map(Self::Released);
        }
        Err(unknown(bytes))
    }
}

/// What `auth.events` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthEvent {
    User(UserChanged),
    KeyRotated(SigningKeyRotated),
}

impl AuthEvent {
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if let Some(body) = body_of::<UserChanged>(bytes) {
            return UserChanged::decode_body(body).map(Self::User);
        }
        if let Some(body) = body_of::<SigningKeyRotated>(bytes) {
            return SigningKeyRotated::decode_body(body).map(Self::KeyRotated);
        }
        Err(unknown(bytes))
    }
}

/// What `catalog.events` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogEvent {
    Product(ProductChanged),
    Deal(DealChanged),
}

impl CatalogEvent {
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if let Some(body) = body_of::<DealChanged>(bytes) {
            return DealChanged::decode_body(body).map(Self::Deal);
        }
        if let Some(body) = body_of::<ProductChanged>(bytes) {
            return ProductChanged::decode_body(body).map(Self::Product);
        }
        Err(unknown(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DealId, OrderId, UserId};
    use uuid::Uuid;

    fn placed(key: Option<&str>) -> OrderPlaced {
        OrderPlaced {
            event_id: Uuid::now_v7(),
            order_id: OrderId::new_v7(),
            user_id: UserId::new_v7(),
            deal_id: DealId::new_v7(),
            quantity: 2,
            unit_price_cents: 1999,
            idempotency_key: key.map(str::to_owned),
            reserved_at: 1_700_000_000_000,
            expires_at: 1_700_000_600_000,
        }
    }

    #[test]
    fn order_placed_round_trips_with_and_without_key() {
        for ev in [placed(Some("k-1")), placed(None)] {
            let bytes = ev.encode().unwrap();
            assert_eq!(&bytes[..2], &[0xC3, 0x01]);
            assert_eq!(
                IntentEvent::decode(&bytes).unwrap(),
                IntentEvent::Placed(ev)
            );
        }
    }

    #[test]
    fn status_events_are_told_apart_by_fingerprint() {
        let p = placed(None);
        let c = OrderConfirmed::of(&p);
        let r = OrderRejected::of(&p, "duplicate idempotency key");
        assert_eq!(
            StatusEvent::decode(&c.encode().unwrap()).unwrap(),
            StatusEvent::Confirmed(c)
        );
        assert_eq!(
            StatusEvent::decode(&r.encode().unwrap()).unwrap(),
            StatusEvent::Rejected(r)
        );
    }

    #[test]
    fn expiry_and_release_round_trip_on_their_topics() {
        let p = placed(Some("k"));
        let expired = OrderExpired {
            event_id: Uuid::now_v7(),
            order_id: p.order_id,
            user_id: p.user_id,
            deal_id: p.deal_id,
            quantity: p.quantity,
            unit_price_cents: p.unit_price_cents,
            reserved_at: p.reserved_at,
            expires_at: p.expires_at,
            occurred_at: p.expires_at + 1,
        };
        let released = ReservationReleased::of(&expired);
        assert_eq!(
            IntentEvent::decode(&expired.encode().unwrap()).unwrap(),
            IntentEvent::Expired(expired)
        );
        assert_eq!(
            StatusEvent::decode(&released.encode().unwrap()).unwrap(),
            StatusEvent::Released(released)
        );
    }

    #[test]
    fn garbage_and_wrong_topic_are_errors_not_panics() {
        assert!(matches!(
            IntentEvent::decode(b"{\"json\":1}"),
            Err(CodecError::NoHeader)
        ));
        let confirmed = OrderConfirmed::of(&placed(None)).encode().unwrap();
        assert!(matches!(
            IntentEvent::decode(&confirmed),
            Err(CodecError::UnknownSchema(_))
        ));
        let mut truncated = placed(None).encode().unwrap();
        truncated.truncate(20);
        assert!(matches!(
            IntentEvent::decode(&truncated),
            Err(CodecError::Avro(_))
        ));
    }
}
