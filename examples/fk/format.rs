//! How `fk consume` prints a record: plain lines (`value`, or `key DELIM value` with `-K`),
//! a kcat-style `-f` format string, or one JSON object per record (`-J`).
//!
//! Records need not be UTF-8. Lines and `-f` write the bytes as they are. `-J` must write
//! text: a key, value or header value that is valid UTF-8 is a JSON string, a null one is
//! `null`, and any other bytes are an object `{"base64": "..."}` (standard alphabet, with
//! padding), so a script can tell them apart and decode them.

use std::io::{self, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferrokafka::{ConsumerRecord, TimestampType};
use serde_json::{json, Value};

/// How `fk consume` prints records.
#[derive(Debug)]
pub enum Output {
    /// `value\n`, or `key DELIM value\n` with `-K DELIM`.
    Lines { key_delimiter: Option<Vec<u8>> },
    /// `-f FORMAT`.
    Format(Format),
    /// `-J`: one JSON object per line.
    Json,
}

impl Output {
    /// Writes one record.
    pub fn write(&self, out: &mut impl Write, r: &ConsumerRecord) -> io::Result<()> {
        match self {
            Output::Lines { key_delimiter } => {
                if let Some(delim) = key_delimiter {
                    out.write_all(r.key.as_deref().unwrap_or_default())?;
                    out.write_all(delim)?;
                }
                out.write_all(r.value.as_deref().unwrap_or_default())?;
                out.write_all(b"\n")
            }
            Output::Format(format) => format.write(out, r),
            Output::Json => {
                serde_json::to_writer(&mut *out, &json_record(r))?;
                out.write_all(b"\n")
            }
        }
    }
}

/// One piece of a `-f` format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    KeyLength,
    ValueLength,
    Timestamp,
    Headers,
}

/// A parsed `-f` format string. Nothing is added to it: a record ends with a newline only if
/// the format has `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    tokens: Vec<Token>,
}

impl Format {
    /// Parses `%t %p %o %k %s %K %S %T %h %%` and the escapes `\n \t \r \\`; anything else
    /// after `%` or `\` is an error naming it.
    pub fn parse(text: &str) -> Result<Format, String> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '%' => match chars.next() {
                    Some('t') => Token::Topic,
                    Some('p') => Token::Partition,
                    Some('o') => Token::Offset,
                    Some('k') => Token::Key,
                    Some('s') => Token::Value,
                    Some('K') => Token::KeyLength,
                    Some('S') => Token::ValueLength,
                    Some('T') => Token::Timestamp,
                    Some('h') => Token::Headers,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown token %{other}")),
                    None => return Err("a lone % at the end".to_owned()),
                },
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('\\') => b'\\',
                        Some(other) => return Err(format!("unknown escape \\{other}")),
                        None => return Err("a lone \\ at the end".to_owned()),
                    };
                    literal.push(escaped);
                    continue;
                }
                c => {
                    let mut buf = [0; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Format { tokens })
    }

    /// Writes `r` as the format says. A null key or value prints as nothing (its length as
    /// -1); headers print as `k=v,k=v`, a header with a null value as its key alone.
    pub fn write(&self, out: &mut impl Write, r: &ConsumerRecord) -> io::Result<()> {
        let length = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        for token in &self.tokens {
            match token {
                Token::Literal(bytes) => out.write_all(bytes)?,
                Token::Topic => out.write_all(r.topic.as_bytes())?,
                Token::Partition => write!(out, "{}", r.partition)?,
                Token::Offset => write!(out, "{}", r.offset)?,
                Token::Key => out.write_all(r.key.as_deref().unwrap_or_default())?,
                Token::Value => out.write_all(r.value.as_deref().unwrap_or_default())?,
                Token::KeyLength => write!(out, "{}", length(&r.key))?,
                Token::ValueLength => write!(out, "{}", length(&r.value))?,
                Token::Timestamp => write!(out, "{}", r.timestamp)?,
                Token::Headers => {
                    for (i, h) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(h.key.as_bytes())?;
                        if let Some(v) = &h.value {
                            out.write_all(b"=")?;
                            out.write_all(v)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A key, value or header value as JSON: a string when it is UTF-8, `null` when null,
/// `{"base64": "..."}` otherwise.
fn json_bytes(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => json!({ "base64": STANDARD.encode(b) }),
        },
    }
}

/// One record as `-J` prints it.
pub fn json_record(r: &ConsumerRecord) -> Value {
    let tstype = match r.timestamp_type {
        TimestampType::CreateTime => "create",
        TimestampType::LogAppendTime => "logappend",
        _ => "unknown",
    };
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|h| json!({ "key": h.key, "value": json_bytes(h.value.as_deref()) }))
        .collect();
    json!({
        "topic": &*r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "tstype": tstype,
        "ts": r.timestamp,
        "key": json_bytes(r.key.as_deref()),
        "payload": json_bytes(r.value.as_deref()),
        "headers": headers,
    })
}
