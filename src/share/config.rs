//! The share consumer's settings (Java's `ShareConsumerConfig` names), parsed and validated.
//!
//! A share consumer has no offsets, no assignor and no session timeout of its own: the
//! broker assigns partitions (ShareGroupHeartbeat), tracks every record's state and sets the
//! acquisition lock. What is left is how records are acknowledged and how much one
//! ShareFetch asks for.

use std::time::Duration;

use crate::config::{parse_int, parse_ms};
use crate::error::{Error, Result};

/// Every key a share consumer accepts (besides the client's).
pub(crate) const SHARE_KEYS: &[&str] = &[
    "group.id",
    "share.acknowledgement.mode",
    "max.poll.records",
    "fetch.max.wait.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "check.crcs",
    "client.rack",
];

/// How records handed out by a [`ShareConsumer`](crate::ShareConsumer) are acknowledged
/// (`share.acknowledgement.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AcknowledgementMode {
    /// `implicit` (the default): each call to `recv` accepts the record the previous call
    /// returned, and `commit`/`close` accept the last one. The acceptances travel with the
    /// next ShareFetch (or ShareAcknowledge on `commit`/`close`).
    #[default]
    Implicit,
    /// `explicit`: the application calls
    /// [`ShareConsumer::acknowledge`](crate::ShareConsumer::acknowledge) for each record. A
    /// record it never acknowledges stays acquired until its lock expires, or until `close`,
    /// which releases it.
    Explicit,
}

/// The parsed settings.
#[derive(Debug, Clone)]
pub(crate) struct ShareConfig {
    pub(crate) group_id: Option<String>,
    pub(crate) mode: AcknowledgementMode,
    /// `max.poll.records`: ShareFetch's MaxRecords and BatchSize (v1).
    pub(crate) max_poll_records: i32,
    /// `fetch.max.wait.ms`: how long the broker may hold a ShareFetch with nothing to give.
    pub(crate) fetch_max_wait: Duration,
    pub(crate) fetch_min_bytes: i32,
    pub(crate) fetch_max_bytes: i32,
    pub(crate) check_crcs: bool,
    /// `client.rack`, sent in the first ShareGroupHeartbeat.
    pub(crate) client_rack: Option<String>,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            group_id: None,
            mode: AcknowledgementMode::Implicit,
            // Java's defaults for the same keys.
            max_poll_records: 500,
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            check_crcs: true,
            client_rack: None,
        }
    }
}

impl ShareConfig {
    /// Applies one property. `Ok(false)`: not a share-consumer key (maybe a client key).
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<bool> {
        let int = |min: i64| parse_int(key, value, min, i32::MAX as i64).map(|v| v as i32);
        match key {
            "group.id" => self.group_id = Some(value.to_owned()),
            "share.acknowledgement.mode" => {
                self.mode = match value.to_ascii_lowercase().as_str() {
                    "implicit" => AcknowledgementMode::Implicit,
                    "explicit" => AcknowledgementMode::Explicit,
                    _ => {
                        return Err(Error::config(format!(
                            "share.acknowledgement.mode: `{value}` is not implicit or explicit"
                        )))
                    }
                }
            }
            "max.poll.records" => self.max_poll_records = int(1)?,
            "fetch.max.wait.ms" => self.fetch_max_wait = parse_ms(key, value, 0, i32::MAX as u64)?,
            "fetch.min.bytes" => self.fetch_min_bytes = int(0)?,
            "fetch.max.bytes" => self.fetch_max_bytes = int(1)?,
            "check.crcs" => self.check_crcs = crate::config::parse_bool(key, value)?,
            "client.rack" => self.client_rack = Some(value.to_owned()).filter(|r| !r.is_empty()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Cross-field checks, at `build()`.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.group_id {
            None => Err(Error::config(
                "group.id is required: a share consumer always belongs to a share group",
            )),
            Some(g) if g.is_empty() => Err(Error::config("group.id must not be empty")),
            Some(_) => Ok(()),
        }
    }
}
