//! Client configuration: typed settings, their defaults, and the Java/librdkafka property names.
//!
//! Two ways in, one validation: typed setters on the builders, or `set("request.timeout.ms",
//! "30000")` with the property names Java and librdkafka users already know. Setters never fail;
//! the first bad value is remembered and returned by `build()`, so a builder chain stays a chain
//! and every mistake still surfaces before anything connects. Producer and consumer settings
//! (later) reuse [`parse_ms`] and friends and fall back to [`ClientConfig::apply`] for the
//! shared keys, so an unknown key is reported once, by whichever `build()` sees it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::security::SecurityConfig;

/// Settings shared by everything that uses a [`Client`](crate::Client).
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    /// `bootstrap.servers`: `host:port` pairs tried in order until one answers.
    pub(crate) bootstrap: Vec<String>,
    /// `client.id`: sent in every request header; shows in broker logs and quotas.
    pub(crate) client_id: String,
    /// `request.timeout.ms`: how long one request may wait for its response.
    pub(crate) request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: TCP connect plus ApiVersions handshake.
    pub(crate) connect_timeout: Duration,
    /// `reconnect.backoff.ms`: first wait after a failed connection attempt to a broker.
    pub(crate) reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap of the exponential reconnect backoff.
    pub(crate) reconnect_backoff_max: Duration,
    /// `metadata.max.age.ms`: metadata older than this is refreshed in the background.
    pub(crate) metadata_max_age: Duration,
    /// `retry.backoff.ms`: first wait before retrying a failed request.
    pub(crate) retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the cap of the exponential retry backoff.
    pub(crate) retry_backoff_max: Duration,
    /// `receive.message.max.bytes`: the largest response frame accepted; larger ones poison the
    /// connection before any memory is allocated for them.
    pub(crate) max_response_size: usize,
    /// `allow.auto.create.topics`: whether metadata requests may create missing topics.
    pub(crate) allow_auto_create_topics: bool,
    /// `metadata.recovery.strategy`: `rebootstrap` (true, Java's default) goes back to the
    /// bootstrap addresses when no known broker answers (KIP-899); `none` never does once
    /// the first metadata arrived.
    pub(crate) rebootstrap: bool,
    /// `metadata.recovery.rebootstrap.trigger.ms`: metadata refreshes failing this long
    /// start over from the bootstrap addresses (KIP-1102).
    pub(crate) rebootstrap_trigger: Duration,
    /// `security.protocol`, `ssl.*`, `sasl.*`: see `security/config.rs`.
    pub(crate) security: SecurityConfig,
    /// `statistics.interval.ms`: accepted so librdkafka configs carry over, but there is no
    /// statistics callback; `build()` logs what to use instead when it is not 0.
    pub(crate) statistics_interval: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap: Vec::new(),
            client_id: "ferrokafka".to_owned(),
            // Java's defaults, so behaviour matches what Kafka operators expect.
            request_timeout: Duration::from_millis(30_000),
            connect_timeout: Duration::from_millis(10_000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1_000),
            metadata_max_age: Duration::from_millis(300_000),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
            // librdkafka's default: fetch responses up to 100 MB plus framing.
            max_response_size: 100_000_000 + 512,
            allow_auto_create_topics: true,
            rebootstrap: true,
            rebootstrap_trigger: Duration::from_millis(300_000),
            security: SecurityConfig::default(),
            statistics_interval: Duration::ZERO,
        }
    }
}

/// The property names [`ClientConfig::apply`] understands, for error messages and docs.
pub(crate) const CLIENT_KEYS: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "request.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "metadata.max.age.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "receive.message.max.bytes",
    "allow.auto.create.topics",
    "statistics.interval.ms",
    "metadata.recovery.strategy",
    "metadata.recovery.rebootstrap.trigger.ms",
    // Security (kept in step with `security::SECURITY_KEYS`, which a test checks).
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

/// Client keys the `ClientBuilder` handles itself, outside `ClientConfig`.
pub(crate) const BUILDER_ONLY_CLIENT_KEYS: &[&str] = &["default.api.timeout.ms", "connect.lazily"];

