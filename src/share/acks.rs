//! What a share consumer holds: every record it acquired and has not yet acknowledged to the
//! broker, and the acknowledgements waiting to be sent.
//!
//! A record moves `Buffered` (acquired, fetched, not handed out yet) → `Delivered` (handed
//! out by `recv`) → `Acked(type)` (accepted, released or rejected by the application, or
//! implicitly accepted by the next `recv`) → sent (removed from here). A renewal (KIP-1222)
//! is the one acknowledgement that keeps the record: `Acked(Renew)` → sent, `Renewing` →
//! back to `Delivered` when the broker extended the lock (the application still holds the
//! record and acknowledges it later), or forgotten when it refused (the lock is gone and the
//! record with it). Until a renewal is sent, or while it is in flight, the application may
//! still settle the record with a final type, which replaces it. Offsets the broker
//! acquired for this member but for which it sent no record (compacted away, control records)
//! go straight to `Acked(Gap)`: the broker wants every acquired offset back.
//!
//! Acknowledgements go to the broker the records were acquired from (the share-partition
//! leader of that fetch), grouped into runs: consecutive offsets with the same type are one
//! AcknowledgementBatch with a single type, as KIP-932 allows.
//!
//! Ownership: one `Held` per consumer, behind a std mutex in its shared state; the
//! application's calls (`recv`, `acknowledge`, `commit`, `close`) and the fetch round that
//! the polling call runs are the only users, never a background task.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// How a record is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcknowledgeType {
    /// Processed: the record is done for the whole group.
    Accept,
    /// Not processed: give it back for another delivery (its delivery count goes up).
    Release,
    /// Unprocessable: archive it; it is never delivered again.
    Reject,
    /// Keep it: extend the acquisition lock (KIP-1222, Kafka 4.2+). The record stays this
    /// consumer's and is acknowledged again later (with any type, `Renew` included). The
    /// renewal goes to the broker with the next fetch round or [`commit`] in a
    /// ShareAcknowledge v2; a broker without v2 makes the call fail with
    /// [`Error::UnsupportedApi`].
    ///
    /// [`commit`]: crate::ShareConsumer::commit
    Renew,
}

/// The wire value of an acknowledgement (`0` is a gap: no record at that offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ack {
    Gap,
    Accept,
    Release,
    Reject,
    Renew,
}

impl Ack {
    pub(crate) fn wire(self) -> i8 {
        match self {
            Ack::Gap => 0,
            Ack::Accept => 1,
            Ack::Release => 2,
            Ack::Reject => 3,
            Ack::Renew => crate::protocol::share_v2::RENEW,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Buffered,
    Delivered,
    Acked(Ack),
    /// A renewal sent, its answer not in yet.
    Renewing,
}

/// One partition's held offsets.
#[derive(Debug)]
struct Partition {
    /// The broker that served the fetch: acknowledgements go back to it.
    broker: i32,
    topic_id: Uuid,
    offsets: BTreeMap<i64, State>,
}

/// One partition's acknowledgements, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingAcks {
    pub(crate) broker: i32,
    pub(crate) tp: TopicPartition,
    pub(crate) topic_id: Uuid,
    /// `(first offset, last offset, type)`, ascending and disjoint.
    pub(crate) batches: Vec<(i64, i64, Ack)>,
}

impl PendingAcks {
    /// Whether some batch renews (the request then needs ShareAcknowledge v2 and IsRenewAck).
    pub(crate) fn renews(&self) -> bool {
        self.batches.iter().any(|(_, _, t)| *t == Ack::Renew)
    }
}

/// Every record a consumer holds (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Held {
    parts: HashMap<TopicPartition, Partition>,
    /// Records handed out since the last [`Held::accept_delivered`]: implicit mode accepts
    /// them on every `recv`, so that call must not walk everything held.
    handed_out: Vec<(TopicPartition, i64)>,
}

