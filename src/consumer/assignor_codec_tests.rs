//! The subscription and assignment codecs (ConsumerProtocol): round trips at every version,
//! librdkafka's encodings written by hand, and decoders that never panic.

use super::tests::tps;
use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Writes the fields by hand, the way librdkafka's buffer writer lays them out.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(self, s: &str) -> Self {
        let mut w = self.i16(s.len() as i16);
        w.0.extend_from_slice(s.as_bytes());
        w
    }
    fn bytes(self, b: Option<&[u8]>) -> Self {
        match b {
            None => self.i32(-1),
            Some(b) => {
                let mut w = self.i32(b.len() as i32);
                w.0.extend_from_slice(b);
                w
            }
        }
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn done(self) -> Bytes {
        Bytes::from(self.0)
    }
}

fn full_subscription() -> Subscription {
    Subscription {
        topics: vec!["orders".into(), "payments".into()],
        user_data: Some(Bytes::from_static(b"\x00\x01\x02")),
        owned_partitions: tps(&[("orders", &[0, 2]), ("payments", &[1])]),
        generation_id: 7,
        rack_id: Some("eu-west-1a".into()),
    }
}

/// What survives of a subscription at `version`.
fn at_version(mut s: Subscription, version: i16) -> Subscription {
    if version < 1 {
        s.owned_partitions.clear();
    }
    if version < 2 {
        s.generation_id = -1;
    }
    if version < 3 {
        s.rack_id = None;
    }
    s
}

// ---- codec ---------------------------------------------------------------------------------

#[test]
fn subscription_round_trips_at_every_version() {
    let range = ConsumerProtocolSubscription::VERSIONS;
    assert_eq!((range.min, range.max), (0, 3));
    for version in range.min..=range.max {
        let bytes = encode_subscription(&full_subscription(), version);
        assert_eq!(&bytes[..2], &version.to_be_bytes());
        let decoded = decode_subscription(bytes).unwrap();
        assert_eq!(
            decoded,
            at_version(full_subscription(), version),
            "v{version}"
        );
    }
}

#[test]
fn assignment_round_trips_at_every_version() {
    let range = ConsumerProtocolAssignment::VERSIONS;
    let assignment = Assignment {
        partitions: tps(&[("orders", &[1, 3]), ("payments", &[0])]),
        user_data: Some(Bytes::from_static(b"leader says hi")),
    };
    for version in range.min..=range.max {
        let bytes = encode_assignment(&assignment, version);
        assert_eq!(&bytes[..2], &version.to_be_bytes());
        assert_eq!(decode_assignment(bytes).unwrap(), assignment, "v{version}");
    }
    let empty = Assignment::default();
    assert_eq!(
        decode_assignment(encode_assignment(&empty, ASSIGNMENT_VERSION)).unwrap(),
        empty
    );
}

#[test]
fn chosen_versions_are_ones_kafka_protocol_writes() {
    assert_eq!(SUBSCRIPTION_VERSION, 3);
    assert_eq!(ASSIGNMENT_VERSION, 0);
    let bytes = encode_subscription(&full_subscription(), SUBSCRIPTION_VERSION);
    assert_eq!(decode_subscription(bytes).unwrap(), full_subscription());
}

#[test]
fn newer_versions_decode_at_the_newest_known() {
    // A future v9 appends a field; the known prefix must still come through.
    let mut raw = encode_subscription(&full_subscription(), 3).to_vec();
    raw[..2].copy_from_slice(&9i16.to_be_bytes());
    raw.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(
        decode_subscription(Bytes::from(raw)).unwrap(),
        full_subscription()
    );

    let assignment = Assignment {
        partitions: tps(&[("t", &[4])]),
        user_data: None,
    };
    let mut raw = encode_assignment(&assignment, 3).to_vec();
    raw[..2].copy_from_slice(&i16::MAX.to_be_bytes());
    raw.push(1);
    assert_eq!(decode_assignment(Bytes::from(raw)).unwrap(), assignment);
}

