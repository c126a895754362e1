//! Security settings: `security.protocol`, the `ssl.*` and `sasl.*` properties, their parsing
//! and the cross-checks `build()` runs before anything connects.
//!
//! Property names follow librdkafka (`ssl.ca.location`, `sasl.username`) with the Java forms
//! where Java users bring them (`sasl.jaas.config`, `ssl.endpoint.identification.algorithm`).
//! Nothing here touches the file system: files are read once, by `tls.rs`, when `build()` turns
//! these settings into a TLS configuration, so an unreadable file is still reported by
//! `build()` and names its key. Secrets are held in [`Secret`] so `{:?}` of this config (and
//! of the builder holding it) never shows them, and no error message echoes a secret's value.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::oauth::{OAuthBearerTokenProvider, TokenCache};
use super::secret::Secret;
use crate::error::{Error, Result};

/// How ferrokafka talks to brokers: `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No encryption, no authentication (the default).
    #[default]
    Plaintext,
    /// TLS, optionally with a client certificate (mTLS).
    Ssl,
    /// SASL authentication without encryption.
    SaslPlaintext,
    /// SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections are wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The property value, e.g. `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SASL mechanism: `sasl.mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password sent as they are (use it only inside TLS).
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628): a bearer token from an OIDC token endpoint
    /// (`sasl.oauthbearer.*`) or from the application's own token provider.
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism's name as Kafka spells it, e.g. `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    fn parse(key: &str, value: &str) -> Result<SaslMechanism> {
        match value.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OAuthBearer),
            "GSSAPI" => Err(Error::config(format!(
                "{key}: {} is not supported yet (supported: PLAIN, SCRAM-SHA-256, \
                 SCRAM-SHA-512, OAUTHBEARER)",
                value.trim()
            ))),
            _ => Err(Error::config(format!(
                "{key}: `{value}` is not a SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, \
                 OAUTHBEARER)"
            ))),
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// PEM text given inline or as a file, remembering which key it came from for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pem {
    /// `ssl.*.location`: a file to read at `build()`.
    File(PathBuf),
    /// `ssl.*.pem`: the PEM text itself.
    Inline(Secret),
}

impl Pem {
    /// The property the value was set with: `<base>.location` or `<base>.pem`.
    pub(crate) fn key(&self, base: &str) -> String {
        match self {
            Pem::File(_) => format!("{base}.location"),
            Pem::Inline(_) => format!("{base}.pem"),
        }
    }
}

/// The application's token provider, behind a `Debug` that says only that there is one.
#[derive(Clone)]
pub(crate) struct ProviderHandle(pub(crate) Arc<dyn OAuthBearerTokenProvider>);

impl fmt::Debug for ProviderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuthBearerTokenProvider")
    }
}

/// The OAUTHBEARER settings: an OIDC client-credentials endpoint, or a provider.
#[derive(Clone, Debug, Default)]
pub(crate) struct OAuthSettings {
    /// `sasl.oauthbearer.token.endpoint.url`.
    pub(crate) token_endpoint: Option<String>,
    /// `sasl.oauthbearer.client.id` (JAAS `clientId`).
    pub(crate) client_id: Option<String>,
    /// `sasl.oauthbearer.client.secret` (JAAS `clientSecret`).
    pub(crate) client_secret: Option<Secret>,
    /// `sasl.oauthbearer.scope` (JAAS `scope`).
    pub(crate) scope: Option<String>,
    /// SASL extensions (KIP-342): `sasl.oauthbearer.extensions` `k=v,k=v`, or JAAS
    /// `extension_<k>="v"` options. Confluent Cloud wants `logicalCluster` and
    /// `identityPoolId` here.
    pub(crate) extensions: Vec<(String, String)>,
    /// Set by `ClientBuilder::oauthbearer_token_provider`; wins over the endpoint settings.
    pub(crate) provider: Option<ProviderHandle>,
    /// The one token cache of the client, made by `build()` ([`SecurityConfig::prepare`]).
    pub(crate) cache: Option<Arc<TokenCache>>,
}