impl Held {
    fn part(&mut self, tp: &TopicPartition, broker: i32, topic_id: Uuid) -> &mut Partition {
        let p = self.parts.entry(tp.clone()).or_insert_with(|| Partition {
            broker,
            topic_id,
            offsets: BTreeMap::new(),
        });
        // A partition whose leader moved: later acknowledgements follow the records' broker
        // of the latest fetch (the old leader's acquisitions are gone with its session).
        p.broker = broker;
        p.topic_id = topic_id;
        p
    }

    /// A record acquired and fetched, to be handed out.
    pub(crate) fn buffered(&mut self, tp: &TopicPartition, broker: i32, id: Uuid, offset: i64) {
        self.part(tp, broker, id)
            .offsets
            .insert(offset, State::Buffered);
    }

    /// An acquired offset with no record to hand out.
    pub(crate) fn gap(&mut self, tp: &TopicPartition, broker: i32, id: Uuid, offset: i64) {
        self.part(tp, broker, id)
            .offsets
            .insert(offset, State::Acked(Ack::Gap));
    }

    /// `recv` handed the record out.
    pub(crate) fn delivered(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(s) = self
            .parts
            .get_mut(tp)
            .and_then(|p| p.offsets.get_mut(&offset))
        {
            if *s == State::Buffered {
                *s = State::Delivered;
                self.handed_out.push((tp.clone(), offset));
            }
        }
    }

    /// Implicit mode: everything handed out so far is accepted.
    pub(crate) fn accept_delivered(&mut self) {
        for (tp, offset) in self.handed_out.drain(..) {
            let state = self
                .parts
                .get_mut(&tp)
                .and_then(|p| p.offsets.get_mut(&offset));
            if let Some(s @ State::Delivered) = state {
                *s = State::Acked(Ack::Accept);
            }
        }
    }

    /// The application's acknowledgement of a record `recv` returned. A record not handed
    /// out by this consumer, or already acknowledged, is an error naming it.
    pub(crate) fn acknowledge(&mut self, tp: &TopicPartition, offset: i64, ack: Ack) -> Result<()> {
        let state = self
            .parts
            .get_mut(tp)
            .and_then(|p| p.offsets.get_mut(&offset));
        match state {
            // A renewal is not final: the record is still the application's to settle.
            Some(s @ (State::Delivered | State::Renewing | State::Acked(Ack::Renew))) => {
                *s = State::Acked(ack);
                Ok(())
            }
            Some(State::Acked(_)) => Err(Error::InvalidState(
                format!("{tp}@{offset} is already acknowledged").into(),
            )),
            _ => Err(Error::InvalidState(
                format!("{tp}@{offset} is not a record this share consumer handed out").into(),
            )),
        }
    }

    /// `close`: every record not acknowledged yet (buffered or handed out) is released, so
    /// other members get it without waiting for its lock to expire.
    pub(crate) fn release_unacknowledged(&mut self) {
        for p in self.parts.values_mut() {
            for s in p.offsets.values_mut() {
                if matches!(
                    s,
                    State::Buffered | State::Delivered | State::Renewing | State::Acked(Ack::Renew)
                ) {
                    *s = State::Acked(Ack::Release);
                }
            }
        }
    }

    /// The broker `tp`'s records were acquired from, if this consumer holds any.
    pub(crate) fn broker_of(&self, tp: &TopicPartition) -> Option<i32> {
        self.parts.get(tp).map(|p| p.broker)
    }

    /// The broker answered the renewals sent for `tp`: on success the records are the
    /// application's again (`Delivered`), on failure the lock is gone and so are they. A
    /// record the application settled meanwhile keeps its new acknowledgement.
    pub(crate) fn finish_renewal(&mut self, tp: &TopicPartition, extended: bool) {
        let Some(p) = self.parts.get_mut(tp) else {
            return;
        };
        if extended {
            for s in p.offsets.values_mut() {
                if *s == State::Renewing {
                    *s = State::Delivered;
                }
            }
        } else {
            p.offsets.retain(|_, s| *s != State::Renewing);
            if p.offsets.is_empty() {
                self.parts.remove(tp);
            }
        }
    }

