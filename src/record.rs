//! Record types shared by the producer and the consumer.

use bytes::Bytes;

/// A record header: a string key and an optional binary value. Keys may repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is a null value (distinct from empty).
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A header with a null value.
    pub fn null(key: impl Into<String>) -> Header {
        Header {
            key: key.into(),
            value: None,
        }
    }
}

/// A record to produce.
///
/// ```
/// use ferrokafka::Record;
/// let r = Record::new("orders")
///     .key("customer-42")
///     .value("{\"total\": 12}")
///     .header("trace-id", "abc");
/// assert_eq!(r.topic, "orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The topic to write to.
    pub topic: String,
    /// The partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// The key; `None` is a null key. Keyed records always go to the same partition.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch; `None` means now (CreateTime).
    pub timestamp: Option<i64>,
}

impl Record {
    /// A record for `topic` with no key, value or headers.
    pub fn new(topic: impl Into<String>) -> Record {
        Record {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Record {
        self.value = Some(value.into());
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Record {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sends the record to this partition, bypassing the partitioner.
    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp in milliseconds since the Unix epoch.
    pub fn timestamp(mut self, millis: i64) -> Record {
        self.timestamp = Some(millis);
        self
    }
}

/// Where a produced record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordMetadata {
    /// The topic (shared with the other records of its batch: no allocation per record).
    pub topic: std::sync::Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset in the partition; -1 with `acks=0`, where the broker says nothing.
    pub offset: i64,
    /// The record's timestamp: its CreateTime, or the broker's LogAppendTime if the topic
    /// uses that.
    pub timestamp: i64,
}

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
