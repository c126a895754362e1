//! `ferrokafka-bench chart --out DIR FILE...`: SVG bar charts of results files (see
//! `results.rs`), one per bench, broker and measure:
//!
//! - produce and consume: msg/s, client CPU per record and peak RSS per case, one bar per
//!   client (`produce-tansu-msg_s.svg`, `produce-tansu-cpu_us_per_record.svg`,
//!   `produce-tansu-peak_rss_mb.svg`, ...);
//! - latency: acknowledgement and end-to-end percentiles per rate, one bar per client, on a
//!   logarithmic axis (p50 and max are often orders of magnitude apart)
//!   (`latency-tansu-ack.svg`, `latency-tansu-e2e.svg`).
//!
//! Built only with the `charts` feature (plotters' SVG backend), which `cargo xtask bench`
//! turns on; CI's debug build of the workspace does without.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::results::{self, Figure};

const USAGE: &str = "\
Usage: ferrokafka-bench chart --out DIR FILE [FILE...]

Draws SVG bar charts of the results files (written by `produce|consume|latency --results
FILE`) into DIR: per bench and broker, msg/s, CPU per record and peak RSS per case and
client (produce, consume) and latency percentiles per rate and client (latency). When a figure appears more
than once, the last one wins (a re-run replaces an earlier one).";

pub fn usage() -> String {
    USAGE.to_string()
}

/// Parsed command line of `chart`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut out = None;
        let mut files = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a value")?)),
                other if other.starts_with("--") => {
                    return Err(format!("unknown option `{other}`\n{USAGE}"))
                }
                file => files.push(PathBuf::from(file)),
            }
        }
        let out = out.ok_or_else(|| format!("--out DIR is required\n{USAGE}"))?;
        if files.is_empty() {
            return Err(format!("no results file given\n{USAGE}"));
        }
        Ok(Options { out, files })
    }
}

/// A chart's data: bar groups along x, one bar per series in each.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    /// File name without `.svg`.
    pub name: String,
    pub title: String,
    pub y_label: String,
    pub log: bool,
    pub groups: Vec<String>,
    pub series: Vec<String>,
    /// `values[series][group]`; None: no figure.
    pub values: Vec<Vec<Option<f64>>>,
}

/// Names in the order they first appear.
fn ordered<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// The charts the figures make.
pub fn plan(figures: &[Figure]) -> Vec<Bars> {
    // Last figure wins.
    let mut latest: BTreeMap<(&str, &str, &str, &str, &str), f64> = BTreeMap::new();
    for f in figures {
        latest.insert(
            (&f.bench, &f.broker, &f.case, &f.client, &f.metric),
            f.value,
        );
    }
    let get = |b: &str, k: &str, case: &str, client: &str, metric: &str| {
        latest.get(&(b, k, case, client, metric)).copied()
    };
    let mut charts = Vec::new();
    let benches = ordered(figures.iter().map(|f| f.bench.as_str()));
    for bench in &benches {
        let of_bench: Vec<&Figure> = figures.iter().filter(|f| &f.bench == bench).collect();
        for broker in ordered(of_bench.iter().map(|f| f.broker.as_str())) {
            let here: Vec<&&Figure> = of_bench.iter().filter(|f| f.broker == broker).collect();
            let cases = ordered(here.iter().map(|f| f.case.as_str()));
            let clients = ordered(here.iter().map(|f| f.client.as_str()));
            let chart = |name: String,
                         title: String,
                         y: &str,
                         log,
                         groups: Vec<(String, String, String)>| {
                // groups: (label, case, metric)
                Bars {
                    name,
                    title,
                    y_label: y.into(),
                    log,
                    values: clients
                        .iter()
                        .map(|c| {
                            groups
                                .iter()
                                .map(|(_, case, metric)| get(bench, &broker, case, c, metric))
                                .collect()
                        })
                        .collect(),
                    groups: groups.into_iter().map(|g| g.0).collect(),
                    series: clients.clone(),
                }
            };
            if bench == "latency" {
                for (kind, what) in [("ack", "produce acknowledgement"), ("e2e", "end to end")] {
                    let mut groups = Vec::new();
                    for case in &cases {
                        for (label, key) in [
                            ("p50", "p50"),
                            ("p99", "p99"),
                            ("p99.9", "p999"),
                            ("max", "max"),
                        ] {
                            groups.push((
                                format!("{case} {label}"),
                                case.clone(),
                                format!("{kind}_{key}_us"),
                            ));
                        }
                    }
                    let mut c = chart(
                        format!("latency-{broker}-{kind}"),
                        format!("{what} latency, {broker} (lower is better)"),
                        "ms from the scheduled send (log scale)",
                        true,
                        groups,
                    );
                    // µs in the file, ms on the chart.
                    for v in c.values.iter_mut().flatten().flatten() {
                        *v /= 1000.0;
                    }
                    charts.push(c);
                }
            } else {
                for (metric, title, y) in [
                    ("msg_s", "msg/s (higher is better)", "records per second"),
                    (
                        "cpu_us_per_record",
                        "client CPU per record (lower is better)",
                        "µs of user+sys CPU per record",
                    ),
                    ("peak_rss_mb", "peak RSS (lower is better)", "MiB"),
                ] {
                    let groups = cases
                        .iter()
                        .map(|c| (c.clone(), c.clone(), metric.to_string()))
                        .collect();
                    charts.push(chart(
                        format!("{bench}-{broker}-{metric}"),
                        format!("{bench} {title}, {broker}"),
                        y,
                        false,
                        groups,
                    ));
                }
            }
        }
    }
    charts.retain(|c| c.values.iter().flatten().any(Option::is_some));
    charts
}