    /// Records fetched but not handed out yet.
    #[cfg(test)]
    pub(crate) fn buffered_count(&self) -> usize {
        self.parts
            .values()
            .flat_map(|p| p.offsets.values())
            .filter(|s| **s == State::Buffered)
            .count()
    }

    /// Forgets everything acquired from `broker`: the share session that acquired it is
    /// gone, and with it this member's hold on those records.
    pub(crate) fn forget_broker(&mut self, broker: i32) {
        self.parts.retain(|_, p| p.broker != broker);
        let parts = &self.parts;
        self.handed_out.retain(|(tp, _)| parts.contains_key(tp));
    }

    /// Takes the acknowledgements ready to send, for every broker or for one. Offsets still
    /// buffered or handed out stay.
    pub(crate) fn take_ready(&mut self, broker: Option<i32>) -> Vec<PendingAcks> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            if broker.is_some_and(|b| b != p.broker) {
                continue;
            }
            let mut batches: Vec<(i64, i64, Ack)> = Vec::new();
            for (&offset, s) in &p.offsets {
                let State::Acked(ack) = *s else { continue };
                match batches.last_mut() {
                    Some((_, last, t)) if *last + 1 == offset && *t == ack => *last = offset,
                    _ => batches.push((offset, offset, ack)),
                }
            }
            if batches.is_empty() {
                continue;
            }
            // Sent renewals stay, waiting for the broker's answer (`finish_renewal`).
            p.offsets.retain(|_, s| match s {
                State::Acked(Ack::Renew) => {
                    *s = State::Renewing;
                    true
                }
                State::Acked(_) => false,
                _ => true,
            });
            out.push(PendingAcks {
                broker: p.broker,
                tp: tp.clone(),
                topic_id: p.topic_id,
                batches,
            });
        }
        self.parts.retain(|_, p| !p.offsets.is_empty());
        out.sort_by(|a, b| a.tp.cmp(&b.tp));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn runs_of_the_same_type_become_one_batch() {
        let id = Uuid::from_bytes([7; 16]);
        let mut h = Held::default();
        for o in 10..16 {
            h.buffered(&tp(0), 1, id, o);
        }
        h.gap(&tp(0), 1, id, 16);
        for o in 10..16 {
            h.delivered(&tp(0), o);
        }
        h.acknowledge(&tp(0), 10, Ack::Accept).unwrap();
        h.acknowledge(&tp(0), 11, Ack::Accept).unwrap();
        h.acknowledge(&tp(0), 12, Ack::Release).unwrap();
        h.acknowledge(&tp(0), 14, Ack::Reject).unwrap();
        h.acknowledge(&tp(0), 15, Ack::Reject).unwrap();
        // 13 is handed out but not acknowledged: it stays, and splits the runs.
        let ready = h.take_ready(None);
        assert_eq!(ready.len(), 1);
        assert_eq!(
            ready[0].batches,
            vec![
                (10, 11, Ack::Accept),
                (12, 12, Ack::Release),
                (14, 15, Ack::Reject),
                (16, 16, Ack::Gap)
            ]
        );
        assert!(
            h.take_ready(None).is_empty(),
            "sent acknowledgements are gone"
        );
        h.release_unacknowledged();
        assert_eq!(
            h.take_ready(Some(1))[0].batches,
            vec![(13, 13, Ack::Release)]
        );
    }

    #[test]
    fn a_renewed_record_stays_held_until_it_is_settled() {
        let id = Uuid::from_bytes([2; 16]);
        let mut h = Held::default();
        for o in 0..4 {
            h.buffered(&tp(0), 1, id, o);
            h.delivered(&tp(0), o);
        }
        h.acknowledge(&tp(0), 0, Ack::Accept).unwrap();
        h.acknowledge(&tp(0), 1, Ack::Renew).unwrap();
        h.acknowledge(&tp(0), 2, Ack::Renew).unwrap();
        let ready = h.take_ready(None);
        assert!(ready[0].renews());
        assert_eq!(
            ready[0].batches,
            vec![(0, 0, Ack::Accept), (1, 2, Ack::Renew)]
        );
        assert_eq!(Ack::Renew.wire(), 4);
        // In flight: nothing more to send, and the record may still be settled.
        assert!(h.take_ready(None).is_empty());
        h.acknowledge(&tp(0), 2, Ack::Reject).unwrap();
        h.finish_renewal(&tp(0), true);
        // 1 is the application's again: renewable and acceptable, once.
        h.acknowledge(&tp(0), 1, Ack::Renew).unwrap();
        h.acknowledge(&tp(0), 1, Ack::Accept).unwrap();
        assert!(h.acknowledge(&tp(0), 1, Ack::Accept).is_err());
        let ready = h.take_ready(None);
        assert!(!ready[0].renews());
        assert_eq!(
            ready[0].batches,
            vec![(1, 1, Ack::Accept), (2, 2, Ack::Reject)]
        );
        // A refused renewal: the record is gone; close releases only what is still held.
        h.acknowledge(&tp(0), 3, Ack::Renew).unwrap();
        assert!(h.take_ready(None)[0].renews());
        h.finish_renewal(&tp(0), false);
        assert!(h.acknowledge(&tp(0), 3, Ack::Accept).is_err());
        assert_eq!(h.broker_of(&tp(0)), None);
        h.release_unacknowledged();
        assert!(h.take_ready(None).is_empty());
    }

    #[test]
    fn close_releases_records_being_renewed() {
        let id = Uuid::from_bytes([2; 16]);
        let mut h = Held::default();
        for o in 0..2 {
            h.buffered(&tp(0), 1, id, o);
            h.delivered(&tp(0), o);
            h.acknowledge(&tp(0), o, Ack::Renew).unwrap();
        }
        assert_eq!(h.broker_of(&tp(0)), Some(1));
        // 0 is in flight, 1 waits to be sent: close gives both back.
        h.take_ready(None);
        h.acknowledge(&tp(0), 1, Ack::Renew).unwrap();
        h.release_unacknowledged();
        assert_eq!(h.take_ready(None)[0].batches, vec![(0, 1, Ack::Release)]);
    }

    #[test]
    fn implicit_acceptance_covers_only_what_was_handed_out() {
        let id = Uuid::from_bytes([1; 16]);
        let mut h = Held::default();
        for o in 0..4 {
            h.buffered(&tp(1), 2, id, o);
        }
        h.delivered(&tp(1), 0);
        h.delivered(&tp(1), 1);
        h.accept_delivered();
        assert_eq!(h.buffered_count(), 2);
        assert_eq!(h.take_ready(None)[0].batches, vec![(0, 1, Ack::Accept)]);
        // Close releases the two never handed out.
        h.release_unacknowledged();
        let ready = h.take_ready(Some(2));
        assert_eq!(ready[0].broker, 2);
        assert_eq!(ready[0].batches, vec![(2, 3, Ack::Release)]);
    }

    #[test]
    fn acknowledging_twice_or_unknown_records_fails() {
        let id = Uuid::from_bytes([1; 16]);
        let mut h = Held::default();
        h.buffered(&tp(0), 1, id, 5);
        // Not handed out yet.
        assert!(matches!(
            h.acknowledge(&tp(0), 5, Ack::Accept),
            Err(Error::InvalidState(_))
        ));
        h.delivered(&tp(0), 5);
        h.acknowledge(&tp(0), 5, Ack::Accept).unwrap();
        let e = h.acknowledge(&tp(0), 5, Ack::Reject).unwrap_err();
        assert!(e.to_string().contains("already acknowledged"), "{e}");
        assert!(h.acknowledge(&tp(3), 1, Ack::Accept).is_err());
        // Acknowledgements for another broker are not taken for this one.
        assert!(h.take_ready(Some(9)).is_empty());
        assert_eq!(h.take_ready(Some(1)).len(), 1);
    }
}
