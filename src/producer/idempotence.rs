//! Idempotent producer identity: producer id, epoch, and the KIP-360 epoch bump.
//!
//! With idempotence the broker deduplicates by (producer id, epoch, partition, sequence). The
//! sender stamps each batch with a base sequence when it is first sent and keeps it across
//! retries, so a retry after a lost response is recognised as a duplicate instead of appended
//! twice. When the broker loses track of the producer (UNKNOWN_PRODUCER_ID) or a sequence gap
//! appears that no retry explains (OUT_OF_ORDER_SEQUENCE_NUMBER), the sender bumps the epoch
//! (InitProducerId with the current id and epoch, KIP-360) once nothing is in flight, and
//! restarts every partition's sequence at 0. Batches that may already be in the log (their last
//! send ended without an answer) are failed rather than re-sent under the new epoch, which
//! the broker could not deduplicate.
//!
//! Ownership: the **sender task** holds the only `Identity` and performs every change to it.

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ProducerId};

use crate::client::ClientInner;
use crate::error::{Error, Result};

/// The producer id and epoch stamped on batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

/// Asks any broker for a producer id (`current = None`) or for the next epoch of `current`
/// (KIP-360; needs InitProducerId v3+, otherwise a fresh id is requested). Retries transient
/// errors (no coordinator yet, coordinator loading) until `default.api.timeout.ms`.
pub(crate) async fn init_producer_id(
    client: &ClientInner,
    current: Option<Identity>,
) -> Result<Identity> {
    client
        .retrying(ApiKey::InitProducerId, || async {
            let req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            // Any broker answers for a non-transactional producer. Bumping the epoch of the
            // current id needs v3+; older brokers simply hand out a new id.
            let resp = match current {
                Some(id) => {
                    let bump = req
                        .clone()
                        .with_producer_id(ProducerId(id.producer_id))
                        .with_producer_epoch(id.epoch);
                    match send_bump(client, &bump).await {
                        Some(r) => r?,
                        None => client.send_to_any(&req).await?,
                    }
                }
                None => client.send_to_any(&req).await?,
            };
            Error::check_code(resp.error_code, None, || "InitProducerId".to_owned())?;
            Ok(Identity {
                producer_id: resp.producer_id.0,
                epoch: resp.producer_epoch,
            })
        })
        .await
}

/// Sends an epoch-bump request to a broker that supports InitProducerId v3+, or returns `None`
/// if the connection it got does not (then a new id is requested instead).
async fn send_bump(
    client: &ClientInner,
    req: &InitProducerIdRequest,
) -> Option<Result<kafka_protocol::messages::InitProducerIdResponse>> {
    let conn = match client.pool.any_open() {
        Some(c) => c,
        None => return Some(client.send_to_any(req).await),
    };
    match conn.version(ApiKey::InitProducerId) {
        Ok(v) if v >= 3 => Some(conn.call(req, v, client.cfg.request_timeout).await),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

/// The sequence after `seq` plus `count` records; Kafka wraps sequences at `i32::MAX`.
pub(crate) fn next_sequence(seq: i32, count: i32) -> i32 {
    let next = seq as i64 + count as i64;
    if next > i32::MAX as i64 {
        (next - i32::MAX as i64 - 1) as i32
    } else {
        next as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 1, 3), 1);
    }
}
