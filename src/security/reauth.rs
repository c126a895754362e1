//! Re-authentication (KIP-368): keeping a SASL connection's session alive.
//!
//! When SaslAuthenticate (v1+) reports a session lifetime — the listener's
//! `connections.max.reauth.ms`, or less when an OAUTHBEARER token expires sooner — the broker
//! closes the connection at the first request it reads after that time. So the pool gives each
//! such connection a timer task that re-authenticates in-band at 85–95 % of the lifetime
//! (Java's window: 85 % leaves room for latency and clock drift, the random 10 % spreads the
//! re-authentications of many connections opened together), and again after each success with
//! the new lifetime.
//!
//! Requests are not failed by it: the connection is *held* ([`Connection::hold`]) for the
//! exchange — requests already written are answered first (Kafka reads the handshake only
//! after answering them), requests queued meanwhile wait in the writer task and go out in
//! their order once the last SaslAuthenticate is answered. A refusal closes the connection
//! with the typed [`Error::SaslAuthenticationFailed`]: every request in flight or held fails
//! with it (as `Error::Disconnected` carrying it), and the pool's next connection
//! authenticates from scratch.
//!
//! The task holds only a `Weak` reference between runs and is aborted when the connection is
//! dropped, so it never keeps a socket open.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::{debug, warn};

use super::oauth::unit_random;
use super::sasl;
use crate::client::connection::Connection;
use crate::config::ClientConfig;
use crate::error::Error;

/// The earliest point of the re-authentication window, as a fraction of the lifetime.
const WINDOW_START: f64 = 0.85;
/// The window's width: the point is chosen uniformly in `[0.85, 0.95)` of the lifetime.
const WINDOW_JITTER: f64 = 0.10;

/// When to re-authenticate a session of `lifetime`, `jitter` in `[0, 1)`.
pub(crate) fn reauth_after(lifetime: Duration, jitter: f64) -> Duration {
    lifetime.mul_f64(WINDOW_START + WINDOW_JITTER * jitter.clamp(0.0, 1.0))
}

/// Starts `conn`'s re-authentication timer for a session of `lifetime`.
pub(crate) fn schedule(conn: &Arc<Connection>, cfg: Arc<ClientConfig>, lifetime: Duration) {
    let weak = Arc::downgrade(conn);
    let task = tokio::spawn(run(weak, cfg, lifetime, unit_random));
    conn.set_reauth_task(task);
}

async fn run(
    conn: Weak<Connection>,
    cfg: Arc<ClientConfig>,
    mut lifetime: Duration,
    jitter: fn() -> f64,
) {
    loop {
        let delay = reauth_after(lifetime, jitter());
        tokio::time::sleep(delay).await;
        let Some(conn) = conn.upgrade() else { return };
        if !conn.is_usable() {
            return;
        }
        match reauthenticate(&conn, &cfg).await {
            Ok(Some(next)) => {
                debug!(broker = %conn.label(), session_lifetime_ms = next.as_millis() as u64, "re-authenticated");
                lifetime = next;
            }
            // The broker no longer sets a lifetime: nothing more to do.
            Ok(None) => return,
            Err(e) => {
                warn!(broker = %conn.label(), error = %e, "re-authentication failed; closing the connection");
                conn.close_with(e);
                return;
            }
        }
    }
}

