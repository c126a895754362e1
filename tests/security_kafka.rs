//! TLS and SASL against one real Apache Kafka node with several listeners.
//!
//! The node (shared by every test here) has, next to the harness's PLAINTEXT listener:
//! `SSL` (server certificate only), `MTLS` (SSL with `ssl.client.auth=required`),
//! `SASL_PLAINTEXT` and `SASL_SSL`, each SASL listener with PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512, and two SSL listeners serving bad dates: `EXPIRED` (a certificate whose
//! validity ended in 2021) and `NOTYET` (one valid from 2090). Certificates are made at test
//! time with rcgen: a throw-away CA, server certificates for `localhost` and `127.0.0.1`, a
//! client certificate, and a second CA nobody trusts. SCRAM users are created when the
//! storage is formatted.
//!
//! Happy paths: produce, consume in a group, commit, and an admin call over each listener ×
//! mechanism. Bad input: each fails `build()` with a typed error within the request timeout.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{unique_topic, within, KafkaCluster, KafkaOptions};
use ferrokafka::{
    Client, ClientBuilder, Consumer, Error, NewTopic, OffsetReset, Producer, Record, SaslMechanism,
    SecurityProtocol, TlsErrorKind, TopicPartition,
};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                          user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
const SCRAM_JAAS: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
/// The password of the encrypted copy of the client key.
const KEY_PASSWORD: &str = "key-password-123";
/// Every failure must come back well within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Setup {
    cluster: KafkaCluster,
    certs: PathBuf,
}

/// PEM files written by [`make_certificates`].
fn cert(name: &str) -> PathBuf {
    setup().certs.join(name)
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let certs = std::env::temp_dir().join(format!("ferrokafka-certs-{}", std::process::id()));
        std::fs::create_dir_all(&certs).unwrap();
        make_certificates(&certs);
        let mut options = KafkaOptions::new(1, common::logs_dir())
            .listener("SSL", "SSL")
            .listener("MTLS", "SSL")
            .listener("SASL_PLAINTEXT", "SASL_PLAINTEXT")
            .listener("SASL_SSL", "SASL_SSL")
            .property("ssl.keystore.type", "PEM")
            .property(
                "ssl.keystore.location",
                &certs.join("server-keystore.pem").display().to_string(),
            )
            .property("ssl.truststore.type", "PEM")
            .property(
                "ssl.truststore.location",
                &certs.join("ca.pem").display().to_string(),
            )
            .listener("EXPIRED", "SSL")
            .listener("NOTYET", "SSL")
            // Kafka starts with these: it does not check its own certificate's dates (JSSE
            // serves whatever the keystore holds), so the client's check is what is tested.
            .property(
                "listener.name.expired.ssl.keystore.location",
                &certs.join("expired-keystore.pem").display().to_string(),
            )
            .property(
                "listener.name.notyet.ssl.keystore.location",
                &certs.join("notyet-keystore.pem").display().to_string(),
            )
            .property("listener.name.mtls.ssl.client.auth", "required")
            .property(
                "sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            );
        for l in ["sasl_plaintext", "sasl_ssl"] {
            options = options
                .property(
                    &format!("listener.name.{l}.plain.sasl.jaas.config"),
                    PLAIN_JAAS,
                )
                .property(
                    &format!("listener.name.{l}.scram-sha-256.sasl.jaas.config"),
                    SCRAM_JAAS,
                )
                .property(
                    &format!("listener.name.{l}.scram-sha-512.sasl.jaas.config"),
                    SCRAM_JAAS,
                );
        }
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            for (user, password) in [("alice", "alice-secret"), ("bob", "bob-secret")] {
                options.format_args.push("--add-scram".into());
                options
                    .format_args
                    .push(format!("{mechanism}=[name={user},password={password}]"));
            }
        }
        let cluster = common::kafka_cluster_with(options);
        Setup { cluster, certs }
    })
}

