//! TLS to brokers: rustls through tokio-rustls, with the `ring` crypto provider.
//!
//! Why `ring`: rustls' default provider, aws-lc-rs, builds a large C library with cmake (and
//! on some targets needs Go or NASM); ring's small C/assembly core builds with `cc` alone, so
//! `cargo build` stays the only step, as the crate promises. No OpenSSL anywhere.
//!
//! [`client_config`] turns the `ssl.*` settings into a rustls configuration at `build()`,
//! reading every file then (an unreadable or malformed one is a config error naming its key).
//! [`TlsConnector`] wraps the TCP connector: it connects, then runs the handshake with SNI and
//! the certificate check against the broker's host from its address (the advertised host from
//! metadata, or the bootstrap entry). The pool's connect timeout covers the handshake.
//!
//! Failures are sorted into [`TlsErrorKind`] (unknown issuer, host name mismatch, expired,
//! refused by the broker, not TLS at all) so the caller learns what to fix; they are not
//! retriable (see `classify.rs`). With TLS 1.3 the broker checks a client certificate only
//! after the client considers the handshake done, so a refusal (e.g. no client certificate on
//! an mTLS listener) arrives as an alert on the first read, the ApiVersions handshake:
//! [`refine`] recognises rustls' error there too.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::warn;

use super::config::{Pem, SecurityConfig};
use super::secret::Secret;
use crate::client::pool::{BoxStream, ConnectFuture, Connector};
use crate::error::{Error, Result};

/// What went wrong in a TLS handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The broker's certificate does not chain to a trusted CA (`ssl.ca.location`).
    UnknownIssuer,
    /// The broker's certificate does not name the host connected to.
    HostnameMismatch,
    /// The broker's certificate has expired or is not valid yet.
    Expired,
    /// The broker's certificate is invalid in another way (bad signature, wrong purpose…).
    BadCertificate,
    /// The broker refused the handshake with an alert (e.g. it requires a client certificate
    /// that was not given, or does not trust the one that was).
    HandshakeRefused,
    /// The peer does not speak TLS: a plaintext listener, or something else on the port.
    NotTls,
    /// The other way round: a plaintext client (`security.protocol` PLAINTEXT or
    /// SASL_PLAINTEXT) reached a TLS listener, which answered with a TLS record.
    ListenerExpectsTls,
    /// Any other TLS failure.
    Other,
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsErrorKind::UnknownIssuer => "unknown issuer",
            TlsErrorKind::HostnameMismatch => "host name mismatch",
            TlsErrorKind::Expired => "certificate expired or not yet valid",
            TlsErrorKind::BadCertificate => "bad certificate",
            TlsErrorKind::HandshakeRefused => "handshake refused",
            TlsErrorKind::NotTls => "peer is not speaking TLS",
            TlsErrorKind::ListenerExpectsTls => "the listener expects TLS",
            TlsErrorKind::Other => "TLS error",
        })
    }
}

