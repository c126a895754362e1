//! A TLS terminator for tests: accepts TLS on a loopback port with a given certificate and
//! forwards the plaintext to a TCP target. wiremock speaks plain HTTP only; putting this in
//! front of it gives an `https://` token endpoint whose certificate the test chooses (signed
//! by the test CA, or by a CA the client does not trust).
//!
//! The proxy runs on a thread and runtime of its own, so it outlives the runtime of the test
//! that started it (a shared setup serves many `#[tokio::test]`s, each with its own runtime).
//! That thread owns the listener and every forwarded connection; it ends with the process.
#![allow(dead_code)]

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

/// A running TLS terminator.
pub struct TlsProxy {
    addr: String,
}

impl TlsProxy {
    /// Listens on `127.0.0.1:<free port>`, presenting `chain_pem` (leaf first) with `key_pem`,
    /// and forwards every connection's plaintext to `target` (`host:port`).
    pub fn start(target: &str, chain_pem: &str, key_pem: &str) -> TlsProxy {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        // ring, as the library uses: no process-wide default provider is assumed.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the TLS proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target = target.to_string();
        std::thread::Builder::new()
            .name(format!("tls-proxy-{addr}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(serve(listener, acceptor, target));
            })
            .unwrap();
        TlsProxy { addr }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

async fn serve(listener: std::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, to: String) {
    let listener = TcpListener::from_std(listener).unwrap();
    while let Ok((inbound, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let to = to.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate aborts the handshake: nothing to forward.
            let Ok(mut tls) = acceptor.accept(inbound).await else {
                return;
            };
            let Ok(mut outbound) = TcpStream::connect(&to).await else {
                return;
            };
            // Shuts each side down when the other ends, so a `Connection: close` answer
            // reaches the client as end of stream (with TLS close_notify).
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
        });
    }
}
