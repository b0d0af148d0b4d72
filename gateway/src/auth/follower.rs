//! Every gateway follows `auth.events` from the earliest offset: user
//! changes feed the [`SessionGuard`](super::sessions::SessionGuard), key
//! rotations reload the JWT key ring from `auth.signing_keys`.
//!
//! Each instance must see every event, so this is no consumer group member:
//! it assigns itself all partitions at `Offset::Beginning` under a group id
//! of its own and never commits (a restart rebuilds the guard from the log,
//! which is what makes it right). Nothing is dead-lettered here: every
//! gateway would dead-letter the same record; an undecodable one is counted,
//! logged and skipped.
//!
//! [`start`] returns once the partitions are assigned;
//! [`FollowerHandle::wait_caught_up`] waits until the records that existed
//! at start are applied, so a booting gateway does not accept a blocked
//! user's token.

use super::{jwt::JwtKeys, keyring, sessions::Applied};
use flashdeal_producers::KafkaSettings;
use flashdeal_schemas::{AuthEvent, topics};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    error::KafkaError,
};
use sqlx::PgPool;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long broker metadata and watermark requests may take at start.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a consumer error or a failed key-ring reload before retrying.
const RETRY: Duration = Duration::from_millis(500);

/// Why the follower could not start or catch up.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("topic {0} has no partitions (create the topics first)")]
    NoTopic(&'static str),
    #[error("not caught up with {topic} after {0:?}", topic = topics::AUTH_EVENTS)]
    NotCaughtUp(Duration),
    #[error("the follower stopped")]
    Stopped,
}

/// What one record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    UserApplied,
    /// The guard already held this version of the user (duplicate, replay).
    UserStale,
    KeysReloaded,
    /// The ring already has the rotated key.
    KeysKnown,
    /// The ring could not be reloaded; the follower retries.
    ReloadFailed,
    Undecodable,
}

impl Outcome {
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::UserApplied => ("user", "applied"),
            Self::UserStale => ("user", "stale"),
            Self::KeysReloaded => ("signing_key", "applied"),
            Self::KeysKnown => ("signing_key", "stale"),
            Self::ReloadFailed => ("signing_key", "failed"),
            Self::Undecodable => ("unknown", "undecodable"),
        }
    }
}

/// Applies `auth.events` records to one gateway's key ring and guard.
#[derive(Clone)]
pub struct AuthEventsFollower {
    jwt: Arc<JwtKeys>,
    pool: PgPool,
}

impl AuthEventsFollower {
    /// `pool` reads `auth.signing_keys` on a rotation.
    pub fn new(jwt: Arc<JwtKeys>, pool: PgPool) -> Self {
        Self { jwt, pool }
    }

    /// Applies one record's payload. Tests call it directly.
    pub async fn handle(&self, payload: Option<&[u8]>) -> Outcome {
        let outcome = match payload.map(AuthEvent::decode) {
            Some(Ok(AuthEvent::User(ev))) => match self.jwt.sessions().apply(&ev) {
                Applied::New => {
                    tracing::debug!(user_id = %ev.user_id, version = ev.version, change = ev.change, "user change applied");
                    Outcome::UserApplied
                }
                Applied::Stale => Outcome::UserStale,
            },
            Some(Ok(AuthEvent::KeyRotated(ev))) if self.jwt.knows(&ev.kid) => Outcome::KeysKnown,
            Some(Ok(AuthEvent::KeyRotated(ev))) => {
                tracing::info!(kid = %ev.kid, "signing key rotated elsewhere, reloading the ring");
                self.reload().await
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "skipping an undecodable auth event");
                Outcome::Undecodable
            }
            None => {
                tracing::warn!("skipping an auth event without payload");
                Outcome::Undecodable
            }
        };
        let (kind, result) = outcome.labels();
        metrics::counter!("flashdeal_auth_events_total", "kind" => kind, "outcome" => result)
            .increment(1);
        outcome
    }

    async fn reload(&self) -> Outcome {
        match keyring::load(&self.pool, &self.jwt).await {
            Ok(()) => Outcome::KeysReloaded,
            Err(e) => {
                tracing::error!(error = %e, "cannot reload the JWT key ring; retrying");
                Outcome::ReloadFailed
            }
        }
    }
}

/// A running follower; stopping (or dropping) it stops the consumer.
pub struct FollowerHandle {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    caught_up: watch::Receiver<bool>,
}

impl FollowerHandle {
    /// Waits until the records present at start have been applied.
    pub async fn wait_caught_up(&mut self, limit: Duration) -> Result<(), FollowerError> {
        match tokio::time::timeout(limit, self.caught_up.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(FollowerError::Stopped),
            Err(_) => Err(FollowerError::NotCaughtUp(limit)),
        }
    }

    /// Stops the consumer and waits (bounded) for it to leave.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
        {
            tracing::warn!("the auth.events follower did not stop within 10s");
        }
    }
}

