//! The one place that decides what to do about an error.
//!
//! Every retry loop in the client (metadata, admin, and later produce, fetch, group and
//! transaction calls) asks [`classify`] and acts on the returned [`Action`] flags instead of
//! matching error codes itself. This mirrors librdkafka's `rd_kafka_err_action`: an error maps to
//! a *set* of actions (retry, refresh metadata, reconnect, rediscover the coordinator, fatal) and,
//! for produce, to what is known about the records' fate (not persisted / possibly persisted).
//! Special cases belong here, keyed by API, never at a call site.

use std::ops::{BitOr, BitOrAssign};

use kafka_protocol::messages::ApiKey;

use crate::codes::KafkaCode;
use crate::error::Error;

/// A set of actions the caller should take, as bit flags.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Action(u16);

impl Action {
    /// Nothing to do but report the error: it is permanent for this request.
    pub(crate) const PERMANENT: Action = Action(0);
    /// The same request may succeed if sent again (after backoff).
    pub(crate) const RETRY: Action = Action(1);
    /// The client's view of leaders is stale: refresh metadata before retrying.
    pub(crate) const REFRESH_METADATA: Action = Action(1 << 1);
    /// The connection is unusable: drop it and connect again (with reconnect backoff).
    pub(crate) const RECONNECT: Action = Action(1 << 2);
    /// The group or transaction coordinator moved: find it again before retrying.
    pub(crate) const REDISCOVER_COORDINATOR: Action = Action(1 << 3);
    /// The client instance can no longer make progress (fenced, unauthorized cluster-wide).
    pub(crate) const FATAL: Action = Action(1 << 4);
    /// Produce: the broker certainly did not append the records.
    pub(crate) const NOT_PERSISTED: Action = Action(1 << 5);
    /// Produce: the records may have been appended; a re-send needs idempotence to be safe.
    pub(crate) const POSSIBLY_PERSISTED: Action = Action(1 << 6);

    pub(crate) const fn contains(self, other: Action) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Action {
    type Output = Action;
    fn bitor(self, rhs: Action) -> Action {
        Action(self.0 | rhs.0)
    }
}

impl BitOrAssign for Action {
    fn bitor_assign(&mut self, rhs: Action) {
        self.0 |= rhs.0;
    }
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [(Action, &str); 7] = [
            (Action::RETRY, "RETRY"),
            (Action::REFRESH_METADATA, "REFRESH_METADATA"),
            (Action::RECONNECT, "RECONNECT"),
            (Action::REDISCOVER_COORDINATOR, "REDISCOVER_COORDINATOR"),
            (Action::FATAL, "FATAL"),
            (Action::NOT_PERSISTED, "NOT_PERSISTED"),
            (Action::POSSIBLY_PERSISTED, "POSSIBLY_PERSISTED"),
        ];
        let set: Vec<&str> = NAMES
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("PERMANENT")
        } else {
            f.write_str(&set.join("|"))
        }
    }
}

/// Decides what to do about `err`, which came from a request of API `api` (`None` when the
/// caller has no specific API in mind, as for the public [`Error::is_retriable`]).
pub(crate) fn classify(err: &Error, api: Option<ApiKey>) -> Action {
    use Action as A;
    match err {
        Error::Broker { code, .. } => classify_code(*code, api),
        // Nothing reached the broker.
        // Nothing reached the broker. It may be gone for good with its partitions moved
        // elsewhere: refresh metadata too (as Java does on every disconnect), or a client would
        // keep knocking on a dead broker until metadata.max.age.ms.
        Error::Connect { .. } | Error::NoBrokerAvailable { .. } => {
            A::RETRY | A::RECONNECT | A::REFRESH_METADATA | A::NOT_PERSISTED
        }
        // The request may have been processed; the connection is gone either way.
        Error::Disconnected { cause, .. } => match cause.as_ref() {
            // A connection poisoned by bad bytes from the broker is worth one more try on a
            // fresh connection: the bytes may have been corrupted in transit.
            Error::Protocol(_) | Error::FrameTooLarge { .. } | Error::Io(_) => {
                A::RETRY | A::RECONNECT | A::REFRESH_METADATA | A::POSSIBLY_PERSISTED
            }
            Error::Closed => A::PERMANENT,
            other => {
                classify(other, api) | A::RECONNECT | A::REFRESH_METADATA | A::POSSIBLY_PERSISTED
            }
        },
        Error::Io(_) | Error::Protocol(_) | Error::FrameTooLarge { .. } => {
            A::RETRY | A::RECONNECT | A::POSSIBLY_PERSISTED
        }
        // Kafka answers in order on a connection, so a request that timed out is either lost
        // or stuck behind something slow; either way it may have been appended.
        Error::Timeout { .. } => A::RETRY | A::POSSIBLY_PERSISTED,
        Error::BufferFull => A::RETRY | A::NOT_PERSISTED,
        Error::UnsupportedApi { .. }
        | Error::Config(_)
        | Error::InvalidInput(_)
        | Error::InvalidState(_)
        | Error::NoOffset { .. }
        | Error::PollIntervalExceeded { .. }
        | Error::ProducerDropped
        | Error::HandlerFailed { .. }
        | Error::Closed => A::PERMANENT | A::NOT_PERSISTED,
        // Security failures are configuration problems (wrong CA, wrong password, wrong
        // listener): trying again with the same settings fails the same way, so no loop
        // retries them and the caller of `build()` or of the request sees them at once. They
        // are not FATAL either: the client stays usable, the pool's reconnect backoff spaces
        // out later attempts, and a broker whose credentials or certificate are fixed is
        // reached again without rebuilding the client.
        Error::Tls { .. } | Error::SaslAuthenticationFailed { .. } => {
            A::PERMANENT | A::NOT_PERSISTED
        }
    }
}