impl ClientConfig {
    /// Applies one property. `Ok(false)` means the key is not a client key (the caller may know
    /// it, or report it as unknown); `Err` means the key is known and the value is invalid.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.bootstrap = parse_bootstrap(value)?;
            }
            "client.id" => self.client_id = value.to_owned(),
            "request.timeout.ms" => {
                self.request_timeout = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "socket.connection.setup.timeout.ms" => {
                self.connect_timeout = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(key, value, 0, 3_600_000)?,
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max = parse_ms(key, value, 0, 3_600_000)?
            }
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(key, value, 1, 86_400_000)?,
            "retry.backoff.ms" => self.retry_backoff = parse_ms(key, value, 1, 300_000)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_ms(key, value, 1, 300_000)?,
            "receive.message.max.bytes" => {
                self.max_response_size = parse_int(key, value, 1_000, 2_147_483_647)? as usize
            }
            "allow.auto.create.topics" => self.allow_auto_create_topics = parse_bool(key, value)?,
            "metadata.recovery.strategy" => {
                self.rebootstrap = match value.trim().to_ascii_lowercase().as_str() {
                    "rebootstrap" => true,
                    "none" => false,
                    _ => {
                        return Err(Error::config(format!(
                            "{key}: `{value}` is not `rebootstrap` or `none`"
                        )))
                    }
                }
            }
            "metadata.recovery.rebootstrap.trigger.ms" => {
                self.rebootstrap_trigger = parse_ms(key, value, 0, i32::MAX as u64)?
            }
            "statistics.interval.ms" => {
                self.statistics_interval = parse_ms(key, value, 0, 86_400_000)?
            }
            _ => return self.security.apply(key, value),
        }
        Ok(true)
    }

    /// Cross-field checks, run by `build()` after every setting is in.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.bootstrap.is_empty() {
            return Err(Error::config(
                "bootstrap.servers is empty: give at least one host:port",
            ));
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            return Err(Error::config(format!(
                "reconnect.backoff.max.ms ({} ms) is below reconnect.backoff.ms ({} ms)",
                self.reconnect_backoff_max.as_millis(),
                self.reconnect_backoff.as_millis()
            )));
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(Error::config(format!(
                "retry.backoff.max.ms ({} ms) is below retry.backoff.ms ({} ms)",
                self.retry_backoff_max.as_millis(),
                self.retry_backoff.as_millis()
            )));
        }
        self.security.validate()
    }
}

/// Parses `host:port[,host:port…]`. Hosts may be names, IPv4 or `[IPv6]`; an optional
/// `scheme://` prefix (as in `PLAINTEXT://host:9092`) is accepted and ignored.
pub(crate) fn parse_bootstrap(value: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for raw in value.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let (host, port) = entry.rsplit_once(':').ok_or_else(|| {
            Error::config(format!(
                "bootstrap.servers entry `{raw}` has no port: expected host:port"
            ))
        })?;
        if host.is_empty() || host == "[]" {
            return Err(Error::config(format!(
                "bootstrap.servers entry `{raw}` has no host"
            )));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(Error::config(format!(
                    "bootstrap.servers entry `{raw}` has an invalid port `{port}`"
                )))
            }
        }
        out.push(entry.to_owned());
    }
    if out.is_empty() {
        return Err(Error::config(
            "bootstrap.servers is empty: give at least one host:port",
        ));
    }
    Ok(out)
}

/// Parses an integer property within `min..=max`, naming the key in the error.
pub(crate) fn parse_int(key: &str, value: &str, min: i64, max: i64) -> Result<i64> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(format!("{key}: `{value}` is not an integer")))?;
    if v < min || v > max {
        return Err(Error::config(format!(
            "{key}: {v} is out of range ({min}..={max})"
        )));
    }
    Ok(v)
}

/// Parses a millisecond property within `min..=max` ms.
pub(crate) fn parse_ms(key: &str, value: &str, min: u64, max: u64) -> Result<Duration> {
    parse_int(key, value, min as i64, max as i64).map(|v| Duration::from_millis(v as u64))
}

/// Parses `true`/`false` (also `1`/`0`, as librdkafka accepts).
pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::config(format!(
            "{key}: `{value}` is not a boolean (true or false)"
        ))),
    }
}

/// Where a property set on a producer or consumer builder belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The component's own setting; already applied.
    Own,
    /// A client setting, for the client the builder makes itself.
    Client,
}

