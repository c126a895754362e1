//! Connection tests against a scripted peer over `tokio::io::duplex`.

use super::*;
use crate::testing::FakePeer;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ProduceRequest};

fn cfg(timeout_ms: u64) -> ConnectionConfig {
    ConnectionConfig {
        label: "broker 1 (fake)".into(),
        client_id: StrBytes::from_static_str("test"),
        request_timeout: Duration::from_millis(timeout_ms),
        max_response_size: 1 << 20,
        stats: crate::metrics::client::BrokerStats::detached(),
    }
}

/// A connection whose handshake has been answered with the fake peer's default table.
async fn ready(timeout_ms: u64) -> (Arc<Connection>, FakePeer) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let conn = Arc::new(Connection::start(client, cfg(timeout_ms)));
    let mut peer = FakePeer::new(server);
    let c = conn.clone();
    let hs = tokio::spawn(async move { c.negotiate().await });
    peer.answer_api_versions().await;
    hs.await.unwrap().unwrap();
    (conn, peer)
}

fn metadata_with_cluster(id: &str) -> MetadataResponse {
    MetadataResponse::default().with_cluster_id(Some(StrBytes::from_string(id.to_owned())))
}

#[tokio::test]
async fn negotiates_highest_common_versions() {
    let (conn, _peer) = ready(1000).await;
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 12);
    assert_eq!(conn.version(ApiKey::ApiVersions).unwrap(), 4);
    // The fake peer does not list DescribeCluster.
    let e = conn.version(ApiKey::DescribeCluster).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedApi {
                api: "DescribeCluster",
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (conn, mut peer) = ready(5000).await;
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let c = conn.clone();
            tokio::spawn(async move { c.send(&MetadataRequest::default()).await })
        })
        .collect();
    // All three are on the wire before any answer: that is pipelining.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(peer.read_request().await);
    }
    for (i, req) in seen.iter().enumerate() {
        assert_eq!(req.header.request_api_key, ApiKey::Metadata as i16);
        peer.respond(
            &req.header,
            &metadata_with_cluster(&format!("c{}", req.header.correlation_id)),
        )
        .await;
        let _ = i;
    }
    let mut got = Vec::new();
    for c in calls {
        got.push(c.await.unwrap().unwrap().cluster_id.unwrap().to_string());
    }
    got.sort();
    let mut want: Vec<String> = seen
        .iter()
        .map(|r| format!("c{}", r.header.correlation_id))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(conn.is_usable());
}

#[tokio::test]
async fn mismatched_correlation_id_poisons_every_waiter() {
    let (conn, mut peer) = ready(5000).await;
    let a = {
        let c = conn.clone();
        tokio::spawn(async move { c.send(&MetadataRequest::default()).await })
    };
    let b = {
        let c = conn.clone();
        tokio::spawn(async move { c.send(&MetadataRequest::default()).await })
    };
    let first = peer.read_request().await;
    let _second = peer.read_request().await;
    let mut wrong = first.header.clone();
    wrong.correlation_id += 1000;
    peer.respond(&wrong, &metadata_with_cluster("x")).await;
    for r in [a.await.unwrap(), b.await.unwrap()] {
        match r.unwrap_err() {
            Error::Disconnected { cause, .. } => {
                assert!(cause.to_string().contains("correlation id"), "{cause}")
            }
            other => panic!("expected Disconnected, got {other}"),
        }
    }
    assert!(!conn.is_usable());
    // Later requests fail at once with the same shared cause, without touching the wire.
    let e = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(e.to_string().contains("correlation id"), "{e}");
    assert!(e.is_retriable());
}

#[tokio::test]
async fn peer_hanging_up_mid_frame_fails_the_request() {
    let (conn, mut peer) = ready(5000).await;
    let c = conn.clone();
    let call = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    let req = peer.read_request().await;
    let mut partial = Vec::new();
    partial.extend_from_slice(&100u32.to_be_bytes());
    partial.extend_from_slice(&req.header.correlation_id.to_be_bytes());
    partial.extend_from_slice(&[0u8; 6]);
    peer.write_raw(&partial).await;
    drop(peer);
    let e = call.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    assert!(e.to_string().contains("mid-frame"), "{e}");
    assert!(!conn.is_usable());
}

#[tokio::test]
async fn garbage_body_poisons_the_connection() {
    let (conn, mut peer) = ready(5000).await;
    let c = conn.clone();
    let call = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    let req = peer.read_request().await;
    // Right correlation id, then bytes that are not a Metadata v12 body (tagged-field header,
    // then an array length far past the end).
    let mut frame = Vec::new();
    frame.extend_from_slice(&req.header.correlation_id.to_be_bytes());
    frame.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0x7f, 1, 2]);
    let mut raw = (frame.len() as u32).to_be_bytes().to_vec();
    raw.extend_from_slice(&frame);
    peer.write_raw(&raw).await;
    let e = call.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("Metadata v12 response"), "{e}");
    assert!(!conn.is_usable());
}

