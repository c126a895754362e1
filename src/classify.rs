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
    /// Share groups: the broker lost this member's share session (or its epoch went out of
    /// step): open a new one (epoch 0) before the next ShareFetch.
    pub(crate) const RESET_SHARE_SESSION: Action = Action(1 << 7);
    /// KIP-848 / share groups: the coordinator no longer knows this member at its epoch:
    /// join again with epoch 0.
    pub(crate) const REJOIN: Action = Action(1 << 8);

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
        const NAMES: [(Action, &str); 9] = [
            (Action::RETRY, "RETRY"),
            (Action::REFRESH_METADATA, "REFRESH_METADATA"),
            (Action::RECONNECT, "RECONNECT"),
            (Action::REDISCOVER_COORDINATOR, "REDISCOVER_COORDINATOR"),
            (Action::FATAL, "FATAL"),
            (Action::NOT_PERSISTED, "NOT_PERSISTED"),
            (Action::POSSIBLY_PERSISTED, "POSSIBLY_PERSISTED"),
            (Action::RESET_SHARE_SESSION, "RESET_SHARE_SESSION"),
            (Action::REJOIN, "REJOIN"),
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

/// What a failed transactional call means for the transaction, as Java's KIP-1050 sorts
/// transactional errors. The state machine (`producer/transaction.rs`) acts on it: the first
/// two are retried inside the call, an abortable error leaves only `abort_transaction`, and
/// the last two end the producer instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxnErrorKind {
    /// Try the same call again after a backoff (CONCURRENT_TRANSACTIONS, a timeout).
    Retriable,
    /// Refresh metadata or find the coordinator again, then retry (NOT_COORDINATOR).
    RefreshRetriable,
    /// The open transaction cannot commit; abort it and go on (TRANSACTION_ABORTABLE, a
    /// record refused, offsets of a stale group generation).
    Abortable,
    /// This producer instance is done but the application can recover by creating a new one
    /// (PRODUCER_FENCED: a newer instance took the transactional id).
    ApplicationRecoverable,
    /// Nothing the application does with these settings helps (authorization, a broker too
    /// old for the request, INVALID_TXN_STATE).
    Fatal,
}

impl TxnErrorKind {
    /// Whether the producer instance can no longer be used.
    pub(crate) fn ends_the_producer(self) -> bool {
        matches!(
            self,
            TxnErrorKind::ApplicationRecoverable | TxnErrorKind::Fatal
        )
    }
}

