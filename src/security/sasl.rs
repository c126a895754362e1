//! SASL authentication of a connection: SaslHandshake (v1) then SaslAuthenticate rounds.
//!
//! Runs right after the ApiVersions negotiation (KIP-35 order: ApiVersions, SaslHandshake,
//! SaslAuthenticate), before the pool hands the connection to anyone, so no other request can
//! reach an unauthenticated socket; and again in-band when the broker's session lifetime runs
//! out (re-authentication, KIP-368, `reauth.rs`), with the connection held so nothing else
//! is written between the handshake and the last SaslAuthenticate. Every message goes through
//! kafka-protocol's types; v1 of SaslHandshake is required because v0 would carry the
//! mechanism's tokens unframed.
//!
//! A refusal is [`Error::SaslAuthenticationFailed`] with the broker's own message (Kafka
//! closes the connection after it). It is not retriable (`classify.rs`): the same credentials
//! will be refused again, so `build()` and the first request fail with it at once instead of
//! looping, and the pool's reconnect backoff spaces out any later attempt.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::config::{SaslMechanism, SecurityConfig};
use super::oauth::client_first_message;
use super::scram::{ScramClient, ScramHash};
use crate::client::connection::Connection;
use crate::codes::KafkaCode;
use crate::error::{Error, Result};

/// Authenticates `conn` with the configured mechanism. `timeout` bounds each round trip.
/// Returns the session lifetime the broker set (SaslAuthenticate v1+ `session_lifetime_ms`,
/// from `connections.max.reauth.ms` or the token's expiry), if any: the connection must
/// re-authenticate before it runs out.
pub(crate) async fn authenticate(
    conn: &Connection,
    sec: &SecurityConfig,
    timeout: Duration,
) -> Result<Option<Duration>> {
    let mechanism = sec
        .effective_mechanism()
        .ok_or_else(|| Error::config("sasl.mechanism is not set"))?;
    let broker = conn.label().clone();
    let failed = |message: String| Error::SaslAuthenticationFailed {
        broker: broker.clone(),
        mechanism,
        message: message.into(),
    };
    let username = sec.username.as_deref().unwrap_or_default();
    let password = sec.password.clone().unwrap_or_default();

    let version = conn.version(ApiKey::SaslHandshake)?;
    if version < 1 {
        return Err(Error::UnsupportedApi {
            api: "SaslHandshake v1",
            broker,
        });
    }
    let req =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism.name()));
    let resp = conn.call_auth(&req, 1, timeout).await?;
    if resp.error_code == KafkaCode::UnsupportedSaslMechanism.code() {
        let enabled: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(failed(format!(
            "the broker does not enable {mechanism} on this listener (it enables: {})",
            enabled.join(", ")
        )));
    }
    Error::check_code(resp.error_code, None, || {
        format!("SaslHandshake {mechanism} with {broker}")
    })?;

    let lifetime_ms;
    let mut principal = username.to_owned();
    match mechanism {
        SaslMechanism::Plain => {
            // RFC 4616: authzid NUL authcid NUL password, with an empty authzid.
            let mut msg = Vec::with_capacity(username.len() + password.expose().len() + 2);
            msg.push(0);
            msg.extend_from_slice(username.as_bytes());
            msg.push(0);
            msg.extend_from_slice(password.expose().as_bytes());
            (_, lifetime_ms) = round(conn, msg, timeout, &failed).await?;
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let hash = if mechanism == SaslMechanism::ScramSha256 {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let mut scram = ScramClient::new(hash, username, password).map_err(&failed)?;
            let (server_first, _) = round(conn, scram.client_first(), timeout, &failed).await?;
            let client_final = scram.client_final(&server_first).map_err(&failed)?;
            let server_final;
            (server_final, lifetime_ms) = round(conn, client_final, timeout, &failed).await?;
            scram.verify_server_final(&server_final).map_err(&failed)?;
        }
        SaslMechanism::OAuthBearer => {
            let cache = sec
                .oauth
                .cache
                .as_ref()
                .ok_or_else(|| Error::config("OAUTHBEARER has no token source"))?;
            let token = cache.token().await?;
            principal = token.principal().unwrap_or("?").to_owned();
            let msg = client_first_message(token.value(), &sec.oauth.extensions);
            let challenge;
            (challenge, lifetime_ms) = round(conn, msg, timeout, &failed).await?;
            if !challenge.is_empty() {
                // RFC 7628 §3.2.2: a refusal comes as a JSON error challenge (`{"status":
                // "invalid_token"}`); the client answers with a lone 0x01 and the server then
                // fails the exchange with its message.
                let server_error = String::from_utf8_lossy(&challenge).into_owned();
                let with_json =
                    |message: String| format!("{message}; the broker said {server_error}");
                return Err(
                    match round(conn, vec![1], timeout, &|m| failed(with_json(m))).await {
                        Err(e) => e,
                        Ok(_) => failed(with_json("the token was refused".into())),
                    },
                );
            }
        }
    }
    debug!(broker = %conn.label(), %mechanism, principal, session_lifetime_ms = lifetime_ms, "SASL authenticated");
    Ok((lifetime_ms > 0).then(|| Duration::from_millis(lifetime_ms as u64)))
}

