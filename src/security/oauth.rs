//! OAUTHBEARER (RFC 7628, KIP-255): the token provider seam and the token cache.
//!
//! The application brings its tokens through [`OAuthBearerTokenProvider`], an object-safe async
//! trait, or lets ferrokafka fetch them from an OIDC token endpoint with client credentials
//! (`oidc.rs`, KIP-768). Either way the client keeps one [`TokenCache`] per client: every new
//! connection and every re-authentication takes the cached token, and a new one is asked for
//! once the cached one has lived 80–85 % of its lifetime (Java's `sasl.login.refresh.window.
//! factor` 0.8 plus up to `sasl.login.refresh.window.jitter` 0.05, so many clients started
//! together do not all hit the identity provider at once). Refreshing on demand rather than
//! from a timer task keeps the cache free of a task to own and stop; a connection opened after
//! the refresh point pays for one token request, as Java's would on its refresh thread.
//!
//! Tokens are secrets: [`OAuthBearerToken`] keeps its value in a [`Secret`], so it never shows
//! in `Debug` output, logs or errors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::secret::Secret;
use crate::error::{Error, Result};

/// The error type a token provider returns: any error, boxed.
pub type TokenProviderError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An OAuth 2 bearer token and how long it stays valid.
#[derive(Clone)]
pub struct OAuthBearerToken {
    value: Secret,
    lifetime: Duration,
    principal: Option<String>,
}

impl OAuthBearerToken {
    /// A token `value` (usually a JWT) valid for `lifetime` from now.
    pub fn new(value: impl Into<String>, lifetime: Duration) -> OAuthBearerToken {
        OAuthBearerToken {
            value: Secret::new(value.into()),
            lifetime,
            principal: None,
        }
    }

    /// A JWT valid until its own `exp` claim (read without verifying the signature: the
    /// broker verifies it). Fails if `jwt` is not a JWT with a numeric `exp`.
    pub fn from_jwt(jwt: impl Into<String>) -> Result<OAuthBearerToken> {
        let jwt = jwt.into();
        let claims = JwtClaims::peek(&jwt)?;
        let exp = claims.exp.ok_or_else(|| {
            Error::config("the OAuth token is a JWT without an `exp` (expiry) claim")
        })?;
        Ok(OAuthBearerToken {
            value: Secret::new(jwt),
            lifetime: claims.remaining(exp),
            principal: claims.sub,
        })
    }

    /// Names the principal (the JWT's `sub`), for logs only.
    pub fn with_principal(mut self, principal: impl Into<String>) -> OAuthBearerToken {
        self.principal = Some(principal.into());
        self
    }

    /// How long the token was valid when it was made.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The principal, if known.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    pub(crate) fn value(&self) -> &Secret {
        &self.value
    }
}

impl fmt::Debug for OAuthBearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerToken")
            .field("value", &self.value)
            .field("lifetime", &self.lifetime)
            .field("principal", &self.principal)
            .finish()
    }
}

/// Where OAUTHBEARER tokens come from. Implement it to bring tokens from your own identity
/// code; set it with `ClientBuilder::oauthbearer_token_provider`.
///
/// The client caches the token returned and calls [`token`](Self::token) again only when the
/// cached one has lived about 80 % of its lifetime (or a connection is opened after that), so
/// an implementation can simply fetch a fresh token on every call. An error fails the
/// connection attempt with [`Error::SaslAuthenticationFailed`] carrying its text (a
/// `ferrokafka::Error` returned as the boxed error is passed through as it is); while the
/// cached token is still valid, the client logs the error and keeps using it.
#[async_trait]
pub trait OAuthBearerTokenProvider: Send + Sync + 'static {
    /// A fresh token.
    async fn token(&self) -> std::result::Result<OAuthBearerToken, TokenProviderError>;
}

/// The fraction of a token's lifetime after which it is refreshed, before jitter.
const REFRESH_FACTOR: f64 = 0.80;
/// Up to this fraction of the lifetime is added at random to [`REFRESH_FACTOR`].
const REFRESH_JITTER: f64 = 0.05;

/// The refresh point of a token of `lifetime`, `jitter` in `[0, 1)`.
pub(crate) fn refresh_after(lifetime: Duration, jitter: f64) -> Duration {
    lifetime.mul_f64(REFRESH_FACTOR + REFRESH_JITTER * jitter.clamp(0.0, 1.0))
}

