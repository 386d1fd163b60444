//! Interleaved rounds: each round runs every implementation once per case,
//! in rotating order, and the table reports the median of the rounds with
//! the ratio to raw mio. This is what the targets in BENCHMARKS.md are
//! checked against; criterion (`--bench closes`) gives the distributions.
//!
//! ```text
//! cargo bench --bench rounds                 # 9 rounds
//! HANGUP_ROUNDS=21 cargo bench --bench rounds
//! ```
//!
//! Writes a markdown table to stdout and an SVG plot of close throughput
//! against N to `target/hangup-bench/closes.svg`.

mod common;

use hangup_benches::{median, quartiles, rounds};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use common::*;
use hangup::Config;

#[derive(Clone, Copy)]
enum Case {
    Closes { n: usize, reset: bool },
    Churn { m: usize, in_flight: usize },
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Closes { n, reset } => {
                format!(
                    "concurrent_closes {} N={n}",
                    if *reset { "rst" } else { "fin" }
                )
            }
            Case::Churn { in_flight, .. } => format!("churn in_flight={in_flight}"),
        }
    }
    fn count(&self) -> usize {
        match self {
            Case::Closes { n, .. } => *n,
            Case::Churn { m, .. } => *m,
        }
    }
    fn run(&self, server: &mut dyn Server) -> Duration {
        match *self {
            Case::Closes { n, reset } => concurrent_closes_once(server, n, reset),
            Case::Churn { m, in_flight } => churn_once(server, m, in_flight),
        }
    }
}