/// One SaslAuthenticate round trip: sends `auth_bytes`, returns the broker's and the session
/// lifetime it set (0 for none, or before v1).
async fn round(
    conn: &Connection,
    auth_bytes: Vec<u8>,
    timeout: Duration,
    failed: &impl Fn(String) -> Error,
) -> Result<(Bytes, i64)> {
    let version = conn.version(ApiKey::SaslAuthenticate)?;
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(auth_bytes));
    let resp: SaslAuthenticateResponse = conn.call_auth(&req, version, timeout).await?;
    if resp.error_code != 0 {
        let code = KafkaCode::from_code(resp.error_code)
            .map(|c| c.to_string())
            .unwrap_or_else(|| format!("error code {}", resp.error_code));
        let message = match resp.error_message.as_ref().filter(|m| !m.is_empty()) {
            Some(m) => format!("{m} ({code})"),
            None => code,
        };
        return Err(failed(message));
    }
    Ok((resp.auth_bytes, resp.session_lifetime_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::connection::ConnectionConfig;
    use crate::testing::{FakePeer, DEFAULT_RANGES};
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};

    fn ranges() -> Vec<(i16, i16, i16)> {
        let mut r = DEFAULT_RANGES.to_vec();
        r.push((17, 0, 1)); // SaslHandshake
        r.push((36, 0, 2)); // SaslAuthenticate
        r
    }

    fn sec(mechanism: &str, password: &str) -> SecurityConfig {
        let mut s = SecurityConfig::default();
        s.apply("security.protocol", "SASL_PLAINTEXT").unwrap();
        s.apply("sasl.mechanism", mechanism).unwrap();
        s.apply("sasl.username", "alice").unwrap();
        s.apply("sasl.password", password).unwrap();
        s.validate().unwrap();
        s
    }

    /// Connects a client to a scripted peer that answers ApiVersions (with the SASL APIs) and
    /// the handshake, then runs `script` for the SaslAuthenticate rounds.
    async fn run<F, Fut>(sec: SecurityConfig, script: F) -> Result<()>
    where
        F: FnOnce(FakePeer) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let expected = sec.effective_mechanism().unwrap().name();
        let peer = tokio::spawn(async move {
            let mut peer = FakePeer::new(server_io);
            let req = peer.read_request().await;
            peer.respond_api_versions(&req.header, &ranges()).await;
            let req = peer.read_request().await;
            assert_eq!(req.api(), (ApiKey::SaslHandshake, 1));
            let hs: SaslHandshakeRequest = req.decode();
            assert_eq!(hs.mechanism.as_str(), expected);
            let resp = SaslHandshakeResponse::default()
                .with_mechanisms(vec![StrBytes::from_static_str(expected)]);
            peer.respond(&req.header, &resp).await;
            script(peer).await;
        });
        let cfg = ConnectionConfig {
            label: "broker 1 (fake:9092)".into(),
            client_id: StrBytes::from_static_str("test"),
            request_timeout: Duration::from_secs(5),
            max_response_size: 1 << 20,
            stats: crate::metrics::client::BrokerStats::detached(),
        };
        let conn = Connection::connect(client_io, cfg, Duration::from_secs(5)).await?;
        let result = authenticate(&conn, &sec, Duration::from_secs(5)).await;
        peer.await.unwrap();
        result.map(|_| ())
    }

    async fn answer(peer: &mut FakePeer, bytes: Vec<u8>) -> Vec<u8> {
        let req = peer.read_request().await;
        assert_eq!(req.api().0, ApiKey::SaslAuthenticate);
        let got: SaslAuthenticateRequest = req.decode();
        let resp = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes));
        peer.respond(&req.header, &resp).await;
        got.auth_bytes.to_vec()
    }

    #[tokio::test]
    async fn plain_sends_the_rfc4616_message() {
        run(sec("PLAIN", "alice-secret"), |mut peer| async move {
            let got = answer(&mut peer, Vec::new()).await;
            assert_eq!(got, b"\0alice\0alice-secret");
        })
        .await
        .unwrap();
    }

    /// A scripted SCRAM server that knows the salt and nonce but answers the final message
    /// with `signature` instead of the one the real password gives.
    async fn scram_with_server_signature(signature: Option<Vec<u8>>) -> Result<()> {
        run(sec("SCRAM-SHA-256", "pencil"), move |mut peer| async move {
            let first = peer.read_request().await;
            let got: SaslAuthenticateRequest = first.decode();
            let text = String::from_utf8(got.auth_bytes.to_vec()).unwrap();
            let nonce = text.rsplit_once("r=").unwrap().1.to_owned();
            let server_first = format!("r={nonce}srv,s={},i=4096", B64.encode(b"salt-of-the-test"));
            let resp = SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(server_first.clone().into_bytes()));
            peer.respond(&first.header, &resp).await;
            let sig = match signature {
                Some(s) => s,
                None => {
                    // The right signature, computed the way a real server would.
                    use hmac::{Hmac, Mac};
                    use sha2::Sha256;
                    let mut salted = [0u8; 32];
                    pbkdf2::pbkdf2_hmac::<Sha256>(
                        b"pencil",
                        b"salt-of-the-test",
                        4096,
                        &mut salted,
                    );
                    let mut m = Hmac::<Sha256>::new_from_slice(&salted).unwrap();
                    m.update(b"Server Key");
                    let server_key = m.finalize().into_bytes();
                    let bare = text.strip_prefix("n,,").unwrap();
                    let auth = format!("{bare},{server_first},c=biws,r={nonce}srv");
                    let mut m = Hmac::<Sha256>::new_from_slice(&server_key).unwrap();
                    m.update(auth.as_bytes());
                    m.finalize().into_bytes().to_vec()
                }
            };
            answer(&mut peer, format!("v={}", B64.encode(sig)).into_bytes()).await;
        })
        .await
    }

    /// Everything `tracing` writes while the test runs, at every level.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn scram_accepts_a_server_that_proves_the_password_and_logs_no_secret() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        // The test runtime is single-threaded: every task of the exchange logs through this.
        // With a single subscriber registered, tracing-core caches whether an event is wanted
        // from whichever thread reaches it first: another test's thread (no subscriber) would
        // switch it off here too. A second, idle dispatcher makes it ask per thread.
        let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let _guard = tracing::subscriber::set_default(subscriber);
        scram_with_server_signature(None).await.unwrap();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("SASL authenticated"), "{text}");
        assert!(!text.contains("pencil"), "the password was logged: {text}");
    }

    #[tokio::test]
    async fn scram_rejects_a_server_with_a_wrong_signature() {
        let e = scram_with_server_signature(Some(vec![7u8; 32]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::SaslAuthenticationFailed {
                    mechanism: SaslMechanism::ScramSha256,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("signature is wrong"), "{e}");
        assert!(!e.is_retriable());
    }

    #[tokio::test]
    async fn a_refusal_carries_the_broker_message_and_no_password() {
        let e = run(sec("PLAIN", "wrong-very-secret"), |mut peer| async move {
            let req = peer.read_request().await;
            let resp = SaslAuthenticateResponse::default()
                .with_error_code(KafkaCode::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Authentication failed: Invalid username or password",
                )));
            peer.respond(&req.header, &resp).await;
        })
        .await
        .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            text.contains(
                "SASL PLAIN authentication with broker 1 (fake:9092) failed: \
                           Authentication failed: Invalid username or password"
            ),
            "{text}"
        );
        assert!(!text.contains("wrong-very-secret"), "{text}");
        assert!(!e.is_retriable());
    }

    /// Hands out one fixed token.
    struct Fixed;

    #[async_trait::async_trait]
    impl crate::security::OAuthBearerTokenProvider for Fixed {
        async fn token(
            &self,
        ) -> std::result::Result<crate::OAuthBearerToken, crate::TokenProviderError> {
            Ok(crate::OAuthBearerToken::new(
                "header.payload.sig",
                Duration::from_secs(60),
            ))
        }
    }

    fn oauth_sec() -> SecurityConfig {
        let mut s = SecurityConfig::default();
        s.apply("security.protocol", "SASL_PLAINTEXT").unwrap();
        s.apply("sasl.oauthbearer.extensions", "logicalCluster=lkc-1")
            .unwrap();
        s.mechanism = Some(SaslMechanism::OAuthBearer);
        s.oauth.provider = Some(crate::security::ProviderHandle(std::sync::Arc::new(Fixed)));
        s.validate().unwrap();
        s.prepare(Duration::from_secs(5)).unwrap();
        s
    }

    #[tokio::test]
    async fn oauthbearer_sends_the_token_and_extensions() {
        run(oauth_sec(), |mut peer| async move {
            let got = answer(&mut peer, Vec::new()).await;
            assert_eq!(
                got,
                b"n,,\x01auth=Bearer header.payload.sig\x01logicalCluster=lkc-1\x01\x01"
            );
        })
        .await
        .unwrap();
    }

    /// RFC 7628 §3.2.2: the broker's refusal is an error challenge, the client answers 0x01,
    /// and the final failure carries the broker's message and its JSON, never the token.
    #[tokio::test]
    async fn oauthbearer_refusal_answers_the_error_challenge() {
        let e = run(oauth_sec(), |mut peer| async move {
            answer(&mut peer, br#"{"status":"invalid_token"}"#.to_vec()).await;
            let req = peer.read_request().await;
            let got: SaslAuthenticateRequest = req.decode();
            assert_eq!(got.auth_bytes.as_ref(), b"\x01");
            let resp = SaslAuthenticateResponse::default()
                .with_error_code(KafkaCode::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Authentication failed during authentication due to invalid credentials",
                )));
            peer.respond(&req.header, &resp).await;
        })
        .await
        .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            text.contains("SASL OAUTHBEARER authentication with broker 1 (fake:9092) failed"),
            "{text}"
        );
        assert!(text.contains("invalid credentials"), "{text}");
        assert!(text.contains(r#"{"status":"invalid_token"}"#), "{text}");
        assert!(!text.contains("header.payload.sig"), "{text}");
        assert!(!e.is_retriable());
    }

    #[tokio::test]
    async fn a_mechanism_the_listener_lacks_is_named() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            let mut peer = FakePeer::new(server_io);
            let req = peer.read_request().await;
            peer.respond_api_versions(&req.header, &ranges()).await;
            let req = peer.read_request().await;
            let resp = SaslHandshakeResponse::default()
                .with_error_code(KafkaCode::UnsupportedSaslMechanism.code())
                .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
            peer.respond(&req.header, &resp).await;
        });
        let cfg = ConnectionConfig {
            label: "b".into(),
            client_id: StrBytes::from_static_str("test"),
            request_timeout: Duration::from_secs(5),
            max_response_size: 1 << 20,
            stats: crate::metrics::client::BrokerStats::detached(),
        };
        let conn = Connection::connect(client_io, cfg, Duration::from_secs(5))
            .await
            .unwrap();
        let e = authenticate(&conn, &sec("SCRAM-SHA-512", "x"), Duration::from_secs(5))
            .await
            .unwrap_err();
        peer.await.unwrap();
        assert!(
            e.to_string()
                .contains("does not enable SCRAM-SHA-512 on this listener (it enables: PLAIN)"),
            "{e}"
        );
    }
}