/// A handshake failure carried through the connector's `io::Error` to the pool, which turns it
/// into [`Error::Tls`].
#[derive(Debug)]
struct TlsFailure {
    kind: TlsErrorKind,
    detail: String,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for TlsFailure {}

/// The crypto provider every TLS configuration here uses; passed explicitly, so an
/// application that installs another process-wide default is not affected (and vice versa).
///
/// rustls 0.23.48 deprecated ring's provider because it offers no post-quantum key exchange
/// (X25519MLKEM768, which only aws-lc-rs has); classic ECDHE (X25519, P-256, P-384) remains,
/// which every Kafka broker's JVM offers. The trade for a cmake-free build is deliberate.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration from the `ssl.*` settings, reading files now.
pub(crate) fn client_config(sec: &SecurityConfig) -> Result<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    match &sec.ca {
        Some(pem) => {
            let key = pem.key("ssl.ca");
            let text = read(pem, &key)?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(text.expose().as_bytes()) {
                let cert = cert.map_err(|e| Error::config(format!("{key}: bad PEM: {e}")))?;
                roots.add(cert).map_err(|e| {
                    Error::config(format!("{key}: not a usable CA certificate: {e}"))
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(Error::config(format!(
                    "{key}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
                )));
            }
        }
        // Mozilla's root program, compiled in: the same answer on every platform, and no
        // dependency on a system trust store that containers often lack.
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?;
    let builder = if sec.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        warn!(
            "ssl.endpoint.identification.algorithm=none: broker certificates are checked \
             against the CA but not against the broker's host name"
        );
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| Error::config(format!("TLS: cannot build the verifier: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameCheck { inner }))
    };
    let config = match (&sec.certificate, &sec.key) {
        (Some(cert), Some(key)) => {
            let cert_key = cert.key("ssl.certificate");
            let text = read(cert, &cert_key)?;
            let chain = CertificateDer::pem_slice_iter(text.expose().as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::config(format!("{cert_key}: bad PEM: {e}")))?;
            if chain.is_empty() {
                return Err(Error::config(format!(
                    "{cert_key}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
                )));
            }
            let key_name = key.key("ssl.key");
            let private =
                private_key(&read(key, &key_name)?, sec.key_password.as_ref(), &key_name)?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                Error::config(format!(
                    "{key_name}: the key cannot be used with {cert_key}: {e}"
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The rustls configuration for HTTPS to an OIDC token endpoint: Mozilla's roots plus the
/// `ssl.ca.*` certificates when set (a company CA often signs both the brokers and the
/// identity provider), host names always verified, no client certificate.
pub(crate) fn https_client_config(sec: &SecurityConfig) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &sec.ca {
        let key = pem.key("ssl.ca");
        let text = read(pem, &key)?;
        for cert in CertificateDer::pem_slice_iter(text.expose().as_bytes()) {
            let cert = cert.map_err(|e| Error::config(format!("{key}: bad PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::config(format!("{key}: not a usable CA certificate: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The PEM text of a setting: the file's contents or the inline value.
fn read(pem: &Pem, key: &str) -> Result<Secret> {
    match pem {
        Pem::Inline(text) => Ok(text.clone()),
        Pem::File(path) => std::fs::read_to_string(path)
            .map(Secret::new)
            .map_err(|e| Error::config(format!("{key}: cannot read {}: {e}", path.display()))),
    }
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The private key in `text`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM, or encrypted PKCS#8
/// (PBES2, as `openssl pkcs8 -topk8` and Java's tools write) decrypted with `password`.
fn private_key(
    text: &Secret,
    password: Option<&Secret>,
    key: &str,
) -> Result<PrivateKeyDer<'static>> {
    let text = text.expose();
    if let Some(start) = text.find(ENCRYPTED_BEGIN) {
        let Some(password) = password else {
            return Err(Error::config(format!(
                "{key}: the private key is encrypted: set ssl.key.password"
            )));
        };
        let end = text[start..]
            .find(ENCRYPTED_END)
            .map(|i| start + i + ENCRYPTED_END.len())
            .ok_or_else(|| {
                Error::config(format!("{key}: the encrypted key's PEM is not closed"))
            })?;
        let (_, der) = pkcs8::der::pem::decode_vec(&text.as_bytes()[start..end])
            .map_err(|e| Error::config(format!("{key}: bad PEM: {e}")))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| Error::config(format!("{key}: not an encrypted PKCS#8 key: {e}")))?;
        let plain = info.decrypt(password.expose().as_bytes()).map_err(|_| {
            // The cipher's error says nothing useful and a wrong password is the usual cause.
            Error::config(format!(
                "{key}: cannot decrypt the private key: wrong ssl.key.password, or an \
                 encryption scheme other than PBES2 (PBKDF2 or scrypt with AES-CBC)"
            ))
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") && text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::config(format!(
            "{key}: legacy OpenSSL-encrypted PEM keys are not supported: convert with \
             `openssl pkcs8 -topk8 -v2 aes-256-cbc` (encrypted PKCS#8)"
        )));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| {
        Error::config(format!(
            "{key}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM) found: {e}"
        ))
    })
}

/// CA verification without the host name check (`ssl.endpoint.identification.algorithm=none`):
/// the chain, validity dates and signatures are still checked by webpki; only a name mismatch
/// is forgiven. webpki checks the name after the chain, so the error says the chain was good.
#[derive(Debug)]
struct NoHostnameCheck {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NoHostnameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// TCP, then a TLS handshake.
pub(crate) struct TlsConnector {
    tcp: Arc<dyn Connector>,
    tls: tokio_rustls::TlsConnector,
}

impl TlsConnector {
    pub(crate) fn new(tcp: Arc<dyn Connector>, config: Arc<rustls::ClientConfig>) -> TlsConnector {
        TlsConnector {
            tcp,
            tls: tokio_rustls::TlsConnector::from(config),
        }
    }
}

impl Connector for TlsConnector {
    fn connect(&self, addr: &str) -> ConnectFuture {
        let host = host_of(addr).to_owned();
        let tcp = self.tcp.connect(addr);
        let tls = self.tls.clone();
        Box::pin(async move {
            // An IP address is verified against the certificate's IP SANs and sends no SNI;
            // a name is sent as SNI and verified against its DNS SANs.
            let name = ServerName::try_from(host.clone()).map_err(|_| {
                failure(
                    TlsErrorKind::Other,
                    format!("`{host}` is not a valid host name for TLS"),
                )
            })?;
            let stream = tcp.await?;
            match tls.connect(name, stream).await {
                Ok(s) => Ok(Box::new(s) as BoxStream),
                Err(e) => Err(handshake_error(e, &host)),
            }
        })
    }
}

fn failure(kind: TlsErrorKind, detail: String) -> io::Error {
    io::Error::other(TlsFailure { kind, detail })
}

/// Sorts an error from the handshake. The connection closing mid-handshake means the peer
/// did not like our ClientHello: a Kafka plaintext listener reads it as an oversized request
/// and hangs up.
fn handshake_error(e: io::Error, host: &str) -> io::Error {
    if let Some((kind, detail)) = from_rustls_io(&e, host) {
        return failure(kind, detail);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => failure(
            TlsErrorKind::NotTls,
            format!(
                "the broker closed the connection during the TLS handshake ({e}): is this a \
                 plaintext listener? security.protocol SSL and SASL_SSL need a TLS listener"
            ),
        ),
        _ => e,
    }
}

fn from_rustls_io(e: &io::Error, host: &str) -> Option<(TlsErrorKind, String)> {
    let inner = e.get_ref()?;
    if let Some(f) = inner.downcast_ref::<TlsFailure>() {
        return Some((f.kind, f.detail.clone()));
    }
    inner
        .downcast_ref::<rustls::Error>()
        .map(|r| from_rustls(r, host))
}

/// What a rustls error means for the user, with a hint at the setting to look at.
fn from_rustls(e: &rustls::Error, host: &str) -> (TlsErrorKind, String) {
    use rustls::AlertDescription as Alert;
    use rustls::Error as R;
    use TlsErrorKind as K;
    match e {
        R::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => (
                K::UnknownIssuer,
                format!(
                    "the certificate of {host} is not signed by a trusted CA ({e}); set \
                     ssl.ca.location to the CA that issued it"
                ),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    K::HostnameMismatch,
                    format!(
                    "the certificate is not valid for `{host}` ({e}); connect by a name it lists, \
                     or turn the check off with ssl.endpoint.identification.algorithm=none"
                ),
                )
            }
            CertificateError::ExpiredContext { time, not_after } => (
                K::Expired,
                format!(
                    "the certificate of {host} expired at {} ({} ago); the broker must \
                     serve a renewed certificate (or this machine's clock is wrong)",
                    utc(not_after.as_secs()),
                    ago(time.as_secs().saturating_sub(not_after.as_secs())),
                ),
            ),
            CertificateError::Expired => (
                K::Expired,
                format!(
                    "the certificate of {host} has expired ({e}); the broker must serve a \
                     renewed certificate (or this machine's clock is wrong)"
                ),
            ),
            CertificateError::NotValidYetContext { time, not_before } => (
                K::Expired,
                format!(
                    "the certificate of {host} is not valid yet: valid from {} ({} from \
                     now); check this machine's clock and the certificate's dates",
                    utc(not_before.as_secs()),
                    ago(not_before.as_secs().saturating_sub(time.as_secs())),
                ),
            ),
            CertificateError::NotValidYet => (
                K::Expired,
                format!(
                    "the certificate of {host} is not valid yet ({e}); check this machine's \
                     clock and the certificate's dates"
                ),
            ),
            _ => (K::BadCertificate, format!("the certificate of {host}: {e}")),
        },
        R::AlertReceived(Alert::CertificateRequired) => (
            K::HandshakeRefused,
            format!(
                "{host} requires a client certificate ({e}); set ssl.certificate.location and \
                 ssl.key.location"
            ),
        ),
        R::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::UnsupportedCertificate,
        ) => (
            K::HandshakeRefused,
            format!("{host} refused the client certificate ({e})"),
        ),
        R::AlertReceived(_) => (
            K::HandshakeRefused,
            format!("{host} refused the handshake ({e})"),
        ),
        R::InvalidMessage(_)
        | R::InappropriateMessage { .. }
        | R::InappropriateHandshakeMessage { .. } => (
            K::NotTls,
            format!(
                "{host} does not speak TLS ({e}): is this a plaintext listener? use \
                 security.protocol PLAINTEXT or SASL_PLAINTEXT for it"
            ),
        ),
        _ => (K::Other, format!("with {host}: {e}")),
    }
}

/// A UNIX time as `YYYY-MM-DD HH:MM:SS UTC`: certificate dates are read by people, who should
/// not have to convert seconds since 1970 to see that a certificate ran out last March.
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (the era-based method: 400-year
    // eras of 146,097 days, years starting on 1 March so the leap day comes last).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// A span of seconds in the largest whole unit that fits, for "expired 3 days ago".
fn ago(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 2 * 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// The host part of `host:port` / `[v6]:port`.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The error for a failed connector call: a TLS failure becomes [`Error::Tls`], anything
/// else the usual [`Error::Connect`].
pub(crate) fn connect_error(broker: Arc<str>, e: io::Error) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<TlsFailure>()) {
        Some(f) => Error::Tls {
            broker,
            kind: f.kind,
            detail: f.detail.clone().into(),
        },
        None => Error::Connect {
            broker,
            source: Arc::new(e),
        },
    }
}

/// Whether a response "length" is really the start of a TLS record: content type alert (21)
/// or handshake (22), then protocol major version 3. A Kafka TLS listener answers a plaintext
/// ApiVersions request with a TLS alert, which the frame reader takes for a length of about
/// 350 MB and refuses as too large.
fn looks_like_tls_record(size: u64) -> bool {
    let [_, _, _, _, kind, major, _, _] = size.to_be_bytes();
    matches!(kind, 21 | 22) && major == 3
}

/// Turns an error of the first exchange on a connection into [`Error::Tls`] when TLS is the
/// cause: on a TLS connection, a rustls error (a TLS 1.3 alert after the handshake, such as
/// "certificate required"); on a plaintext one, a TLS record where a response should be.
/// Other errors pass through.
pub(crate) fn refine(err: Error, broker: &Arc<str>, addr: &str) -> Error {
    if let Error::Disconnected { cause, .. } = &err {
        match cause.as_ref() {
            Error::FrameTooLarge { size, .. } if looks_like_tls_record(*size) => {
                return Error::Tls {
                    broker: broker.clone(),
                    kind: TlsErrorKind::ListenerExpectsTls,
                    detail: "the broker answered with a TLS record: this is a TLS listener, \
                             so set security.protocol to SSL or SASL_SSL (with ssl.ca.location)"
                        .into(),
                };
            }
            Error::Tls { .. } => return cause.as_ref().clone(),
            _ => {}
        }
    }
    let io = match &err {
        Error::Io(e) => Some(e.clone()),
        Error::Disconnected { cause, .. } => match cause.as_ref() {
            Error::Io(e) => Some(e.clone()),
            _ => None,
        },
        _ => None,
    };
    match io.and_then(|e| from_rustls_io(&e, host_of(addr))) {
        Some((kind, detail)) => Error::Tls {
            broker: broker.clone(),
            kind,
            detail: detail.into(),
        },
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(host_of("broker-1.example.com:9093"), "broker-1.example.com");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    #[test]
    fn rustls_errors_are_sorted() {
        let (k, d) = from_rustls(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "h",
        );
        assert_eq!(k, TlsErrorKind::UnknownIssuer);
        assert!(d.contains("ssl.ca.location"), "{d}");
        let (k, _) = from_rustls(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            "h",
        );
        assert_eq!(k, TlsErrorKind::HostnameMismatch);
        let (k, _) = from_rustls(
            &rustls::Error::InvalidCertificate(CertificateError::Expired),
            "h",
        );
        assert_eq!(k, TlsErrorKind::Expired);
        // 2021-01-01T00:00:00Z, checked 3 days later.
        let (k, d) = from_rustls(
            &rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_609_459_200 + 3 * 86_400,
                )),
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_609_459_200,
                )),
            }),
            "h",
        );
        assert_eq!(k, TlsErrorKind::Expired);
        assert!(
            d.contains("the certificate of h expired at 2021-01-01 00:00:00 UTC (3 days ago)"),
            "{d}"
        );
        let (k, d) = from_rustls(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(0)),
                not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    951_782_400 + 3_600 * 5 + 61,
                )),
            }),
            "h",
        );
        assert_eq!(k, TlsErrorKind::Expired);
        assert!(d.contains("valid from 2000-02-29 05:01:01 UTC"), "{d}");
        let (k, d) = from_rustls(
            &rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
            "h",
        );
        assert_eq!(k, TlsErrorKind::HandshakeRefused);
        assert!(d.contains("ssl.certificate.location"), "{d}");
        let e = connect_error(
            "b".into(),
            handshake_error(io::Error::from(io::ErrorKind::UnexpectedEof), "h"),
        );
        assert!(
            matches!(
                e,
                Error::Tls {
                    kind: TlsErrorKind::NotTls,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.is_retriable());
    }

    #[test]
    fn a_tls_alert_read_as_a_frame_length_is_recognised() {
        // 0x15 0x03 0x03 0x00: an alert record of TLS 1.2/1.3, as Kafka's TLS listener sends.
        let lost = |size| Error::Disconnected {
            broker: "b".into(),
            cause: Arc::new(Error::FrameTooLarge {
                size,
                limit: 100_000_512,
            }),
        };
        let e = refine(lost(0x1503_0300), &"b".into(), "h:1");
        assert!(
            matches!(
                e,
                Error::Tls {
                    kind: TlsErrorKind::ListenerExpectsTls,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("security.protocol to SSL or SASL_SSL"),
            "{e}"
        );
        assert!(!e.is_retriable());
        // A genuinely large frame stays what it is.
        let e = refine(lost(200_000_000), &"b".into(), "h:1");
        assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    }

    #[test]
    fn unreadable_and_malformed_files_name_their_key() {
        let mut sec = SecurityConfig::default();
        sec.apply("security.protocol", "SSL").unwrap();
        sec.apply("ssl.ca.location", "/nonexistent/ca.pem").unwrap();
        let e = client_config(&sec).unwrap_err().to_string();
        assert!(
            e.contains("ssl.ca.location: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        sec.apply("ssl.ca.pem", "not a pem").unwrap();
        let e = client_config(&sec).unwrap_err().to_string();
        assert!(e.contains("ssl.ca.pem: no PEM certificate"), "{e}");
    }

    #[tokio::test]
    async fn a_silent_peer_cannot_hang_the_handshake() {
        // Accepts TCP and never answers the ClientHello: the connect timeout must end it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let started = std::time::Instant::now();
        let e = crate::Client::builder()
            .bootstrap_servers(&addr)
            .security_protocol(crate::SecurityProtocol::Ssl)
            .connect_timeout(std::time::Duration::from_millis(300))
            .build()
            .await
            .unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
        hold.abort();
    }

    #[test]
    fn default_roots_are_mozillas() {
        let mut sec = SecurityConfig::default();
        sec.apply("security.protocol", "SSL").unwrap();
        client_config(&sec).unwrap();
    }

    #[test]
    fn encrypted_key_without_password_is_refused() {
        let text = Secret::new(format!("{ENCRYPTED_BEGIN}\nAAAA\n{ENCRYPTED_END}\n"));
        let e = private_key(&text, None, "ssl.key.pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ssl.key.pem: the private key is encrypted: set ssl.key.password"),
            "{e}"
        );
    }
}
