//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as a client state machine.
//!
//! Three messages, each carried in one SaslAuthenticate request (see `sasl.rs`):
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<client proof>
//! server-final  v=<server signature>          (or e=<error>)
//! ```
//!
//! The client proves it knows the password without sending it, and the server proves the same
//! with its signature, which this client **verifies** (constant-time): a server that answers
//! with a wrong signature (an impostor that does not hold the credentials) is rejected even if
//! it claims success. The client nonce comes from the operating system's CSPRNG.
//!
//! Passwords are used as their UTF-8 bytes without SASLprep, as the Java client does; Kafka
//! stores credentials the same way, so non-ASCII passwords work between the two.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::secret::Secret;

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

/// Fewer iterations than this make the salted password cheap to brute-force; RFC 7677 asks for
/// at least 4096, and Kafka refuses to store fewer.
pub(crate) const MIN_ITERATIONS: u32 = 4096;
/// More than this is refused so that a hostile server cannot make the client spin: Kafka
/// itself caps stored credentials at 16384 iterations.
const MAX_ITERATIONS: u32 = 1_000_000;

impl ScramHash {
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                parts.iter().for_each(|p| m.update(p));
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                parts.iter().for_each(|p| m.update(p));
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi()` of RFC 5802: PBKDF2 with HMAC of this hash, output as long as the hash.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }

    /// Whether `signature` is HMAC(`key`, `message`), compared in constant time.
    fn verify(self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        match self {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(message);
                m.verify_slice(signature).is_ok()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                m.update(message);
                m.verify_slice(signature).is_ok()
            }
        }
    }
}

/// Where the exchange stands.
enum Step {
    /// `client_first` sent, waiting for the server's first message.
    First,
    /// `client_final` sent; the server must answer with this auth message's signature.
    Final {
        server_key: Vec<u8>,
        auth_message: String,
    },
    /// Verified (or failed): no more messages.
    Done,
}

/// One SCRAM authentication as a client. Errors are plain text without secrets, for
/// `Error::SaslAuthenticationFailed`.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: Secret,
    nonce: String,
    first_bare: String,
    step: Step,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange with a fresh 24-byte nonce from the OS CSPRNG.
    pub(crate) fn new(hash: ScramHash, username: &str, password: Secret) -> Result<Self, String> {
        let mut raw = [0u8; 24];
        getrandom::getrandom(&mut raw)
            .map_err(|e| format!("cannot get random bytes for the SCRAM nonce: {e}"))?;
        Ok(ScramClient::with_nonce(
            hash,
            username,
            password,
            B64.encode(raw),
        ))
    }

    /// Starts an exchange with a given nonce (the RFC test vectors fix it).
    pub(crate) fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: Secret,
        nonce: String,
    ) -> ScramClient {
        let first_bare = format!("n={},r={nonce}", escape_name(username));
        ScramClient {
            hash,
            password,
            nonce,
            first_bare,
            step: Step::First,
        }
    }

    /// The client-first message: no channel binding (`n`), no authorization identity.
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Reads the server-first message and returns the client-final message with the proof.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        if !matches!(self.step, Step::First) {
            return Err("SCRAM: server-first message out of order".into());
        }
        self.step = Step::Done;
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "SCRAM: the server's first message is not UTF-8".to_string())?;
        let attrs = attributes(server_first)?;
        if let Some(e) = attr(&attrs, 'e') {
            return Err(format!("SCRAM: the server refused: {e}"));
        }
        if attr(&attrs, 'm').is_some() {
            return Err("SCRAM: the server requires an extension this client does not know".into());
        }
        let nonce = attr(&attrs, 'r').ok_or("SCRAM: the server's first message has no nonce")?;
        // The server must extend our nonce, not replace it: otherwise this could be a replay.
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("SCRAM: the server's nonce does not extend the client's".into());
        }
        let salt = attr(&attrs, 's').ok_or("SCRAM: the server's first message has no salt")?;
        let salt = B64
            .decode(salt)
            .map_err(|_| "SCRAM: the server's salt is not base64".to_string())?;
        let iterations: u32 = attr(&attrs, 'i')
            .and_then(|i| i.parse().ok())
            .ok_or("SCRAM: the server's iteration count is missing or not a number")?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "SCRAM: the server asks for {iterations} iterations, outside \
                 {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, &[b"Client Key"]);
        let stored_key = h.hash(&client_key);
        // "biws" is base64("n,,"): the GS2 header of client-first, echoed back.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = h.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, &[b"Server Key"]);
        self.step = Step::Final {
            server_key,
            auth_message,
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server's signature must prove it knows the
    /// credentials.
    pub(crate) fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), String> {
        let Step::Final {
            server_key,
            auth_message,
        } = std::mem::replace(&mut self.step, Step::Done)
        else {
            return Err("SCRAM: server-final message out of order".into());
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "SCRAM: the server's final message is not UTF-8".to_string())?;
        let attrs = attributes(text)?;
        if let Some(e) = attr(&attrs, 'e') {
            return Err(format!("SCRAM: the server refused: {e}"));
        }
        let v = attr(&attrs, 'v').ok_or("SCRAM: the server's final message has no signature")?;
        let signature = B64
            .decode(v)
            .map_err(|_| "SCRAM: the server's signature is not base64".to_string())?;
        if self
            .hash
            .verify(&server_key, auth_message.as_bytes(), &signature)
        {
            Ok(())
        } else {
            Err(
                "SCRAM: the server's signature is wrong: it could not prove it knows the \
                 credentials (an impostor, or a different credential store)"
                    .into(),
            )
        }
    }
}

/// `saslname` of RFC 5802: `=` and `,` are escaped as `=3D` and `=2C`.
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Splits `a=x,b=y` into (`a`, `x`) pairs. Values may contain `=` (base64 padding).
fn attributes(msg: &str) -> Result<Vec<(char, &str)>, String> {
    msg.split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &part[2..])),
                _ => Err("SCRAM: the server's message is malformed".to_string()),
            }
        })
        .collect()
}

fn attr<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
    const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> ScramClient {
        ScramClient::with_nonce(
            ScramHash::Sha256,
            "user",
            Secret::new("pencil"),
            CLIENT_NONCE.into(),
        )
    }

    #[test]
    fn rfc7677_sha256_test_vector() {
        let mut c = rfc_client();
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fin).unwrap(), CLIENT_FINAL);
        c.verify_server_final(SERVER_FINAL.as_bytes()).unwrap();
    }

    #[test]
    fn a_wrong_server_signature_is_rejected() {
        let mut c = rfc_client();
        c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        // One bit off in the signature's first byte.
        let e = c
            .verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("signature is wrong"), "{e}");
        // The right signature cannot be replayed after the exchange ended.
        assert!(c.verify_server_final(SERVER_FINAL.as_bytes()).is_err());
    }

    #[test]
    fn a_server_signature_for_another_password_is_rejected() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha256,
            "user",
            Secret::new("not-pencil"),
            CLIENT_NONCE.into(),
        );
        c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert!(c.verify_server_final(SERVER_FINAL.as_bytes()).is_err());
    }

    #[test]
    fn hostile_or_broken_server_first_messages_are_refused() {
        for (msg, want) in [
            (
                "r=otherNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "does not extend",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "does not extend",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
                "iterations",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
                "iterations",
            ),
            ("r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096", "salt is not base64"),
            ("r=rOprNGfwEbeRWgbNEkqOx,i=4096", "no salt"),
            ("e=unknown-user", "refused: unknown-user"),
            ("m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=4096", "extension"),
            ("garbage", "malformed"),
        ] {
            let e = rfc_client().client_final(msg.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{msg}: {e}");
        }
    }

    #[test]
    fn sha512_round_trip_against_an_independent_server_computation() {
        // The server side computed here from the RFC 5802 formulas, step by step, to check the
        // SHA-512 path end to end (RFC 7677 has no SHA-512 vector).
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha512,
            "alice,=x",
            Secret::new("alice-secret"),
            "abc".into(),
        );
        assert_eq!(c.client_first(), b"n,,n=alice=2C=3Dx,r=abc");
        let salt = b"saltsalt";
        let server_first = format!("r=abcdef,s={},i=4096", B64.encode(salt));
        let fin = String::from_utf8(c.client_final(server_first.as_bytes()).unwrap()).unwrap();
        let salted = ScramHash::Sha512.salted_password(b"alice-secret", salt, 4096);
        let auth = format!("n=alice=2C=3Dx,r=abc,{server_first},c=biws,r=abcdef");
        let client_key = ScramHash::Sha512.hmac(&salted, &[b"Client Key"]);
        let stored = Sha512::digest(&client_key);
        let sig = ScramHash::Sha512.hmac(&stored, &[auth.as_bytes()]);
        let proof = B64.decode(fin.rsplit_once("p=").unwrap().1).unwrap();
        let recovered: Vec<u8> = proof.iter().zip(&sig).map(|(p, s)| p ^ s).collect();
        assert_eq!(Sha512::digest(&recovered).to_vec(), stored.to_vec());
        let server_key = ScramHash::Sha512.hmac(&salted, &[b"Server Key"]);
        let server_sig = ScramHash::Sha512.hmac(&server_key, &[auth.as_bytes()]);
        c.verify_server_final(format!("v={}", B64.encode(server_sig)).as_bytes())
            .unwrap();
    }

    #[test]
    fn nonces_are_random() {
        let a = ScramClient::new(ScramHash::Sha256, "u", Secret::new("p")).unwrap();
        let b = ScramClient::new(ScramHash::Sha256, "u", Secret::new("p")).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 32);
        assert!(!a.nonce.contains(','));
    }
}
