//! Avro encode/decode for every event. Producers write Avro single-object
//! encoding (`C3 01` + 8-byte CRC-64-AVRO fingerprint + datum), which needs
//! no registry, or Confluent framing (`00` + schema id + datum, see
//! [`crate::confluent`]) when a schema registry is configured. The per-topic
//! decoders read both: single-object by fingerprint, Confluent by looking
//! the id's writer schema up and resolving it against ours, so data written
//! with an older or newer compatible schema decodes. The schema files are
//! compiled in with `include_str!`.

use crate::{
    confluent::{self, WriterSchema, WriterSchemas},
    events::{OrderConfirmed, OrderExpired, OrderPlaced, OrderRejected, ReservationReleased},
    store_events::{DealChanged, ProductChanged, SigningKeyRotated, UserChanged},
    topics,
};
use apache_avro::{
    Schema,
    headers::{HeaderBuilder, RabinFingerprintHeader},
    reader::datum::GenericDatumReader,
    writer::datum::GenericDatumWriter,
};
use serde::{Serialize, de::DeserializeOwned};
use std::sync::{Arc, LazyLock};

/// Why bytes could not be turned into an event (or an event into bytes).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(
        "message has no Avro single-object header (C3 01) nor Confluent framing (00 + schema id)"
    )]
    NoHeader,
    #[error("unknown schema fingerprint {0:02x?} for this topic")]
    UnknownSchema(Vec<u8>),
    #[error("unknown schema id {0}: no schema registry is configured to look it up")]
    UnknownSchemaId(u32),
    #[error("looking up schema id {id} in the schema registry: {reason}")]
    Lookup { id: u32, reason: String },
    #[error("schema id {id} is {record}, not an event of this topic")]
    WrongRecord { id: u32, record: String },
    #[error("{0} has no schema id: it was not registered with the schema registry")]
    NotRegistered(&'static str),
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
    /// Fully qualified record name, e.g. `io.flashdeal.orders.OrderPlaced`.
    pub full_name: String,
    /// The `.avsc` text, as registered with a schema registry (the parsing
    /// canonical form would drop defaults, which compatibility checks need).
    pub text: String,
}

impl SchemaInfo {
    pub fn parse(text: &str) -> Result<Self, apache_avro::Error> {
        let schema = Schema::parse_str(text)?;
        let header = RabinFingerprintHeader::from_schema(&schema).build_header();
        let full_name = schema.name().map(|n| n.fullname(None)).unwrap_or_default();
        Ok(Self {
            schema,
            header,
            full_name,
            text: text.to_owned(),
        })
    }
}

fn embedded(text: &str) -> SchemaInfo {
    // The schema files are part of the binary and covered by tests, so a
    // parse failure is a build defect, not a runtime condition.
    #[allow(clippy::expect_used)]
    SchemaInfo::parse(text).expect("embedded Avro schema is valid")
}

/// An event type with an Avro schema from `schemas/avro/`.
pub trait AvroEvent: Serialize + DeserializeOwned {
    /// The Avro record name, also sent as the `event_type` header.
    const NAME: &'static str;
    /// The topic this event is published to.
    const TOPIC: &'static str;
    fn info() -> &'static SchemaInfo;

    /// The registry subject of this event's schema:
    /// `<topic>-<fully.qualified.RecordName>` (TopicRecordNameStrategy,
    /// docs/decisions.md "Schema registry").
    fn subject() -> String {
        subject(Self::TOPIC, Self::info())
    }

    /// The Avro binary datum of `self`, without any framing.
    fn datum(&self) -> Result<Vec<u8>, CodecError> {
        Ok(GenericDatumWriter::builder(&Self::info().schema)
            .human_readable(true)
            .build()?
            .write_ser_to_vec(self)?)
    }

    /// Single-object encoding of `self` (the framing that needs no
    /// registry; see [`confluent::Encoding`] for the other).
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let info = Self::info();
        let body = self.datum()?;
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