#[tokio::test]
async fn short_frame_is_a_protocol_error() {
    let (conn, mut peer) = ready(5000).await;
    let c = conn.clone();
    let call = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    peer.read_request().await;
    peer.write_raw(&[0, 0, 0, 2, 0, 1]).await;
    let e = call.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("too short"), "{e}");
}

#[tokio::test]
async fn oversized_frame_is_rejected_before_allocation() {
    let (conn, mut peer) = ready(5000).await;
    let c = conn.clone();
    let call = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    peer.read_request().await;
    // Claims 2 GiB; only the 4-byte length is ever sent.
    peer.write_raw(&0x8000_0000u32.to_be_bytes()).await;
    let e = call.await.unwrap().unwrap_err();
    match &e {
        Error::Disconnected { cause, .. } => match cause.as_ref() {
            Error::FrameTooLarge { size, limit } => {
                assert_eq!(*size, 0x8000_0000);
                assert_eq!(*limit, 1 << 20);
            }
            other => panic!("expected FrameTooLarge, got {other}"),
        },
        other => panic!("expected Disconnected, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn one_request_times_out_while_others_complete() {
    let (conn, mut peer) = ready(30_000).await;
    let spawn_call = |timeout_ms: u64| {
        let c = conn.clone();
        tokio::spawn(async move {
            c.call(
                &MetadataRequest::default(),
                12,
                Duration::from_millis(timeout_ms),
            )
            .await
        })
    };
    let first = spawn_call(30_000);
    let r1 = peer.read_request().await;
    let short = spawn_call(100);
    let r2 = peer.read_request().await;
    let last = spawn_call(30_000);
    let r3 = peer.read_request().await;
    // The broker is slow with the first answer; the short request expires meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in [&r1, &r2, &r3] {
        peer.respond(&r.header, &metadata_with_cluster("ok")).await;
    }
    assert!(short.await.unwrap().unwrap_err().is_timeout());
    assert!(first.await.unwrap().is_ok());
    assert!(last.await.unwrap().is_ok());
    assert!(
        conn.is_usable(),
        "a timeout behind a live request must not kill the connection"
    );
}

#[tokio::test(start_paused = true)]
async fn oldest_request_timing_out_poisons_a_stuck_connection() {
    let (conn, mut peer) = ready(200).await;
    let c = conn.clone();
    let call = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    peer.read_request().await; // never answered
    let e = call.await.unwrap().unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(!conn.is_usable());
    let e = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
}

#[tokio::test]
async fn cancelled_request_leaves_whole_frames_and_later_requests_work() {
    let (conn, mut peer) = ready(5000).await;
    let c = conn.clone();
    let cancelled = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    let r1 = peer.read_request().await; // a complete frame reached the peer
    cancelled.abort();
    let _ = cancelled.await;
    let c = conn.clone();
    let next = tokio::spawn(async move { c.send(&MetadataRequest::default()).await });
    let r2 = peer.read_request().await; // and the next frame parses: nothing half-written
    peer.respond(&r1.header, &metadata_with_cluster("late"))
        .await;
    peer.respond(&r2.header, &metadata_with_cluster("mine"))
        .await;
    let got = next.await.unwrap().unwrap();
    assert_eq!(got.cluster_id.unwrap().as_str(), "mine");
    assert!(conn.is_usable());
}

#[tokio::test]
async fn dropped_future_before_write_is_still_written_whole() {
    let (conn, mut peer) = ready(5000).await;
    // Poll once (queues the frame) and drop immediately.
    let req = MetadataRequest::default();
    {
        let fut = conn.send(&req);
        futures::pin_mut!(fut);
        assert!(futures::FutureExt::now_or_never(fut.as_mut()).is_none());
    }
    let r = peer.read_request().await;
    assert_eq!(r.header.request_api_key, ApiKey::Metadata as i16);
}

#[tokio::test]
async fn unsupported_api_is_a_typed_error_naming_it() {
    let (conn, _peer) = ready(5000).await;
    let e = conn
        .send(&kafka_protocol::messages::DescribeClusterRequest::default())
        .await;
    let e = e.unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedApi {
                api: "DescribeCluster",
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_retriable());
    // Produce is listed by the fake peer, so it negotiates.
    assert!(conn.version(ApiKey::Produce).is_ok());
    let _ = ProduceRequest::default();
}

#[tokio::test]
async fn api_versions_steps_down_when_the_error_body_does_not_decode() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let conn = Arc::new(Connection::start(client, cfg(5000)));
    let mut peer = FakePeer::new(server);
    let c = conn.clone();
    let hs = tokio::spawn(async move { c.negotiate().await });
    // Like librdkafka's mock cluster: UNSUPPORTED_VERSION with a body that fits no layout.
    for expected in [4, 3] {
        let req = peer.read_request().await;
        assert_eq!(req.header.request_api_version, expected);
        let mut body = req.header.correlation_id.to_be_bytes().to_vec();
        body.extend_from_slice(&35i16.to_be_bytes());
        body.extend_from_slice(&[
            0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
            0x0b,
        ]);
        let mut raw = (body.len() as u32).to_be_bytes().to_vec();
        raw.extend_from_slice(&body);
        peer.write_raw(&raw).await;
    }
    let req = peer.read_request().await;
    assert_eq!(req.header.request_api_version, 2);
    peer.respond_api_versions(&req.header, &[(3, 0, 13), (18, 0, 2)])
        .await;
    hs.await.unwrap().unwrap();
    assert_eq!(conn.version(ApiKey::ApiVersions).unwrap(), 2);
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 13);
}