/// A CA, a server certificate (SAN `localhost`, `127.0.0.1`) with its key in one PEM file as
/// Kafka's PEM keystore wants it, a client certificate with its key (plain and encrypted
/// PKCS#8), and an unrelated CA.
fn make_certificates(dir: &Path) {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferrokafka test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    write("ca.pem", &ca.pem());

    // The good server certificate, and two signed by the same CA whose dates are wrong: one
    // that ran out at the end of 2020, one valid only from 2090 on.
    for (file, dates) in [
        ("server-keystore.pem", None),
        (
            "expired-keystore.pem",
            Some((date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1))),
        ),
        (
            "notyet-keystore.pem",
            Some((date_time_ymd(2090, 1, 1), date_time_ymd(2091, 1, 1))),
        ),
    ] {
        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        if let Some((not_before, not_after)) = dates {
            server_params.not_before = not_before;
            server_params.not_after = not_after;
        }
        let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
        write(
            file,
            &format!("{}{}{}", server_key.serialize_pem(), server.pem(), ca.pem()),
        );
    }

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "ferrokafka-client");
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
    write("client.pem", &client.pem());
    write("client.key", &client_key.serialize_pem());
    // The same key as encrypted PKCS#8 (PBES2: PBKDF2-SHA256 + AES-256-CBC), as
    // `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it.
    let der = client_key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7u8; 16])
            .unwrap();
    let encrypted = info.encrypt_with_params(params, KEY_PASSWORD).unwrap();
    let pem = encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .unwrap();
    write("client-encrypted.key", &pem);

    let other_key = KeyPair::generate().unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    other_params
        .distinguished_name
        .push(DnType::CommonName, "somebody else's CA");
    write(
        "other-ca.pem",
        &other_params.self_signed(&other_key).unwrap().pem(),
    );
}

fn address(listener: &str) -> String {
    setup().cluster.listener_address(1, listener)
}

fn builder(bootstrap: &str) -> ClientBuilder {
    Client::builder()
        .bootstrap_servers(bootstrap)
        .request_timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .api_timeout(Duration::from_secs(30))
}

/// Produce, consume in a group, commit, and admin calls, all through `client`.
async fn round_trip(client: Client, label: &str) {
    let topic = unique_topic(label);
    within(
        "create topic",
        client.admin().create_topics(&[NewTopic::new(&topic, 1, 1)]),
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: create topic: {e}"));
    let producer = Producer::builder(&client).build().await.unwrap();
    let value = format!("over {label}");
    let delivery = producer
        .send(Record::new(&topic).key("k").value(value.clone()))
        .await
        .unwrap();
    let meta = within("delivery", delivery)
        .await
        .unwrap_or_else(|e| panic!("{label}: produce: {e}"));
    producer.close(Duration::from_secs(10)).await.unwrap();

    let group = unique_topic("g");
    let consumer = Consumer::builder(&client)
        .group_id(&group)
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(false)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).await.unwrap();
    let record = within("recv", consumer.recv())
        .await
        .unwrap_or_else(|e| panic!("{label}: consume: {e}"));
    assert_eq!(record.offset, meta.offset);
    assert_eq!(record.value.as_deref(), Some(value.as_bytes()), "{label}");
    within("commit", consumer.commit())
        .await
        .unwrap_or_else(|e| panic!("{label}: commit: {e}"));
    let tp = TopicPartition::new(&topic, 0);
    let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(committed[&tp], Some(meta.offset + 1), "{label}");
    consumer.close().await.unwrap();

    let topics = within("list topics", client.admin().list_topics())
        .await
        .unwrap();
    assert!(topics.contains(&topic), "{label}: {topics:?}");
    client.close().await;
}

async fn build(b: ClientBuilder) -> Client {
    within("build", b.build()).await.unwrap()
}

#[tokio::test]
async fn ssl_with_a_ca_file() {
    let b = builder(&address("SSL"))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"));
    round_trip(build(b).await, "ssl").await;
}