impl OAuthSettings {
    /// The first OIDC key set, for messages.
    fn any_key(&self) -> Option<&'static str> {
        if self.token_endpoint.is_some() {
            Some("sasl.oauthbearer.token.endpoint.url")
        } else if self.client_id.is_some() {
            Some("sasl.oauthbearer.client.id")
        } else if self.client_secret.is_some() {
            Some("sasl.oauthbearer.client.secret")
        } else if self.scope.is_some() {
            Some("sasl.oauthbearer.scope")
        } else if !self.extensions.is_empty() {
            Some("sasl.oauthbearer.extensions")
        } else {
            None
        }
    }
}

/// Every security setting of a client.
#[derive(Clone, Debug)]
pub(crate) struct SecurityConfig {
    pub(crate) protocol: SecurityProtocol,
    /// `ssl.ca.location` / `ssl.ca.pem`; `None` = Mozilla's roots (webpki-roots).
    pub(crate) ca: Option<Pem>,
    /// `ssl.certificate.location` / `ssl.certificate.pem`: the client's chain for mTLS.
    pub(crate) certificate: Option<Pem>,
    /// `ssl.key.location` / `ssl.key.pem`: the client's private key (PKCS#8, PKCS#1 or SEC1;
    /// encrypted PKCS#8 with `ssl.key.password`).
    pub(crate) key: Option<Pem>,
    pub(crate) key_password: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm`: `https` (default) checks that the broker's
    /// certificate names the host connected to; `none` turns that off.
    pub(crate) verify_hostname: bool,
    pub(crate) mechanism: Option<SaslMechanism>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    /// Which key set the credentials (`sasl.username` or `sasl.jaas.config`), for messages.
    pub(crate) credentials_from_jaas: bool,
    /// The login module named in `sasl.jaas.config`, checked against the mechanism.
    pub(crate) jaas_module: Option<JaasModule>,
    /// OAUTHBEARER: where tokens come from.
    pub(crate) oauth: OAuthSettings,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            protocol: SecurityProtocol::Plaintext,
            ca: None,
            certificate: None,
            key: None,
            key_password: None,
            verify_hostname: true,
            mechanism: None,
            username: None,
            password: None,
            credentials_from_jaas: false,
            jaas_module: None,
            oauth: OAuthSettings::default(),
        }
    }
}

/// The property names [`SecurityConfig::apply`] understands (`config.rs`'s `CLIENT_KEYS`
/// lists them too, for routing; a test keeps the two in step).
#[cfg(test)]
pub(crate) const SECURITY_KEYS: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.credentials.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.method",
    "sasl.login.callback.handler.class",
];

/// The JAAS login modules ferrokafka understands in `sasl.jaas.config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JaasModule {
    Plain,
    Scram,
    OAuthBearer,
}

/// Java's OIDC login callback handler (and its pre-3.4 name): ferrokafka has it built in.
const OIDC_HANDLERS: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

impl SecurityConfig {
    /// Applies one property; `Ok(false)` if the key is not a security key. Error messages
    /// name the key and never repeat a secret value.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "security.protocol" => {
                self.protocol = match value.trim().to_ascii_uppercase().as_str() {
                    "PLAINTEXT" => SecurityProtocol::Plaintext,
                    "SSL" => SecurityProtocol::Ssl,
                    "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
                    "SASL_SSL" => SecurityProtocol::SaslSsl,
                    _ => {
                        return Err(Error::config(format!(
                            "security.protocol: `{value}` is not one of PLAINTEXT, SSL, \
                             SASL_PLAINTEXT, SASL_SSL"
                        )))
                    }
                }
            }
            "ssl.ca.location" => self.ca = Some(Pem::File(path(key, value)?)),
            "ssl.ca.pem" => self.ca = Some(Pem::Inline(Secret::new(value))),
            "ssl.certificate.location" => self.certificate = Some(Pem::File(path(key, value)?)),
            "ssl.certificate.pem" => self.certificate = Some(Pem::Inline(Secret::new(value))),
            "ssl.key.location" => self.key = Some(Pem::File(path(key, value)?)),
            "ssl.key.pem" => self.key = Some(Pem::Inline(Secret::new(value))),
            "ssl.key.password" => self.key_password = Some(Secret::new(value)),
            "ssl.endpoint.identification.algorithm" => {
                self.verify_hostname = match value.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    // Java disables it with an empty value, librdkafka with `none`.
                    "none" | "" => false,
                    _ => {
                        return Err(Error::config(format!(
                            "ssl.endpoint.identification.algorithm: `{value}` is neither \
                             `https` (verify the broker's host name) nor `none`"
                        )))
                    }
                }
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                self.mechanism = Some(SaslMechanism::parse(key, value)?)
            }
            "sasl.username" => {
                self.username = Some(value.to_owned());
                self.credentials_from_jaas = false;
            }
            "sasl.password" => {
                self.password = Some(Secret::new(value));
                self.credentials_from_jaas = false;
            }
            "sasl.jaas.config" => {
                let jaas = parse_jaas(value)?;
                self.jaas_module = Some(jaas.module);
                if jaas.module == JaasModule::OAuthBearer {
                    // Java's option names (KIP-768); `unsecuredLoginStringClaim_*` and the
                    // like configure Java's test-only unsecured tokens and are ignored.
                    for (name, val) in jaas.options {
                        match name.as_str() {
                            "clientId" => self.oauth.client_id = Some(val),
                            "clientSecret" => self.oauth.client_secret = Some(Secret::new(val)),
                            "scope" => self.oauth.scope = Some(val),
                            _ => {
                                if let Some(ext) = name.strip_prefix("extension_") {
                                    self.oauth.extensions.push((ext.to_owned(), val));
                                }
                            }
                        }
                    }
                } else {
                    let (mut username, mut password) = (None, None);
                    for (name, val) in jaas.options {
                        match name.as_str() {
                            "username" => username = Some(val),
                            "password" => password = Some(Secret::new(val)),
                            // Other options (SCRAM's `tokenauth`) are not used by this client.
                            _ => {}
                        }
                    }
                    self.username =
                        Some(username.ok_or_else(|| jaas_error("there is no username option"))?);
                    self.password =
                        Some(password.ok_or_else(|| jaas_error("there is no password option"))?);
                    self.credentials_from_jaas = true;
                }
            }
            "sasl.oauthbearer.token.endpoint.url" => {
                self.oauth.token_endpoint = Some(value.trim().to_owned())
            }
            "sasl.oauthbearer.client.id" | "sasl.oauthbearer.client.credentials.client.id" => {
                self.oauth.client_id = Some(value.to_owned())
            }
            "sasl.oauthbearer.client.secret"
            | "sasl.oauthbearer.client.credentials.client.secret" => {
                self.oauth.client_secret = Some(Secret::new(value))
            }
            "sasl.oauthbearer.scope" => self.oauth.scope = Some(value.to_owned()),
            "sasl.oauthbearer.extensions" => {
                self.oauth.extensions = parse_extensions(value)?;
            }
            // librdkafka: `oidc` is the client-credentials flow; `default` is its unsecured
            // test tokens, which ferrokafka does not make.
            "sasl.oauthbearer.method" => match value.trim().to_ascii_lowercase().as_str() {
                "oidc" => {}
                _ => {
                    return Err(Error::config(format!(
                        "sasl.oauthbearer.method: `{value}` is not supported (only `oidc`; or \
                         give the client a token provider)"
                    )))
                }
            },
            "sasl.login.callback.handler.class" => {
                if !OIDC_HANDLERS.contains(&value.trim()) {
                    return Err(Error::config(format!(
                        "sasl.login.callback.handler.class: `{value}` is a Java class; \
                         ferrokafka has OAuthBearerLoginCallbackHandler (OIDC client \
                         credentials) built in, or takes a token provider in code"
                    )));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether any `sasl.*` property was set.
    fn has_sasl_settings(&self) -> Option<&'static str> {
        if self.mechanism.is_some() {
            Some("sasl.mechanism")
        } else if self.jaas_module.is_some() {
            Some("sasl.jaas.config")
        } else if self.username.is_some() {
            Some("sasl.username")
        } else if self.password.is_some() {
            Some("sasl.password")
        } else {
            self.oauth.any_key()
        }
    }

    fn has_ssl_settings(&self) -> Option<String> {
        if let Some(p) = &self.ca {
            Some(p.key("ssl.ca"))
        } else if let Some(p) = &self.certificate {
            Some(p.key("ssl.certificate"))
        } else if let Some(p) = &self.key {
            Some(p.key("ssl.key"))
        } else if self.key_password.is_some() {
            Some("ssl.key.password".into())
        } else if !self.verify_hostname {
            Some("ssl.endpoint.identification.algorithm".into())
        } else {
            None
        }
    }

    /// The mechanism to use: the one set, or PLAIN when only a PlainLoginModule JAAS line says
    /// so (a ScramLoginModule line leaves SHA-256 and SHA-512 open, so it needs the setting).
    pub(crate) fn effective_mechanism(&self) -> Option<SaslMechanism> {
        self.mechanism.or(match self.jaas_module {
            Some(JaasModule::Plain) => Some(SaslMechanism::Plain),
            Some(JaasModule::OAuthBearer) => Some(SaslMechanism::OAuthBearer),
            _ => None,
        })
    }

    /// Cross-field checks, without touching files (`tls.rs` reads them at `build()`).
    pub(crate) fn validate(&self) -> Result<()> {
        let p = self.protocol;
        if !p.uses_sasl() {
            if let Some(key) = self.has_sasl_settings() {
                return Err(Error::config(format!(
                    "{key} is set but security.protocol is {p}: SASL needs SASL_PLAINTEXT or \
                     SASL_SSL"
                )));
            }
        }
        if !p.uses_tls() {
            // The one TLS connection a SASL_PLAINTEXT client makes is to an https:// token
            // endpoint, which trusts ssl.ca.* (with Mozilla's roots): a CA set for that is
            // used, not ignored. Every other ssl.* key stays an error there.
            let ca_for_token_endpoint = p.uses_sasl()
                && self.effective_mechanism() == Some(SaslMechanism::OAuthBearer)
                && self.oauth.provider.is_none()
                && self
                    .oauth
                    .token_endpoint
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://"));
            let key = match self.has_ssl_settings() {
                Some(key) if key.starts_with("ssl.ca.") && ca_for_token_endpoint => {
                    let mut rest = self.clone();
                    rest.ca = None;
                    rest.has_ssl_settings()
                }
                other => other,
            };
            if let Some(key) = key {
                return Err(Error::config(format!(
                    "{key} is set but security.protocol is {p}: TLS needs SSL or SASL_SSL \
                     (the setting would be ignored)"
                )));
            }
        }
        if p.uses_sasl() {
            let Some(mechanism) = self.effective_mechanism() else {
                return Err(Error::config(format!(
                    "sasl.mechanism is not set but security.protocol is {p}: set PLAIN, \
                     SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
                )));
            };
            if mechanism == SaslMechanism::OAuthBearer {
                return self.validate_oauth();
            }
            if let Some(key) = self.oauth.any_key() {
                return Err(Error::config(format!(
                    "{key} is set but sasl.mechanism is {mechanism}, not OAUTHBEARER"
                )));
            }
            let source = if self.credentials_from_jaas {
                "sasl.jaas.config"
            } else {
                "sasl.username"
            };
            match &self.username {
                None => {
                    return Err(Error::config(format!(
                        "sasl.username is not set: {mechanism} needs credentials (sasl.username \
                         and sasl.password, or sasl.jaas.config)"
                    )))
                }
                Some(u) if u.is_empty() => {
                    return Err(Error::config(format!("{source}: the user name is empty")))
                }
                Some(_) => {}
            }
            if self.password.is_none() {
                return Err(Error::config(format!(
                    "sasl.password is not set: {mechanism} needs credentials (sasl.username \
                     and sasl.password, or sasl.jaas.config)"
                )));
            }
            match (self.jaas_module, mechanism) {
                (
                    Some(JaasModule::Plain),
                    SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512,
                )
                | (Some(JaasModule::Scram), SaslMechanism::Plain)
                | (Some(JaasModule::OAuthBearer), _) => {
                    return Err(Error::config(format!(
                        "sasl.jaas.config names a {} login module but sasl.mechanism is \
                         {mechanism}",
                        match self.jaas_module {
                            Some(JaasModule::Plain) => "PLAIN",
                            Some(JaasModule::OAuthBearer) => "OAUTHBEARER",
                            _ => "SCRAM",
                        }
                    )))
                }
                _ => {}
            }
        }
        match (&self.certificate, &self.key) {
            (None, Some(k)) => {
                return Err(Error::config(format!(
                    "{} is set without ssl.certificate.location or ssl.certificate.pem: a \
                     client key needs its certificate",
                    k.key("ssl.key")
                )))
            }
            (Some(c), None) => {
                return Err(Error::config(format!(
                    "{} is set without ssl.key.location or ssl.key.pem: a client certificate \
                     needs its private key",
                    c.key("ssl.certificate")
                )))
            }
            _ => {}
        }
        if self.key_password.is_some() && self.key.is_none() {
            return Err(Error::config(
                "ssl.key.password is set without ssl.key.location or ssl.key.pem",
            ));
        }
        Ok(())
    }
}