/// A uniform value in `[0, 1)` from the OS's CSPRNG (no `rand` dependency needed for one
/// number now and then).
pub(crate) fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    // On failure (no entropy source at all) fall back to no jitter rather than failing.
    let _ = getrandom::getrandom(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

struct Cached {
    token: OAuthBearerToken,
    refresh_at: Instant,
    expires_at: Instant,
}

/// One client's token: fetched on first use, refreshed after 80–85 % of its lifetime.
pub(crate) struct TokenCache {
    provider: Arc<dyn OAuthBearerTokenProvider>,
    /// Async so concurrent connection attempts share one fetch (single flight).
    state: tokio::sync::Mutex<Option<Cached>>,
    jitter: fn() -> f64,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCache")
    }
}

impl TokenCache {
    pub(crate) fn new(provider: Arc<dyn OAuthBearerTokenProvider>) -> TokenCache {
        TokenCache::with_jitter(provider, unit_random)
    }

    pub(crate) fn with_jitter(
        provider: Arc<dyn OAuthBearerTokenProvider>,
        jitter: fn() -> f64,
    ) -> TokenCache {
        TokenCache {
            provider,
            state: tokio::sync::Mutex::new(None),
            jitter,
        }
    }

    /// The token to authenticate with now.
    pub(crate) async fn token(&self) -> Result<OAuthBearerToken> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(c) = state.as_ref() {
            if now < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        match self.provider.token().await {
            Ok(token) => {
                let refresh = refresh_after(token.lifetime, (self.jitter)());
                debug!(
                    principal = token.principal().unwrap_or("?"),
                    lifetime_ms = token.lifetime.as_millis() as u64,
                    refresh_in_ms = refresh.as_millis() as u64,
                    "OAuth token obtained"
                );
                *state = Some(Cached {
                    token: token.clone(),
                    refresh_at: now + refresh,
                    expires_at: now + token.lifetime,
                });
                Ok(token)
            }
            Err(e) => {
                let err = provider_error(e);
                match state.as_ref() {
                    // Still valid: keep using it, try again on the next connection.
                    Some(c) if now < c.expires_at => {
                        warn!(error = %err, "OAuth token refresh failed; the current token is still valid");
                        Ok(c.token.clone())
                    }
                    _ => Err(err),
                }
            }
        }
    }
}

/// A provider's error as a ferrokafka error: passed through if it is one, else wrapped.
fn provider_error(e: TokenProviderError) -> Error {
    match e.downcast::<Error>() {
        Ok(e) => *e,
        Err(other) => Error::SaslAuthenticationFailed {
            broker: "the OAuth token provider".into(),
            mechanism: super::SaslMechanism::OAuthBearer,
            message: format!("no token: {other}").into(),
        },
    }
}

/// The client's first (and, on success, only) OAUTHBEARER message, RFC 7628 §3.1:
/// `n,,` GS2 header (no channel binding, no authorization id), then `\x01`-separated
/// key=value pairs — `auth=Bearer <token>` and any SASL extensions (KIP-342) — and `\x01\x01`.
pub(crate) fn client_first_message(token: &Secret, extensions: &[(String, String)]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(token.expose().len() + 32);
    msg.extend_from_slice(b"n,,\x01auth=Bearer ");
    msg.extend_from_slice(token.expose().as_bytes());
    for (k, v) in extensions {
        msg.push(1);
        msg.extend_from_slice(k.as_bytes());
        msg.push(b'=');
        msg.extend_from_slice(v.as_bytes());
    }
    msg.extend_from_slice(b"\x01\x01");
    msg
}

/// The claims ferrokafka reads from a JWT (unverified: the broker checks the signature).
#[derive(Debug, Default)]
pub(crate) struct JwtClaims {
    pub(crate) exp: Option<f64>,
    pub(crate) sub: Option<String>,
}