    /// Decodes a datum written with `writer`, a version of this record's
    /// schema: resolved against ours (Avro schema resolution: fields the
    /// writer lacks take our defaults, fields we lack are skipped) unless
    /// the two are the same schema.
    fn decode_written_with(writer: &WriterSchema, mut body: &[u8]) -> Result<Self, CodecError> {
        let ours = Self::info();
        if writer.header == ours.header {
            return Self::decode_body(body);
        }
        let value = GenericDatumReader::builder(&writer.schema)
            .reader_schema(&ours.schema)
            .build()?
            .read_value(&mut body)?;
        // The resolved value conforms to our schema; writing it back with
        // our schema and reading it as usual keeps one deserialization path
        // (the resolving serde reader is not implemented in apache-avro).
        let datum = GenericDatumWriter::builder(&ours.schema)
            .build()?
            .write_value_to_vec(value)?;
        Self::decode_body(&datum)
    }
}

fn subject(topic: &str, info: &SchemaInfo) -> String {
    format!("{topic}-{}", info.full_name)
}

macro_rules! avro_event {
    ($ty:ty, $name:literal, $file:literal, $topic:expr) => {
        impl AvroEvent for $ty {
            const NAME: &'static str = $name;
            const TOPIC: &'static str = $topic;
            fn info() -> &'static SchemaInfo {
                static INFO: LazyLock<SchemaInfo> =
                    LazyLock::new(|| embedded(include_str!(concat!("../avro/", $file))));
                &INFO
            }
        }
    };
}

avro_event!(
    OrderPlaced,
    "OrderPlaced",
    "order_placed.avsc",
    topics::ORDERS_INTENTS
);
avro_event!(
    OrderExpired,
    "OrderExpired",
    "order_expired.avsc",
    topics::ORDERS_INTENTS
);
avro_event!(
    OrderConfirmed,
    "OrderConfirmed",
    "order_confirmed.avsc",
    topics::ORDERS_STATUS
);
avro_event!(
    OrderRejected,
    "OrderRejected",
    "order_rejected.avsc",
    topics::ORDERS_STATUS
);
avro_event!(
    ReservationReleased,
    "ReservationReleased",
    "reservation_released.avsc",
    topics::ORDERS_STATUS
);

avro_event!(
    UserChanged,
    "UserChanged",
    "user_changed.avsc",
    topics::AUTH_EVENTS
);
avro_event!(
    SigningKeyRotated,
    "SigningKeyRotated",
    "signing_key_rotated.avsc",
    topics::AUTH_EVENTS
);
avro_event!(
    ProductChanged,
    "ProductChanged",
    "product_changed.avsc",
    topics::CATALOG_EVENTS
);
avro_event!(
    DealChanged,
    "DealChanged",
    "deal_changed.avsc",
    topics::CATALOG_EVENTS
);

/// One event type the codec embeds, as a schema registry sees it.
#[derive(Clone, Copy)]
pub struct EmbeddedEvent {
    /// `AvroEvent::NAME`.
    pub name: &'static str,
    /// `AvroEvent::TOPIC`.
    pub topic: &'static str,
    pub info: &'static SchemaInfo,
}

impl EmbeddedEvent {
    fn of<E: AvroEvent>() -> Self {
        Self {
            name: E::NAME,
            topic: E::TOPIC,
            info: E::info(),
        }
    }

    /// Its registry subject (see [`AvroEvent::subject`]).
    pub fn subject(&self) -> String {
        subject(self.topic, self.info)
    }
}

/// Every event type the codec embeds (what a registry client registers).
pub fn embedded_events() -> [EmbeddedEvent; 9] {
    [
        EmbeddedEvent::of::<OrderPlaced>(),
        EmbeddedEvent::of::<OrderExpired>(),
        EmbeddedEvent::of::<OrderConfirmed>(),
        EmbeddedEvent::of::<OrderRejected>(),
        EmbeddedEvent::of::<ReservationReleased>(),
        EmbeddedEvent::of::<UserChanged>(),
        EmbeddedEvent::of::<SigningKeyRotated>(),
        EmbeddedEvent::of::<ProductChanged>(),
        EmbeddedEvent::of::<DealChanged>(),
    ]
}

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

/// A message split by its framing, ready to be tried against each record
/// type its topic carries.
enum Framed<'a> {
    SingleObject(&'a [u8]),
    Confluent {
        id: u32,
        writer: Arc<WriterSchema>,
        datum: &'a [u8],
    },
}

