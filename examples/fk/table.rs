//! What the admin commands print and read besides their own logic: aligned tables with a
//! header line (columns separated by at least two spaces, so `awk` splits them and a human
//! reads them), the names of group states and types, lists of numbers, the date-time
//! formats `groups reset-offsets --to-datetime` takes, and offset look-ups (`consume -o -N`,
//! `consume -e`, `groups reset-offsets`).

use std::fmt::Display;
use std::io::{self, Write};

use std::collections::HashMap;

use ferrokafka::{Admin, GroupState, GroupType, OffsetSpec, TopicPartition};

/// Rows under a header, printed with every column as wide as its widest cell. An empty
/// cell prints as `-`, so every row has as many fields as the header.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as the header has columns).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Writes the table to stdout. A broken pipe (`fk ... | head`) is not an error.
    pub fn print(&self) {
        let mut out = io::BufWriter::new(io::stdout().lock());
        let _ = self.write(&mut out).and_then(|()| out.flush());
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let cell = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        let rows: Vec<Vec<String>> =
            std::iter::once(self.header.iter().map(|h| h.to_string()).collect())
                .chain(
                    self.rows
                        .iter()
                        .map(|r| r.iter().map(|c| cell(c)).collect()),
                )
                .collect();
        let mut widths = vec![0; self.header.len()];
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<w$}  "));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `1,2,3` (empty for none, which the table prints as `-`).
pub fn list<T: Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// An optional number, empty when absent.
pub fn opt<T: Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// A group state as the coordinator names it (`Stable`, `Empty`, …).
pub fn state_name(state: &GroupState) -> String {
    match state {
        GroupState::Empty => "Empty".to_owned(),
        GroupState::Stable => "Stable".to_owned(),
        GroupState::PreparingRebalance => "PreparingRebalance".to_owned(),
        GroupState::CompletingRebalance => "CompletingRebalance".to_owned(),
        GroupState::Assigning => "Assigning".to_owned(),
        GroupState::Reconciling => "Reconciling".to_owned(),
        GroupState::Dead => "Dead".to_owned(),
        GroupState::Other(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// A group type as Kafka names it (`classic`, `consumer`, …).
pub fn type_name(group_type: &GroupType) -> String {
    match group_type {
        GroupType::Classic => "classic".to_owned(),
        GroupType::Consumer => "consumer".to_owned(),
        GroupType::Share => "share".to_owned(),
        GroupType::Streams => "streams".to_owned(),
        GroupType::Other(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// Milliseconds since the epoch from `--to-datetime`'s value: a plain number of
/// milliseconds, or RFC 3339 (`2026-12-06T14:00:00Z`, `2026-12-06T15:00:00.250+01:00`;
/// the `T` may be a space, fractions beyond milliseconds are cut).
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("`{text}` is neither milliseconds nor an RFC 3339 date-time");
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let s = text.get(from..to).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    if second > 60 {
        return Err(bad());
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let ms3: String = frac[..digits].chars().chain("00".chars()).take(3).collect();
        millis = ms3.parse::<i64>().map_err(|_| bad())?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return Err(bad());
            }
            let hours: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| bad())?;
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One offset per partition (one ListOffsets per leader); the first partition that fails
/// fails the look-up.
pub async fn offsets(
    admin: &Admin,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<HashMap<TopicPartition, i64>, String> {
    let asked: Vec<(TopicPartition, OffsetSpec)> =
        partitions.iter().map(|tp| (tp.clone(), spec)).collect();
    admin
        .list_offsets_many(&asked)
        .await
        .map_err(|e| format!("cannot look up offsets: {e}"))?
        .into_iter()
        .map(|a| match a.result {
            Ok(o) => Ok((a.resource, o.offset)),
            Err(e) => Err(format!("cannot look up the offset of {}: {e}", a.resource)),
        })
        .collect()
}
