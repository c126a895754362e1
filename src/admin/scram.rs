//! SCRAM credentials (KIP-554): describe which mechanisms a user has, upsert and delete.
//!
//! The password never leaves the client: the salted password (PBKDF2 with the mechanism's
//! HMAC, `security/scram.rs`) is computed here with a fresh random salt, as the Java admin
//! does, and only the salt, iteration count and salted password are sent.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};

use super::{resource_error, Admin, ResourceResult, Target};
use crate::error::{Error, Result};
use crate::protocol::str_bytes;
use crate::security::scram::{ScramHash, MIN_ITERATIONS};
use crate::security::secret::Secret;

/// Kafka refuses to store more iterations than this.
const MAX_STORED_ITERATIONS: u32 = 16384;
/// Iterations used when the caller does not choose.
const DEFAULT_ITERATIONS: u32 = 8192;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    fn hash(self) -> ScramHash {
        match self {
            ScramMechanism::Sha256 => ScramHash::Sha256,
            ScramMechanism::Sha512 => ScramHash::Sha512,
        }
    }
}

/// One stored credential of a user: its mechanism and iteration count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScramCredential {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iteration count it was stored with.
    pub iterations: i32,
}

/// What [`Admin::describe_scram_credentials`] reports for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserScramCredentials {
    /// The user name.
    pub user: String,
    /// Its credentials, one per mechanism.
    pub credentials: Vec<ScramCredential>,
}

/// A change of [`Admin::alter_scram_credentials`]: an upsert or a deletion of one user's
/// credential for one mechanism.
#[derive(Clone)]
pub struct ScramChange {
    user: String,
    mechanism: ScramMechanism,
    /// The password and iteration count of an upsert; `None` for a deletion.
    upsert: Option<(Secret, u32)>,
}

impl std::fmt::Debug for ScramChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (user, mechanism) = (&self.user, self.mechanism);
        match &self.upsert {
            Some((_, iterations)) => {
                write!(
                    f,
                    "Upsert({user}, {mechanism:?}, {iterations} iterations, [redacted])"
                )
            }
            None => write!(f, "Delete({user}, {mechanism:?})"),
        }
    }
}

impl ScramChange {
    /// Sets `user`'s `mechanism` credential to `password` (8192 iterations; only the salted
    /// password is sent).
    pub fn upsert(
        user: impl Into<String>,
        mechanism: ScramMechanism,
        password: impl Into<String>,
    ) -> ScramChange {
        ScramChange {
            user: user.into(),
            mechanism,
            upsert: Some((Secret::new(password), DEFAULT_ITERATIONS)),
        }
    }

    /// Uses `n` PBKDF2 iterations, 4096 to 16384 (an upsert only).
    pub fn iterations(mut self, n: u32) -> ScramChange {
        if let Some((_, iterations)) = &mut self.upsert {
            *iterations = n;
        }
        self
    }

    /// Deletes `user`'s `mechanism` credential.
    pub fn delete(user: impl Into<String>, mechanism: ScramMechanism) -> ScramChange {
        ScramChange {
            user: user.into(),
            mechanism,
            upsert: None,
        }
    }

    /// The user this change is about.
    pub fn user(&self) -> &str {
        &self.user
    }
}

/// The upsertion as sent: a fresh 32-byte salt and the salted password.
fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    password: &Secret,
    iterations: u32,
) -> Result<ScramCredentialUpsertion> {
    if !(MIN_ITERATIONS..=MAX_STORED_ITERATIONS).contains(&iterations) {
        return Err(Error::InvalidInput(
            format!(
                "SCRAM iterations for user {user} must be {MIN_ITERATIONS}..={MAX_STORED_ITERATIONS}, \
                 not {iterations}"
            )
            .into(),
        ));
    }
    let mut salt = [0u8; 32];
    getrandom::getrandom(&mut salt).map_err(|e| {
        Error::InvalidInput(format!("cannot get random bytes for a salt: {e}").into())
    })?;
    let salted = mechanism
        .hash()
        .salted_password(password.expose().as_bytes(), &salt, iterations);
    Ok(ScramCredentialUpsertion::default()
        .with_name(str_bytes(user))
        .with_mechanism(mechanism.code())
        .with_iterations(iterations as i32)
        .with_salt(bytes::Bytes::copy_from_slice(&salt))
        .with_salted_password(bytes::Bytes::from(salted)))
}

