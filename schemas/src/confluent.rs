//! Confluent wire format: `0x00` + 4-byte big-endian schema id + Avro
//! binary datum, the framing every registry-aware Kafka tool (Redpanda
//! Console, Connect, ksqlDB, other languages' serdes) reads.
//!
//! This module is pure logic: which framing a producer uses ([`Encoding`]),
//! the ids our schemas got ([`SchemaIds`]) and the writer schemas known by
//! id ([`WriterSchemas`]). Talking to the registry is
//! [`crate::registry`]'s job (feature `registry`); it plugs in here through
//! [`SchemaLookup`].
//!
//! # Why the encoder is passed in, and the decoder table is process-wide
//! A producer's framing is chosen once at boot and handed to its
//! `EventPublisher` as an [`Encoding`] value, not read from a global: tests
//! run many complete systems in one process, with and without a registry,
//! and a global would let one leak into the others. Decoding cannot take
//! the same route without changing every `*Event::decode` call site, so the
//! writer schemas by id live in one process-wide table ([`install`]): ids
//! belong to a registry and a process talks to one registry. Without an
//! installed table a Confluent-framed message fails to decode with an error
//! that names its schema id.

use crate::codec::{AvroEvent, CodecError, SchemaInfo, embedded_events};
use apache_avro::Schema;
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

/// The first byte of a Confluent-framed message.
pub const MAGIC: u8 = 0x00;
/// Magic byte + schema id.
pub const HEADER_LEN: usize = 5;

/// `0x00` + `id` (big-endian) + `datum`.
pub fn frame(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// The schema id and datum of a Confluent-framed message, or `None` when
/// `bytes` does not start with the magic byte and a full id.
pub fn split(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [MAGIC, a, b, c, d, datum @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        _ => None,
    }
}

/// The registry ids of our own schemas, by record name (`AvroEvent::NAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaIds {
    by_name: HashMap<&'static str, u32>,
}

impl SchemaIds {
    pub fn insert(&mut self, name: &'static str, id: u32) {
        self.by_name.insert(name, id);
    }

    /// The id registered for record `name`, if any.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }
}

/// How a producer frames the events it publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Avro single-object encoding: needs no registry (tests, `flashdeal up`).
    #[default]
    SingleObject,
    /// Confluent framing with the ids our schemas were registered under.
    Confluent(Arc<SchemaIds>),
}

impl Encoding {
    /// `event` in this framing.
    pub fn encode<E: AvroEvent>(&self, event: &E) -> Result<Vec<u8>, CodecError> {
        match self {
            Self::SingleObject => event.encode(),
            Self::Confluent(ids) => {
                let id = ids.get(E::NAME).ok_or(CodecError::NotRegistered(E::NAME))?;
                Ok(frame(id, &event.datum()?))
            }
        }
    }

    /// An already single-object-encoded event (an outbox row) in this
    /// framing. The datum is the same bytes either way, so only the header
    /// is swapped; a payload whose fingerprint is not one of our schemas
    /// (written by another version) is left as it is, and consumers still
    /// read it by fingerprint.
    pub fn reframe<'a>(&self, payload: &'a [u8]) -> Cow<'a, [u8]> {
        let Self::Confluent(ids) = self else {
            return Cow::Borrowed(payload);
        };
        for ev in embedded_events() {
            if let Some(datum) = payload.strip_prefix(ev.info.header.as_slice())
                && let Some(id) = ids.get(ev.name)
            {
                return Cow::Owned(frame(id, datum));
            }
        }
        Cow::Borrowed(payload)
    }
}

/// A schema some producer wrote with, as the registry knows it.
#[derive(Debug)]
pub struct WriterSchema {
    pub schema: Schema,
    /// Fully qualified record name, e.g. `io.flashdeal.orders.OrderPlaced`.
    pub full_name: String,
    /// Its single-object header: equal to a reader's header exactly when
    /// the two schemas have the same canonical form (no resolution needed).
    pub header: Vec<u8>,
}

impl WriterSchema {
    pub fn parse(text: &str) -> Result<Self, apache_avro::Error> {
        let info = SchemaInfo::parse(text)?;
        Ok(Self {
            full_name: info.full_name,
            header: info.header,
            schema: info.schema,
        })
    }
}

/// Fetches a writer schema's text by id (the registry's
/// `GET /schemas/ids/{id}`). Synchronous because decoding is; it runs once
/// per unknown id per process, since a registry never reuses an id.
pub trait SchemaLookup: Send + Sync {
    fn schema_text(&self, id: u32) -> Result<String, String>;
}

/// Writer schemas by registry id, filled at boot with our own and on demand
/// through the [`SchemaLookup`].
#[derive(Default)]
pub struct WriterSchemas {
    known: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    lookup: Option<Box<dyn SchemaLookup>>,
}

impl std::fmt::Debug for WriterSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterSchemas")
            .field("lookup", &self.lookup.is_some())
            .finish_non_exhaustive()
    }
}

