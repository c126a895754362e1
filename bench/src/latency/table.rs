//! The latency worker's `RESULT` fields, the per-broker table and the results-file figures.

use std::collections::BTreeMap;

use crate::common::Outcome;
use crate::results::Figure;

/// Metric-name suffixes of the percentiles p50, p99, p99.9, max.
const KEYS: [&str; 4] = ["p50", "p99", "p999", "max"];

/// A worker's achieved rate must reach this share of the target to count as keeping up.
pub const KEPT_UP: f64 = 0.97;

/// What a latency run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies {
    /// Acknowledgement latency p50 / p99 / p99.9 / max, µs.
    pub ack: [u64; 4],
    /// End-to-end latency p50 / p99 / p99.9 / max, µs.
    pub e2e: [u64; 4],
    /// Measured records acknowledged, and of them received by the consumer.
    pub acked: u64,
    pub received: u64,
    /// Acknowledged records per second over the measured span.
    pub achieved: f64,
    /// The generator's worst lateness handing a record over, µs.
    pub lag_max_us: u64,
    pub cpu_us_per_record: f64,
    pub peak_rss_mb: f64,
}

impl Latencies {
    /// Reads the latency fields of the worker's `RESULT` line.
    pub fn from_outcome(o: &Outcome) -> Result<Latencies, String> {
        let fields: BTreeMap<&str, &str> = o
            .line
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .collect();
        let num = |k: &str| -> Result<u64, String> {
            fields
                .get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("RESULT line without {k}"))
        };
        let four = |prefix: &str| -> Result<[u64; 4], String> {
            let mut out = [0; 4];
            for (slot, key) in out.iter_mut().zip(KEYS) {
                *slot = num(&format!("{prefix}_{key}_us"))?;
            }
            Ok(out)
        };
        Ok(Latencies {
            ack: four("ack")?,
            e2e: four("e2e")?,
            acked: o.records,
            received: num("e2e_records")?,
            achieved: o.rate(),
            lag_max_us: num("lag_max_us")?,
            cpu_us_per_record: o.cpu_us_per_record,
            peak_rss_mb: o.peak_rss_mb,
        })
    }

    pub fn kept_up(&self, rate: u64) -> bool {
        self.achieved >= KEPT_UP * rate as f64
    }
}

/// One client at one rate.
pub struct LatencyRow {
    pub rate: u64,
    pub client: String,
    pub result: Result<Latencies, String>,
}

fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// The markdown table of one broker's runs, with the p99 ratios against rdkafka's run at the
/// same rate.
pub fn render(title: &str, rows: &[LatencyRow]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "Latency in ms from the scheduled send time; **lower is better**. Ratios are the \
         client's p99 / rdkafka's p99 at the same rate (below 1.00x: lower than rdkafka's).\n"
    );
    let _ = writeln!(
        out,
        "| rate/s | client | achieved/s | kept up | ack p50 | ack p99 | ack p99.9 | ack max | \
         e2e p50 | e2e p99 | e2e p99.9 | e2e max | ack p99 vs rdkafka | e2e p99 vs rdkafka | \
         CPU µs/rec | peak RSS MiB |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let rate = row.rate;
        let client = &row.client;
        let l = match &row.result {
            Ok(l) => l,
            Err(e) => {
                let e = e.replace('|', "/");
                let _ = writeln!(
                    out,
                    "| {rate} | {client} | failed: {e} | | | | | | | | | | | | | |"
                );
                continue;
            }
        };
        let base = rows
            .iter()
            .find(|r| r.rate == rate && r.client == "rdkafka")
            .and_then(|r| r.result.as_ref().ok());
        let ratio = |mine: u64, theirs: Option<u64>| match theirs {
            Some(t) if t > 0 => format!("{:.2}x", mine as f64 / t as f64),
            _ => "–".into(),
        };
        let kept = if l.kept_up(rate) {
            "yes".to_string()
        } else {
            format!("**no** (late ≤ {} ms)", ms(l.lag_max_us))
        };
        let e2e = if l.received < l.acked {
            // Records the consumer never delivered would otherwise vanish from its figures.
            format!(" ({} of {} received)", l.received, l.acked)
        } else {
            String::new()
        };
        let [a50, a99, a999, amax] = l.ack.map(ms);
        let [e50, e99, e999, emax] = l.e2e.map(ms);
        let _ = writeln!(
            out,
            "| {rate} | {client} | {:.0} | {kept} | {a50} | {a99} | {a999} | {amax} | {e50} | \
             {e99} | {e999} | {emax}{e2e} | {} | {} | {:.2} | {:.1} |",
            l.achieved,
            ratio(l.ack[1], base.map(|b| b.ack[1])),
            ratio(l.e2e[1], base.map(|b| b.e2e[1])),
            l.cpu_us_per_record,
            l.peak_rss_mb,
        );
    }
    out
}