pub fn run(o: Options) -> Result<(), String> {
    let mut figures = Vec::new();
    for f in &o.files {
        figures.extend(results::read(f)?);
    }
    let charts = plan(&figures);
    if charts.is_empty() {
        return Err("the results files hold no figures to chart".into());
    }
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    for c in &charts {
        let path = o.out.join(format!("{}.svg", c.name));
        draw(&path, c)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(feature = "charts")]
fn draw(path: &Path, bars: &Bars) -> Result<(), String> {
    svg::draw(path, bars).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(feature = "charts"))]
fn draw(_: &Path, _: &Bars) -> Result<(), String> {
    Err(
        "built without the `charts` feature: `cargo xtask bench chart ...` or \
         `cargo run -p ferrokafka-bench --features charts -- chart ...`"
            .into(),
    )
}

#[cfg(feature = "charts")]
mod svg {
    use std::path::Path;

    use plotters::coord::Shift;
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    use super::Bars;

    /// One colour per client, in the order they appear (rdkafka first in every bench).
    const COLOURS: [RGBColor; 8] = [
        RGBColor(0x4c, 0x72, 0xb0),
        RGBColor(0xdd, 0x84, 0x52),
        RGBColor(0x55, 0xa8, 0x68),
        RGBColor(0xc4, 0x4e, 0x52),
        RGBColor(0x81, 0x72, 0xb3),
        RGBColor(0x93, 0x78, 0x60),
        RGBColor(0xda, 0x8b, 0xc3),
        RGBColor(0x8c, 0x8c, 0x8c),
    ];

    type Error = Box<dyn std::error::Error>;