impl WriterSchemas {
    pub fn new(lookup: Option<Box<dyn SchemaLookup>>) -> Self {
        Self {
            known: RwLock::default(),
            lookup,
        }
    }

    /// Records that `id` is `schema` (e.g. the id one of ours was
    /// registered under), so decoding it needs no lookup.
    pub fn insert(&self, id: u32, schema: WriterSchema) {
        self.known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Arc::new(schema));
    }

    /// The writer schema of `id`, looked up (and cached) when unknown.
    pub fn get(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        if let Some(w) = self
            .known
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            return Ok(Arc::clone(w));
        }
        let lookup = self
            .lookup
            .as_ref()
            .ok_or(CodecError::UnknownSchemaId(id))?;
        let text = lookup
            .schema_text(id)
            .map_err(|reason| CodecError::Lookup { id, reason })?;
        let writer = WriterSchema::parse(&text).map_err(|e| CodecError::Lookup {
            id,
            reason: format!("the registry's schema does not parse: {e}"),
        })?;
        let writer = Arc::new(writer);
        self.known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Arc::clone(&writer));
        Ok(writer)
    }
}

static INSTALLED: LazyLock<RwLock<Arc<WriterSchemas>>> = LazyLock::new(RwLock::default);

/// Makes `writers` the table `*Event::decode` resolves Confluent ids with
/// (replacing any earlier one). Called once at boot when a registry is
/// configured.
pub fn install(writers: Arc<WriterSchemas>) {
    *INSTALLED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = writers;
}