impl JwtClaims {
    /// Decodes the payload of `jwt` (`header.payload.signature`, base64url).
    pub(crate) fn peek(jwt: &str) -> Result<JwtClaims> {
        let bad = |why: &str| Error::config(format!("the OAuth token is not a usable JWT: {why}"));
        let mut parts = jwt.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("it does not have three dot-separated parts"));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| bad("the payload is not base64url"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| bad("the payload is not JSON"))?;
        Ok(JwtClaims {
            exp: json.get("exp").and_then(|v| v.as_f64()),
            sub: json.get("sub").and_then(|v| v.as_str()).map(str::to_owned),
        })
    }

    /// Time left until `exp` (seconds since the Unix epoch); zero if it has passed.
    pub(crate) fn remaining(&self, exp: f64) -> Duration {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Duration::try_from_secs_f64(exp - now).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_first_message_follows_rfc_7628() {
        let msg = client_first_message(&Secret::new("eyJ.abc.def"), &[]);
        assert_eq!(msg, b"n,,\x01auth=Bearer eyJ.abc.def\x01\x01");
        let ext = vec![
            ("logicalCluster".to_owned(), "lkc-1".to_owned()),
            ("identityPoolId".to_owned(), "pool-2".to_owned()),
        ];
        let msg = client_first_message(&Secret::new("t"), &ext);
        assert_eq!(
            msg,
            b"n,,\x01auth=Bearer t\x01logicalCluster=lkc-1\x01identityPoolId=pool-2\x01\x01"
        );
    }

    #[test]
    fn tokens_never_show_their_value() {
        let t = OAuthBearerToken::new("very-secret-token", Duration::from_secs(60))
            .with_principal("svc");
        let text = format!("{t:?}");
        assert!(!text.contains("very-secret-token"), "{text}");
        assert!(text.contains("svc"), "{text}");
    }

    #[test]
    fn jwt_claims_are_read() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"svc","exp":4102444800}"#);
        let jwt = format!("e30.{payload}.sig");
        let t = OAuthBearerToken::from_jwt(jwt).unwrap();
        assert_eq!(t.principal(), Some("svc"));
        assert!(t.lifetime() > Duration::from_secs(86_400 * 365));
        let e = OAuthBearerToken::from_jwt("not-a-jwt").unwrap_err();
        assert!(e.to_string().contains("three dot-separated parts"), "{e}");
        let no_exp = format!("e30.{}.s", URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#));
        assert!(OAuthBearerToken::from_jwt(no_exp).is_err());
    }

    #[test]
    fn refresh_point_is_80_to_85_percent() {
        let l = Duration::from_secs(100);
        assert_eq!(refresh_after(l, 0.0), Duration::from_secs(80));
        assert_eq!(refresh_after(l, 1.0), Duration::from_secs(85));
        for _ in 0..100 {
            let r = refresh_after(l, unit_random());
            assert!(
                r >= Duration::from_secs(80) && r < Duration::from_secs(85),
                "{r:?}"
            );
        }
    }

    /// Hands out token-1, token-2, … each valid for 100 s; fails when `fail` is set.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl OAuthBearerTokenProvider for Counting {
        async fn token(&self) -> std::result::Result<OAuthBearerToken, TokenProviderError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail.load(Ordering::SeqCst) {
                return Err("identity provider down".into());
            }
            Ok(OAuthBearerToken::new(
                format!("token-{n}"),
                Duration::from_secs(100),
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_refreshes_after_the_refresh_point_only() {
        let p = Arc::new(Counting::default());
        // Jitter 0.5: refresh at 82.5 s.
        let cache = TokenCache::with_jitter(p.clone(), || 0.5);
        let value = |t: OAuthBearerToken| t.value().expose().to_owned();
        assert_eq!(value(cache.token().await.unwrap()), "token-1");
        tokio::time::advance(Duration::from_secs(82)).await;
        assert_eq!(value(cache.token().await.unwrap()), "token-1");
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(value(cache.token().await.unwrap()), "token-2");
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);

        // A failed refresh keeps the still-valid token; once it has expired, the error shows.
        p.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(value(cache.token().await.unwrap()), "token-2");
        tokio::time::advance(Duration::from_secs(11)).await;
        let e = cache.token().await.unwrap_err();
        assert!(matches!(e, Error::SaslAuthenticationFailed { .. }), "{e:?}");
        assert!(e.to_string().contains("identity provider down"), "{e}");
        assert!(!e.is_retriable());
    }

    #[test]
    fn the_provider_trait_is_object_safe() {
        let p: Arc<dyn OAuthBearerTokenProvider> = Arc::new(Counting::default());
        drop(p);
    }
}