#[tokio::test]
async fn api_versions_jumps_to_the_brokers_maximum_when_the_error_body_decodes() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let conn = Arc::new(Connection::start(client, cfg(5000)));
    let mut peer = FakePeer::new(server);
    let c = conn.clone();
    let hs = tokio::spawn(async move { c.negotiate().await });
    let req = peer.read_request().await;
    assert_eq!(req.header.request_api_version, 4);
    // Apache Kafka's answer: a v0 body with the error and its ApiVersions range.
    let resp = ApiVersionsResponse::default()
        .with_error_code(35)
        .with_api_keys(vec![
            kafka_protocol::messages::api_versions_response::ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(1),
        ]);
    peer.respond_at(&req.header, &resp, 0).await;
    let req = peer.read_request().await;
    assert_eq!(
        req.header.request_api_version, 1,
        "should jump straight to the broker's max"
    );
    peer.respond_api_versions(&req.header, &[(3, 0, 9), (18, 0, 1)])
        .await;
    hs.await.unwrap().unwrap();
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 9);
}

#[tokio::test]
async fn api_versions_gives_up_below_zero() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let conn = Arc::new(Connection::start(client, cfg(5000)));
    let mut peer = FakePeer::new(server);
    let c = conn.clone();
    let hs = tokio::spawn(async move { c.negotiate().await });
    for _ in 0..=4 {
        let req = peer.read_request().await;
        let mut body = req.header.correlation_id.to_be_bytes().to_vec();
        body.extend_from_slice(&35i16.to_be_bytes());
        let mut raw = (body.len() as u32).to_be_bytes().to_vec();
        raw.extend_from_slice(&body);
        peer.write_raw(&raw).await;
    }
    let e = hs.await.unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedApi {
                api: "ApiVersions",
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn writes_after_peer_closed_fail_with_a_retriable_error() {
    let (conn, peer) = ready(5000).await;
    drop(peer);
    let e = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    assert!(e.is_retriable());
}

/// A socket stand-in that accepts at most `max` bytes per write call, with or without
/// vectored writes, and records what arrived and how.
struct Trickle {
    out: Vec<u8>,
    max: usize,
    vectored: bool,
    /// Write calls that received more than one non-empty slice.
    gathered_calls: usize,
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let n = buf.len().min(me.max);
        me.out.extend_from_slice(&buf[..n]);
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if !self.vectored {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return self.poll_write(cx, first);
        }
        let me = self.get_mut();
        if bufs.iter().filter(|b| !b.is_empty()).count() > 1 {
            me.gathered_calls += 1;
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(me.max - n);
            me.out.extend_from_slice(&b[..take]);
            n += take;
            if n == me.max {
                break;
            }
        }
        std::task::Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn frames_are_written_whole_and_in_order_through_partial_writes() {
    let pattern = |n: usize, seed: u8| -> Bytes {
        Bytes::from(
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect::<Vec<u8>>(),
        )
    };
    // A spliced Produce-like frame (small parts around batches, one of them empty, one larger
    // than the gather limit) followed by an ordinary one.
    let frames = vec![
        Outgoing {
            frame: Frame::Chunks(vec![
                pattern(17, 1),
                pattern(GATHER_LIMIT + 333, 2),
                pattern(9, 3),
                Bytes::new(),
                pattern(1000, 4),
                pattern(3, 5),
            ]),
            pending: None,
        },
        Outgoing {
            frame: Frame::Whole(pattern(250, 6)),
            pending: None,
        },
    ];
    let want: Vec<u8> = frames
        .iter()
        .flat_map(|o| o.frame.chunks().iter().flat_map(|c| c.iter().copied()))
        .collect();
    for (vectored, max) in [(true, 7), (true, 1 << 20), (false, 7), (false, 1 << 20)] {
        let mut w = Trickle {
            out: Vec::new(),
            max,
            vectored,
            gathered_calls: 0,
        };
        let mut gather = Vec::new();
        write_frames(&mut w, &frames, &mut gather).await.unwrap();
        assert!(w.out == want, "vectored={vectored} max={max}");
        assert!(gather.is_empty());
        // With room for everything, one vectored call carries all the chunks.
        if vectored && max == 1 << 20 {
            assert_eq!(w.gathered_calls, 1);
        }
    }
}
