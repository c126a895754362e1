//! What the consumer hands out: records, partitions, seek targets, offsets to commit.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::record::Header;

/// A topic and partition.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic (shared: cloning is a reference count, not an allocation).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic and partition.
    pub fn new(topic: impl AsRef<str>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from(topic.as_ref()),
            partition,
        }
    }
}

impl fmt::Debug for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when it appended the record (topic `message.timestamp.type`).
    LogAppendTime,
}

/// A consumed record. Key, value and header values are slices of the fetched (or
/// decompressed) buffer: no copy per record.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Whether `timestamp` is the producer's or the broker's.
    pub timestamp_type: TimestampType,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// The leader epoch of the batch the record came in (-1 if the broker did not say).
    pub leader_epoch: i32,
}

impl fmt::Debug for ConsumerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values can be large and binary: show sizes, not bytes.
        f.debug_struct("ConsumerRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("key", &self.key)
            .field("value_len", &self.value.as_ref().map(Bytes::len))
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl ConsumerRecord {
    /// The record's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeekTo {
    /// The oldest record still in the log.
    Beginning,
    /// After the newest record.
    End,
    /// This offset.
    Offset(i64),
    /// The first record whose timestamp is at or after these milliseconds since the epoch
    /// (the end of the log when there is none), looked up with ListOffsets.
    Timestamp(i64),
}

/// An offset to commit for one partition: the offset of the *next* record to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitOffset {
    /// The next offset to read (last processed + 1).
    pub offset: i64,
    /// Optional metadata stored with the commit.
    pub metadata: Option<String>,
}

impl CommitOffset {
    /// The next offset to read, without metadata.
    pub fn new(offset: i64) -> CommitOffset {
        CommitOffset {
            offset,
            metadata: None,
        }
    }

    /// Attaches metadata to the commit.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> CommitOffset {
        self.metadata = Some(metadata.into());
        self
    }
}

/// A consumer's group membership, for `send_offsets_to_transaction` (KIP-447: the
/// coordinator fences offsets committed by a zombie member of an older generation).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The generation of the last completed join (-1 outside a group).
    pub generation_id: i32,
    /// The member id the coordinator gave (empty outside a group).
    pub member_id: String,
    /// `group.instance.id`, for static members.
    pub group_instance_id: Option<String>,
}