#[tokio::test]
async fn ssl_by_properties_with_an_inline_ca_and_the_localhost_name() {
    let ca = std::fs::read_to_string(cert("ca.pem")).unwrap();
    // `localhost` is in the certificate too; the advertised 127.0.0.1 is used after bootstrap.
    let port = address("SSL").rsplit_once(':').unwrap().1.to_owned();
    let b = ClientBuilder::from_properties([
        ("bootstrap.servers", format!("localhost:{port}")),
        ("security.protocol", "SSL".into()),
        ("ssl.ca.pem", ca),
        ("ssl.endpoint.identification.algorithm", "https".into()),
    ]);
    round_trip(build(b).await, "ssl-props").await;
}

#[tokio::test]
async fn mtls_with_a_client_certificate() {
    let b = builder(&address("MTLS"))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"))
        .ssl_client_cert_location(cert("client.pem"), cert("client.key"));
    round_trip(build(b).await, "mtls").await;
}

#[tokio::test]
async fn mtls_with_an_encrypted_key_by_properties() {
    let b = builder(&address("MTLS"))
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", cert("ca.pem").to_str().unwrap())
        .set(
            "ssl.certificate.location",
            cert("client.pem").to_str().unwrap(),
        )
        .set(
            "ssl.key.location",
            cert("client-encrypted.key").to_str().unwrap(),
        )
        .set("ssl.key.password", KEY_PASSWORD);
    round_trip(build(b).await, "mtls-enc").await;
}

fn sasl(listener: &str, mechanism: SaslMechanism, user: &str, password: &str) -> ClientBuilder {
    let protocol = if listener == "SASL_SSL" {
        SecurityProtocol::SaslSsl
    } else {
        SecurityProtocol::SaslPlaintext
    };
    let mut b = builder(&address(listener))
        .security_protocol(protocol)
        .sasl(mechanism, user, password);
    if protocol == SecurityProtocol::SaslSsl {
        b = b.ssl_ca_location(cert("ca.pem"));
    }
    b
}

#[tokio::test]
async fn sasl_plaintext_plain() {
    let b = sasl(
        "SASL_PLAINTEXT",
        SaslMechanism::Plain,
        "alice",
        "alice-secret",
    );
    round_trip(build(b).await, "sp-plain").await;
}

#[tokio::test]
async fn sasl_plaintext_scram_sha256() {
    let b = sasl(
        "SASL_PLAINTEXT",
        SaslMechanism::ScramSha256,
        "alice",
        "alice-secret",
    );
    round_trip(build(b).await, "sp-s256").await;
}

#[tokio::test]
async fn sasl_plaintext_scram_sha512_from_a_jaas_line() {
    let b = builder(&address("SASL_PLAINTEXT"))
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"bob\" password=\"bob-secret\";",
        );
    round_trip(build(b).await, "sp-s512").await;
}

#[tokio::test]
async fn sasl_ssl_plain_from_a_jaas_line() {
    // The Confluent Cloud shape: SASL_SSL, PLAIN, credentials in sasl.jaas.config.
    let b = builder(&address("SASL_SSL"))
        .set("security.protocol", "SASL_SSL")
        .set("ssl.ca.location", cert("ca.pem").to_str().unwrap())
        .set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"bob\" password=\"bob-secret\";",
        );
    round_trip(build(b).await, "ss-plain").await;
}

#[tokio::test]
async fn sasl_ssl_scram_sha256() {
    let b = sasl(
        "SASL_SSL",
        SaslMechanism::ScramSha256,
        "alice",
        "alice-secret",
    );
    round_trip(build(b).await, "ss-s256").await;
}

#[tokio::test]
async fn sasl_ssl_scram_sha512() {
    let b = sasl(
        "SASL_SSL",
        SaslMechanism::ScramSha512,
        "alice",
        "alice-secret",
    );
    round_trip(build(b).await, "ss-s512").await;
}

