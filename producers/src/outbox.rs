//! The transactional outbox: a store's write and the event describing it
//! commit together, in the store's own schema. The relay ([`crate::relay`])
//! publishes the rows to the log later. Rows carry the Debezium
//! outbox-router columns (`aggregatetype`, `aggregateid`, `type`, `payload`)
//! plus `event_id`, so a CDC pipeline could replace the relay unchanged.
//! Payloads are always Avro single-object encoded, which needs no registry
//! inside the store's transaction; the relay reframes them into its
//! publisher's framing (Confluent when a schema registry is configured).

use flashdeal_schemas::{codec::AvroEvent, topics};
use sqlx::PgConnection;
use uuid::Uuid;

/// Which store's outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbox {
    /// `auth.outbox` → `auth.events`.
    Auth,
    /// `catalog.outbox` → `catalog.events`.
    Catalog,
}

impl Outbox {
    pub const ALL: [Self; 2] = [Self::Auth, Self::Catalog];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Catalog => "catalog",
        }
    }

    /// The topic the relay publishes this outbox to.
    pub fn topic(self) -> &'static str {
        match self {
            Self::Auth => topics::AUTH_EVENTS,
            Self::Catalog => topics::CATALOG_EVENTS,
        }
    }

    /// The `NOTIFY` channel the outbox trigger signals on commit.
    pub fn channel(self) -> &'static str {
        match self {
            Self::Auth => "auth_outbox",
            Self::Catalog => "catalog_outbox",
        }
    }

    /// The `pg_try_advisory_lock` key that elects this outbox's one relay.
    pub fn lock_key(self) -> i64 {
        match self {
            Self::Auth => 0x0046_4400_0001,
            Self::Catalog => 0x0046_4400_0002,
        }
    }
}

/// Why an event could not be added to an outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("encoding {event}: {source}")]
    Encode {
        event: &'static str,
        source: flashdeal_schemas::CodecError,
    },
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// One event for an outbox: which aggregate it is about and what changed.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a, E> {
    pub aggregate_type: &'a str,
    /// Also the record key on the log.
    pub aggregate_id: &'a str,
    /// The outbox `type` and the `event_type` header, e.g. `UserBlocked`.
    pub change: &'a str,
    pub event_id: Uuid,
    pub event: &'a E,
}

/// Adds `entry` to `outbox` inside the caller's transaction. The caller
/// must hold the aggregate's row lock (it just updated or inserted the row),
/// so events of one aggregate get ids in commit order.
pub async fn append<E: AvroEvent>(
    tx: &mut PgConnection,
    outbox: Outbox,
    entry: Entry<'_, E>,
) -> Result<(), OutboxError> {
    let payload = entry.event.encode().map_err(|source| OutboxError::Encode {
        event: E::NAME,
        source,
    })?;
    let q = match outbox {
        Outbox::Auth => sqlx::query_file!(
            "../sql/queries/outbox_insert_auth.sql",
            entry.event_id,
            entry.aggregate_type,
            entry.aggregate_id,
            entry.change,
            payload
        ),
        Outbox::Catalog => sqlx::query_file!(
            "../sql/queries/outbox_insert_catalog.sql",
            entry.event_id,
            entry.aggregate_type,
            entry.aggregate_id,
            entry.change,
            payload
        ),
    };
    q.execute(tx).await?;
    Ok(())
}