/// Sorts an error of a transactional call (`api`: InitProducerId, AddPartitionsToTxn,
/// AddOffsetsToTxn, TxnOffsetCommit, EndTxn, or Produce for a transactional batch).
pub(crate) fn classify_txn(err: &Error, api: ApiKey) -> TxnErrorKind {
    use KafkaCode as K;
    use TxnErrorKind as T;
    match err.kafka_code() {
        // A newer instance holds the transactional id; a coordinator that answers with an
        // old epoch means the same (Java maps INVALID_PRODUCER_EPOCH from the coordinator to
        // PRODUCER_FENCED).
        Some(K::ProducerFenced) => return T::ApplicationRecoverable,
        Some(K::InvalidProducerEpoch) if api != ApiKey::Produce => {
            return T::ApplicationRecoverable
        }
        // A partition leader refusing the epoch: with transactions v2 the coordinator bumped
        // it when it aborted this transaction on timeout. Aborting gets the new epoch (EndTxn
        // v5) and the producer goes on, as Java 4.4 does (checked on Kafka 4.4.0; with
        // transactions v1 the abort itself is then fenced).
        Some(K::InvalidProducerEpoch) => return T::Abortable,
        // A stale static member's offsets (KIP-447): Java aborts the transaction only.
        Some(K::FencedInstanceId) => return T::Abortable,
        Some(
            K::TransactionalIdAuthorizationFailed
            | K::ClusterAuthorizationFailed
            | K::UnsupportedVersion
            | K::UnsupportedForMessageFormat
            | K::InvalidTxnState,
        ) => return T::Fatal,
        Some(K::TransactionAbortable) => return T::Abortable,
        _ => {}
    }
    if matches!(err, Error::UnsupportedApi { .. }) {
        return T::Fatal;
    }
    let action = classify(err, Some(api));
    if action.contains(Action::FATAL) {
        T::Fatal
    } else if !action.contains(Action::RETRY) {
        T::Abortable
    } else if action.contains(Action::REFRESH_METADATA)
        || action.contains(Action::REDISCOVER_COORDINATOR)
    {
        T::RefreshRetriable
    } else {
        T::Retriable
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

        // KIP-1102: the client must go back to its bootstrap addresses, which the metadata
        // refresh this asks for does (`Client::refresh_metadata`).
        K::RebootstrapRequired => A::RETRY | A::REFRESH_METADATA | A::NOT_PERSISTED,

        K::NotCoordinator | K::CoordinatorNotAvailable => {
            A::RETRY | A::REDISCOVER_COORDINATOR | A::NOT_PERSISTED
        }
        K::CoordinatorLoadInProgress => A::RETRY | A::NOT_PERSISTED,

        // Share sessions (KIP-932): the broker forgot the session or saw an epoch out of
        // order; a fresh session (epoch 0) fixes it. Acknowledgements that rode on the failed
        // request are lost with it (the records come back when their locks expire).
        K::ShareSessionNotFound | K::InvalidShareSessionEpoch => {
            A::RETRY | A::RESET_SHARE_SESSION | A::NOT_PERSISTED
        }
        // A share-group member the coordinator no longer knows at this epoch rejoins with
        // epoch 0 under the same (client-generated, KIP-1082) member id.
        K::UnknownMemberId | K::FencedMemberEpoch if api == Some(ApiKey::ShareGroupHeartbeat) => {
            A::RETRY | A::REJOIN | A::NOT_PERSISTED
        }

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
        // A KIP-848 member the broker refuses for good: its configuration (assignor, regex,
        // static id still held by a live instance) or rights are wrong, or the group is full.
        // Java's consumer turns these into a fatal error on the next poll. (Fencing —
        // FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID — is a membership event the member handles by
        // rejoining, not an error class.)
        K::UnreleasedInstanceId
        | K::UnsupportedAssignor
        | K::InvalidRegularExpression
        | K::GroupMaxSizeReached
        | K::GroupAuthorizationFailed
        | K::InvalidRequest
        | K::UnsupportedVersion
            if api == Some(ApiKey::ConsumerGroupHeartbeat) =>
        {
            A::FATAL
        }
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
    fn consumer_group_heartbeat_refusals_are_fatal_for_that_api_only() {
        let api = Some(ApiKey::ConsumerGroupHeartbeat);
        for code in [
            KafkaCode::UnreleasedInstanceId,
            KafkaCode::UnsupportedAssignor,
            KafkaCode::InvalidRegularExpression,
            KafkaCode::GroupAuthorizationFailed,
        ] {
            assert!(
                classify(&broker(code), api).contains(Action::FATAL),
                "{code:?}"
            );
            assert!(
                !classify(&broker(code), None).contains(Action::FATAL),
                "{code:?}"
            );
        }
        let moved = classify(&broker(KafkaCode::NotCoordinator), api);
        assert!(moved.contains(Action::RETRY | Action::REDISCOVER_COORDINATOR));
    }

    #[test]
    fn share_session_and_share_membership_errors_say_what_to_redo() {
        for code in [
            KafkaCode::ShareSessionNotFound,
            KafkaCode::InvalidShareSessionEpoch,
        ] {
            let a = classify(&broker(code), Some(ApiKey::ShareFetch));
            assert!(
                a.contains(Action::RETRY | Action::RESET_SHARE_SESSION),
                "{code:?}: {a:?}"
            );
        }
        for code in [KafkaCode::UnknownMemberId, KafkaCode::FencedMemberEpoch] {
            let a = classify(&broker(code), Some(ApiKey::ShareGroupHeartbeat));
            assert!(
                a.contains(Action::RETRY | Action::REJOIN),
                "{code:?}: {a:?}"
            );
            // Elsewhere (the classic group's own handling) they stay as they were.
            let a = classify(&broker(code), Some(ApiKey::Heartbeat));
            assert!(!a.contains(Action::REJOIN), "{code:?}: {a:?}");
        }
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
    fn transactional_errors_sort_as_kip_1050() {
        use TxnErrorKind as T;
        let cases = [
            (
                KafkaCode::ConcurrentTransactions,
                ApiKey::EndTxn,
                T::Retriable,
            ),
            (
                KafkaCode::CoordinatorLoadInProgress,
                ApiKey::EndTxn,
                T::Retriable,
            ),
            (
                KafkaCode::NotCoordinator,
                ApiKey::EndTxn,
                T::RefreshRetriable,
            ),
            (
                KafkaCode::NotLeaderOrFollower,
                ApiKey::Produce,
                T::RefreshRetriable,
            ),
            (
                KafkaCode::TransactionAbortable,
                ApiKey::Produce,
                T::Abortable,
            ),
            (
                KafkaCode::TransactionAbortable,
                ApiKey::TxnOffsetCommit,
                T::Abortable,
            ),
            (KafkaCode::MessageTooLarge, ApiKey::Produce, T::Abortable),
            (
                KafkaCode::TopicAuthorizationFailed,
                ApiKey::AddPartitionsToTxn,
                T::Abortable,
            ),
            (
                KafkaCode::ProducerFenced,
                ApiKey::EndTxn,
                T::ApplicationRecoverable,
            ),
            (
                KafkaCode::InvalidProducerEpoch,
                ApiKey::Produce,
                T::Abortable,
            ),
            (
                KafkaCode::InvalidProducerEpoch,
                ApiKey::EndTxn,
                T::ApplicationRecoverable,
            ),
            (
                KafkaCode::InvalidProducerEpoch,
                ApiKey::AddPartitionsToTxn,
                T::ApplicationRecoverable,
            ),
            (
                KafkaCode::FencedInstanceId,
                ApiKey::TxnOffsetCommit,
                T::Abortable,
            ),
            (
                KafkaCode::ProducerFenced,
                ApiKey::Produce,
                T::ApplicationRecoverable,
            ),
            (
                KafkaCode::TransactionalIdAuthorizationFailed,
                ApiKey::InitProducerId,
                T::Fatal,
            ),
            (KafkaCode::InvalidTxnState, ApiKey::EndTxn, T::Fatal),
        ];
        for (code, api, want) in cases {
            assert_eq!(classify_txn(&broker(code), api), want, "{code} on {api:?}");
        }
        assert!(T::ApplicationRecoverable.ends_the_producer() && T::Fatal.ends_the_producer());
        assert!(!T::Abortable.ends_the_producer());
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