/// Builds a client expected to fail; returns the error after checking it came in time.
async fn refused(b: ClientBuilder, what: &str) -> Error {
    let started = Instant::now();
    let result = tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(5), b.build())
        .await
        .unwrap_or_else(|_| panic!("{what}: build() hung"));
    let elapsed = started.elapsed();
    let e = match result {
        Ok(_) => panic!("{what}: build() succeeded"),
        Err(e) => e,
    };
    eprintln!("{what}: {e} (after {} ms)", elapsed.as_millis());
    assert!(elapsed < REQUEST_TIMEOUT, "{what} took {elapsed:?}: {e}");
    assert!(!e.is_retriable(), "{what}: {e}");
    e
}

#[tokio::test]
async fn wrong_passwords_are_refused_with_the_brokers_message() {
    for (listener, mechanism) in [
        ("SASL_PLAINTEXT", SaslMechanism::Plain),
        ("SASL_SSL", SaslMechanism::Plain),
        ("SASL_PLAINTEXT", SaslMechanism::ScramSha256),
        ("SASL_SSL", SaslMechanism::ScramSha512),
    ] {
        let b = sasl(listener, mechanism, "alice", "not-alices-secret");
        let debug = format!("{b:?}");
        assert!(!debug.contains("not-alices-secret"), "{debug}");
        let what = format!("wrong password, {listener} {mechanism}");
        let e = refused(b, &what).await;
        let Error::SaslAuthenticationFailed {
            mechanism: m,
            message,
            ..
        } = &e
        else {
            panic!("{what}: {e}");
        };
        assert_eq!(*m, mechanism);
        assert!(message.contains("Authentication failed"), "{what}: {e}");
        assert!(!format!("{e} {e:?}").contains("not-alices-secret"), "{e}");
    }
}

#[tokio::test]
async fn unknown_users_are_refused() {
    for mechanism in [SaslMechanism::Plain, SaslMechanism::ScramSha512] {
        let b = sasl("SASL_SSL", mechanism, "mallory", "mallory-secret");
        let what = format!("unknown user, {mechanism}");
        let e = refused(b, &what).await;
        assert!(
            matches!(e, Error::SaslAuthenticationFailed { .. }),
            "{what}: {e}"
        );
        assert!(
            e.to_string().contains("Authentication failed"),
            "{what}: {e}"
        );
    }
}

#[tokio::test]
async fn a_mechanism_without_users_is_refused() {
    // SCRAM-SHA-256 is enabled but carol has no SCRAM-SHA-256 credential.
    let b = sasl("SASL_PLAINTEXT", SaslMechanism::ScramSha256, "carol", "x");
    let e = refused(b, "no credential").await;
    assert!(matches!(e, Error::SaslAuthenticationFailed { .. }), "{e}");
}

fn tls_kind(e: &Error) -> Option<TlsErrorKind> {
    match e {
        Error::Tls { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[tokio::test]
async fn an_untrusted_ca_is_unknown_issuer() {
    for listener in ["SSL", "SASL_SSL"] {
        let mut b = builder(&address(listener)).ssl_ca_location(cert("other-ca.pem"));
        b = if listener == "SSL" {
            b.security_protocol(SecurityProtocol::Ssl)
        } else {
            b.security_protocol(SecurityProtocol::SaslSsl).sasl(
                SaslMechanism::Plain,
                "alice",
                "alice-secret",
            )
        };
        let e = refused(b, &format!("untrusted CA on {listener}")).await;
        assert_eq!(tls_kind(&e), Some(TlsErrorKind::UnknownIssuer), "{e}");
        assert!(e.to_string().contains("ssl.ca.location"), "{e}");
    }
    // Mozilla's roots do not know the test CA either.
    let b = builder(&address("SSL")).security_protocol(SecurityProtocol::Ssl);
    let e = refused(b, "default roots").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::UnknownIssuer), "{e}");
}

/// The `EXPIRED` listener serves a certificate signed by the trusted CA whose validity ended
/// on 2021-01-01: `build()` fails at once (no retry can fix a date) with the `Expired` kind and
/// a message saying when it expired. The same over `NOTYET`, valid only from 2090.
#[tokio::test]
async fn an_expired_or_not_yet_valid_certificate_is_refused_with_its_date() {
    let b = builder(&address("EXPIRED"))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"));
    let e = refused(b, "expired server certificate").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::Expired), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("expired at 2021-01-01 00:00:00 UTC"),
        "the message says when: {text}"
    );
    assert!(text.contains("127.0.0.1"), "{text}");
    // Turning the host name check off changes nothing about dates.
    let b = builder(&address("EXPIRED"))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"))
        .ssl_hostname_verification(false);
    let e = refused(b, "expired, no hostname check").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::Expired), "{e}");

    let b = builder(&address("NOTYET"))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"));
    let e = refused(b, "not yet valid server certificate").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::Expired), "{e}");
    assert!(
        e.to_string()
            .contains("not valid yet: valid from 2090-01-01 00:00:00 UTC"),
        "{e}"
    );
}