impl SecurityConfig {
    /// The OAUTHBEARER checks: a token provider, or an endpoint with client credentials.
    fn validate_oauth(&self) -> Result<()> {
        if matches!(
            self.jaas_module,
            Some(JaasModule::Plain | JaasModule::Scram)
        ) {
            return Err(Error::config(
                "sasl.jaas.config names a PLAIN or SCRAM login module but sasl.mechanism is \
                 OAUTHBEARER (use org.apache.kafka.common.security.oauthbearer.\
                 OAuthBearerLoginModule)",
            ));
        }
        if self.oauth.provider.is_some() {
            return Ok(());
        }
        let Some(url) = &self.oauth.token_endpoint else {
            return Err(Error::config(
                "sasl.mechanism is OAUTHBEARER but sasl.oauthbearer.token.endpoint.url is not \
                 set (or give the client a token provider)",
            ));
        };
        super::http::Url::parse(url).map_err(|why| {
            Error::config(format!(
                "sasl.oauthbearer.token.endpoint.url: `{url}`: {why}"
            ))
        })?;
        if self
            .oauth
            .client_id
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            return Err(Error::config(
                "sasl.oauthbearer.client.id is not set: the OIDC client-credentials flow needs \
                 a client id and secret (or clientId/clientSecret in sasl.jaas.config)",
            ));
        }
        if self.oauth.client_secret.is_none() {
            return Err(Error::config(
                "sasl.oauthbearer.client.secret is not set: the OIDC client-credentials flow \
                 needs a client id and secret (or clientId/clientSecret in sasl.jaas.config)",
            ));
        }
        Ok(())
    }

    /// Makes what `build()` needs beyond plain settings: the OAUTHBEARER token cache (with
    /// the built-in OIDC provider unless the application gave one). `timeout` bounds each
    /// token request.
    pub(crate) fn prepare(&mut self, timeout: std::time::Duration) -> Result<()> {
        if !self.protocol.uses_sasl()
            || self.effective_mechanism() != Some(SaslMechanism::OAuthBearer)
        {
            return Ok(());
        }
        let provider: Arc<dyn OAuthBearerTokenProvider> = match &self.oauth.provider {
            Some(p) => p.0.clone(),
            None => {
                let url = self.oauth.token_endpoint.clone().unwrap_or_default();
                let tls = if url.starts_with("https://") {
                    Some(super::tls::https_client_config(self)?)
                } else {
                    None
                };
                Arc::new(super::oidc::OidcClientCredentials::new(
                    &url,
                    self.oauth.client_id.clone().unwrap_or_default(),
                    self.oauth.client_secret.clone().unwrap_or_default(),
                    self.oauth.scope.clone(),
                    tls,
                    timeout,
                )?)
            }
        };
        self.oauth.cache = Some(Arc::new(TokenCache::new(provider)));
        Ok(())
    }
}

