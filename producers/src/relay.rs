//! The outbox relay: publishes an outbox to its topic, in id order, and
//! deletes only what the broker acknowledged.
//!
//! One relay per outbox is active: it holds `pg_try_advisory_lock` on a
//! dedicated connection; others wait and take over when that session ends
//! (the process died or lost its connection). The relay wakes on the
//! outbox's `NOTIFY` and also polls, so a missed notification only delays.
//!
//! Each step runs in one transaction on the lock's connection: lock the
//! oldest rows (`FOR UPDATE`), publish them with acks=all, delete them,
//! commit. A crash after the publish and before the commit leaves the rows,
//! so they are published again: duplicates, never a loss. Consumers skip
//! them by the aggregate's version. Should two relays ever run at once
//! (a partitioned lock holder), the row locks make the second wait for the
//! first's commit, so one aggregate's events still leave in order.

use crate::{EventPublisher, PublishError, outbox::Outbox};
use futures::future::try_join_all;
use sqlx::{
    Connection, PgConnection, PgPool,
    pool::PoolConnection,
    postgres::{PgListener, Postgres},
};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Pace and size of a relay.
#[derive(Clone, Copy, Debug)]
pub struct RelaySettings {
    /// Most rows published per transaction.
    pub batch: i64,
    /// Longest wait between two looks at the outbox without a notification.
    pub poll_interval: Duration,
    /// How often a standby tries to take the lock.
    pub standby_retry: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch: 500,
            poll_interval: Duration::from_millis(500),
            standby_retry: Duration::from_millis(500),
        }
    }
}

/// Why a relay step failed (the relay retries it).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("publishing: {0}")]
    Publish(#[from] PublishError),
}

/// One row of an outbox.
#[derive(Debug)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: Uuid,
    pub aggregateid: String,
    pub r#type: String,
    pub payload: Vec<u8>,
}

