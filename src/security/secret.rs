//! A value that must never be printed: passwords and private keys.
//!
//! Configuration structs derive `Debug` (so `{:?}` of a builder or config is useful when
//! debugging connection trouble), and error messages and `tracing` events often format whole
//! structs. Wrapping every secret in [`Secret`] makes the safe thing the default: its `Debug`
//! and `Display` print a fixed placeholder, and reading the value takes an explicit
//! [`Secret::expose`] call that is easy to review (`grep expose`).
//!
//! The bytes are zeroed when the secret is dropped, best effort: copies made while the value was
//! in use (the SCRAM salted password, rustls' own copy of a key) are not covered, so this is
//! hygiene, not a guarantee.

use std::fmt;
use std::sync::Arc;

/// What `Debug` and `Display` print in place of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// A secret string (password, PEM private key). Cheap to clone: the text is shared.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Secret(Arc<Zeroing>);

#[derive(Default, PartialEq, Eq)]
struct Zeroing(String);

impl Drop for Zeroing {
    fn drop(&mut self) {
        // Safe Rust cannot stop the optimizer from eliding a plain write before a free; a
        // volatile-free approach that still touches every byte is to take the bytes out and
        // overwrite them through `fill`, then hide the buffer from the optimizer with
        // `black_box`. Best effort, as the module says.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

impl Secret {
    /// Wraps `value`.
    pub(crate) fn new(value: impl Into<String>) -> Secret {
        Secret(Arc::new(Zeroing(value.into())))
    }

    /// The secret itself. Call only where the value is consumed (an authentication message,
    /// a key parser), never to format it.
    pub(crate) fn expose(&self) -> &str {
        &self.0 .0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(
            format!("{:#?}", Some(s.clone())),
            format!("Some(\n    {REDACTED},\n)")
        );
        assert_eq!(s.expose(), "hunter2-very-secret");
        assert_eq!(Secret::default().expose(), "");
    }

    #[test]
    fn structs_holding_secrets_stay_redacted() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: String,
            password: Secret,
        }
        let l = Login {
            user: "alice".into(),
            password: "alice-secret".into(),
        };
        let text = format!("{l:?} {l:#?}");
        assert!(text.contains("alice"), "{text}");
        assert!(!text.contains("alice-secret"), "{text}");
    }
}
