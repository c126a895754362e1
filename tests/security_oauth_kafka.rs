//! OAUTHBEARER with OIDC, re-authentication and ACL authorization against one real Apache
//! Kafka node.
//!
//! The node (shared by every test here) has, next to the harness's PLAINTEXT listener:
//! - `OAUTH` (SASL_PLAINTEXT, OAUTHBEARER): tokens validated by Kafka's
//!   `OAuthBearerValidatorCallbackHandler` against a JWKS served by this test (wiremock),
//!   `connections.max.reauth.ms` 5 s so connections must re-authenticate (KIP-368);
//! - `OAUTH_SSL` (SASL_SSL, OAUTHBEARER): the same validation behind TLS, with a server
//!   certificate signed by a test CA (rcgen);
//! - `SASL` (SASL_PLAINTEXT, PLAIN): users `admin` (a super user) and `alice`.
//!
//! and the StandardAuthorizer with `super.users=User:admin;User:ANONYMOUS;User:svc` (the
//! inter-broker PLAINTEXT listener is ANONYMOUS; `svc` is the OIDC client whose tokens the
//! OAUTHBEARER tests use). The test's token endpoint signs RS256 JWTs with a key generated at
//! start; the JWKS publishes its public half. ferrokafka fetches its tokens itself with client
//! credentials (`sasl.oauthbearer.*`), over `http://` from wiremock directly, or over
//! `https://` through a TLS terminator in front of it (`common::tls_proxy`): one presenting a
//! certificate from the test CA, one presenting a certificate from a CA nobody trusts.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use common::tls_proxy::TlsProxy;
use common::{unique_topic, within, KafkaCluster, KafkaOptions};
use ferrokafka::{
    AclBinding, AclOperation, AclPermission, AclResourceType, Client, ClientBuilder, Consumer,
    Error, KafkaCode, NewTopic, OAuthBearerToken, OAuthBearerTokenProvider, OffsetReset, Producer,
    Record, SaslMechanism, SecurityProtocol, TlsErrorKind, TokenProviderError, TopicPartition,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Every failure must come back well within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The OIDC client the broker lets do anything.
const SVC_ID: &str = "svc";
const SVC_SECRET: &str = "svc-very-secret";
/// The `aud` the broker expects (Kafka 4.4 insists on checking one).
const AUDIENCE: &str = "ferrokafka-test-cluster";
/// `connections.max.reauth.ms` of the OAUTH listener.
const REAUTH_MS: u64 = 5_000;

/// Signs RS256 JWTs; `forger` signs with another key under the same key id.
struct Keys {
    real: SigningKey<Sha256>,
    forger: SigningKey<Sha256>,
    jwks: String,
    /// The `iss` of every token: the identity provider's URL, known once it listens.
    issuer: OnceLock<String>,
}

impl Keys {
    fn new() -> Keys {
        let mut rng = rsa::rand_core::OsRng;
        let real = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
        let other = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
        let public = real.to_public_key();
        let jwks = serde_json::json!({"keys": [{
            "kty": "RSA", "kid": "test-key", "use": "sig", "alg": "RS256",
            "n": B64URL.encode(public.n().to_bytes_be()),
            "e": B64URL.encode(public.e().to_bytes_be()),
        }]})
        .to_string();
        Keys {
            real: SigningKey::<Sha256>::new(real),
            forger: SigningKey::<Sha256>::new(other),
            jwks,
            issuer: OnceLock::new(),
        }
    }

    /// A JWT for `sub` expiring `lifetime_secs` from now (negative: already expired).
    fn jwt(&self, sub: &str, lifetime_secs: i64, forged: bool) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let header = B64URL.encode(r#"{"alg":"RS256","typ":"JWT","kid":"test-key"}"#);
        let claims = serde_json::json!({
            "sub": sub, "aud": AUDIENCE, "iss": self.issuer.get().expect("issuer set"), "iat": now.min(now + lifetime_secs) - 1,
            "exp": now + lifetime_secs, "scope": "kafka",
        });
        let payload = B64URL.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let key = if forged { &self.forger } else { &self.real };
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", B64URL.encode(sig.to_bytes()))
    }
}

/// The token endpoint: client credentials in HTTP Basic, a JWT per request whose lifetime
/// depends on the client. Counts requests per client.
struct TokenEndpoint {
    keys: Arc<Keys>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

/// client id → (secret, token lifetime in seconds, forged signature).
fn clients() -> HashMap<&'static str, (&'static str, i64, bool)> {
    HashMap::from([
        (SVC_ID, (SVC_SECRET, 3600, false)),
        // Short-lived tokens for the long-running consumer.
        ("svc-short", ("short-secret", 8, false)),
        ("svc-forged", ("forged-secret", 3600, true)),
        ("svc-expired", ("expired-secret", -60, false)),
        // Clients of the https tests: counted apart from `svc`, acting as svc.
        ("svc-tls", ("tls-secret", 3600, false)),
        ("svc-untrusted", ("untrusted-secret", 3600, false)),
    ])
}

impl Respond for TokenEndpoint {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&req.body);
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| B64.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok());
        let Some((id, secret)) = auth.as_deref().and_then(|a| a.split_once(':')) else {
            return ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "invalid_request"}));
        };
        if !body.contains("grant_type=client_credentials") {
            return ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "unsupported_grant_type"}));
        }
        *self.calls.lock().unwrap().entry(id.to_owned()).or_default() += 1;
        match clients().get(id) {
            Some((s, lifetime, forged)) if *s == secret => {
                // The service principal is the `sub`; the short-lived one acts as svc too.
                let sub = if matches!(id, "svc-short" | "svc-tls" | "svc-untrusted") {
                    SVC_ID
                } else {
                    id
                };
                ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "access_token": self.keys.jwt(sub, *lifetime, *forged),
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                }))
            }
            _ => ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "error": "invalid_client", "error_description": "bad client credentials"
            })),
        }
    }
}