/// One in-band re-authentication of `conn`, with other requests held meanwhile.
pub(crate) async fn reauthenticate(
    conn: &Connection,
    cfg: &ClientConfig,
) -> crate::error::Result<Option<Duration>> {
    let timeout = cfg.connect_timeout;
    debug!(broker = %conn.label(), "re-authenticating");
    conn.hold();
    let result =
        match tokio::time::timeout(timeout, sasl::authenticate(conn, &cfg.security, timeout)).await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                operation: format!("SASL re-authentication with {}", conn.label()).into(),
                after: timeout,
                last: None,
            }),
        };
    // On failure the caller closes the connection first, so held requests fail with the
    // cause; releasing here would write them to a broker that is about to hang up.
    if result.is_ok() {
        conn.release();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::connection::ConnectionConfig;
    use crate::codes::KafkaCode;
    use crate::testing::{FakePeer, DEFAULT_RANGES};
    use kafka_protocol::messages::{
        ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    use tokio::time::Instant;

    /// Answers the SaslHandshake and one PLAIN SaslAuthenticate, setting `lifetime_ms`
    /// (or refusing when it is negative). Returns when the handshake was read.
    async fn answer_auth(peer: &mut FakePeer, lifetime_ms: i64) -> Instant {
        let req = peer.read_request().await;
        assert_eq!(req.api(), (ApiKey::SaslHandshake, 1));
        let seen = Instant::now();
        let resp = SaslHandshakeResponse::default()
            .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
        peer.respond(&req.header, &resp).await;
        let req = peer.read_request().await;
        assert_eq!(req.api().0, ApiKey::SaslAuthenticate);
        let resp = if lifetime_ms < 0 {
            SaslAuthenticateResponse::default()
                .with_error_code(KafkaCode::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_static_str("credentials revoked")))
        } else {
            SaslAuthenticateResponse::default().with_session_lifetime_ms(lifetime_ms)
        };
        peer.respond(&req.header, &resp).await;
        seen
    }

    /// A connection with a 10 s session: the broker sees the re-authentication at 8.5 s
    /// (85 %, no jitter), a request sent meanwhile is held behind it and then answered, the
    /// new 20 s lifetime schedules the next one at 17 s, and a refusal there closes the
    /// connection with the typed error.
    #[tokio::test(start_paused = true)]
    async fn reauthentication_runs_in_its_window_and_holds_requests() {
        let mut cfg = ClientConfig::default();
        for (k, v) in [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ] {
            cfg.security.apply(k, v).unwrap();
        }
        let cfg = Arc::new(cfg);
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (handshake_seen, handshake_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_on, go_on_rx) = tokio::sync::oneshot::channel::<()>();
        let peer = tokio::spawn(async move {
            let mut peer = FakePeer::new(server_io);
            let req = peer.read_request().await;
            let mut ranges = DEFAULT_RANGES.to_vec();
            ranges.push((17, 0, 1));
            ranges.push((36, 0, 2));
            peer.respond_api_versions(&req.header, &ranges).await;
            let authenticated = answer_auth(&mut peer, 10_000).await;

            // Re-authentication: the handshake comes at 85 % of the lifetime. Before
            // answering it, let the test queue a Metadata request.
            let req = peer.read_request().await;
            assert_eq!(req.api(), (ApiKey::SaslHandshake, 1));
            assert_eq!(authenticated.elapsed(), Duration::from_millis(8_500));
            handshake_seen.send(()).unwrap();
            go_on_rx.await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let resp = SaslHandshakeResponse::default()
                .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
            peer.respond(&req.header, &resp).await;
            // Held: the next frame is the SaslAuthenticate, not the Metadata request.
            let req = peer.read_request().await;
            assert_eq!(req.api().0, ApiKey::SaslAuthenticate);
            let reauthenticated = Instant::now();
            let resp = SaslAuthenticateResponse::default().with_session_lifetime_ms(20_000);
            peer.respond(&req.header, &resp).await;
            let req = peer.read_request().await;
            assert_eq!(req.api().0, ApiKey::Metadata);
            peer.respond(&req.header, &MetadataResponse::default())
                .await;

            // The next window: 17 s after the second authentication; refuse it.
            let seen = answer_auth(&mut peer, -1).await;
            assert_eq!(seen - reauthenticated, Duration::from_millis(17_000));
            peer
        });
        let ccfg = ConnectionConfig {
            label: "broker 1 (fake:9092)".into(),
            client_id: StrBytes::from_static_str("test"),
            request_timeout: Duration::from_secs(30),
            max_response_size: 1 << 20,
            stats: crate::metrics::client::BrokerStats::detached(),
        };
        let conn = Connection::connect(client_io, ccfg, Duration::from_secs(5))
            .await
            .unwrap();
        let lifetime = sasl::authenticate(&conn, &cfg.security, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(lifetime, Some(Duration::from_secs(10)));
        let conn = Arc::new(conn);
        conn.set_reauth_task(tokio::spawn(run(
            Arc::downgrade(&conn),
            cfg.clone(),
            lifetime.unwrap(),
            || 0.0,
        )));

        handshake_rx.await.unwrap();
        let sender = conn.clone();
        let held = tokio::spawn(async move { sender.send(&MetadataRequest::default()).await });
        tokio::task::yield_now().await;
        go_on.send(()).unwrap();
        held.await
            .unwrap()
            .expect("the held request is answered after re-authentication");

        let _peer = peer.await.unwrap();
        // The refusal closed the connection with the typed error.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!conn.is_usable());
        let e = conn.send(&MetadataRequest::default()).await.unwrap_err();
        let Error::Disconnected { cause, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(
            matches!(cause.as_ref(), Error::SaslAuthenticationFailed { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("credentials revoked"), "{e}");
    }

    #[test]
    fn the_window_is_85_to_95_percent() {
        let l = Duration::from_secs(100);
        assert_eq!(reauth_after(l, 0.0), Duration::from_secs(85));
        assert_eq!(reauth_after(l, 1.0), Duration::from_secs(95));
        for _ in 0..200 {
            let d = reauth_after(l, unit_random());
            assert!(
                d >= Duration::from_secs(85) && d < Duration::from_secs(95),
                "{d:?}"
            );
        }
    }
}