/// Parses librdkafka's `sasl.oauthbearer.extensions`: `key=value` pairs separated by commas.
fn parse_extensions(value: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            Error::config(format!(
                "sasl.oauthbearer.extensions: `{pair}` is not key=value"
            ))
        })?;
        let k = k.trim();
        // RFC 7628 §3.1 key: ALPHA+; `auth` is the token's own key.
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphabetic()) || k == "auth" {
            return Err(Error::config(format!(
                "sasl.oauthbearer.extensions: `{k}` is not a valid extension name (letters \
                 only, not `auth`)"
            )));
        }
        out.push((k.to_owned(), v.trim().to_owned()));
    }
    Ok(out)
}

fn jaas_error(why: &str) -> Error {
    Error::config(format!(
        "sasl.jaas.config: {why} (expected `org.apache.kafka.common.security.plain.PlainLoginModule \
         required username=\"...\" password=\"...\";` or the same with \
         org.apache.kafka.common.security.scram.ScramLoginModule)"
    ))
}

fn path(key: &str, value: &str) -> Result<PathBuf> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::config(format!("{key}: the path is empty")));
    }
    Ok(PathBuf::from(v))
}

/// What `sasl.jaas.config` says: the module and its options, in order.
struct Jaas {
    module: JaasModule,
    options: Vec<(String, String)>,
}