/// The figures of one broker's runs, for a results file.
pub fn records(broker: &str, rows: &[LatencyRow]) -> Vec<Figure> {
    let mut out = Vec::new();
    for row in rows {
        let Ok(l) = &row.result else { continue };
        let case = format!("{}/s", row.rate);
        let mut add = |metric: &str, value: f64| {
            out.push(Figure::new(
                "latency",
                broker,
                &case,
                &row.client,
                metric,
                value,
            ))
        };
        for (key, (a, e)) in KEYS.iter().zip(l.ack.iter().zip(&l.e2e)) {
            add(&format!("ack_{key}_us"), *a as f64);
            add(&format!("e2e_{key}_us"), *e as f64);
        }
        add("achieved_s", l.achieved);
        add("cpu_us_per_record", l.cpu_us_per_record);
        add("peak_rss_mb", l.peak_rss_mb);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::parse_result;

    const LINE: &str = "RESULT client=ferrokafka case=10000/s records=100000 failed=0 \
        bytes=10000000 secs=10.0040 cpu_us_per_record=3.1000 peak_rss_mb=21.5 ack_p50_us=5200 \
        ack_p99_us=7400 ack_p999_us=9100 ack_max_us=12000 e2e_p50_us=6100 e2e_p99_us=9900 \
        e2e_p999_us=15000 e2e_max_us=30000 e2e_records=99990 lag_max_us=250";

    fn row(client: &str, line: &str) -> LatencyRow {
        LatencyRow {
            rate: 10_000,
            client: client.into(),
            result: Latencies::from_outcome(&parse_result(line).unwrap()),
        }
    }

    #[test]
    fn result_lines_parse() {
        let l = Latencies::from_outcome(&parse_result(LINE).unwrap()).unwrap();
        assert_eq!(l.ack, [5200, 7400, 9100, 12000]);
        assert_eq!(l.e2e, [6100, 9900, 15000, 30000]);
        assert_eq!((l.acked, l.received, l.lag_max_us), (100_000, 99_990, 250));
        assert!((l.achieved - 9996.0).abs() < 1.0);
        assert!(l.kept_up(10_000) && !l.kept_up(11_000));
        let cut = LINE.replace(" e2e_p99_us=9900", "");
        assert!(Latencies::from_outcome(&parse_result(&cut).unwrap()).is_err());
    }

    #[test]
    fn the_table_compares_p99_with_rdkafka() {
        let rd = LINE
            .replace("client=ferrokafka", "client=rdkafka")
            .replace("ack_p99_us=7400", "ack_p99_us=14800")
            .replace("secs=10.0040", "secs=20.0")
            .replace("e2e_records=99990", "e2e_records=100000");
        let rows = vec![
            row("rdkafka", &rd),
            row("ferrokafka", LINE),
            LatencyRow {
                rate: 10_000,
                client: "rskafka".into(),
                result: Err("worker exited | 1".into()),
            },
        ];
        let t = render("Tansu", &rows);
        assert!(t.contains("**lower is better**"), "{t}");
        assert!(
            t.contains(
                "| 10000 | ferrokafka | 9996 | yes | 5.20 | 7.40 | 9.10 | 12.0 | 6.10 | 9.90 | \
                 15.0 | 30.0 (99990 of 100000 received) | 0.50x | 1.00x | 3.10 | 21.5 |"
            ),
            "{t}"
        );
        // rdkafka's achieved rate is half the target: it fell behind.
        assert!(
            t.contains("| 10000 | rdkafka | 5000 | **no** (late ≤ 0.25 ms) |"),
            "{t}"
        );
        assert!(
            t.contains("| 10000 | rskafka | failed: worker exited / 1 |"),
            "{t}"
        );
        let f = records("tansu", &rows);
        assert_eq!(f.len(), 2 * 11);
        let ferro_ack99 = f
            .iter()
            .find(|x| x.client == "ferrokafka" && x.metric == "ack_p99_us")
            .unwrap();
        assert_eq!(
            (ferro_ack99.case.as_str(), ferro_ack99.value),
            ("10000/s", 7400.0)
        );
    }
}