impl Admin {
    /// The SCRAM credentials of `users` (every user with one when `None`). A named user
    /// without credentials gets RESOURCE_NOT_FOUND as its own result.
    pub async fn describe_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<Vec<ResourceResult<String, UserScramCredentials>>> {
        let inner = self.inner();
        inner
            .retrying(ApiKey::DescribeUserScramCredentials, || async {
                let (_, resp) = self
                    .call(Target::Any, ApiKey::DescribeUserScramCredentials, |_| {
                        Ok(
                            DescribeUserScramCredentialsRequest::default().with_users(users.map(
                                |us| {
                                    us.iter()
                                        .map(|u| UserName::default().with_name(str_bytes(u)))
                                        .collect()
                                },
                            )),
                        )
                    })
                    .await?;
                Error::check_code(resp.error_code, resp.error_message.as_deref(), || {
                    "DescribeUserScramCredentials".to_string()
                })?;
                Ok(resp
                    .results
                    .iter()
                    .map(|r| {
                        let user = r.user.to_string();
                        let result =
                            match resource_error(r.error_code, r.error_message.as_deref(), || {
                                format!("DescribeUserScramCredentials for user {user}")
                            }) {
                                Some(e) => Err(e),
                                None => Ok(UserScramCredentials {
                                    user: user.clone(),
                                    credentials: r
                                        .credential_infos
                                        .iter()
                                        .filter_map(|c| {
                                            Some(ScramCredential {
                                                mechanism: ScramMechanism::from_code(c.mechanism)?,
                                                iterations: c.iterations,
                                            })
                                        })
                                        .collect(),
                                }),
                            };
                        ResourceResult::new(user, result)
                    })
                    .collect())
            })
            .await
    }

    /// Upserts and deletes SCRAM credentials (AlterUserScramCredentials, to the
    /// controller). Results are per user, in first-seen order: RESOURCE_NOT_FOUND when
    /// deleting a credential the user does not have, UNACCEPTABLE_CREDENTIAL for a bad user
    /// name or iteration count, DUPLICATE_RESOURCE for every change of a user named twice in
    /// one call (Kafka alters one credential of a user per request: upsert its mechanisms in
    /// separate calls).
    pub async fn alter_scram_credentials(
        &self,
        changes: &[ScramChange],
    ) -> Result<Vec<ResourceResult<String, ()>>> {
        let mut upsertions = Vec::new();
        let mut deletions = Vec::new();
        for c in changes {
            match &c.upsert {
                Some((password, iterations)) => {
                    upsertions.push(upsertion(&c.user, c.mechanism, password, *iterations)?)
                }
                None => deletions.push(
                    ScramCredentialDeletion::default()
                        .with_name(str_bytes(&c.user))
                        .with_mechanism(c.mechanism.code()),
                ),
            }
        }
        let users: Vec<String> = changes.iter().map(|c| c.user().to_string()).collect();
        let (upsertions, deletions) = (&upsertions, &deletions);
        Ok(self
            .per_resource(
                ApiKey::AlterUserScramCredentials,
                users,
                |pending| async move {
                    let keep = |name: &str| pending.iter().any(|u| u == name);
                    let (_, resp) = self
                        .call(
                            Target::Controller,
                            ApiKey::AlterUserScramCredentials,
                            |_| {
                                Ok(AlterUserScramCredentialsRequest::default()
                                    .with_upsertions(
                                        upsertions
                                            .iter()
                                            .filter(|u| keep(&u.name))
                                            .cloned()
                                            .collect(),
                                    )
                                    .with_deletions(
                                        deletions
                                            .iter()
                                            .filter(|d| keep(&d.name))
                                            .cloned()
                                            .collect(),
                                    ))
                            },
                        )
                        .await?;
                    Ok(resp
                        .results
                        .iter()
                        .map(|r| {
                            let user = r.user.to_string();
                            let err =
                                resource_error(r.error_code, r.error_message.as_deref(), || {
                                    format!("AlterUserScramCredentials for user {user}")
                                });
                            (user, err.map_or(Ok(()), Err))
                        })
                        .collect())
                },
            )
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsertions_carry_a_fresh_salt_and_the_pbkdf2_of_the_password() {
        let pw = Secret::new("s3cret");
        let a = upsertion("alice", ScramMechanism::Sha256, &pw, 4096).unwrap();
        let b = upsertion("alice", ScramMechanism::Sha256, &pw, 4096).unwrap();
        assert_eq!((a.mechanism, a.iterations, a.salt.len()), (1, 4096, 32));
        assert_ne!(a.salt, b.salt, "every upsert gets a new salt");
        let expected = ScramHash::Sha256.salted_password(b"s3cret", &a.salt, 4096);
        assert_eq!(a.salted_password.as_ref(), expected.as_slice());
        let c = upsertion("bob", ScramMechanism::Sha512, &pw, 8192).unwrap();
        assert_eq!((c.mechanism, c.salted_password.len()), (2, 64));
        for bad in [4095, 16385] {
            assert!(matches!(
                upsertion("alice", ScramMechanism::Sha256, &pw, bad),
                Err(Error::InvalidInput(_))
            ));
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = ScramChange::upsert("alice", ScramMechanism::Sha512, "hunter2").iterations(4096);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("4096"), "{shown}");
    }
}
