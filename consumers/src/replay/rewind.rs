//! Rewinding a group: commit the plan's offsets as the group's own, so its
//! processes re-read from there on their next start. Only an inactive group
//! may be rewound: a live member would overwrite the rewind with its next
//! commit (and the broker refuses a commit from outside a non-empty group).
//!
//! These calls block on the broker; run them on a blocking thread.

use super::{Plan, ReplayError};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer},
};
use std::time::Duration;

/// `group`'s members, as `client-id@host` or their member id (empty: the
/// group is inactive).
pub fn active_members(
    client: &BaseConsumer,
    group: &str,
    timeout: Duration,
) -> Result<Vec<String>, ReplayError> {
    let list = client
        .fetch_group_list(Some(group), timeout)
        .map_err(|source| ReplayError::Kafka {
            what: "describing the group",
            source,
        })?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| match (m.client_id(), m.client_host()) {
            ("", _) => m.id().to_owned(),
            (id, "") => id.to_owned(),
            (id, host) => format!("{id}@{host}"),
        })
        .collect())
}

/// Commits the plan's targets as `plan.group`'s offsets (partitions without
/// a target keep theirs), then reads them back. `client` must have been
/// created with `group.id = plan.group` and must not be subscribed.
pub fn rewind(client: &BaseConsumer, plan: &Plan, timeout: Duration) -> Result<(), ReplayError> {
    let members = active_members(client, &plan.group, timeout)?;
    if !members.is_empty() {
        return Err(ReplayError::GroupActive {
            group: plan.group.clone(),
            members,
        });
    }
    let mut tpl = TopicPartitionList::new();
    for p in &plan.partitions {
        if let Some(t) = p.target {
            tpl.add_partition_offset(&plan.topic, p.partition, Offset::Offset(t))
                .map_err(|source| ReplayError::Kafka {
                    what: "building the commit",
                    source,
                })?;
        }
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    client
        .commit(&tpl, CommitMode::Sync)
        .map_err(|source| ReplayError::Kafka {
            what: "committing the new offsets",
            source,
        })?;
    let back = client
        .committed_offsets(tpl.clone(), timeout)
        .map_err(|source| ReplayError::Kafka {
            what: "reading the offsets back",
            source,
        })?;
    for e in tpl.elements() {
        let wanted = match e.offset() {
            Offset::Offset(o) => o,
            _ => continue,
        };
        let got = match back
            .find_partition(&plan.topic, e.partition())
            .map(|b| b.offset())
        {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        if got != Some(wanted) {
            return Err(ReplayError::NotCommitted {
                partition: e.partition(),
                wanted,
                got,
            });
        }
    }
    tracing::info!(group = %plan.group, topic = %plan.topic, partitions = tpl.count(), "group rewound");
    Ok(())
}