pub struct Relay {
    pool: PgPool,
    outbox: Outbox,
    publisher: EventPublisher,
    settings: RelaySettings,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        publisher: EventPublisher,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pool,
            outbox,
            publisher,
            settings,
        }
    }

    /// Runs until `shutdown`: waits for the lock, then relays; on any error
    /// it drops its session (releasing the lock) and starts over.
    pub async fn run(&self, shutdown: CancellationToken) {
        let name = self.outbox.name();
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(outbox = name, error = %e, "relay step failed; restarting");
                    metrics::counter!("flashdeal_relay_errors_total", "outbox" => name)
                        .increment(1);
                }
            }
            metrics::gauge!("flashdeal_relay_leader", "outbox" => name).set(0.0);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.settings.standby_retry) => {}
            }
        }
    }

    /// Takes the lock (waiting as a standby), then relays until shutdown or
    /// an error. The lock goes with the session when this returns.
    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let name = self.outbox.name();
        let mut session = self.pool.acquire().await?;
        loop {
            if try_lock(&mut session, self.outbox).await? {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.settings.standby_retry) => {}
            }
        }
        tracing::info!(outbox = name, "relay active (holds the outbox lock)");
        metrics::gauge!("flashdeal_relay_leader", "outbox" => name).set(1.0);
        let result = self.relay_while_leader(&mut session, shutdown).await;
        // Never hand a session that may hold the lock back to the pool.
        let conn: PgConnection = session.detach();
        let _ = conn.close().await;
        result
    }

    async fn relay_while_leader(
        &self,
        session: &mut PoolConnection<Postgres>,
        shutdown: &CancellationToken,
    ) -> Result<(), RelayError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(self.outbox.channel()).await?;
        while !shutdown.is_cancelled() {
            loop {
                let n = self.step(session).await?;
                if n < self.settings.batch as usize || shutdown.is_cancelled() {
                    break;
                }
            }
            self.record_backlog(session).await?;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = listener.recv() => { n?; }
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        Ok(())
    }

    /// One transaction: publish the oldest rows, delete them, commit.
    /// Returns how many rows were relayed. Tests call it directly.
    pub async fn step(&self, conn: &mut PgConnection) -> Result<usize, RelayError> {
        let mut tx = conn.begin().await?;
        let rows = self.lock_batch(&mut tx).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        self.publish(&rows).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        match self.outbox {
            Outbox::Auth => sqlx::query_file!("../sql/queries/outbox_delete_auth.sql", &ids),
            Outbox::Catalog => sqlx::query_file!("../sql/queries/outbox_delete_catalog.sql", &ids),
        }
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        metrics::counter!("flashdeal_outbox_published_total", "outbox" => self.outbox.name())
            .increment(rows.len() as u64);
        Ok(rows.len())
    }

    /// Publishes the oldest rows and waits for every ack *without* deleting
    /// them: what a relay killed between produce and delete leaves behind.
    /// For the crash tests; [`Relay::step`] is the real thing.
    pub async fn publish_without_delete(
        &self,
        conn: &mut PgConnection,
    ) -> Result<usize, RelayError> {
        let mut tx = conn.begin().await?;
        let rows = self.lock_batch(&mut tx).await?;
        self.publish(&rows).await?;
        tx.rollback().await?;
        Ok(rows.len())
    }

    async fn lock_batch(&self, tx: &mut PgConnection) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let batch = self.settings.batch;
        match self.outbox {
            Outbox::Auth => {
                sqlx::query_file_as!(OutboxRow, "../sql/queries/outbox_batch_auth.sql", batch)
                    .fetch_all(tx)
                    .await
            }
            Outbox::Catalog => {
                sqlx::query_file_as!(OutboxRow, "../sql/queries/outbox_batch_catalog.sql", batch)
                    .fetch_all(tx)
                    .await
            }
        }
    }

    /// Enqueues every row (in id order, one producer: per-key order holds)
    /// and waits for all acknowledgements.
    async fn publish(&self, rows: &[OutboxRow]) -> Result<(), PublishError> {
        let started = Instant::now();
        let topic = self.outbox.topic();
        let pending = rows
            .iter()
            .map(|r| {
                // Rows hold single-object encoding (written inside store
                // transactions that know nothing of a registry); they leave
                // in the publisher's framing, like every other event.
                let payload = self.publisher.encoding().reframe(&r.payload);
                self.publisher.enqueue_raw(
                    topic,
                    r.aggregateid.as_bytes(),
                    &payload,
                    r.event_id,
                    &r.r#type,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        try_join_all(pending).await?;
        metrics::histogram!("flashdeal_outbox_publish_seconds", "outbox" => self.outbox.name())
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn record_backlog(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let (events, oldest) = backlog(conn, self.outbox).await?;
        let name = self.outbox.name();
        metrics::gauge!("flashdeal_outbox_backlog", "outbox" => name).set(events as f64);
        let age = oldest
            .map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("flashdeal_outbox_oldest_age_seconds", "outbox" => name).set(age);
        Ok(())
    }
}

/// `pg_try_advisory_lock` for `outbox` on this session.
pub async fn try_lock(conn: &mut PgConnection, outbox: Outbox) -> Result<bool, sqlx::Error> {
    sqlx::query_file_scalar!("../sql/queries/outbox_try_lock.sql", outbox.lock_key())
        .fetch_one(conn)
        .await
}

/// Events waiting in `outbox`, and when the oldest was written.
pub async fn backlog(
    conn: &mut PgConnection,
    outbox: Outbox,
) -> Result<(i64, Option<chrono::DateTime<chrono::Utc>>), sqlx::Error> {
    Ok(match outbox {
        Outbox::Auth => {
            let r = sqlx::query_file!("../sql/queries/outbox_backlog_auth.sql")
                .fetch_one(conn)
                .await?;
            (r.events, r.oldest)
        }
        Outbox::Catalog => {
            let r = sqlx::query_file!("../sql/queries/outbox_backlog_catalog.sql")
                .fetch_one(conn)
                .await?;
            (r.events, r.oldest)
        }
    })
}
