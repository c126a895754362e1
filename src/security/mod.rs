//! Security: TLS (rustls) and SASL (PLAIN, SCRAM-SHA-256/512) for broker connections.
//!
//! One concept per file:
//! - `config.rs`: the `security.protocol`, `ssl.*` and `sasl.*` settings and their checks;
//! - `secret.rs`: the redacting wrapper every password and private key is kept in;
//! - `tls.rs`: the rustls configuration, the TLS connector and the TLS error kinds;
//! - `scram.rs`: the SCRAM client (RFC 5802/7677) with server-signature verification;
//! - `sasl.rs`: the SaslHandshake/SaslAuthenticate exchange on a new connection;
//! - `oauth.rs`: OAUTHBEARER's token provider trait, token cache and first message;
//! - `oidc.rs`: the built-in OIDC client-credentials token provider (KIP-768);
//! - `http.rs`: the minimal HTTP/1.1 POST the OIDC provider sends;
//! - `reauth.rs`: re-authentication before the broker's session lifetime runs out (KIP-368).
//!
//! The hooks elsewhere are small: `ClientConfig` holds a [`SecurityConfig`] and routes the
//! keys to it; `ClientBuilder::build` picks the connector ([`connector`]); the pool
//! authenticates each new connection after ApiVersions and sorts TLS failures
//! ([`tls::connect_error`], [`tls::refine`]).

pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod oauth;
pub(crate) mod oidc;
pub(crate) mod reauth;
pub(crate) mod sasl;
pub(crate) mod scram;
pub(crate) mod secret;
pub(crate) mod tls;

use std::sync::Arc;

#[cfg(test)]
pub(crate) use config::SECURITY_KEYS;
pub(crate) use config::{Pem, ProviderHandle, SecurityConfig};
pub use config::{SaslMechanism, SecurityProtocol};
pub use oauth::{OAuthBearerToken, OAuthBearerTokenProvider, TokenProviderError};
pub(crate) use secret::Secret;
pub use tls::TlsErrorKind;

use crate::client::pool::{Connector, TcpConnector};
use crate::error::Result;

/// The connector for `sec`: plain TCP, or TCP wrapped in TLS (reading the `ssl.*` files now,
/// so a bad one fails `build()`).
pub(crate) fn connector(sec: &SecurityConfig) -> Result<Arc<dyn Connector>> {
    let tcp: Arc<dyn Connector> = Arc::new(TcpConnector);
    if sec.protocol.uses_tls() {
        let config = tls::client_config(sec)?;
        Ok(Arc::new(tls::TlsConnector::new(tcp, config)))
    } else {
        Ok(tcp)
    }
}