/// [`classify`] for the admin client's per-resource answers. Admin operations look topics up
/// in metadata fetched for the attempt itself, so a topic that fresh metadata does not know
/// does not exist: unlike a producer or consumer (which waits for a topic being created), the
/// admin client reports UNKNOWN_TOPIC_OR_PARTITION at once, as the Java admin does.
///
/// A change whose outcome is unknown (REQUEST_TIMED_OUT while the controller applies it, a
/// lost connection) is not asked again for the same resource: the second answer would
/// describe a different world (TOPIC_ALREADY_EXISTS for a topic the first request created,
/// no match for ACLs the first request deleted). The caller gets the ambiguous error, as
/// the Java admin reports it.
pub(crate) fn classify_admin(err: &Error, api: ApiKey) -> Action {
    let changes_something = matches!(
        api,
        ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::CreateAcls
            | ApiKey::DeleteAcls
            | ApiKey::DeleteGroups
            | ApiKey::AlterUserScramCredentials
            | ApiKey::IncrementalAlterConfigs
    );
    match err {
        Error::Broker {
            code: KafkaCode::UnknownTopicOrPartition | KafkaCode::UnknownTopicId,
            ..
        } => Action::PERMANENT | Action::NOT_PERSISTED,
        other => {
            let action = classify(other, Some(api));
            if changes_something && action.contains(Action::POSSIBLY_PERSISTED) {
                Action::POSSIBLY_PERSISTED
            } else {
                action
            }
        }
    }
}