struct Setup {
    cluster: KafkaCluster,
    idp: MockServer,
    /// `https://` in front of `idp`, with a certificate of the test CA (`ca.pem`).
    https_idp: TlsProxy,
    /// `https://` in front of `idp`, with a certificate of a CA the clients do not trust.
    untrusted_idp: TlsProxy,
    /// PEM files: `ca.pem`, the broker's `server-keystore.pem`.
    certs: PathBuf,
    keys: Arc<Keys>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    /// Everything ferrokafka's security modules logged, for the re-authentication test.
    log: Arc<Mutex<Vec<u8>>>,
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn start_idp(keys: Arc<Keys>, calls: Arc<Mutex<HashMap<String, usize>>>) -> MockServer {
    let idp = MockServer::start().await;
    keys.issuer.set(idp.uri()).unwrap();
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string(keys.jwks.clone()),
        )
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(TokenEndpoint { keys, calls })
        .mount(&idp)
        .await;
    idp
}

/// The shared node and identity provider. A failed start is kept, so every test fails at
/// once with it instead of starting Kafka again.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
    let setup = SETUP.get_or_init(|| {
        std::panic::catch_unwind(start).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match setup {
        Ok(s) => s,
        Err(e) => panic!("the test setup failed: {e}"),
    }
}

fn start() -> Setup {
    {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(log.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("ferrokafka::security=debug,ferrokafka::client::connection=warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        let started = Instant::now();
        let keys = Arc::new(Keys::new());
        let calls = Arc::new(Mutex::new(HashMap::new()));
        // wiremock serves from a thread of its own, so the server outlives the runtime that
        // starts it; that runtime runs on a thread of its own too (this one is inside a test's).
        let (k, c) = (keys.clone(), calls.clone());
        let idp = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(start_idp(k, c))
        })
        .join()
        .unwrap();
        eprintln!(
            "keys and identity provider ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let certs = std::env::temp_dir().join(format!("ferrokafka-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&certs).unwrap();
        let (leaf, untrusted_leaf) = make_certificates(&certs);
        let idp_addr = idp.address().to_string();
        let https_idp = TlsProxy::start(&idp_addr, &leaf.0, &leaf.1);
        let untrusted_idp = TlsProxy::start(&idp_addr, &untrusted_leaf.0, &untrusted_leaf.1);
        let jwks = format!("{}/jwks", idp.uri());
        let options = KafkaOptions::new(1, common::logs_dir())
            .listener("OAUTH", "SASL_PLAINTEXT")
            .listener("OAUTH_SSL", "SASL_SSL")
            .property("ssl.keystore.type", "PEM")
            .property(
                "ssl.keystore.location",
                &certs.join("server-keystore.pem").display().to_string(),
            )
            .property(
                "listener.name.oauth_ssl.sasl.enabled.mechanisms",
                "OAUTHBEARER",
            )
            .property(
                "listener.name.oauth_ssl.oauthbearer.sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
            )
            .property(
                "listener.name.oauth_ssl.oauthbearer.sasl.server.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            )
            .listener("SASL", "SASL_PLAINTEXT")
            .jvm_property("org.apache.kafka.sasl.oauthbearer.allowed.urls", &jwks)
            .property(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )
            .property("super.users", "User:admin;User:ANONYMOUS;User:svc")
            .property("listener.name.oauth.sasl.enabled.mechanisms", "OAUTHBEARER")
            .property(
                "listener.name.oauth.oauthbearer.sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
            )
            .property(
                "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            )
            .property("sasl.oauthbearer.jwks.endpoint.url", &jwks)
            .property("sasl.oauthbearer.expected.audience", AUDIENCE)
            .property("sasl.oauthbearer.expected.issuer", &idp.uri())
            .property(
                "listener.name.oauth.connections.max.reauth.ms",
                &REAUTH_MS.to_string(),
            )
            .property("listener.name.sasl.sasl.enabled.mechanisms", "PLAIN")
            .property(
                "listener.name.sasl.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 user_admin=\"admin-secret\" user_alice=\"alice-secret\";",
            );
        let cluster = common::kafka_cluster_with(options);
        Setup {
            cluster,
            idp,
            https_idp,
            untrusted_idp,
            certs,
            keys,
            calls,
            log,
        }
    }
}

/// Certificate and key PEM of a server.
type Leaf = (String, String);

/// Writes `ca.pem` and the broker's `server-keystore.pem` (key, certificate for `localhost`
/// and `127.0.0.1`, CA) to `dir`; returns that leaf for the trusted token endpoint and a leaf
/// for the same names signed by another CA, for the untrusted one.
fn make_certificates(dir: &std::path::Path) -> (Leaf, Leaf) {
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        (cert, key)
    };
    let leaf = |issuer: &(rcgen::Certificate, KeyPair)| {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
        (
            format!("{}{}", cert.pem(), issuer.0.pem()),
            key.serialize_pem(),
        )
    };
    let trusted = ca("ferrokafka oauth test CA");
    let other = ca("a CA nobody trusts");
    let server = leaf(&trusted);
    std::fs::write(dir.join("ca.pem"), trusted.0.pem()).unwrap();
    std::fs::write(
        dir.join("server-keystore.pem"),
        format!("{}{}", server.1, server.0),
    )
    .unwrap();
    (server, leaf(&other))
}

fn address(listener: &str) -> String {
    setup().cluster.listener_address(1, listener)
}

fn builder(listener: &str) -> ClientBuilder {
    Client::builder()
        .bootstrap_servers(address(listener))
        .request_timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .api_timeout(Duration::from_secs(30))
}

/// An OAUTHBEARER client fetching its tokens from the test's endpoint with `id`/`secret`.
fn oidc(id: &str, secret: &str) -> ClientBuilder {
    builder("OAUTH")
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set(
            "sasl.oauthbearer.token.endpoint.url",
            &format!("{}/token", setup().idp.uri()),
        )
        .set("sasl.oauthbearer.client.id", id)
        .set("sasl.oauthbearer.client.secret", secret)
        .set("sasl.oauthbearer.scope", "kafka")
}

fn token_calls(id: &str) -> usize {
    setup().calls.lock().unwrap().get(id).copied().unwrap_or(0)
}

fn security_log() -> String {
    String::from_utf8_lossy(&setup().log.lock().unwrap()).into_owned()
}

async fn build(b: ClientBuilder) -> Client {
    within("build", b.build()).await.unwrap()
}

async fn build_err(b: ClientBuilder) -> Error {
    let started = Instant::now();
    let e = match within("build", b.build()).await {
        Ok(_) => panic!("build() succeeded"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "took {:?}: {e}",
        started.elapsed()
    );
    e
}

/// Produce, consume in a group, commit and an admin call.
async fn round_trip(client: &Client, label: &str) {
    let topic = unique_topic(label);
    within(
        "create topic",
        client.admin().create_topics(&[NewTopic::new(&topic, 1, 1)]),
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: create topic: {e}"));
    let producer = Producer::builder(client).build().await.unwrap();
    let delivery = producer
        .send(Record::new(&topic).key("k").value("v"))
        .await
        .unwrap();
    let meta = within("delivery", delivery).await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
    let consumer = Consumer::builder(client)
        .group_id(unique_topic("g"))
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(false)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).await.unwrap();
    let record = within("recv", consumer.recv()).await.unwrap();
    assert_eq!(record.offset, meta.offset);
    within("commit", consumer.commit()).await.unwrap();
    consumer.close().await.unwrap();
}

fn assert_refused(e: &Error, needle: &str) {
    assert!(
        matches!(
            e,
            Error::SaslAuthenticationFailed {
                mechanism: SaslMechanism::OAuthBearer,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_retriable(), "{e}");
    assert!(e.to_string().contains(needle), "{e}");
}

#[tokio::test]
async fn oauthbearer_with_oidc_client_credentials() {
    let before = token_calls(SVC_ID);
    let client = build(oidc(SVC_ID, SVC_SECRET)).await;
    round_trip(&client, "oauth").await;
    // One token for every connection of the client: it is cached.
    assert_eq!(token_calls(SVC_ID) - before, 1);
    client.close().await;
}

#[tokio::test]
async fn oauthbearer_from_a_jaas_line() {
    let b = builder("OAUTH")
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set(
            "sasl.login.callback.handler.class",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        )
        .set(
            "sasl.oauthbearer.token.endpoint.url",
            &format!("{}/token", setup().idp.uri()),
        )
        .set(
            "sasl.jaas.config",
            &format!(
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 clientId=\"{SVC_ID}\" clientSecret=\"{SVC_SECRET}\" scope=\"kafka\";"
            ),
        );
    let client = build(b).await;
    let topics = within("list", client.admin().list_topics()).await.unwrap();
    drop(topics);
    client.close().await;
}

/// The application's own provider, here handing out a JWT the broker has to refuse: expired
/// an hour ago although the provider claims it is fresh.
struct Stale;

#[ferrokafka::async_trait]
impl OAuthBearerTokenProvider for Stale {
    async fn token(&self) -> Result<OAuthBearerToken, TokenProviderError> {
        let jwt = setup().keys.jwt(SVC_ID, -3600, false);
        Ok(OAuthBearerToken::new(jwt, Duration::from_secs(600)))
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_by_the_broker() {
    let b = builder("OAUTH")
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .oauthbearer_token_provider(Arc::new(Stale));
    let e = build_err(b).await;
    assert_refused(&e, "invalid_token");
    // The endpoint's own expired token is caught before it is sent.
    let e = build_err(oidc("svc-expired", "expired-secret")).await;
    assert_refused(&e, "already expired");
}

#[tokio::test]
async fn a_wrongly_signed_token_is_refused_and_not_logged() {
    let e = build_err(oidc("svc-forged", "forged-secret")).await;
    assert_refused(&e, "invalid_token");
    let text = format!("{e} {e:?} {}", security_log());
    assert!(!text.contains("forged-secret"), "{text}");
    assert!(!text.contains("eyJ"), "a token was logged: {text}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_by_the_endpoint() {
    let e = build_err(oidc(SVC_ID, "not-the-secret")).await;
    assert_refused(&e, "HTTP 401: invalid_client: bad client credentials");
    assert!(!e.to_string().contains("not-the-secret"), "{e}");
}

/// The `https://` URL of the token endpoint behind `proxy`.
fn https_token_url(proxy: &TlsProxy) -> String {
    format!("https://{}/token", proxy.addr())
}

/// An OAUTHBEARER client of `listener` whose tokens come from `url`, trusting the test CA
/// (`ssl.ca.location`) for the broker and, with Mozilla's roots, for the token endpoint.
fn oidc_tls(listener: &str, protocol: &str, url: &str, id: &str, secret: &str) -> ClientBuilder {
    builder(listener)
        .set("security.protocol", protocol)
        .set("sasl.mechanism", "OAUTHBEARER")
        .set(
            "ssl.ca.location",
            setup().certs.join("ca.pem").to_str().unwrap(),
        )
        .set("sasl.oauthbearer.token.endpoint.url", url)
        .set("sasl.oauthbearer.client.id", id)
        .set("sasl.oauthbearer.client.secret", secret)
        .set("sasl.oauthbearer.scope", "kafka")
}

/// OAUTHBEARER over SASL_SSL with tokens from an `https://` endpoint whose certificate the
/// test CA signed: the client trusts it through `ssl.ca.location`, the same CA as the
/// broker's. Then the same endpoint from a SASL_PLAINTEXT client: there `ssl.ca.location`
/// serves the token endpoint alone.
#[tokio::test]
async fn oauthbearer_over_sasl_ssl_with_an_https_token_endpoint() {
    let url = https_token_url(&setup().https_idp);
    let before = token_calls("svc-tls");
    let client = build(oidc_tls(
        "OAUTH_SSL",
        "SASL_SSL",
        &url,
        "svc-tls",
        "tls-secret",
    ))
    .await;
    round_trip(&client, "oauth-ssl").await;
    // Every connection of the client authenticated with the one token fetched over https.
    assert_eq!(token_calls("svc-tls") - before, 1);
    client.close().await;

    let client = build(oidc_tls(
        "OAUTH",
        "SASL_PLAINTEXT",
        &url,
        "svc-tls",
        "tls-secret",
    ))
    .await;
    let topics = within("list topics", client.admin().list_topics())
        .await
        .unwrap();
    drop(topics);
    assert_eq!(token_calls("svc-tls") - before, 2);
    client.close().await;
}

/// A token endpoint whose certificate no trusted CA signed fails `build()` at once with a
/// TLS error naming the endpoint (not the broker, whose certificate is fine), not
/// retriable, and no token request reaches the endpoint.
#[tokio::test]
async fn an_untrusted_token_endpoint_certificate_is_a_tls_error_naming_the_endpoint() {
    let url = https_token_url(&setup().untrusted_idp);
    for (listener, protocol) in [("OAUTH_SSL", "SASL_SSL"), ("OAUTH", "SASL_PLAINTEXT")] {
        let b = oidc_tls(
            listener,
            protocol,
            &url,
            "svc-untrusted",
            "untrusted-secret",
        );
        let e = build_err(b).await;
        eprintln!("untrusted token endpoint over {protocol}: {e}");
        let Error::Tls { broker, kind, .. } = &e else {
            panic!("{protocol}: not a TLS error: {e}");
        };
        assert_eq!(*kind, TlsErrorKind::UnknownIssuer, "{e}");
        assert!(
            broker.contains("token endpoint") && broker.contains(&url),
            "names the endpoint: {e}"
        );
        assert!(!e.is_retriable(), "{e}");
        assert!(!e.to_string().contains("untrusted-secret"), "{e}");
    }
    assert_eq!(token_calls("svc-untrusted"), 0);
}

/// A consumer reading for ~3 token lifetimes (8 s tokens, 5 s sessions): its connections
/// re-authenticate in-band with refreshed tokens and it misses nothing.
#[tokio::test]
async fn reauthentication_keeps_a_long_running_consumer_going() {
    let client = build(oidc("svc-short", "short-secret")).await;
    let topic = unique_topic("reauth");
    within(
        "create topic",
        client.admin().create_topics(&[NewTopic::new(&topic, 1, 1)]),
    )
    .await
    .unwrap();
    let producer = Producer::builder(&client).build().await.unwrap();
    let consumer = Consumer::builder(&client)
        .group_id(unique_topic("g-reauth"))
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "200")
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).await.unwrap();
    let started = Instant::now();
    let mut sent = 0u32;
    let mut got = Vec::new();
    while started.elapsed() < Duration::from_secs(22) {
        let delivery = producer
            .send(Record::new(&topic).value(sent.to_string()))
            .await
            .unwrap();
        within("delivery", delivery)
            .await
            .unwrap_or_else(|e| panic!("record {sent} after {:?}: {e}", started.elapsed()));
        sent += 1;
        let r = within("recv", consumer.recv())
            .await
            .unwrap_or_else(|e| panic!("recv after {:?}: {e}", started.elapsed()));
        got.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let want: Vec<String> = (0..sent).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    let tp = TopicPartition::new(&topic, 0);
    consumer.commit().await.unwrap();
    assert_eq!(
        consumer.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        Some(sent as i64)
    );
    // Tokens of 8 s over 22 s: refreshed at 80–85 % of their lifetime.
    let tokens = token_calls("svc-short");
    assert!(tokens >= 3, "{tokens} token requests");
    let log = security_log();
    let reauths = log
        .lines()
        .filter(|l| l.contains("re-authenticated") && l.contains(&address("OAUTH")))
        .count();
    assert!(reauths >= 3, "{reauths} re-authentications:\n{log}");
    assert!(
        !log.contains("re-authentication failed"),
        "a re-authentication failed:\n{log}"
    );
    consumer.close().await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
    client.close().await;
}

// ---- Authorization (StandardAuthorizer) on the PLAIN listener ----

fn plain(user: &str, password: &str) -> ClientBuilder {
    builder("SASL")
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl(SaslMechanism::Plain, user, password)
}

/// `admin` creates `topics` and grants alice `ops` on each of the `allowed` ones.
async fn prepare(topics: &[&str], acls: Vec<AclBinding>) {
    let admin = build(plain("admin", "admin-secret")).await;
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(*t, 1, 1)).collect();
    if !new.is_empty() {
        within("create topics", admin.admin().create_topics(&new))
            .await
            .unwrap();
    }
    if !acls.is_empty() {
        within("create acls", admin.admin().create_acls(&acls))
            .await
            .unwrap();
    }
    admin.close().await;
}

fn allow(resource: AclResourceType, name: &str, op: AclOperation) -> AclBinding {
    AclBinding::new(resource, name, "User:alice", op, AclPermission::Allow)
}

/// The error is the broker's `code`, not retriable, and names `resource`.
fn assert_denied(e: &Error, code: KafkaCode, resource: &str) {
    assert_eq!(e.kafka_code(), Some(code), "{e}");
    assert!(!e.is_retriable(), "{e}");
    assert!(
        e.to_string().contains(resource),
        "{e} does not name {resource}"
    );
}

/// Retries `f` until the ACLs created just before have reached the broker (KRaft applies
/// them from the metadata log, asynchronously).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[tokio::test]
async fn a_denied_topic_fails_its_record_and_the_producer_goes_on() {
    let allowed = unique_topic("acl-ok");
    let denied = unique_topic("acl-no");
    prepare(
        &[&allowed, &denied],
        vec![
            allow(AclResourceType::Topic, &allowed, AclOperation::Write),
            allow(AclResourceType::Topic, &allowed, AclOperation::Describe),
        ],
    )
    .await;
    let client = build(plain("alice", "alice-secret")).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    eventually("produce to the allowed topic", || async {
        producer
            .send(Record::new(&allowed).value("first"))
            .await?
            .await
    })
    .await;
    let started = Instant::now();
    let e = match producer.send(Record::new(&denied).value("no")).await {
        Err(e) => e,
        Ok(delivery) => within("denied delivery", delivery).await.unwrap_err(),
    };
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert_denied(&e, KafkaCode::TopicAuthorizationFailed, &denied);
    eprintln!("denied produce: {e}");
    // The same producer still delivers to the allowed topic.
    let meta = within(
        "allowed delivery",
        producer
            .send(Record::new(&allowed).value("second"))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(meta.topic.as_ref() as &str, allowed.as_str());
    producer.close(Duration::from_secs(10)).await.unwrap();

    // Consuming the denied topic by assignment fails the same way.
    let consumer = Consumer::builder(&client)
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    let assigned = consumer.assign(&[TopicPartition::new(&denied, 0)]).await;
    let e = match assigned {
        Err(e) => e,
        Ok(()) => within("recv denied", consumer.recv()).await.unwrap_err(),
    };
    assert_denied(&e, KafkaCode::TopicAuthorizationFailed, &denied);
    eprintln!("denied fetch: {e}");
    client.close().await;
}

/// A producer that was refused a topic sends to it once the ACL is granted: the refusal in
/// its metadata cache is asked again, not trusted until the next periodic refresh.
#[tokio::test]
async fn a_topic_granted_after_a_refusal_is_written_by_the_same_producer() {
    let topic = unique_topic("acl-later");
    prepare(&[&topic], Vec::new()).await;
    let client = build(plain("alice", "alice-secret")).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    let e = match producer.send(Record::new(&topic).value("refused")).await {
        Err(e) => e,
        Ok(delivery) => within("refused delivery", delivery).await.unwrap_err(),
    };
    assert_denied(&e, KafkaCode::TopicAuthorizationFailed, &topic);
    prepare(
        &[],
        vec![
            allow(AclResourceType::Topic, &topic, AclOperation::Write),
            allow(AclResourceType::Topic, &topic, AclOperation::Describe),
        ],
    )
    .await;
    // The grant reaches the broker through the metadata log, asynchronously: a few refusals
    // may come first, but well before the 5-minute periodic refresh.
    let meta = eventually("produce after the grant", || async {
        producer
            .send(Record::new(&topic).value("granted"))
            .await?
            .await
    })
    .await;
    assert_eq!(meta.topic.as_ref() as &str, topic.as_str());
    producer.close(Duration::from_secs(10)).await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn a_denied_group_fails_subscribe_and_commit() {
    let topic = unique_topic("acl-grp");
    let group = unique_topic("denied-group");
    prepare(
        &[&topic],
        vec![
            allow(AclResourceType::Topic, &topic, AclOperation::Read),
            allow(AclResourceType::Topic, &topic, AclOperation::Describe),
        ],
    )
    .await;
    let client = build(plain("alice", "alice-secret")).await;
    let consumer = Consumer::builder(&client)
        .group_id(&group)
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    let e = match consumer.subscribe(&[&topic]).await {
        Err(e) => e,
        Ok(()) => within("recv", consumer.recv()).await.unwrap_err(),
    };
    assert_denied(&e, KafkaCode::GroupAuthorizationFailed, &group);
    eprintln!("denied group: {e}");
    client.close().await;
}

/// A commit denied while everything else is allowed. Kafka authorizes JoinGroup, Heartbeat
/// and OffsetCommit with READ on the group but FindCoordinator and OffsetFetch with DESCRIBE,
/// so the consumer whose commit alone is refused is one with assigned partitions committing
/// to a group it may only DESCRIBE (a group member without READ could not join at all; that
/// is `a_denied_group_fails_subscribe_and_commit`). The commit fails with a typed,
/// non-retriable GROUP_AUTHORIZATION_FAILED naming the group; the consumer keeps fetching
/// without a gap, and once READ is granted the same consumer commits its position.
#[tokio::test]
async fn a_denied_commit_alone_fails_typed_and_the_consumer_goes_on() {
    let topic = unique_topic("acl-commit");
    let group = unique_topic("describe-only");
    prepare(
        &[&topic],
        vec![
            allow(AclResourceType::Topic, &topic, AclOperation::Read),
            allow(AclResourceType::Topic, &topic, AclOperation::Describe),
            allow(AclResourceType::Group, &group, AclOperation::Describe),
        ],
    )
    .await;
    let admin = build(plain("admin", "admin-secret")).await;
    let producer = Producer::builder(&admin).build().await.unwrap();
    for i in 0..4 {
        let delivery = producer
            .send(Record::new(&topic).value(format!("r{i}")))
            .await
            .unwrap();
        within("delivery", delivery).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    let client = build(plain("alice", "alice-secret")).await;
    let consumer = Consumer::builder(&client)
        .group_id(&group)
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(false)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new(&topic, 0);
    // DESCRIBE on the group (OffsetFetch) once the ACLs have reached the broker.
    let none = eventually("committed offsets (DESCRIBE)", || {
        consumer.committed(std::slice::from_ref(&tp))
    })
    .await;
    assert_eq!(none[&tp], None);
    consumer.assign(std::slice::from_ref(&tp)).await.unwrap();
    let value =
        |r: ferrokafka::ConsumerRecord| String::from_utf8(r.value.unwrap().to_vec()).unwrap();
    for want in ["r0", "r1"] {
        let r = within("recv", consumer.recv()).await.unwrap();
        assert_eq!(value(r), want);
    }

    let started = Instant::now();
    let e = within("denied commit", consumer.commit())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert_denied(&e, KafkaCode::GroupAuthorizationFailed, &group);
    eprintln!("denied commit: {e}");
    // Nothing was stored, and the consumer reads on from where it was.
    let after = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(after[&tp], None);
    let r = within("recv after the denied commit", consumer.recv())
        .await
        .unwrap();
    assert_eq!(value(r), "r2");

    prepare(
        &[],
        vec![allow(AclResourceType::Group, &group, AclOperation::Read)],
    )
    .await;
    eventually("commit after the grant", || consumer.commit()).await;
    let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(committed[&tp], Some(3), "the position after r2");
    let r = within("recv after the grant", consumer.recv())
        .await
        .unwrap();
    assert_eq!(value(r), "r3");
    consumer.close().await.unwrap();
    client.close().await;
    admin.close().await;
}

#[tokio::test]
async fn a_denied_transactional_id_fails_init() {
    let topic = unique_topic("acl-txn");
    let txn = unique_topic("denied-txn");
    prepare(
        &[&topic],
        vec![allow(AclResourceType::Topic, &topic, AclOperation::Write)],
    )
    .await;
    let client = build(plain("alice", "alice-secret")).await;
    let producer = Producer::builder(&client)
        .set("transactional.id", &txn)
        .build()
        .await
        .unwrap();
    let e = within("init", producer.init_transactions())
        .await
        .unwrap_err();
    assert_denied(&e, KafkaCode::TransactionalIdAuthorizationFailed, &txn);
    eprintln!("denied transactional id: {e}");
    client.close().await;
}

#[tokio::test]
async fn cluster_actions_are_denied_with_the_resource_named() {
    let client = build(plain("alice", "alice-secret")).await;
    let binding = allow(AclResourceType::Topic, "anything", AclOperation::Read);
    let e = within("create acls", client.admin().create_acls(&[binding]))
        .await
        .unwrap_err();
    assert_denied(&e, KafkaCode::ClusterAuthorizationFailed, "TOPIC:anything");
    eprintln!("denied cluster action: {e}");
    let topic = unique_topic("acl-create");
    let e = within(
        "create topic",
        client.admin().create_topics(&[NewTopic::new(&topic, 1, 1)]),
    )
    .await
    .unwrap_err();
    assert_denied(&e, KafkaCode::TopicAuthorizationFailed, &topic);
    eprintln!("denied topic creation: {e}");
    client.close().await;
}
