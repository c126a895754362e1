//! ferrokafka: a pure-Rust async Apache Kafka client.
//!
//! No librdkafka, no OpenSSL, no cmake: `cargo build` is enough.
//!
//! # Layout
//! - [`Client`]: the shared core — a connection pool (pipelined requests per broker, API
//!   versions negotiated per broker) and a metadata cache. Producers and consumers are built
//!   from it and share it.
//! - [`Producer`]: batching, Java-compatible partitioning, acks and retries, idempotence,
//!   compression; `send` waits for buffer space instead of failing.
//! - [`Consumer`]: consumer groups (range, roundrobin, cooperative-sticky, static membership)
//!   or manual assignment, a fetcher bounded by one byte budget, automatic or manual commits,
//!   async rebalance hooks ([`RebalanceListener`]), and a `futures::Stream` of records.
//!   [`Consumer::processor`] processes records concurrently (per key, per partition or
//!   unordered) and commits only what is done.
//! - [`Admin`]: topics, configs, groups and their lag, offsets and records, ACLs, SCRAM
//!   credentials, cluster features, producers and transactions, through a `Client`.
//! - [`Error`]: the one error type; [`Error::is_retriable`] says whether trying again may help.
//! - Security: `security.protocol` ([`SecurityProtocol`]), TLS with rustls and the ring
//!   provider (client certificates too), SASL PLAIN and SCRAM-SHA-256/512 ([`SaslMechanism`]);
//!   set on the [`ClientBuilder`]. `docs/SECURITY.md` lists every setting.
//!
//! `docs/DESIGN.md` in the repository maps every file, task and data flow;
//! `docs/CONFIGURATION.md` lists every setting, and the README's "Using it in a service" what
//! is committed when and the shutdown order.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> ferrokafka::Result<()> {
//! use ferrokafka::{Client, NewTopic};
//!
//! let client = Client::builder()
//!     .bootstrap_servers("127.0.0.1:9092")
//!     .client_id("example")
//!     .build()
//!     .await?;
//! client.admin().create_topics(&[NewTopic::new("events", 3, 1)]).await?;
//! let metadata = client.metadata(&["events"]).await?;
//! println!("{} partitions", metadata.topic("events").unwrap().partitions.len());
//! client.close().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod admin;
mod backoff;
mod classify;
mod client;
mod codes;
mod compression;
mod config;
mod consumer;
mod error;
mod fasthash;
/// Entry points for `fuzz/` (and the unit test replaying its corpus); not part of the API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod producer;
mod protocol;
mod record;
mod security;
mod serde;
mod share;
#[cfg(test)]
mod testing;
mod trace_context;

pub use self::metrics::{
    BrokerMetrics, ClientMetrics, ConsumerMetrics, HistogramSnapshot, PartitionLag, ProducerMetrics,
};
pub use admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    Admin, AlterConfigOp, BrokerDescription, ClusterDescription, ConfigEntry, ConfigResource,
    ConfigResourceType, ConfigSource, ConfigSynonym, CreateTopicsOptions, CreatedTopic,
    ElectionType, FeatureLevel, GroupDescription, GroupListing, GroupMember, GroupPartitionLag,
    GroupState, GroupType, ListGroupsOptions, ListTransactionsOptions, ListedOffset, NewPartitions,
    NewTopic, OffsetSpec, ProducerState, ResourceResult, ScramChange, ScramCredential,
    ScramMechanism, TopicDescription, TopicResult, TransactionDescription, TransactionListing,
    UserScramCredentials,
};
/// Re-exported so `RebalanceListener` implementations need no direct dependency.
pub use async_trait::async_trait;
pub use client::metadata::{BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata};
pub use client::{Client, ClientBuilder};
pub use codes::KafkaCode;
pub use compression::Compression;
pub use consumer::{
    CommitOffset, Consumer, ConsumerBuilder, ConsumerGroupMetadata, ConsumerRecord, FailureAction,
    FailurePolicy, GroupProtocol, IsolationLevel, LatencySummary, OffsetReset,
    PartitionProcessMetrics, ProcessHandle, ProcessMetrics, ProcessOptions, ProcessOrdering,
    Processor, RebalanceContext, RebalanceListener, SeekTo, TimestampType, TopicPartition,
};
pub use error::{Error, Result};
pub use producer::partitioner::{
    DefaultPartitioner, Murmur2Partitioner, Partitioner, RoundRobinPartitioner,
};
pub use producer::{
    Acks, Delivery, DeliveryError, DeliveryFuture, Producer, ProducerBuilder, WithRecord,
};
pub use record::{Header, Record, RecordMetadata, Topic};
pub use security::{
    OAuthBearerToken, OAuthBearerTokenProvider, SaslMechanism, SecurityProtocol, TlsErrorKind,
    TokenProviderError,
};
pub use serde::{
    BigEndianDeserializer, BigEndianSerializer, Deserializer, Serializer, StringDeserializer,
    StringSerializer,
};
pub use share::{
    AcknowledgeType, AcknowledgementMode, ShareConsumer, ShareConsumerBuilder, ShareRecord,
};
pub use trace_context::{TraceContext, TRACEPARENT, TRACESTATE};
