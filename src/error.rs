//! The one public error type.
//!
//! `Error` is cheap to clone (every payload is `Arc`ed or `Copy`) because one failure often
//! reaches many waiters: a poisoned connection fails every request in flight on it, and a failed
//! produce batch fails every record in it. What to *do* about an error is not decided here but in
//! `classify.rs`; the public [`Error::is_retriable`] asks that classifier.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::classify::{classify, Action};
use crate::codes::KafkaCode;
use crate::security::{SaslMechanism, TlsErrorKind};

/// A `Result` whose error is ferrokafka's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ferrokafka.
///
/// Match on the variant for details; ask [`Error::is_retriable`] whether trying the same
/// operation again may succeed, and [`Error::kafka_code`] for the broker's error code.
///
/// `{:?}` shows the variant and its fields (`Broker { code: NotLeaderOrFollower, .. }`);
/// `{}` the same in words.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A broker answered with a Kafka error code.
    Broker {
        /// The code the broker returned.
        code: KafkaCode,
        /// The broker's own error message, when it sent one.
        message: Option<Arc<str>>,
        /// What the client was doing: the API and, where there is one, the topic or resource.
        context: Arc<str>,
    },
    /// A connection to a broker could not be established (nothing was sent on it).
    Connect {
        /// The broker's address (and id, when known).
        broker: Arc<str>,
        /// The underlying I/O error, or the timeout.
        source: Arc<io::Error>,
    },
    /// An established connection failed while requests were in flight; they may or may not have
    /// reached the broker. Every request on the connection gets the same shared cause.
    Disconnected {
        /// The broker's address (and id, when known).
        broker: Arc<str>,
        /// Why the connection was given up.
        cause: Arc<Error>,
    },
    /// An I/O error on an established connection.
    Io(Arc<io::Error>),
    /// An operation did not finish in time. For a request, it may still have been processed.
    Timeout {
        /// What timed out, e.g. `Metadata v12 to broker 1`.
        operation: Arc<str>,
        /// The deadline that elapsed.
        after: Duration,
        /// The last error seen before the deadline ended the retries, when there was one
        /// (e.g. the broker's NOT_ENOUGH_REPLICAS for a delivery): [`Error::kafka_code`]
        /// reports its code, as the Java client reports the cause of an expired batch.
        last: Option<Arc<Error>>,
    },
    /// The broker sent bytes that do not form a valid response (bad frame, mismatched
    /// correlation id, undecodable body). The connection is closed and not reused.
    Protocol(Arc<str>),
    /// A response frame was larger than the configured limit (`receive.message.max.bytes`);
    /// it was rejected before any memory was allocated for it.
    FrameTooLarge {
        /// The size the frame claimed.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The broker does not support an API this operation needs, at any version ferrokafka speaks.
    UnsupportedApi {
        /// The API's name, e.g. `InitProducerId`.
        api: &'static str,
        /// The broker that lacks it.
        broker: Arc<str>,
    },
    /// No broker could be reached: every bootstrap address and known broker failed.
    NoBrokerAvailable {
        /// The addresses that were tried.
        tried: Arc<str>,
        /// The last failure seen, if any.
        last: Option<Arc<Error>>,
    },
    /// An invalid configuration, reported by `build()`; the message names the setting.
    Config(Arc<str>),
    /// An invalid argument to an operation (a malformed topic name, a negative partition
    /// count), caught before anything was sent.
    InvalidInput(Arc<str>),
    /// `try_send` found the producer's `buffer.memory` spent; `send` would have waited.
    BufferFull,
    /// The client (or the handle used) was closed.
    Closed,
    /// The last handle of a [`Producer`](crate::Producer) was dropped without `close()` or
    /// `flush()` while this record was still queued or in flight: it was not delivered (or
    /// its fate is unknown). Close the producer before dropping it (see the README's "Using
    /// it in a service"). Not retriable with this producer.
    ProducerDropped,
    /// A consumer partition has no committed offset (or its offset is out of range) and
    /// `auto.offset.reset` is `none`. Seek the partition to go on.
    NoOffset {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
    },
    /// The application did not call `recv` within `max.poll.interval.ms`: the consumer left its
    /// group and its partitions went to other members. The next call rejoins.
    PollIntervalExceeded {
        /// The configured `max.poll.interval.ms`.
        interval: Duration,
    },
    /// A TLS connection to a broker could not be established: the certificate was not
    /// trusted or not valid for the host, the broker refused the handshake, or the peer does
    /// not speak TLS. Not retriable: the same settings will fail the same way.
    Tls {
        /// The broker's address (and id, when known).
        broker: Arc<str>,
        /// What failed.
        kind: TlsErrorKind,
        /// What failed in words, with the setting to look at.
        detail: Arc<str>,
    },
    /// The broker refused the SASL credentials (or the mechanism), or a SCRAM server could
    /// not prove it knows them. Carries the broker's message; never the password. Not
    /// retriable.
    SaslAuthenticationFailed {
        /// The broker's address (and id, when known).
        broker: Arc<str>,
        /// The mechanism used.
        mechanism: SaslMechanism,
        /// The broker's message, or what the client found wrong.
        message: Arc<str>,
    },
    /// The operation needs a consumer group (`group.id`), or a state the consumer is not in
    /// (e.g. `commit` with nothing assigned, `subscribe` after `assign`).
    InvalidState(Arc<str>),
    /// A processing handler failed on a record (after its retries) and the failure policy
    /// says to stop (`FailureAction::Stop`, or a dead-letter write that failed). The
    /// committed offset of its partition stays at or before this record.
    HandlerFailed {
        /// The record's topic.
        topic: Arc<str>,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// The handler's error (or panic message).
        message: Arc<str>,
    },
}