#[test]
fn encoding_clamps_unknown_versions() {
    let bytes = encode_subscription(&full_subscription(), 42);
    assert_eq!(&bytes[..2], &3i16.to_be_bytes());
    let bytes = encode_assignment(&Assignment::default(), -5);
    assert_eq!(&bytes[..2], &0i16.to_be_bytes());
}

#[test]
fn decodes_librdkafka_v0_subscription() {
    // librdkafka before owned partitions: version, topics, empty (not null) user data.
    let bytes = Wire::default()
        .i16(0)
        .i32(2)
        .str("t0")
        .str("t1")
        .bytes(Some(b""))
        .done();
    let s = decode_subscription(bytes).unwrap();
    assert_eq!(s.topics, vec!["t0", "t1"]);
    assert_eq!(s.user_data.as_deref(), Some(&b""[..]));
    assert!(s.owned_partitions.is_empty());
    assert_eq!(s.generation_id, -1);
    assert_eq!(s.rack_id, None);
}

#[test]
fn decodes_librdkafka_v1_subscription() {
    let bytes = Wire::default()
        .i16(1)
        .i32(1)
        .str("t0")
        .bytes(None)
        .i32(1) // owned: one topic
        .str("t0")
        .i32(2)
        .i32(0)
        .i32(5)
        .done();
    let s = decode_subscription(bytes).unwrap();
    assert_eq!(s.topics, vec!["t0"]);
    assert_eq!(s.user_data, None);
    assert_eq!(s.owned_partitions, tps(&[("t0", &[0, 5])]));
    assert_eq!(s.generation_id, -1);
}

#[test]
fn decodes_librdkafka_v3_subscription() {
    // What librdkafka 2.x writes: v3, empty user data, owned partitions, generation, and a
    // null rack when `client.rack` is unset.
    let bytes = Wire::default()
        .i16(3)
        .i32(2)
        .str("a")
        .str("b")
        .bytes(Some(b""))
        .i32(2)
        .str("a")
        .i32(1)
        .i32(3)
        .str("b")
        .i32(0)
        .i32(12)
        .i16(-1)
        .done();
    let s = decode_subscription(bytes).unwrap();
    assert_eq!(s.topics, vec!["a", "b"]);
    assert_eq!(s.owned_partitions, tps(&[("a", &[3]), ("b", &[])]));
    assert_eq!(s.generation_id, 12);
    assert_eq!(s.rack_id, None);

    let with_rack = Wire::default()
        .i16(3)
        .i32(0)
        .bytes(None)
        .i32(0)
        .i32(-1)
        .str("rack-1")
        .done();
    assert_eq!(
        decode_subscription(with_rack).unwrap().rack_id.as_deref(),
        Some("rack-1")
    );
}

#[test]
fn decodes_librdkafka_assignment() {
    let bytes = Wire::default()
        .i16(0)
        .i32(1)
        .str("t0")
        .i32(3)
        .i32(0)
        .i32(1)
        .i32(2)
        .bytes(None)
        .done();
    let a = decode_assignment(bytes).unwrap();
    assert_eq!(a.partitions, tps(&[("t0", &[0, 1, 2])]));
    assert_eq!(a.user_data, None);
}

#[test]
fn empty_assignment_bytes_are_an_empty_assignment() {
    assert_eq!(
        decode_assignment(Bytes::new()).unwrap(),
        Assignment::default()
    );
}