/// A forwarder on 127.0.0.2 (loopback, but not in the server certificate) to `target`.
async fn forward_from_127_0_0_2(target: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_host_not_in_the_certificate_is_a_mismatch_unless_verification_is_off() {
    let via = forward_from_127_0_0_2(address("SSL")).await;
    let b = builder(&via)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"));
    let e = refused(b, "hostname mismatch").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::HostnameMismatch), "{e}");
    assert!(e.to_string().contains("127.0.0.2"), "{e}");
    // Turned off explicitly, the same address works (the CA is still checked).
    let b = builder(&via)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"))
        .set("ssl.endpoint.identification.algorithm", "none");
    let client = build(b).await;
    within("list topics", client.admin().list_topics())
        .await
        .unwrap();
    client.close().await;
    let b = builder(&via)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("other-ca.pem"))
        .ssl_hostname_verification(false);
    let e = refused(b, "no hostname check, untrusted CA").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::UnknownIssuer), "{e}");
}

#[tokio::test]
async fn a_tls_client_on_a_plaintext_port_is_told_so() {
    let plaintext = setup().cluster.address(1);
    let b = builder(&plaintext)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"));
    let e = refused(b, "TLS client on a plaintext port").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::NotTls), "{e}");
}

#[tokio::test]
async fn a_plaintext_client_on_a_tls_port_is_told_so() {
    for listener in ["SSL", "SASL_SSL"] {
        let mut b = builder(&address(listener));
        if listener == "SASL_SSL" {
            b = b.security_protocol(SecurityProtocol::SaslPlaintext).sasl(
                SaslMechanism::Plain,
                "alice",
                "alice-secret",
            );
        }
        let e = refused(b, &format!("plaintext client on {listener}")).await;
        assert_eq!(tls_kind(&e), Some(TlsErrorKind::ListenerExpectsTls), "{e}");
        assert!(e.to_string().contains("security.protocol"), "{e}");
    }
}

#[tokio::test]
async fn a_missing_client_certificate_is_refused_by_the_mtls_listener() {
    let b = builder(&address("MTLS"))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_location(cert("ca.pem"));
    let e = refused(b, "no client certificate").await;
    assert_eq!(tls_kind(&e), Some(TlsErrorKind::HandshakeRefused), "{e}");
}

#[tokio::test]
async fn a_wrong_key_password_fails_build_naming_the_key() {
    let b = builder(&address("MTLS"))
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", cert("ca.pem").to_str().unwrap())
        .set(
            "ssl.certificate.location",
            cert("client.pem").to_str().unwrap(),
        )
        .set(
            "ssl.key.location",
            cert("client-encrypted.key").to_str().unwrap(),
        )
        .set("ssl.key.password", "wrong-key-password");
    let e = refused(b, "wrong key password").await;
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(
        e.to_string().contains("ssl.key.location: cannot decrypt"),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong-key-password"), "{e}");
}
