//! The built-in OAUTHBEARER token provider: OAuth 2 client credentials against an OIDC token
//! endpoint (KIP-768), configured with `sasl.oauthbearer.token.endpoint.url`,
//! `sasl.oauthbearer.client.id`, `sasl.oauthbearer.client.secret` and `sasl.oauthbearer.scope`.
//!
//! Like Java's `OAuthBearerLoginCallbackHandler` it POSTs `grant_type=client_credentials`
//! (and `scope` when set), authenticating with HTTP Basic (`client id:client secret`, RFC 6749
//! §2.3.1), and reads `access_token` from the JSON answer. The token's lifetime comes from the
//! JWT's `exp` claim, as Java reads it, or from `expires_in` for an opaque token. Caching and
//! refresh are the [`TokenCache`](super::oauth::TokenCache)'s job.
//!
//! Errors: an endpoint that cannot be reached, times out or answers 5xx gives
//! [`Error::Connect`] (retriable: the pool tries again after its backoff); an `https://`
//! endpoint whose certificate fails the check gives [`Error::Tls`] naming the endpoint (not
//! retriable); a 4xx answer (a
//! wrong client secret, an unknown client) or an unusable token gives
//! [`Error::SaslAuthenticationFailed`] with the endpoint's `error`/`error_description`. The
//! client secret and the token never appear in either.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::http::{self, Url};
use super::oauth::{JwtClaims, OAuthBearerToken, OAuthBearerTokenProvider, TokenProviderError};
use super::secret::Secret;
use super::SaslMechanism;
use crate::error::Error;

/// Client credentials against one token endpoint.
pub(crate) struct OidcClientCredentials {
    url: Url,
    url_text: String,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl fmt::Debug for OidcClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClientCredentials")
            .field("url", &self.url_text)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .finish()
    }
}

impl OidcClientCredentials {
    pub(crate) fn new(
        url_text: &str,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<OidcClientCredentials, Error> {
        let url = Url::parse(url_text).map_err(|why| {
            Error::config(format!(
                "sasl.oauthbearer.token.endpoint.url: `{url_text}`: {why}"
            ))
        })?;
        Ok(OidcClientCredentials {
            url,
            url_text: url_text.to_owned(),
            client_id,
            client_secret,
            scope,
            tls,
            timeout,
        })
    }

    fn refused(&self, message: String) -> Error {
        Error::SaslAuthenticationFailed {
            broker: format!("the OAuth token endpoint {}", self.url_text).into(),
            mechanism: SaslMechanism::OAuthBearer,
            message: message.into(),
        }
    }

    /// A failed exchange: a TLS failure (untrusted or expired certificate, wrong host) is
    /// [`Error::Tls`] naming the endpoint, not retriable, since the same settings fail the
    /// same way; anything else [`Error::Connect`], which the pool retries.
    fn unreachable(&self, source: io::Error) -> Error {
        let endpoint: Arc<str> = format!("the OAuth token endpoint {}", self.url_text).into();
        super::tls::connect_error(endpoint, source)
    }

    async fn fetch(&self) -> Result<OAuthBearerToken, Error> {
        let credentials = format!("{}:{}", self.client_id, self.client_secret.expose());
        let authorization = Secret::new(format!("Basic {}", B64.encode(credentials)));
        let mut body = "grant_type=client_credentials".to_owned();
        if let Some(scope) = &self.scope {
            body.push_str("&scope=");
            body.push_str(&http::form_encode(scope));
        }
        let resp = http::post_form(
            &self.url,
            &[("Authorization", authorization.expose())],
            &body,
            self.tls.clone(),
            self.timeout,
        )
        .await
        .map_err(|e| self.unreachable(e))?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
        if resp.status != 200 {
            // RFC 6749 §5.2 error fields; never the raw body, which could echo the request.
            let field = |k: &str| {
                json.as_ref()
                    .and_then(|j| j.get(k))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let detail = match (field("error"), field("error_description")) {
                (Some(e), Some(d)) => format!(": {e}: {d}"),
                (Some(e), None) => format!(": {e}"),
                _ => String::new(),
            };
            let message = format!("the token endpoint answered HTTP {}{detail}", resp.status);
            return Err(if resp.status >= 500 {
                self.unreachable(io::Error::other(message))
            } else {
                self.refused(message)
            });
        }
        let json =
            json.ok_or_else(|| self.refused("the token endpoint's answer is not JSON".into()))?;
        let access = json
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                self.refused("the token endpoint's answer has no access_token".into())
            })?;
        let expires_in = json.get("expires_in").and_then(|v| v.as_f64());
        let claims = JwtClaims::peek(access).ok();
        let lifetime = match (claims.as_ref().and_then(|c| c.exp), expires_in) {
            (Some(exp), _) => claims.as_ref().unwrap().remaining(exp),
            (None, Some(secs)) if secs > 0.0 => Duration::from_secs_f64(secs),
            _ => {
                return Err(self.refused(
                    "the access token has no `exp` claim and the answer no expires_in".into(),
                ))
            }
        };
        if lifetime.is_zero() {
            return Err(self.refused("the access token has already expired".into()));
        }
        let mut token = OAuthBearerToken::new(access, lifetime);
        if let Some(sub) = claims.and_then(|c| c.sub) {
            token = token.with_principal(sub);
        }
        Ok(token)
    }
}

#[async_trait]
impl OAuthBearerTokenProvider for OidcClientCredentials {
    async fn token(&self) -> Result<OAuthBearerToken, TokenProviderError> {
        self.fetch()
            .await
            .map_err(|e| Box::new(e) as TokenProviderError)
    }
}
