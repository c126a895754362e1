//! Record types shared by the producer and the consumer.

use std::sync::Arc;

use bytes::Bytes;

/// A topic name, shared: cloning it copies a pointer, not the name.
///
/// Why not a `String`: a producer sending a million records a second would allocate and free
/// a million copies of the same name, about a tenth of its CPU per record. Build the name
/// once and clone it into each record:
///
/// ```
/// use ferrokafka::{Record, Topic};
/// let orders = Topic::from("orders");
/// let records: Vec<Record> = (0..3)
///     .map(|i| Record::new(&orders).value(format!("order {i}")))
///     .collect();
/// assert_eq!(records[2].topic, "orders");
/// ```
///
/// `Record::new("orders")` still works and allocates the name once for that record.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Topic {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Topic {
    fn from(name: &str) -> Topic {
        Topic(Arc::from(name))
    }
}

impl From<&String> for Topic {
    fn from(name: &String) -> Topic {
        Topic(Arc::from(name.as_str()))
    }
}

impl From<String> for Topic {
    fn from(name: String) -> Topic {
        Topic(Arc::from(name))
    }
}

impl From<Arc<str>> for Topic {
    fn from(name: Arc<str>) -> Topic {
        Topic(name)
    }
}

impl From<&Arc<str>> for Topic {
    fn from(name: &Arc<str>) -> Topic {
        Topic(name.clone())
    }
}

impl From<&Topic> for Topic {
    fn from(name: &Topic) -> Topic {
        name.clone()
    }
}

impl From<Topic> for Arc<str> {
    fn from(name: Topic) -> Arc<str> {
        name.0
    }
}

impl From<Topic> for String {
    fn from(name: Topic) -> String {
        name.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Topic {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Topic> for str {
    fn eq(&self, other: &Topic) -> bool {
        self == &*other.0
    }
}

impl PartialEq<Topic> for &str {
    fn eq(&self, other: &Topic) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<Topic> for String {
    fn eq(&self, other: &Topic) -> bool {
        **self == *other.0
    }
}

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
    /// The topic to write to (a [`Topic`]: build it once and clone it into each record).
    pub topic: Topic,
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
    /// A record for `topic` with no key, value or headers. A `&str` or `String` allocates the
    /// name for this record; a [`Topic`] (or `&Topic`) shares it.
    pub fn new(topic: impl Into<Topic>) -> Record {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_built_from_a_topic_share_its_name() {
        let orders = Topic::from("orders");
        let a = Record::new(&orders);
        let b = Record::new(orders.clone());
        assert!(Arc::ptr_eq(&a.topic.0, &orders.0));
        assert!(Arc::ptr_eq(&b.topic.0, &orders.0));
        // A `&str` gets a name of its own.
        let c = Record::new("orders");
        assert!(!Arc::ptr_eq(&c.topic.0, &orders.0));
        assert_eq!(c.topic, orders);
    }

    #[test]
    fn a_topic_compares_and_prints_as_its_name() {
        let t = Topic::from(String::from("t-1"));
        assert_eq!(t, "t-1");
        assert_eq!("t-1", t);
        assert_eq!(t, String::from("t-1"));
        assert_eq!(String::from("t-1"), t);
        assert_ne!(t, "t-2");
        assert_eq!(&*t, "t-1");
        assert_eq!(t.as_str(), "t-1");
        assert_eq!(t.to_string(), "t-1");
        assert_eq!(format!("{t:?}"), "\"t-1\"");
        let back: String = t.clone().into();
        assert_eq!(back, "t-1");
        let shared: Arc<str> = t.clone().into();
        assert!(Arc::ptr_eq(&shared, &t.0));
        assert_eq!(Topic::from(&shared), t);
        let set: std::collections::HashSet<Topic> = [t.clone()].into();
        assert!(set.contains("t-1"));
    }
}