fn classify_code(code: KafkaCode, api: Option<ApiKey>) -> Action {
    use Action as A;
    use KafkaCode as K;
    match code {
        // DeleteTopics goes to the controller, which knows every topic: "unknown" is its
        // final answer, not stale metadata (retrying it only delayed the error by the whole
        // `default.api.timeout.ms`).
        K::UnknownTopicOrPartition if api == Some(ApiKey::DeleteTopics) => {
            A::PERMANENT | A::NOT_PERSISTED
        }
        // Leadership and topic-existence errors: the cached leader is wrong or missing.
        K::NotLeaderOrFollower
        | K::LeaderNotAvailable
        | K::UnknownTopicOrPartition
        | K::UnknownTopicId
        | K::InconsistentTopicId
        | K::FencedLeaderEpoch
        | K::UnknownLeaderEpoch
        | K::ReplicaNotAvailable
        | K::ListenerNotFound
        | K::NotController
        | K::KafkaStorageError
        | K::OffsetNotAvailable => A::RETRY | A::REFRESH_METADATA | A::NOT_PERSISTED,

        K::NotCoordinator | K::CoordinatorNotAvailable => {
            A::RETRY | A::REDISCOVER_COORDINATOR | A::NOT_PERSISTED
        }
        K::CoordinatorLoadInProgress => A::RETRY | A::NOT_PERSISTED,

        // The broker gave up waiting for replication or lost the request: the append may exist.
        K::RequestTimedOut | K::NetworkException | K::NotEnoughReplicasAfterAppend => {
            A::RETRY | A::POSSIBLY_PERSISTED
        }
        K::NotEnoughReplicas | K::CorruptMessage | K::ThrottlingQuotaExceeded => {
            A::RETRY | A::NOT_PERSISTED
        }
        K::ConcurrentTransactions | K::UnstableOffsetCommit => A::RETRY | A::NOT_PERSISTED,

        // The producer instance is done: a newer one owns the transactional id, or the client
        // lacks cluster-wide rights.
        K::ProducerFenced
        | K::TransactionalIdAuthorizationFailed
        | K::ClusterAuthorizationFailed
        | K::FencedInstanceId => A::FATAL,
        K::InvalidProducerEpoch if api == Some(ApiKey::Produce) => A::NOT_PERSISTED,
        K::InvalidProducerEpoch => A::FATAL,

        other if other.is_retriable() => A::RETRY | A::NOT_PERSISTED,
        _ => A::PERMANENT | A::NOT_PERSISTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn broker(code: KafkaCode) -> Error {
        Error::broker(code, None, "test")
    }

    #[test]
    fn leader_errors_refresh_metadata_and_retry() {
        for code in [
            KafkaCode::NotLeaderOrFollower,
            KafkaCode::LeaderNotAvailable,
            KafkaCode::UnknownTopicOrPartition,
            KafkaCode::FencedLeaderEpoch,
        ] {
            let a = classify(&broker(code), Some(ApiKey::Produce));
            assert!(
                a.contains(Action::RETRY | Action::REFRESH_METADATA),
                "{code}: {a:?}"
            );
            assert!(a.contains(Action::NOT_PERSISTED), "{code}: {a:?}");
        }
    }

    #[test]
    fn lost_or_failed_connections_refresh_metadata() {
        // The broker may be gone for good with its partitions moved: look leaders up again.
        let connect = Error::Connect {
            broker: "b".into(),
            source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        let lost = Error::Disconnected {
            broker: "b".into(),
            cause: Arc::new(Error::Io(Arc::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            )))),
        };
        for e in [connect, lost] {
            let a = classify(&e, Some(ApiKey::Fetch));
            assert!(
                a.contains(Action::RETRY | Action::RECONNECT | Action::REFRESH_METADATA),
                "{e}: {a:?}"
            );
        }
    }

    #[test]
    fn timeouts_are_possibly_persisted() {
        let t = Error::Timeout {
            operation: "x".into(),
            after: std::time::Duration::from_secs(1),
            last: None,
        };
        assert!(classify(&t, Some(ApiKey::Produce)).contains(Action::POSSIBLY_PERSISTED));
        let a = classify(&broker(KafkaCode::RequestTimedOut), Some(ApiKey::Produce));
        assert!(a.contains(Action::RETRY | Action::POSSIBLY_PERSISTED));
        assert!(!a.contains(Action::NOT_PERSISTED));
        let a = classify(&broker(KafkaCode::NotEnoughReplicasAfterAppend), None);
        assert!(a.contains(Action::POSSIBLY_PERSISTED));
    }

    #[test]
    fn connection_failures_reconnect() {
        let io = Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let c = Error::Connect {
            broker: "b".into(),
            source: io,
        };
        let a = classify(&c, None);
        assert!(a.contains(Action::RETRY | Action::RECONNECT | Action::NOT_PERSISTED));
        let d = Error::Disconnected {
            broker: "b".into(),
            cause: Arc::new(Error::protocol("x")),
        };
        let a = classify(&d, None);
        assert!(a.contains(Action::RETRY | Action::RECONNECT | Action::POSSIBLY_PERSISTED));
        assert!(d.is_retriable());
    }

    #[test]
    fn admin_changes_with_an_unknown_outcome_are_not_repeated() {
        let timed_out = broker(KafkaCode::RequestTimedOut);
        for api in [
            ApiKey::CreateTopics,
            ApiKey::DeleteAcls,
            ApiKey::DeleteGroups,
        ] {
            assert!(
                !classify_admin(&timed_out, api).contains(Action::RETRY),
                "{api:?}"
            );
        }
        // Reads and idempotent writes are asked again; so is a change that certainly was
        // not made.
        assert!(classify_admin(&timed_out, ApiKey::ListOffsets).contains(Action::RETRY));
        let moved = broker(KafkaCode::NotController);
        assert!(classify_admin(&moved, ApiKey::CreateTopics).contains(Action::RETRY));
        // Fresh metadata is the admin's authority on which topics exist.
        let unknown = broker(KafkaCode::UnknownTopicOrPartition);
        assert!(!classify_admin(&unknown, ApiKey::ListOffsets).contains(Action::RETRY));
    }

    #[test]
    fn deleting_a_missing_topic_is_final() {
        let e = broker(KafkaCode::UnknownTopicOrPartition);
        assert!(!classify(&e, Some(ApiKey::DeleteTopics)).contains(Action::RETRY));
        assert!(classify(&e, Some(ApiKey::Produce)).contains(Action::RETRY));
    }

    #[test]
    fn fatal_and_permanent_are_not_retried() {
        assert_eq!(
            classify(&broker(KafkaCode::ProducerFenced), None),
            Action::FATAL
        );
        assert!(!broker(KafkaCode::MessageTooLarge).is_retriable());
        assert!(!broker(KafkaCode::TopicAuthorizationFailed).is_retriable());
        assert!(!Error::config("x").is_retriable());
        assert!(!Error::Closed.is_retriable());
    }

    #[test]
    fn coordinator_errors_rediscover() {
        let a = classify(
            &broker(KafkaCode::NotCoordinator),
            Some(ApiKey::OffsetCommit),
        );
        assert!(a.contains(Action::RETRY | Action::REDISCOVER_COORDINATOR));
        let a = classify(&broker(KafkaCode::CoordinatorLoadInProgress), None);
        assert!(a.contains(Action::RETRY));
        assert!(!a.contains(Action::REDISCOVER_COORDINATOR));
    }

    #[test]
    fn every_retriable_code_is_retried() {
        for &c in crate::codes::ALL_CODES {
            let code = KafkaCode::from_code(c).unwrap();
            if code.is_retriable() {
                assert!(
                    broker(code).is_retriable(),
                    "{code} is retriable in Kafka but not here"
                );
            }
        }
    }
}