impl Drop for FollowerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Assigns every partition of `auth.events` from the beginning and spawns
/// the follow loop.
pub async fn start(
    kafka: &KafkaSettings,
    follower: AuthEventsFollower,
) -> Result<FollowerHandle, FollowerError> {
    // A group id of its own: librdkafka wants one, and no other process
    // may share (or ever see) this one's position.
    let group = format!("flashdeal-gateway-sessions-{}", Uuid::now_v7().simple());
    let client_id = format!("flashdeal-gateway-sessions-{}", std::process::id());
    let consumer: StreamConsumer = kafka.consumer_config(&group, &client_id).create()?;
    // Metadata and watermark calls block: keep them off the runtime workers.
    let (consumer, pending) = tokio::task::spawn_blocking(move || assign_all(consumer))
        .await
        .map_err(|_| FollowerError::Stopped)??;
    let (caught_up_tx, caught_up) = watch::channel(pending.is_empty());
    let stop = CancellationToken::new();
    let task = tokio::spawn(follow(
        consumer,
        follower,
        pending,
        caught_up_tx,
        stop.clone(),
    ));
    Ok(FollowerHandle {
        stop,
        task: Some(task),
        caught_up,
    })
}

/// Assigns all partitions at the beginning; returns, per partition that
/// has records, the high watermark to reach before the guard is current.
fn assign_all(
    consumer: StreamConsumer,
) -> Result<(StreamConsumer, HashMap<i32, i64>), FollowerError> {
    let topic = topics::AUTH_EVENTS;
    let metadata = consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(FollowerError::NoTopic(topic));
    }
    let mut tpl = TopicPartitionList::new();
    let mut pending = HashMap::new();
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        let (low, high) = consumer.fetch_watermarks(topic, p, BROKER_TIMEOUT)?;
        if high > low {
            pending.insert(p, high);
        }
    }
    consumer.assign(&tpl)?;
    tracing::info!(
        partitions = partitions.len(),
        backlog_partitions = pending.len(),
        "following auth.events from the beginning"
    );
    Ok((consumer, pending))
}

/// The follow loop: one record at a time, in partition order.
async fn follow(
    consumer: StreamConsumer,
    follower: AuthEventsFollower,
    mut pending: HashMap<i32, i64>,
    caught_up: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let mut reload_pending = false;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(RETRY), if reload_pending => {
                reload_pending = follower.reload().await == Outcome::ReloadFailed;
            }
            msg = consumer.recv() => match msg {
                Ok(msg) => {
                    // Owned: the borrowed message must not live across the
                    // reload's await.
                    let msg = msg.detach();
                    if follower.handle(msg.payload()).await == Outcome::ReloadFailed {
                        reload_pending = true;
                    }
                    let partition = msg.partition();
                    if pending.get(&partition).is_some_and(|&high| msg.offset() + 1 >= high) {
                        pending.remove(&partition);
                        if pending.is_empty() {
                            tracing::info!("auth.events follower caught up");
                            caught_up.send_replace(true);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "auth.events consumer error");
                    metrics::counter!("flashdeal_auth_events_errors_total").increment(1);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }
    // librdkafka's close can block: not on a runtime worker.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashdeal_schemas::{
        UserId,
        codec::AvroEvent,
        store_events::{SigningKeyRotated, UserChanged, user_change},
    };

    fn follower() -> (AuthEventsFollower, Arc<JwtKeys>) {
        let jwt =
            Arc::new(JwtKeys::hs256("k1", &[7; 32], "i", "a", Duration::from_secs(60)).unwrap());
        // Never connects: these records need no database.
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        (AuthEventsFollower::new(Arc::clone(&jwt), pool), jwt)
    }

    #[tokio::test]
    async fn a_redelivered_user_event_is_applied_once() {
        let (f, jwt) = follower();
        let ev = UserChanged {
            event_id: Uuid::now_v7(),
            occurred_at: 0,
            change: user_change::BLOCKED.to_owned(),
            user_id: UserId::new_v7(),
            email: "b@example.com".to_owned(),
            role: "customer".to_owned(),
            status: "blocked".to_owned(),
            sessions_revoked_before: None,
            version: 2,
        };
        let bytes = ev.encode().unwrap();
        assert_eq!(f.handle(Some(&bytes)).await, Outcome::UserApplied);
        assert_eq!(f.handle(Some(&bytes)).await, Outcome::UserStale);
        assert_eq!(jwt.sessions().len(), 1);
    }

    #[tokio::test]
    async fn a_rotation_to_a_known_key_needs_no_reload_and_garbage_is_skipped() {
        let (f, _) = follower();
        let ev = SigningKeyRotated {
            event_id: Uuid::now_v7(),
            occurred_at: 0,
            kid: "k1".to_owned(),
            previous_kid: None,
        };
        assert_eq!(
            f.handle(Some(&ev.encode().unwrap())).await,
            Outcome::KeysKnown
        );
        assert_eq!(f.handle(Some(b"not avro")).await, Outcome::Undecodable);
        assert_eq!(f.handle(None).await, Outcome::Undecodable);
    }
}