#[test]
fn malformed_inputs_are_protocol_errors() {
    let bad_subscriptions: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 0],                                             // no topics array
        vec![0xff, 0xff, 0, 0, 0, 0],                           // version -1
        Wire::default().i16(0).i32(1).str("t").done().to_vec(), // no user data
        Wire::default()
            .i16(0)
            .i32(1)
            .i16(-1)
            .bytes(None)
            .done()
            .to_vec(), // null topic
        Wire::default().i16(0).i32(-1).bytes(None).done().to_vec(), // null topics
        Wire::default().i16(0).i32(1).i16(2).done().to_vec(),   // string past the end
        Wire::default()
            .i16(0)
            .i32(1)
            .i16(2)
            .raw(&[0xc3, 0x28]) // invalid UTF-8
            .bytes(None)
            .done()
            .to_vec(),
        Wire::default().i16(1).i32(0).bytes(None).done().to_vec(), // v1 without owned
    ];
    for raw in bad_subscriptions {
        match decode_subscription(Bytes::from(raw.clone())) {
            Err(Error::Protocol(_)) => {}
            other => panic!("{raw:?} gave {other:?}"),
        }
    }
    let bad_assignments: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0, 0],
        vec![0x80, 0, 0, 0, 0, 0],
        Wire::default()
            .i16(0)
            .i32(1)
            .str("t")
            .i32(2)
            .i32(0)
            .done()
            .to_vec(),
    ];
    for raw in bad_assignments {
        match decode_assignment(Bytes::from(raw.clone())) {
            Err(Error::Protocol(_)) => {}
            other => panic!("{raw:?} gave {other:?}"),
        }
    }
}

#[test]
fn huge_claimed_lengths_fail_without_allocating() {
    // 10 bytes: version, then 2^31 - 1 topics, then four bytes. Decoding these naively would
    // reserve room for two billion strings.
    let topics = Wire::default().i16(0).i32(i32::MAX).i32(0).done();
    assert_eq!(topics.len(), 10);
    assert!(decode_subscription(topics).is_err());

    let assigned = Wire::default().i16(0).i32(i32::MAX).i32(0).done();
    assert!(decode_assignment(assigned).is_err());

    // The same claim, nested in a partition list.
    let owned = Wire::default()
        .i16(1)
        .i32(0)
        .bytes(None)
        .i32(1)
        .str("t")
        .i32(i32::MAX)
        .done();
    assert!(decode_subscription(owned).is_err());
    let nested = Wire::default()
        .i16(0)
        .i32(1)
        .str("t")
        .i32(0x4000_0000)
        .done();
    assert!(decode_assignment(nested).is_err());
}

proptest! {
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(raw in vec(any::<u8>(), 0..256)) {
        let _ = decode_subscription(Bytes::from(raw.clone()));
        let _ = decode_assignment(Bytes::from(raw));
    }

    #[test]
    fn decoders_never_panic_on_damaged_encodings(
        version in 0i16..5,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let assignment = Assignment {
            partitions: tps(&[("orders", &[1, 3]), ("x", &[0])]),
            user_data: Some(Bytes::from_static(b"u")),
        };
        for good in [
            encode_subscription(&full_subscription(), version),
            encode_assignment(&assignment, version),
        ] {
            let mut raw = good.to_vec();
            for (at, byte) in &edits {
                let i = at.index(raw.len());
                raw[i] = *byte;
            }
            raw.truncate(cut.index(raw.len() + 1));
            let _ = decode_subscription(Bytes::from(raw.clone()));
            let _ = decode_assignment(Bytes::from(raw));
        }
    }

    #[test]
    fn subscriptions_round_trip(
        topics in vec("[a-z0-9._-]{0,12}", 0..5),
        user_data in proptest::option::of(vec(any::<u8>(), 0..16)),
        owned in vec(("[a-z]{1,6}", vec(any::<i32>(), 0..4)), 0..4),
        generation_id in any::<i32>(),
        rack_id in proptest::option::of("[a-z0-9-]{0,8}"),
        version in 0i16..=3,
    ) {
        let s = Subscription {
            topics,
            user_data: user_data.map(Bytes::from),
            owned_partitions: owned,
            generation_id,
            rack_id,
        };
        let decoded = decode_subscription(encode_subscription(&s, version)).unwrap();
        prop_assert_eq!(decoded, at_version(s, version));
    }
}
