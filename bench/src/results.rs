//! Results files: every bench run may append its figures (`--results FILE`) and
//! `ferrokafka-bench chart` draws them. One figure per line, fields separated by one tab
//! (shown as spaces here):
//!
//! ```text
//! bench  broker  case  client  metric  value
//! produce  tansu  100b-acks1  rdkafka  msg_s  812345.6
//! latency  mock  10000/s  ferrokafka  ack_p99_us  5230
//! ```
//!
//! One figure per line (rather than a column per metric) lets each bench write the metrics it
//! has, lets several runs append to one file, and needs no schema to read back.

use std::io::Write;
use std::path::Path;

use crate::common::Row;

const HEADER: &str = "bench\tbroker\tcase\tclient\tmetric\tvalue";

/// One figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub bench: String,
    pub broker: String,
    pub case: String,
    pub client: String,
    pub metric: String,
    pub value: f64,
}

impl Figure {
    pub fn new(
        bench: &str,
        broker: &str,
        case: &str,
        client: &str,
        metric: &str,
        value: f64,
    ) -> Figure {
        Figure {
            bench: bench.into(),
            broker: broker.into(),
            case: case.into(),
            client: client.into(),
            metric: metric.into(),
            value,
        }
    }

    fn line(&self) -> String {
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            clean(&self.bench),
            clean(&self.broker),
            clean(&self.case),
            clean(&self.client),
            clean(&self.metric),
            self.value
        )
    }
}

/// The figures of a produce or consume table: msg/s, MB/s, CPU µs per record and peak RSS
/// of every successful row.
pub fn from_rows(bench: &str, broker: &str, rows: &[Row]) -> Vec<Figure> {
    let mut out = Vec::new();
    for row in rows {
        let Ok(r) = &row.result else { continue };
        let mut add = |metric: &str, value: f64| {
            out.push(Figure::new(
                bench,
                broker,
                row.case,
                &row.client,
                metric,
                value,
            ))
        };
        add("msg_s", r.rate());
        add("mb_s", r.bytes as f64 / r.secs.max(1e-9) / 1e6);
        add("cpu_us_per_record", r.cpu_us_per_record);
        add("peak_rss_mb", r.peak_rss_mb);
    }
    out
}

/// Appends `figures` to `path`, writing the header first if the file is new or empty.
pub fn append(path: &Path, figures: &[Figure]) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
    let mut text = String::new();
    if empty {
        text.push_str(HEADER);
        text.push('\n');
    }
    for f in figures {
        text.push_str(&f.line());
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The figures in `text` (header lines, blank lines and `#` comments are skipped).
pub fn parse(text: &str) -> Result<Vec<Figure>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line == HEADER {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [bench, broker, case, client, metric, value] = fields[..] else {
            return Err(format!("line {}: expected 6 tab-separated fields", n + 1));
        };
        let value = value
            .parse()
            .map_err(|_| format!("line {}: `{value}` is not a number", n + 1))?;
        out.push(Figure::new(bench, broker, case, client, metric, value));
    }
    Ok(out)
}

/// The figures in the file at `path`.
pub fn read(path: &Path) -> Result<Vec<Figure>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Outcome;

    #[test]
    fn figures_survive_a_file_round_trip() {
        let path = std::env::temp_dir().join(format!("fkb-results-{}.tsv", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let a = [
            Figure::new(
                "latency",
                "mock",
                "10000/s",
                "ferrokafka",
                "ack_p99_us",
                5230.0,
            ),
            Figure::new(
                "produce",
                "tansu",
                "100b\tx",
                "rdkafka",
                "msg_s",
                812_345.625,
            ),
        ];
        append(&path, &a[..1]).unwrap();
        append(&path, &a[1..]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // One header, however many runs appended.
        assert_eq!(text.matches("bench\tbroker").count(), 1, "{text}");
        let back = read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], a[0]);
        // A tab inside a name would split the line: it is written as a space.
        assert_eq!(back[1].case, "100b x");
        assert_eq!(back[1].value, 812_345.625);
        assert!(parse("a\tb\tc").is_err());
        assert!(parse("a\tb\tc\td\te\tfast").is_err());
        assert_eq!(parse("# note\n\n").unwrap(), vec![]);
    }

    #[test]
    fn table_rows_become_figures() {
        let ok = Outcome {
            records: 1000,
            bytes: 100_000,
            secs: 0.5,
            cpu_us_per_record: 1.5,
            peak_rss_mb: 20.0,
            ..Outcome::default()
        };
        let rows = vec![
            Row {
                case: "100b",
                client: "ferrokafka".into(),
                result: Ok(ok),
                rates: vec![],
            },
            Row {
                case: "100b",
                client: "rskafka".into(),
                result: Err("no".into()),
                rates: vec![],
            },
        ];
        let f = from_rows("consume", "tansu", &rows);
        let get = |m: &str| f.iter().find(|x| x.metric == m).unwrap().value;
        assert_eq!(f.len(), 4);
        assert_eq!(get("msg_s"), 2000.0);
        assert_eq!(get("mb_s"), 0.2);
        assert_eq!(get("peak_rss_mb"), 20.0);
        assert!(f
            .iter()
            .all(|x| x.client == "ferrokafka" && x.broker == "tansu"));
    }
}