impl<'a> Framed<'a> {
    fn parse(bytes: &'a [u8], writers: &WriterSchemas) -> Result<Self, CodecError> {
        if let Some((id, datum)) = confluent::split(bytes) {
            let writer = writers.get(id)?;
            return Ok(Self::Confluent { id, writer, datum });
        }
        if bytes.len() < 10 || bytes[..2] != [0xC3, 0x01] {
            return Err(CodecError::NoHeader);
        }
        Ok(Self::SingleObject(bytes))
    }

    /// `Some` when the message holds a `T` (decoded, or why not).
    fn try_as<T: AvroEvent>(&self) -> Option<Result<T, CodecError>> {
        match self {
            Self::SingleObject(bytes) => bytes
                .strip_prefix(T::info().header.as_slice())
                .map(T::decode_body),
            Self::Confluent { writer, datum, .. } => (writer.full_name == T::info().full_name)
                .then(|| T::decode_written_with(writer, datum)),
        }
    }

    /// The error for a message none of the topic's record types matched.
    fn unknown(&self) -> CodecError {
        match self {
            Self::SingleObject(bytes) => CodecError::UnknownSchema(bytes[2..10].to_vec()),
            Self::Confluent { id, writer, .. } => CodecError::WrongRecord {
                id: *id,
                record: writer.full_name.clone(),
            },
        }
    }
}

/// What `orders.intents` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentEvent {
    Placed(OrderPlaced),
    Expired(OrderExpired),
}

impl IntentEvent {
    /// Decodes either framing; Confluent ids resolve through the
    /// process-wide table ([`confluent::install`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Self::decode_with(bytes, &confluent::installed())
    }

    /// Decodes either framing, resolving Confluent ids with `writers`.
    pub fn decode_with(bytes: &[u8], writers: &WriterSchemas) -> Result<Self, CodecError> {
        let f = Framed::parse(bytes, writers)?;
        if let Some(r) = f.try_as::<OrderPlaced>() {
            return r.map(Self::Placed);
        }
        if let Some(r) = f.try_as::<OrderExpired>() {
            return r.map(Self::Expired);
        }
        Err(f.unknown())
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
    /// Decodes either framing; Confluent ids resolve through the
    /// process-wide table ([`confluent::install`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Self::decode_with(bytes, &confluent::installed())
    }

    /// Decodes either framing, resolving Confluent ids with `writers`.
    pub fn decode_with(bytes: &[u8], writers: &WriterSchemas) -> Result<Self, CodecError> {
        let f = Framed::parse(bytes, writers)?;
        if let Some(r) = f.try_as::<OrderConfirmed>() {
            return r.map(Self::Confirmed);
        }
        if let Some(r) = f.try_as::<OrderRejected>() {
            return r.map(Self::Rejected);
        }
        if let Some(r) = f.try_as::<ReservationReleased>() {
            return r.map(Self::Released);
        }
        Err(f.unknown())
    }
}

/// What `auth.events` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthEvent {
    User(UserChanged),
    KeyRotated(SigningKeyRotated),
}

impl AuthEvent {
    /// Decodes either framing; Confluent ids resolve through the
    /// process-wide table ([`confluent::install`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Self::decode_with(bytes, &confluent::installed())
    }

    /// Decodes either framing, resolving Confluent ids with `writers`.
    pub fn decode_with(bytes: &[u8], writers: &WriterSchemas) -> Result<Self, CodecError> {
        let f = Framed::parse(bytes, writers)?;
        if let Some(r) = f.try_as::<UserChanged>() {
            return r.map(Self::User);
        }
        if let Some(r) = f.try_as::<SigningKeyRotated>() {
            return r.map(Self::KeyRotated);
        }
        Err(f.unknown())
    }
}

/// What `catalog.events` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogEvent {
    Product(ProductChanged),
    Deal(DealChanged),
}

impl CatalogEvent {
    /// Decodes either framing; Confluent ids resolve through the
    /// process-wide table ([`confluent::install`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Self::decode_with(bytes, &confluent::installed())
    }

    /// Decodes either framing, resolving Confluent ids with `writers`.
    pub fn decode_with(bytes: &[u8], writers: &WriterSchemas) -> Result<Self, CodecError> {
        let f = Framed::parse(bytes, writers)?;
        if let Some(r) = f.try_as::<DealChanged>() {
            return r.map(Self::Deal);
        }
        if let Some(r) = f.try_as::<ProductChanged>() {
            return r.map(Self::Product);
        }
        Err(f.unknown())
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