impl Error {
    /// Whether retrying the same operation may succeed: transient broker codes, timeouts,
    /// lost connections and unreachable brokers. Decided by the same classifier the client's
    /// own retry loops use.
    pub fn is_retriable(&self) -> bool {
        classify(self, None).contains(Action::RETRY)
    }

    /// The broker's error code, if this error came from a broker response.
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            Error::Disconnected { cause, .. } => cause.kafka_code(),
            Error::Timeout {
                last: Some(last), ..
            } => last.kafka_code(),
            _ => None,
        }
    }

    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    pub(crate) fn broker(
        code: KafkaCode,
        message: Option<&str>,
        context: impl Into<Arc<str>>,
    ) -> Error {
        Error::Broker {
            code,
            message: message.filter(|m| !m.is_empty()).map(Arc::from),
            context: context.into(),
        }
    }

    /// Turns a response's error code into `Ok(())` or a broker error.
    pub(crate) fn check_code(
        code: i16,
        message: Option<&str>,
        context: impl FnOnce() -> String,
    ) -> Result<()> {
        match KafkaCode::from_code(code) {
            None => Ok(()),
            Some(code) => Err(Error::broker(code, message, context())),
        }
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Error {
        Error::Protocol(Arc::from(msg.into()))
    }

    pub(crate) fn config(msg: impl Into<String>) -> Error {
        Error::Config(Arc::from(msg.into()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Broker {
                code,
                message,
                context,
            } => {
                write!(f, "broker error {code} in {context}")?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            Error::Connect { broker, source } => write!(f, "cannot connect to {broker}: {source}"),
            Error::Disconnected { broker, cause } => {
                write!(f, "connection to {broker} lost: {cause}")
            }
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Timeout {
                operation,
                after,
                last,
            } => {
                write!(f, "{operation} timed out after {} ms", after.as_millis())?;
                match last {
                    Some(last) => write!(f, " (last error: {last})"),
                    None => Ok(()),
                }
            }
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::FrameTooLarge { size, limit } => write!(
                f,
                "response frame of {size} bytes exceeds receive.message.max.bytes ({limit})"
            ),
            Error::UnsupportedApi { api, broker } => write!(
                f,
                "broker {broker} does not support the {api} API at any version ferrokafka speaks"
            ),
            Error::NoBrokerAvailable { tried, last } => {
                write!(f, "no broker available (tried {tried})")?;
                if let Some(last) = last {
                    write!(f, "; last error: {last}")?;
                }
                Ok(())
            }
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::BufferFull => f.write_str("producer buffer.memory is full"),
            Error::Closed => f.write_str("the client is closed"),
            Error::ProducerDropped => f.write_str(
                "producer dropped before close/flush: the record was still queued or in flight \
                 (call Producer::close or Producer::flush before dropping the last handle)",
            ),
            Error::NoOffset { topic, partition } => write!(
                f,
                "no offset for {topic}-{partition} and auto.offset.reset is none"
            ),
            Error::PollIntervalExceeded { interval } => write!(
                f,
                "recv was not called within max.poll.interval.ms ({} ms): the consumer left its group",
                interval.as_millis()
            ),
            Error::InvalidState(m) => write!(f, "invalid state: {m}"),
            Error::Tls {
                broker,
                kind,
                detail,
            } => write!(f, "TLS connection to {broker} failed ({kind}): {detail}"),
            Error::SaslAuthenticationFailed {
                broker,
                mechanism,
                message,
            } => write!(
                f,
                "SASL {mechanism} authentication with {broker} failed: {message}"
            ),
            Error::HandlerFailed {
                topic,
                partition,
                offset,
                message,
            } => write!(
                f,
                "processing handler failed on {topic}-{partition}@{offset}: {message}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } => Some(source.as_ref()),
            Error::Io(e) => Some(e.as_ref()),
            Error::Disconnected { cause, .. } => Some(cause.as_ref()),
            Error::NoBrokerAvailable {
                last: Some(last), ..
            } => Some(last.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn error_is_cheap_to_share() {
        assert_send_sync_clone::<Error>();
        // Two words or so: every payload is behind an Arc.
        assert!(
            std::mem::size_of::<Error>() <= 48,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn display_names_code_and_context() {
        let e = Error::broker(
            KafkaCode::NotLeaderOrFollower,
            Some("moved"),
            "Produce to t-0",
        );
        assert_eq!(
            e.to_string(),
            "broker error NOT_LEADER_OR_FOLLOWER (6) in Produce to t-0: moved"
        );
        assert_eq!(e.kafka_code(), Some(KafkaCode::NotLeaderOrFollower));
        assert!(e.is_retriable());
    }

    #[test]
    fn a_timeout_reports_the_code_of_the_last_error_it_ended() {
        let plain = Error::Timeout {
            operation: "delivery to t-0".into(),
            after: Duration::from_secs(5),
            last: None,
        };
        assert_eq!(plain.kafka_code(), None);
        assert_eq!(plain.to_string(), "delivery to t-0 timed out after 5000 ms");
        let e = Error::Timeout {
            operation: "delivery to t-0".into(),
            after: Duration::from_secs(5),
            last: Some(Arc::new(Error::broker(
                KafkaCode::NotEnoughReplicas,
                None,
                "Produce to t-0",
            ))),
        };
        assert_eq!(e.kafka_code(), Some(KafkaCode::NotEnoughReplicas));
        assert!(e.is_timeout() && e.is_retriable());
        let text = e.to_string();
        assert!(text.starts_with("delivery to t-0 timed out after 5000 ms (last error: "));
        assert!(text.contains("NOT_ENOUGH_REPLICAS"), "{text}");
    }

    #[test]
    fn debug_shows_the_variant_and_its_fields() {
        let e = Error::broker(
            KafkaCode::NotLeaderOrFollower,
            Some("moved"),
            "Produce to t-0",
        );
        let debug = format!("{e:?}");
        assert!(debug.starts_with("Broker {"), "{debug}");
        for field in [
            "code: NotLeaderOrFollower",
            "message: Some(\"moved\")",
            "context: \"Produce to t-0\"",
        ] {
            assert!(debug.contains(field), "{field} missing from {debug}");
        }
        let e = Error::Timeout {
            operation: "delivery to t-0".into(),
            after: Duration::from_secs(5),
            last: Some(Arc::new(Error::NoOffset {
                topic: "t".into(),
                partition: 3,
            })),
        };
        let debug = format!("{e:?}");
        assert!(debug.starts_with("Timeout {"), "{debug}");
        assert!(
            debug.contains("NoOffset { topic: \"t\", partition: 3 }"),
            "{debug}"
        );
        assert_eq!(format!("{:?}", Error::ProducerDropped), "ProducerDropped");
        assert!(!Error::ProducerDropped.is_retriable());
        assert!(Error::ProducerDropped
            .to_string()
            .contains("producer dropped before close/flush"));
    }

    #[test]
    fn disconnected_exposes_its_cause() {
        let cause = Arc::new(Error::broker(KafkaCode::NetworkException, None, "x"));
        let e = Error::Disconnected {
            broker: "b".into(),
            cause,
        };
        assert_eq!(e.kafka_code(), Some(KafkaCode::NetworkException));
        assert!(std::error::Error::source(&e).is_some());
    }
}
