//! W3C Trace Context (`traceparent`, `tracestate`) carried in record headers, so a trace
//! started by a producer continues in the consumer. Opt-in: nothing is injected unless the
//! application calls [`TraceContext::inject`].
//!
//! Parsing is strict, as the W3C recommendation asks of a receiver: version 00 is exactly
//! `00-<32 hex>-<16 hex>-<2 hex>`, lowercase only, trace id and parent id not all zeros;
//! version `ff` is invalid; a later version is read by its first four fields and must
//! continue with `-` if longer. An invalid `tracestate` is dropped without invalidating the
//! `traceparent`. The crate depends on no OpenTelemetry crate: hand the ids to whichever
//! tracer the application uses.

use bytes::Bytes;

use crate::consumer::ConsumerRecord;
use crate::record::{Header, Record};

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";

/// A W3C trace context: who the parent span of the consumer's work is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace id (never all zeros).
    pub trace_id: [u8; 16],
    /// The parent span id (never all zeros).
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
    /// The vendor `tracestate` list, when one came along and was well formed.
    pub state: Option<String>,
}

impl TraceContext {
    /// A context with these ids; `None` if either is all zeros (invalid per W3C).
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<TraceContext> {
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags: u8::from(sampled),
            state: None,
        })
    }

    /// The same context with a `tracestate` list (dropped unless well formed).
    pub fn with_state(mut self, state: impl Into<String>) -> TraceContext {
        let state = state.into();
        self.state = valid_tracestate(&state).then_some(state);
        self
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Parses a `traceparent` value strictly (see the module docs).
    pub fn parse(traceparent: &str) -> Option<TraceContext> {
        let s = traceparent.as_bytes();
        if s.len() < 55 {
            return None;
        }
        let version = hex_byte(&s[0..2])?;
        if version == 0xff || (version == 0 && s.len() != 55) {
            return None;
        }
        if s.len() > 55 && s[55] != b'-' {
            return None;
        }
        if s[2] != b'-' || s[35] != b'-' || s[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(&s[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, b) in span_id.iter_mut().enumerate() {
            *b = hex_byte(&s[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&s[53..55])?;
        let mut ctx = TraceContext::new(trace_id, span_id, false)?;
        ctx.flags = flags;
        Some(ctx)
    }

    /// The `traceparent` value (version 00).
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.span_id);
        out.push('-');
        push_hex(&mut out, &[self.flags]);
        out
    }

    /// Writes `traceparent` (and `tracestate`, if any) into the record's headers, replacing
    /// any already there.
    pub fn inject(&self, record: &mut Record) {
        record
            .headers
            .retain(|h| h.key != TRACEPARENT && h.key != TRACESTATE);
        record
            .headers
            .push(Header::new(TRACEPARENT, Bytes::from(self.traceparent())));
        if let Some(state) = &self.state {
            record
                .headers
                .push(Header::new(TRACESTATE, Bytes::from(state.clone())));
        }
    }

    /// Reads the context a producer injected; `None` when there is no `traceparent`, more
    /// than one, or it is not valid.
    pub fn extract(record: &ConsumerRecord) -> Option<TraceContext> {
        Self::from_headers(&record.headers)
    }

    /// [`TraceContext::extract`] over any header list.
    pub fn from_headers(headers: &[Header]) -> Option<TraceContext> {
        let mut parents = headers.iter().filter(|h| h.key == TRACEPARENT);
        let parent = parents.next()?;
        if parents.next().is_some() {
            return None;
        }
        let value = std::str::from_utf8(parent.value.as_deref()?).ok()?;
        let mut ctx = TraceContext::parse(value)?;
        // Several tracestate headers are one list joined by commas (as in HTTP).
        let states: Vec<&str> = headers
            .iter()
            .filter(|h| h.key == TRACESTATE)
            .filter_map(|h| std::str::from_utf8(h.value.as_deref()?).ok())
            .collect();
        if !states.is_empty() {
            ctx = ctx.with_state(states.join(","));
        }
        Some(ctx)
    }
}

impl std::fmt::Display for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// Two lowercase hex digits.
fn hex_byte(s: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(s[0])? << 4 | digit(s[1])?)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// W3C `tracestate`: at most 32 comma-separated `key=value` members (empty members
/// allowed), keys `[a-z0-9_\-*/@]` starting with a letter or digit (at most 256 chars,
/// with one `@` for multi-tenant keys), values of printable ASCII except `,` and `=`, not
/// ending in a space, at most 256 chars; 512 chars in all is the most kept.
fn valid_tracestate(s: &str) -> bool {
    if s.len() > 512 || !s.is_ascii() {
        return false;
    }
    let mut members = 0;
    let mut keys = std::collections::HashSet::new();
    for member in s.split(',') {
        let member = member.trim_matches(|c| c == ' ' || c == '\t');
        if member.is_empty() {
            continue;
        }
        members += 1;
        let Some((key, value)) = member.split_once('=') else {
            return false;
        };
        let key_ok = !key.is_empty()
            && key.len() <= 256
            && (key.as_bytes()[0].is_ascii_lowercase() || key.as_bytes()[0].is_ascii_digit())
            && key.matches('@').count() <= 1
            && key
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(&c));
        let value_ok = !value.is_empty()
            && value.len() <= 256
            && !value.ends_with(' ')
            && value
                .bytes()
                .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=');
        if !key_ok || !value_ok || !keys.insert(key) {
            return false;
        }
    }
    members <= 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_round_trips() {
        let ctx = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(ctx.trace_id[0], 0x4b);
        assert_eq!(ctx.span_id[7], 0xb7);
        assert!(ctx.sampled());
        assert_eq!(ctx.traceparent(), EXAMPLE);
        assert_eq!(ctx.to_string(), EXAMPLE);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            // Upper case hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            // All-zero trace id / span id.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Version ff, and version 00 with trailing data.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // A later version continuing without a dash.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            // Wrong separators, short fields, non-hex.
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-001",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version with more fields is read by its first four.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
        assert!(TraceContext::parse(later).is_some());
    }

    #[test]
    fn inject_replaces_and_extract_reads_back_with_state() {
        let ctx = TraceContext::parse(EXAMPLE)
            .unwrap()
            .with_state("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        let mut record = Record::new("t")
            .header(
                TRACEPARENT,
                "00-11111111111111111111111111111111-2222222222222222-00",
            )
            .header("other", "x");
        ctx.inject(&mut record);
        let parents = record
            .headers
            .iter()
            .filter(|h| h.key == TRACEPARENT)
            .count();
        assert_eq!(parents, 1);
        assert_eq!(TraceContext::from_headers(&record.headers), Some(ctx));
    }

    #[test]
    fn two_traceparents_or_a_bad_tracestate() {
        let two = vec![
            Header::new(TRACEPARENT, EXAMPLE),
            Header::new(TRACEPARENT, EXAMPLE),
        ];
        assert_eq!(TraceContext::from_headers(&two), None);
        let bad_state = vec![
            Header::new(TRACEPARENT, EXAMPLE),
            Header::new(TRACESTATE, "UPPER=1"),
        ];
        let ctx = TraceContext::from_headers(&bad_state).unwrap();
        assert_eq!(
            ctx.state, None,
            "an invalid tracestate is dropped, the parent kept"
        );
        let null = vec![Header::null(TRACEPARENT)];
        assert_eq!(TraceContext::from_headers(&null), None);
    }

    #[test]
    fn tracestate_rules() {
        assert!(valid_tracestate("a=1"));
        assert!(valid_tracestate("tenant@vendor=x, b=2,,"));
        assert!(!valid_tracestate("a=1,a=2"), "duplicate key");
        assert!(!valid_tracestate("a="), "empty value");
        assert!(!valid_tracestate("a=b=c"));
        assert!(
            !valid_tracestate("_a=1"),
            "key starts with a letter or digit"
        );
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(!valid_tracestate(&many.join(",")), "33 members");
    }

    proptest! {
        #[test]
        fn any_valid_context_round_trips(
            trace_id in any::<[u8; 16]>(),
            span_id in any::<[u8; 8]>(),
            flags in any::<u8>(),
        ) {
            let Some(mut ctx) = TraceContext::new(trace_id, span_id, false) else {
                return Ok(());
            };
            ctx.flags = flags;
            let text = ctx.traceparent();
            prop_assert_eq!(text.len(), 55);
            prop_assert_eq!(TraceContext::parse(&text), Some(ctx));
        }

        #[test]
        fn parse_never_panics_and_accepts_only_what_it_prints(s in "[0-9a-fA-F-]{0,70}") {
            if let Some(ctx) = TraceContext::parse(&s) {
                if s.starts_with("00") {
                    prop_assert_eq!(ctx.traceparent(), s);
                }
            }
        }

        #[test]
        fn one_changed_character_breaks_a_version_00_value(pos in 0usize..55, c in any::<char>()) {
            let mut chars: Vec<char> = EXAMPLE.chars().collect();
            if chars[pos] == c {
                return Ok(());
            }
            chars[pos] = c;
            let s: String = chars.into_iter().collect();
            if let Some(ctx) = TraceContext::parse(&s) {
                // Only another lowercase hex digit in an id or the flags (or a later
                // version number) keeps it valid.
                prop_assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{s}");
                prop_assert_eq!(&ctx.traceparent()[2..], &s[2..]);
            }
        }
    }
}