/// Parses the Java JAAS form for PLAIN and SCRAM:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
/// (ScramLoginModule likewise). Values may be quoted (`"..."`, where `\"` and `\\` escape) or
/// bare words. Errors never quote the value: it holds a password.
fn parse_jaas(value: &str) -> Result<Jaas> {
    const KEY: &str = "sasl.jaas.config";
    let bad = |why: &str| {
        Error::config(format!(
            "{KEY}: {why} (expected `org.apache.kafka.common.security.plain.PlainLoginModule \
             required username=\"...\" password=\"...\";` or the same with \
             org.apache.kafka.common.security.scram.ScramLoginModule)"
        ))
    };
    let text = value.trim();
    let text = text
        .strip_suffix(';')
        .ok_or_else(|| bad("the entry does not end with `;`"))?;
    let mut rest = text.trim_start();
    let (class, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let module = match class {
        "org.apache.kafka.common.security.plain.PlainLoginModule" => JaasModule::Plain,
        "org.apache.kafka.common.security.scram.ScramLoginModule" => JaasModule::Scram,
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule" => {
            JaasModule::OAuthBearer
        }
        other => {
            return Err(Error::config(format!(
                "{KEY}: login module `{other}` is not supported (PlainLoginModule, \
                 ScramLoginModule and OAuthBearerLoginModule are)"
            )))
        }
    };
    rest = after.trim_start();
    let (flag, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        return Err(bad(
            "the login module is not followed by a control flag such as `required`",
        ));
    }
    rest = after;
    let mut options = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| bad("an option is not of the form name=value"))?;
        let name = name.trim();
        let after = after.trim_start();
        let (val, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| bad("a quoted value is not closed"))?;
            (out, &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        options.push((name.to_owned(), val));
        rest = after;
    }
    Ok(Jaas { module, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(props: &[(&str, &str)]) -> Result<SecurityConfig> {
        let mut c = SecurityConfig::default();
        for (k, v) in props {
            assert!(c.apply(k, v)?, "{k} is a security key");
        }
        c.validate()?;
        Ok(c)
    }

    fn err(props: &[(&str, &str)]) -> String {
        cfg(props).unwrap_err().to_string()
    }

    #[test]
    fn protocols_and_mechanisms_parse() {
        let c = cfg(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "scram-sha-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ])
        .unwrap();
        assert_eq!(c.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.effective_mechanism(), Some(SaslMechanism::ScramSha512));
        assert!(err(&[("security.protocol", "TLS")]).contains("security.protocol: `TLS`"));
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "GSSAPI"),
        ]);
        assert!(
            e.contains("sasl.mechanism: GSSAPI is not supported yet"),
            "{e}"
        );
        let e = err(&[("ssl.endpoint.identification.algorithm", "maybe")]);
        assert!(e.contains("ssl.endpoint.identification.algorithm"), "{e}");
    }

    #[test]
    fn jaas_config_in_the_java_form() {
        let c = cfg(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="bob" password="p a\"ss";"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.effective_mechanism(), Some(SaslMechanism::Plain));
        assert_eq!(c.username.as_deref(), Some("bob"));
        assert_eq!(c.password.as_ref().unwrap().expose(), "p a\"ss");
        let c = cfg(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=alice password=\"alice-secret\";",
            ),
        ])
        .unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        // A SCRAM module alone does not say which hash.
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=a password=b;",
            ),
        ]);
        assert!(e.contains("sasl.mechanism is not set"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=a password=b;",
            ),
        ]);
        assert!(
            e.contains("PLAIN login module but sasl.mechanism is SCRAM-SHA-256"),
            "{e}"
        );
        for bad in [
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="topsecret""#,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule username="u" password="topsecret";"#,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="topsecret;"#,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u";"#,
            r#"com.example.Other required password="topsecret";"#,
        ] {
            let mut c = SecurityConfig::default();
            let e = c.apply("sasl.jaas.config", bad).unwrap_err().to_string();
            assert!(e.contains("sasl.jaas.config"), "{e}");
            assert!(
                !e.contains("topsecret"),
                "the error repeats the password: {e}"
            );
        }
    }

    #[test]
    fn cross_checks_name_the_key() {
        let e = err(&[("sasl.mechanism", "PLAIN")]);
        assert!(
            e.contains("sasl.mechanism is set but security.protocol is PLAINTEXT"),
            "{e}"
        );
        let e = err(&[("security.protocol", "SSL"), ("sasl.username", "u")]);
        assert!(
            e.contains("sasl.username is set but security.protocol is SSL"),
            "{e}"
        );
        let e = err(&[("ssl.ca.location", "/x")]);
        assert!(
            e.contains("ssl.ca.location is set but security.protocol is PLAINTEXT"),
            "{e}"
        );
        // ssl.ca.* serves an https token endpoint of a SASL_PLAINTEXT client; nothing else.
        let oauth = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.client.id", "id"),
            ("sasl.oauthbearer.client.secret", "secret"),
            ("ssl.ca.location", "/ca.pem"),
        ];
        let with = |url: &str, more: &[(&'static str, &'static str)]| {
            let mut s = SecurityConfig::default();
            for (k, v) in oauth.iter().chain(more) {
                s.apply(k, v).unwrap();
            }
            s.apply("sasl.oauthbearer.token.endpoint.url", url).unwrap();
            s.validate().map_err(|e| e.to_string())
        };
        with("https://idp.example.com/token", &[]).unwrap();
        let e = with("http://idp.example.com/token", &[]).unwrap_err();
        assert!(e.contains("ssl.ca.location is set but"), "{e}");
        let e = with(
            "https://idp.example.com/token",
            &[("ssl.endpoint.identification.algorithm", "none")],
        )
        .unwrap_err();
        assert!(
            e.contains("ssl.endpoint.identification.algorithm is set but"),
            "{e}"
        );
        let e = err(&[("security.protocol", "SASL_PLAINTEXT"), ("ssl.ca.pem", "x")]);
        assert!(
            e.contains("ssl.ca.pem is set but security.protocol is SASL_PLAINTEXT"),
            "{e}"
        );
        let e = err(&[("security.protocol", "SASL_SSL")]);
        assert!(e.contains("sasl.mechanism is not set"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
        ]);
        assert!(e.contains("sasl.username is not set"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
        ]);
        assert!(e.contains("sasl.password is not set"), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.key.location", "/k")]);
        assert!(
            e.contains("ssl.key.location is set without ssl.certificate"),
            "{e}"
        );
        let e = err(&[("security.protocol", "SSL"), ("ssl.certificate.pem", "c")]);
        assert!(
            e.contains("ssl.certificate.pem is set without ssl.key"),
            "{e}"
        );
        let e = err(&[("security.protocol", "SSL"), ("ssl.key.password", "pw")]);
        assert!(e.contains("ssl.key.password is set without"), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.ca.location", " ")]);
        assert!(e.contains("ssl.ca.location: the path is empty"), "{e}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = cfg(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-very-secret"),
            ("ssl.certificate.pem", "-----BEGIN CERTIFICATE-----"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----keybytes"),
            ("ssl.key.password", "key-very-secret"),
        ])
        .unwrap();
        let text = format!("{c:?}{c:#?}");
        assert!(text.contains("alice"), "{text}");
        for secret in ["alice-very-secret", "keybytes", "key-very-secret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