/// Routes one property given to a producer or consumer builder: `applied` is the result of
/// the component's own `apply`. A client key goes to the builder's own client, or is an
/// error naming the `Client` to set it on when the builder was made from one.
pub(crate) fn route_property(
    applied: Result<bool>,
    key: &str,
    owns_client: bool,
    own_keys: &[&str],
) -> Result<Route> {
    let client_key = CLIENT_KEYS.contains(&key)
        || BUILDER_ONLY_CLIENT_KEYS.contains(&key)
        || key == "metadata.broker.list";
    match applied? {
        true => Ok(Route::Own),
        false if client_key && owns_client => Ok(Route::Client),
        false if client_key => Err(Error::config(format!(
            "`{key}` is a client property: set it on the Client this builder was made from"
        ))),
        false => Err(unknown_key(
            key,
            &[own_keys, CLIENT_KEYS, BUILDER_ONLY_CLIENT_KEYS],
        )),
    }
}

/// The error for a key no component understands.
pub(crate) fn unknown_key(key: &str, known: &[&[&str]]) -> Error {
    let mut hint = String::new();
    let close: Vec<&str> = known
        .iter()
        .flat_map(|k| k.iter().copied())
        .filter(|k| similar(k, key))
        .collect();
    if !close.is_empty() {
        hint = format!(" (did you mean {}?)", close.join(" or "));
    }
    Error::config(format!("unknown configuration property `{key}`{hint}"))
}

/// Whether two keys differ by a small typo: same dotted words but one, or an edit distance of
/// at most two. Only used to make the unknown-key message helpful.
fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_parsing() {
        assert_eq!(
            parse_bootstrap(" a:1, PLAINTEXT://b:2 ,[::1]:3").unwrap(),
            vec!["a:1", "b:2", "[::1]:3"]
        );
        for bad in ["", " , ", "host", "host:", "host:0", "host:99999", ":9092"] {
            let e = parse_bootstrap(bad).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{bad}: {e}");
            assert!(e.to_string().contains("bootstrap.servers"), "{e}");
        }
    }

    #[test]
    fn apply_known_and_unknown_keys() {
        let mut c = ClientConfig::default();
        assert!(c.apply("request.timeout.ms", "1500").unwrap());
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        assert!(c.apply("allow.auto.create.topics", "false").unwrap());
        assert!(!c.allow_auto_create_topics);
        assert!(!c.apply("linger.ms", "5").unwrap());
        let e = c.apply("request.timeout.ms", "-5").unwrap_err();
        assert!(e.to_string().contains("request.timeout.ms"), "{e}");
        let e = c.apply("request.timeout.ms", "soon").unwrap_err();
        assert!(e.to_string().contains("not an integer"), "{e}");
    }

    #[test]
    fn builder_properties_are_routed() {
        let own = &["linger.ms"];
        assert_eq!(
            route_property(Ok(true), "linger.ms", false, own).unwrap(),
            Route::Own
        );
        assert_eq!(
            route_property(Ok(false), "request.timeout.ms", true, own).unwrap(),
            Route::Client
        );
        let e = route_property(Ok(false), "request.timeout.ms", false, own).unwrap_err();
        assert!(e.to_string().contains("client property"), "{e}");
        let e = route_property(Ok(false), "linger.mss", true, own).unwrap_err();
        assert!(e.to_string().contains("did you mean linger.ms"), "{e}");
    }

    #[test]
    fn unknown_key_suggests_a_close_one() {
        let e = unknown_key("request.timout.ms", &[CLIENT_KEYS]);
        assert!(
            e.to_string().contains("did you mean request.timeout.ms"),
            "{e}"
        );
        let e = unknown_key("frobnicate", &[CLIENT_KEYS]);
        assert_eq!(
            e.to_string(),
            "invalid configuration: unknown configuration property `frobnicate`"
        );
    }

    #[test]
    fn security_keys_are_client_keys() {
        for key in crate::security::SECURITY_KEYS {
            assert!(CLIENT_KEYS.contains(key), "{key} missing from CLIENT_KEYS");
        }
        let mut c = ClientConfig::default();
        assert!(c.apply("security.protocol", "SSL").unwrap());
        assert!(c.apply("sasl.username", "u").unwrap());
        c.bootstrap = vec!["a:1".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("sasl.username is set but security.protocol is SSL"),
            "{e}"
        );
    }

    #[test]
    fn validate_rejects_inverted_backoff() {
        let mut c = ClientConfig {
            bootstrap: vec!["a:1".into()],
            ..Default::default()
        };
        c.validate().unwrap();
        c.reconnect_backoff = Duration::from_secs(5);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("reconnect.backoff.max.ms"));
    }
}
