//! A replay plan: per partition, the group's committed offset, where the
//! replay starts and where it stops. Built from the broker's watermarks,
//! `offsets_for_times` and the group's committed offsets, so the table an
//! operator sees is what a rewind commits and what a one-off reads.
//!
//! These calls block on the broker; run them on a blocking thread.

use super::ReplayError;
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use std::{fmt, str::FromStr, time::Duration};

/// Where a replay starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// Each partition's low watermark.
    Earliest,
    /// Each partition's high watermark (skip everything there is).
    Latest,
    /// These partitions at these offsets; other partitions are left alone.
    Offsets(Vec<(i32, i64)>),
    /// The first offset at or after this time (ms since the epoch).
    Time(i64),
}

impl FromStr for StartAt {
    type Err = ReplayError;

    /// `earliest`, `latest`, or `P:O,P:O…`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ReplayError::BadSpec(s.to_owned());
        match s.trim() {
            "earliest" => return Ok(Self::Earliest),
            "latest" => return Ok(Self::Latest),
            "" => return Err(bad()),
            _ => {}
        }
        let mut offsets = Vec::new();
        for pair in s.split(',') {
            let (p, o) = pair.trim().split_once(':').ok_or_else(bad)?;
            let p: i32 = p.trim().parse().map_err(|_| bad())?;
            let o: i64 = o.trim().parse().map_err(|_| bad())?;
            if p < 0 || o < 0 || offsets.iter().any(|(q, _)| *q == p) {
                return Err(bad());
            }
            offsets.push((p, o));
        }
        Ok(Self::Offsets(offsets))
    }
}

/// One partition of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionPlan {
    pub partition: i32,
    /// The group's committed offset now (`None`: nothing committed).
    pub committed: Option<i64>,
    /// Where the replay starts (`None`: this partition is not replayed).
    pub target: Option<i64>,
    /// Where a one-off replay stops (exclusive): the high watermark when
    /// the plan was made, or the first offset at or after `--to-time`.
    pub end: i64,
    pub low: i64,
    pub high: i64,
}

impl PartitionPlan {
    /// Messages a replay of this partition re-reads.
    pub fn to_read(&self) -> u64 {
        self.target
            .map_or(0, |t| u64::try_from(self.end - t).unwrap_or(0))
    }
}

/// The plan for one topic and group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub topic: String,
    pub group: String,
    pub partitions: Vec<PartitionPlan>,
}

impl Plan {
    /// Messages the whole replay re-reads.
    pub fn to_read(&self) -> u64 {
        self.partitions.iter().map(PartitionPlan::to_read).sum()
    }
}

/// The per-partition table: committed → new, and what will be re-read.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "topic {} group {}", self.topic, self.group)?;
        writeln!(
            f,
            "{:>9}  {:>12}  {:>12}  {:>12}  {:>12}",
            "partition", "committed", "new", "end", "to re-read"
        )?;
        let show = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
        for p in &self.partitions {
            writeln!(
                f,
                "{:>9}  {:>12}  {:>12}  {:>12}  {:>12}",
                p.partition,
                show(p.committed),
                show(p.target),
                p.end,
                p.to_read()
            )?;
        }
        write!(f, "total messages to re-read: {}", self.to_read())
    }
}

fn kafka(what: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> ReplayError {
    move |source| ReplayError::Kafka { what, source }
}

/// Builds the plan. `client` must have been created with `group.id = group`
/// (committed offsets are read for its group).
pub fn plan(
    client: &BaseConsumer,
    topic: &str,
    group: &str,
    start: &StartAt,
    until_ms: Option<i64>,
    timeout: Duration,
) -> Result<Plan, ReplayError> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka("reading the topic's metadata"))?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0)
        .ok_or_else(|| ReplayError::UnknownTopic(topic.to_owned()))?;
    let partitions: Vec<i32> = (0..i32::try_from(count).unwrap_or(i32::MAX)).collect();
    if let StartAt::Offsets(offsets) = start
        && let Some((p, _)) = offsets.iter().find(|(p, _)| !partitions.contains(p))
    {
        return Err(ReplayError::NoSuchPartition {
            topic: topic.to_owned(),
            partition: *p,
        });
    }

    let mut all = TopicPartitionList::new();
    for p in &partitions {
        all.add_partition(topic, *p);
    }
    let committed = client
        .committed_offsets(all, timeout)
        .map_err(kafka("reading the group's committed offsets"))?;
    let at_time = |ms: i64| -> Result<TopicPartitionList, ReplayError> {
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Offset(ms))
                .map_err(kafka("building the offsets-for-times request"))?;
        }
        client
            .offsets_for_times(tpl, timeout)
            .map_err(kafka("looking up offsets for a time"))
    };
    let starts = match start {
        StartAt::Time(ms) => Some(at_time(*ms)?),
        _ => None,
    };
    let ends = until_ms.map(at_time).transpose()?;

    let mut out = Vec::with_capacity(partitions.len());
    for p in partitions {
        let (low, high) = client
            .fetch_watermarks(topic, p, timeout)
            .map_err(kafka("reading watermarks"))?;
        let by_time =
            |tpl: &TopicPartitionList| match tpl.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o.clamp(low, high),
                // No message at or after that time.
                _ => high,
            };
        let target = match start {
            StartAt::Earliest => Some(low),
            StartAt::Latest => Some(high),
            StartAt::Time(_) => starts.as_ref().map(by_time),
            StartAt::Offsets(offsets) => match offsets.iter().find(|(q, _)| *q == p) {
                Some((_, o)) if (low..=high).contains(o) => Some(*o),
                Some((_, o)) => {
                    return Err(ReplayError::OffsetOutOfRange {
                        partition: p,
                        offset: *o,
                        low,
                        high,
                    });
                }
                None => None,
            },
        };
        let end = ends.as_ref().map_or(high, by_time);
        let committed = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        out.push(PartitionPlan {
            partition: p,
            committed,
            target,
            end,
            low,
            high,
        });
    }
    Ok(Plan {
        topic: topic.to_owned(),
        group: group.to_owned(),
        partitions: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs_parse() {
        assert_eq!("earliest".parse::<StartAt>().ok(), Some(StartAt::Earliest));
        assert_eq!("latest".parse::<StartAt>().ok(), Some(StartAt::Latest));
        assert_eq!(
            "0:5, 3:10".parse::<StartAt>().ok(),
            Some(StartAt::Offsets(vec![(0, 5), (3, 10)]))
        );
        for bad in ["", "0", "0:", "a:1", "0:-1", "-1:0", "0:1,0:2", "first"] {
            assert!(bad.parse::<StartAt>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn to_read_counts_from_target_to_end() {
        let p = PartitionPlan {
            partition: 0,
            committed: Some(10),
            target: Some(4),
            end: 10,
            low: 0,
            high: 12,
        };
        assert_eq!(p.to_read(), 6);
        let untouched = PartitionPlan {
            target: None,
            ..p.clone()
        };
        assert_eq!(untouched.to_read(), 0);
        let past_end = PartitionPlan {
            target: Some(11),
            ..p
        };
        assert_eq!(past_end.to_read(), 0);
    }
}