fn main() {
    let rounds = rounds(9);
    let limit = raise_nofile();
    let mut cases = Vec::new();
    for reset in [false, true] {
        for n in [1_000usize, 2_000, 4_000, 8_000] {
            if 2 * n as u64 + 200 <= limit {
                cases.push(Case::Closes { n, reset });
            }
        }
    }
    cases.push(Case::Churn {
        m: 2_000,
        in_flight: 1,
    });
    cases.push(Case::Churn {
        m: 2_000,
        in_flight: 128,
    });

    let mut servers: Vec<(&str, Box<dyn Server>)> =
        IMPLS.iter().map(|&i| (i, make(i, false))).collect();
    // hangup with close-detection latency measured (issue 14's opt-in cost).
    let latency = Config::default()
        .listen_backlog(BACKLOG as u32)
        .close_latency(true);
    servers.push((
        "hangup+latency",
        Box::new(Hangup::with_config(latency, Mode::Quiet)),
    ));
    // The floor: a framework keeping hangup's promises with none of its
    // features (common/floor.rs), to show what the promises alone cost.
    servers.push(("floor", make("floor", false)));
    // Warm-up: one pass of every case, not recorded.
    for case in &cases {
        for (_, s) in servers.iter_mut() {
            case.run(&mut **s);
        }
    }
    // samples[case][impl] = seconds per round
    let mut samples: BTreeMap<String, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    for round in 0..rounds {
        for case in &cases {
            for k in 0..servers.len() {
                let idx = (k + round) % servers.len();
                let (name, s) = &mut servers[idx];
                let t = case.run(&mut **s).as_secs_f64();
                samples
                    .entry(case.name())
                    .or_default()
                    .entry(name)
                    .or_default()
                    .push(t);
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }

    println!(
        "Median of {rounds} interleaved rounds. Ratios to raw mio: for concurrent_closes \
         time / mio's time (lower is better); for churn rate / mio's rate (higher is better).\n"
    );
    println!("| case | hangup | raw mio | tokio | hangup vs mio | tokio vs mio | hangup with close_latency vs mio | floor vs mio |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut plot: BTreeMap<(&str, bool), Vec<(usize, f64)>> = BTreeMap::new();
    let mut paired_rows = Vec::new();
    for case in &cases {
        let per = samples.get_mut(&case.name()).unwrap();
        // Each round's ratio to raw mio's time in the same round, before
        // the medians below sort the samples.
        let paired = |imp: &str| {
            let mut r: Vec<f64> = per[imp]
                .iter()
                .zip(&per["mio"])
                .map(|(t, m)| match case {
                    Case::Closes { .. } => t / m,
                    Case::Churn { .. } => m / t,
                })
                .collect();
            let (lo, med, hi) = quartiles(&mut r);
            format!("{med:.3} [{lo:.3}, {hi:.3}]")
        };
        paired_rows.push(format!(
            "| {} | {} | {} | {} | {} |",
            case.name(),
            paired("hangup"),
            paired("tokio"),
            paired("hangup+latency"),
            paired("floor"),
        ));
        let mut med = BTreeMap::new();
        for (imp, v) in per.iter_mut() {
            med.insert(*imp, median(v));
        }
        let count = case.count() as f64;
        let cell = |imp: &str| {
            let t = med[imp];
            match case {
                Case::Closes { .. } => {
                    format!("{:.2} ms ({:.2} µs/close)", t * 1e3, t * 1e6 / count)
                }
                Case::Churn { .. } => format!("{:.0} conn/s", count / t),
            }
        };
        let ratio = |imp: &str| match case {
            Case::Closes { .. } => med[imp] / med["mio"],
            Case::Churn { .. } => med["mio"] / med[imp],
        };
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            case.name(),
            cell("hangup"),
            cell("mio"),
            cell("tokio"),
            ratio("hangup"),
            ratio("tokio"),
            ratio("hangup+latency"),
            ratio("floor"),
        );
        if let Case::Closes { n, reset } = case {
            for imp in IMPLS {
                plot.entry((imp, *reset))
                    .or_default()
                    .push((*n, count / med[imp]));
            }
        }
    }
    println!(
        "\nThe same rounds, paired: each round's ratio to raw mio's time in that \
         round; median [lower quartile, upper quartile] of the {rounds} ratios. \
         The quartiles show how far one run's ratio can move.\n"
    );
    println!(
        "| case | hangup vs mio | tokio vs mio | hangup with close_latency vs mio | floor vs mio |"
    );
    println!("|---|---|---|---|---|");
    for row in &paired_rows {
        println!("{row}");
    }
    let svg = svg_plot(&plot);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/hangup-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("closes.svg");
    std::fs::write(&path, svg).unwrap();
    println!("\nplot: {}", path.display());
}

/// A small line chart: close throughput (closes/s) against N, one line per
/// implementation and close kind.
fn svg_plot(series: &BTreeMap<(&str, bool), Vec<(usize, f64)>>) -> String {
    let (w, h, l, r, t, b) = (720.0, 420.0, 80.0, 190.0, 40.0, 50.0);
    let max_n = series.values().flatten().map(|p| p.0).max().unwrap_or(1) as f64;
    let max_y = series.values().flatten().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let x = |n: f64| l + (w - l - r) * n / max_n;
    let y = |v: f64| h - b - (h - t - b) * v / max_y;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="22" font-size="14">Close throughput against N (median of interleaved rounds)</text>"#,
        l
    );
    let _ = write!(
        s,
        r#"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>"#,
        h - b,
        w - r,
        h - b,
        h - b
    );
    for i in 0..=5 {
        let v = max_y * i as f64 / 5.0;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{:.0}k</text><line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            l - 6.0,
            y(v) + 4.0,
            v / 1e3,
            y(v),
            w - r,
            y(v)
        );
    }
    let ns: std::collections::BTreeSet<usize> = series.values().flatten().map(|p| p.0).collect();
    for n in ns {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{n}</text>"#,
            x(n as f64),
            h - b + 16.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">N (connections closed at once)</text>"#,
        (l + w - r) / 2.0,
        h - 12.0
    );
    let _ = write!(
        s,
        r#"<text x="18" y="{}" transform="rotate(-90 18 {})" text-anchor="middle">closes per second</text>"#,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0
    );
    let color = |imp: &str| match imp {
        "hangup" => "#d62728",
        "mio" => "#1f77b4",
        _ => "#2ca02c",
    };
    for (k, ((imp, reset), pts)) in series.iter().enumerate() {
        let d: Vec<String> = pts
            .iter()
            .map(|(n, v)| format!("{:.1},{:.1}", x(*n as f64), y(*v)))
            .collect();
        let dash = if *reset { "6,4" } else { "none" };
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
            color(imp),
            d.join(" ")
        );
        for (n, v) in pts {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                x(*n as f64),
                y(*v),
                color(imp)
            );
        }
        let ly = t + 10.0 + 18.0 * k as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{imp} ({})</text>"#,
            w - r + 10.0,
            w - r + 40.0,
            color(imp),
            w - r + 46.0,
            ly + 4.0,
            if *reset { "reset" } else { "FIN" }
        );
    }
    s.push_str("</svg>\n");
    s
}