    pub fn draw(path: &Path, b: &Bars) -> Result<(), Error> {
        let width = (160 + b.groups.len() * (b.series.len() * 16 + 24)).max(640) as u32;
        let root = SVGBackend::new(path, (width, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        plot(&root, b)?;
        root.present()?;
        Ok(())
    }

    fn plot(root: &DrawingArea<SVGBackend<'_>, Shift>, b: &Bars) -> Result<(), Error> {
        let values = || b.values.iter().flatten().flatten().copied();
        let max = values().fold(0.0f64, f64::max).max(1e-9);
        // The log axis is drawn as log10 of the value on a linear axis, labelled with the
        // value: bars then start at the axis floor, one decade under the smallest value.
        let (scale, lo, hi): (fn(f64) -> f64, f64, f64) = if b.log {
            let min = values().filter(|v| *v > 0.0).fold(max, f64::min);
            (
                |v: f64| v.max(1e-9).log10(),
                min.log10().floor() - 0.3,
                max.log10() + 0.15,
            )
        } else {
            (|v| v, 0.0, max * 1.12)
        };
        let n = b.groups.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&b.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(if b.log { 48 } else { 32 })
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..n, lo..hi)?;
        let label = |v: &f64| {
            let v = if b.log { 10f64.powf(*v) } else { *v };
            short(v)
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(b.y_label.as_str())
            .y_label_formatter(&label)
            .draw()?;
        let k = b.series.len() as f64;
        let width = 0.8 / k;
        for (s, name) in b.series.iter().enumerate() {
            let colour = COLOURS[s % COLOURS.len()];
            let bars = b.values[s].iter().enumerate().filter_map(|(g, v)| {
                let v = (*v)?;
                let x0 = g as f64 + 0.1 + s as f64 * width;
                Some(Rectangle::new(
                    [(x0, lo), (x0 + width * 0.92, scale(v).max(lo))],
                    colour.filled(),
                ))
            });
            chart
                .draw_series(bars)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        // Group names under the axis, centred on their bars (plotters' own x labels go at
        // round numbers, not at group centres).
        let area = chart.plotting_area();
        let style =
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        for (g, name) in b.groups.iter().enumerate() {
            let (x, y) = area.map_coordinate(&(g as f64 + 0.5, lo));
            if b.log {
                // "1000/s p99": rate above, percentile below, to keep labels narrow.
                let (first, second) = name.split_once(' ').unwrap_or((name, ""));
                root.draw(&Text::new(second.to_string(), (x, y + 6), style.clone()))?;
                root.draw(&Text::new(first.to_string(), (x, y + 22), style.clone()))?;
            } else {
                root.draw(&Text::new(name.clone(), (x, y + 6), style.clone()))?;
            }
        }
        Ok(())
    }

    /// 1234567 → "1.23M", 0.0042 → "0.0042".
    fn short(v: f64) -> String {
        let a = v.abs();
        if a >= 1e6 {
            format!("{:.3}M", v / 1e6)
        } else if a >= 1e4 {
            format!("{:.0}k", v / 1e3)
        } else if a >= 10.0 {
            format!("{v:.0}")
        } else if a >= 0.1 {
            format!("{v:.2}")
        } else {
            format!("{v:.1e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::strings as args;

    fn figures() -> Vec<Figure> {
        let mut f = Vec::new();
        for (client, v) in [("rdkafka", 1.0), ("ferrokafka", 2.0)] {
            f.push(Figure::new(
                "produce",
                "mock",
                "100b-acks1",
                client,
                "msg_s",
                1e6 * v,
            ));
            f.push(Figure::new(
                "produce",
                "mock",
                "100b-acks1",
                client,
                "peak_rss_mb",
                20.0 * v,
            ));
            f.push(Figure::new(
                "produce",
                "mock",
                "100b-acks1",
                client,
                "cpu_us_per_record",
                0.5 * v,
            ));
            f.push(Figure::new(
                "produce",
                "mock",
                "1kb-1m",
                client,
                "msg_s",
                1e5 * v,
            ));
            for rate in ["1000/s", "10000/s"] {
                for m in ["ack_p50_us", "ack_p99_us", "ack_p999_us", "ack_max_us"] {
                    f.push(Figure::new("latency", "tansu", rate, client, m, 5000.0 * v));
                }
            }
        }
        // A later run of the same figure replaces the earlier one.
        f.push(Figure::new(
            "produce",
            "mock",
            "100b-acks1",
            "rdkafka",
            "msg_s",
            7.0,
        ));
        f
    }

    #[test]
    fn figures_become_grouped_bars() {
        let charts = plan(&figures());
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        // No e2e figures: no e2e chart.
        assert_eq!(
            names,
            [
                "produce-mock-msg_s",
                "produce-mock-cpu_us_per_record",
                "produce-mock-peak_rss_mb",
                "latency-tansu-ack"
            ]
        );
        let msgs = &charts[0];
        assert_eq!(msgs.groups, ["100b-acks1", "1kb-1m"]);
        assert_eq!(msgs.series, ["rdkafka", "ferrokafka"]);
        assert_eq!(
            msgs.values,
            [[Some(7.0), Some(1e5)], [Some(2e6), Some(2e5)]]
        );
        assert!(!msgs.log);
        assert_eq!(charts[1].values[1], [Some(1.0), None]);
        let rss = &charts[2];
        assert_eq!(rss.values[1], [Some(40.0), None]);
        let lat = &charts[3];
        assert!(lat.log && lat.title.contains("lower is better"));
        assert_eq!(lat.groups.len(), 8);
        assert_eq!(lat.groups[1], "1000/s p99");
        assert_eq!(lat.values[1][7], Some(10.0), "µs become ms");
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(&args(&["--out", "docs/perf", "a.tsv", "b.tsv"])).unwrap();
        assert_eq!(o.out, PathBuf::from("docs/perf"));
        assert_eq!(o.files.len(), 2);
        assert!(Options::parse(&args(&["a.tsv"])).is_err());
        assert!(Options::parse(&args(&["--out", "d"])).is_err());
        assert!(Options::parse(&args(&["--out"])).is_err());
        assert!(Options::parse(&args(&["--out", "d", "--svg", "a"])).is_err());
    }

    #[cfg(feature = "charts")]
    #[test]
    fn charts_are_written_as_svg() {
        let dir = std::env::temp_dir().join(format!("fkb-charts-{}", std::process::id()));
        for c in plan(&figures()) {
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{}.svg", c.name));
            draw(&path, &c).unwrap();
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
            for name in c.series.iter().chain(&c.groups) {
                // Every client is in the legend, every group under the axis ("1000/s p99"
                // is split over two lines).
                let first = name.split(' ').next().unwrap();
                assert!(svg.contains(first), "{} lacks {first}", c.name);
            }
            assert!(svg.matches("<rect").count() >= c.values.iter().flatten().flatten().count());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