/// The table installed with [`install`] (empty, without lookup, before).
pub fn installed() -> Arc<WriterSchemas> {
    Arc::clone(
        &INSTALLED
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        IntentEvent, StatusEvent,
        codec::AvroEvent,
        events::{OrderConfirmed, OrderPlaced},
        ids::{DealId, OrderId, UserId},
    };
    use apache_avro::types::Value;
    use uuid::Uuid;

    fn placed(key: Option<&str>) -> OrderPlaced {
        OrderPlaced {
            event_id: Uuid::now_v7(),
            order_id: OrderId::new_v7(),
            user_id: UserId::new_v7(),
            deal_id: DealId::new_v7(),
            quantity: 3,
            unit_price_cents: 4_250,
            idempotency_key: key.map(str::to_owned),
            reserved_at: 1_700_000_000_000,
            expires_at: 1_700_000_600_000,
        }
    }

    /// Our schemas registered as ids 1.. (what a registry would answer).
    fn registered() -> (Encoding, WriterSchemas) {
        let mut ids = SchemaIds::default();
        let writers = WriterSchemas::default();
        for (n, ev) in (1..).zip(embedded_events()) {
            ids.insert(ev.name, n);
            writers.insert(n, WriterSchema::parse(&ev.info.text).unwrap());
        }
        (Encoding::Confluent(Arc::new(ids)), writers)
    }

    /// `order_placed.avsc` with its fields changed by `edit`.
    fn order_placed_variant(edit: impl FnOnce(&str) -> String) -> WriterSchema {
        WriterSchema::parse(&edit(&OrderPlaced::info().text)).unwrap()
    }

    #[test]
    fn frame_and_split_are_inverse() {
        let framed = frame(0x0102_0304, b"datum");
        assert_eq!(&framed[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(split(&framed), Some((0x0102_0304, &b"datum"[..])));
        assert_eq!(split(&[0, 1, 2]), None);
        assert_eq!(split(&[0xC3, 1, 2, 3, 4]), None);
    }

    #[test]
    fn confluent_framing_round_trips_through_the_topic_decoders() {
        let (encoding, writers) = registered();
        let Encoding::Confluent(ids) = &encoding else {
            unreachable!()
        };
        for ev in [placed(Some("k-1")), placed(None)] {
            let bytes = encoding.encode(&ev).unwrap();
            assert_eq!(bytes[0], MAGIC);
            let id = ids.get("OrderPlaced").unwrap();
            assert_eq!(&bytes[1..5], &id.to_be_bytes());
            assert_eq!(&bytes[5..], &ev.datum().unwrap()[..]);
            assert_eq!(
                IntentEvent::decode_with(&bytes, &writers).unwrap(),
                IntentEvent::Placed(ev)
            );
        }
        let c = OrderConfirmed::of(&placed(None));
        assert_eq!(
            StatusEvent::decode_with(&encoding.encode(&c).unwrap(), &writers).unwrap(),
            StatusEvent::Confirmed(c)
        );
    }

    #[test]
    fn single_object_still_decodes_and_is_the_default_encoding() {
        let (_, writers) = registered();
        let ev = placed(Some("k"));
        let bytes = Encoding::default().encode(&ev).unwrap();
        assert_eq!(bytes, ev.encode().unwrap());
        assert_eq!(
            IntentEvent::decode_with(&bytes, &writers).unwrap(),
            IntentEvent::Placed(ev)
        );
    }

    #[test]
    fn an_older_writer_without_a_defaulted_field_decodes_with_our_default() {
        // v0 of OrderPlaced, before `idempotency_key` (default null) existed.
        let older = order_placed_variant(|t| {
            t.replace(
                r#"{"name": "idempotency_key", "type": ["null", "string"], "default": null},"#,
                "",
            )
        });
        assert_ne!(older.header, OrderPlaced::info().header);
        let ev = placed(Some("dropped by the old writer"));
        let mut fields = fields_of(&ev);
        fields.retain(|(name, _)| name != "idempotency_key");
        let datum = GenericWriterOf(&older).datum(Value::Record(fields));
        let writers = WriterSchemas::default();
        writers.insert(41, older);
        let decoded = IntentEvent::decode_with(&frame(41, &datum), &writers).unwrap();
        assert_eq!(
            decoded,
            IntentEvent::Placed(OrderPlaced {
                idempotency_key: None,
                ..ev
            })
        );
    }

    #[test]
    fn a_newer_writer_with_an_extra_defaulted_field_decodes_without_it() {
        let newer = order_placed_variant(|t| {
            t.replace(
                r#"{"name": "quantity", "type": "int"},"#,
                r#"{"name": "quantity", "type": "int"},
    {"name": "channel", "type": "string", "default": "web"},"#,
            )
        });
        let ev = placed(Some("k-2"));
        let mut fields = fields_of(&ev);
        fields.insert(5, ("channel".to_owned(), Value::String("app".to_owned())));
        let datum = GenericWriterOf(&newer).datum(Value::Record(fields));
        let writers = WriterSchemas::default();
        writers.insert(42, newer);
        assert_eq!(
            IntentEvent::decode_with(&frame(42, &datum), &writers).unwrap(),
            IntentEvent::Placed(ev)
        );
    }

    /// `ev`'s record fields as Avro values (what a writer of any version
    /// would hold).
    fn fields_of(ev: &OrderPlaced) -> Vec<(String, Value)> {
        let datum = ev.datum().unwrap();
        let value =
            apache_avro::reader::datum::GenericDatumReader::builder(&OrderPlaced::info().schema)
                .build()
                .unwrap()
                .read_value(&mut &datum[..])
                .unwrap();
        let Value::Record(fields) = value else {
            unreachable!("OrderPlaced is a record")
        };
        fields
    }

    /// Writes a raw Avro value with a test-local schema.
    struct GenericWriterOf<'a>(&'a WriterSchema);

    impl GenericWriterOf<'_> {
        fn datum(&self, value: Value) -> Vec<u8> {
            apache_avro::writer::datum::GenericDatumWriter::builder(&self.0.schema)
                .build()
                .unwrap()
                .write_value_to_vec(value)
                .unwrap()
        }
    }

    #[test]
    fn an_unknown_id_without_a_registry_is_an_error_naming_the_id() {
        let bytes = frame(7_654_321, &placed(None).datum().unwrap());
        let err = IntentEvent::decode_with(&bytes, &WriterSchemas::default()).unwrap_err();
        assert!(
            matches!(err, CodecError::UnknownSchemaId(7_654_321)),
            "{err:?}"
        );
        assert!(err.to_string().contains("7654321"), "{err}");
    }

    struct Failing;
    impl SchemaLookup for Failing {
        fn schema_text(&self, _: u32) -> Result<String, String> {
            Err("connection refused".to_owned())
        }
    }

    #[test]
    fn a_failed_lookup_names_the_id_and_the_reason() {
        let writers = WriterSchemas::new(Some(Box::new(Failing)));
        let err = IntentEvent::decode_with(&frame(9, b"\x02"), &writers).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("schema id 9") && text.contains("connection refused"),
            "{text}"
        );
    }

    #[test]
    fn an_id_of_another_topics_record_is_refused() {
        let (encoding, writers) = registered();
        let confirmed = encoding.encode(&OrderConfirmed::of(&placed(None))).unwrap();
        let err = IntentEvent::decode_with(&confirmed, &writers).unwrap_err();
        assert!(
            matches!(&err, CodecError::WrongRecord { record, .. } if record == "io.flashdeal.orders.OrderConfirmed"),
            "{err:?}"
        );
    }

    #[test]
    fn reframing_swaps_only_the_header() {
        let (encoding, writers) = registered();
        let ev = placed(Some("outbox"));
        let single = ev.encode().unwrap();
        let reframed = encoding.reframe(&single);
        assert_eq!(&reframed[..], &encoding.encode(&ev).unwrap()[..]);
        assert_eq!(
            IntentEvent::decode_with(&reframed, &writers).unwrap(),
            IntentEvent::Placed(ev)
        );
        assert_eq!(&Encoding::SingleObject.reframe(&single)[..], &single[..]);
        assert_eq!(&encoding.reframe(b"not avro")[..], b"not avro");
    }

    #[test]
    fn subjects_follow_the_topic_record_name_strategy() {
        assert_eq!(
            OrderPlaced::subject(),
            "orders.intents-io.flashdeal.orders.OrderPlaced"
        );
        let subjects: std::collections::HashSet<_> =
            embedded_events().iter().map(|e| e.subject()).collect();
        assert_eq!(subjects.len(), embedded_events().len());
    }
}
