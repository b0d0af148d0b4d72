//! Topic creation. The embedded broker cannot add partitions to an existing
//! topic, so every topic is created once, up front, with its final count
//! (docs/broker.md).

use crate::KafkaSettings;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::KafkaError,
    types::RDKafkaErrorCode,
};
use std::{sync::Arc, time::Duration};

/// Why topics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the broker at {brokers}: {source}")]
    Client { brokers: String, source: KafkaError },
    #[error("the metadata request was cancelled")]
    Cancelled,
    #[error("creating topic {topic}: {code}")]
    Topic {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// Creates each missing topic with `partitions` partitions; a topic that
/// already exists is left as it is.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[&str],
    partitions: i32,
) -> Result<(), AdminError> {
    let client_err = |source| AdminError::Client {
        brokers: settings.brokers.clone(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> =
        settings.admin_config().create().map_err(client_err)?;
    // Metadata is a blocking call in librdkafka: keep it off the runtime.
    let admin = Arc::new(admin);
    let existing: Vec<String> = {
        let admin = Arc::clone(&admin);
        tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))
                .map(|m| m.topics().iter().map(|t| t.name().to_owned()).collect())
        })
        .await
        .map_err(|_| AdminError::Cancelled)?
        .map_err(client_err)?
    };
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .filter(|t| !existing.iter().any(|e| e == **t))
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await.map_err(client_err)? {
        match result {
            Ok(topic) => tracing::info!(topic, partitions, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(AdminError::Topic { topic, code }),
        }
    }
    Ok(())
}
