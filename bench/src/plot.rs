//! An SVG chart of a run: requests and accepted orders per second, and p99 latency per second,
//! with the sell-out moment marked. Plain SVG, no dependency: it opens in any browser.

use std::fmt::Write as _;

use crate::report::Report;

const W: f64 = 800.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 40.0;

/// A line: its name, its colour, one value per second.
type Series<'a> = (&'a str, &'a str, Vec<f64>);
/// A chart panel: its label and its lines.
type Panel<'a> = (&'a str, Vec<Series<'a>>);

/// The chart of `report`, titled `title`.
pub fn svg(report: &Report, title: &str) -> String {
    let n = report.seconds.len().max(1) as f64;
    let mut out = String::new();
    let height = TOP + 2.0 * PANEL + 80.0;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="15">{}</text>
"#,
        escape(title)
    );
    for (p, (label, series)) in panels(report).iter().enumerate() {
        let top = TOP + p as f64 * (PANEL + 30.0);
        panel(&mut out, report, Frame::new(n, top, series), label, series);
    }
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="{}" fill="#555">0 s</text>
<text x="{}" y="{}" fill="#555">{:.1} s</text>
<text x="{}" y="{}" fill="#555">time since start ({:.1} s per point)</text>
</svg>
"##,
        height - 40.0,
        W - 60.0,
        height - 40.0,
        n * report.bucket.as_secs_f64(),
        W / 2.0 - 90.0,
        height - 20.0,
        report.bucket.as_secs_f64()
    );
    out
}

/// The two panels: throughput, then p99 latency.
fn panels(report: &Report) -> [Panel<'static>; 2] {
    [
        (
            "per second",
            vec![
                (
                    "requests/s",
                    "#1f77b4",
                    report.seconds.iter().map(|s| s.requests as f64).collect(),
                ),
                (
                    "accepted/s",
                    "#2ca02c",
                    report.seconds.iter().map(|s| s.accepted as f64).collect(),
                ),
            ],
        ),
        (
            "p99 latency (ms)",
            vec![(
                "p99",
                "#d62728",
                report.seconds.iter().map(|s| s.p99_ms).collect(),
            )],
        ),
    ]
}

/// Where a panel sits and how its values map onto it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Points along the time axis.
    n: f64,
    top: f64,
    bottom: f64,
    /// The largest value of the panel's lines: the top of its scale.
    max: f64,
}

impl Frame {
    fn new(n: f64, top: f64, series: &[Series<'_>]) -> Self {
        let max = series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        Self {
            n,
            top,
            bottom: top + PANEL,
            max,
        }
    }

    fn x(self, i: f64) -> f64 {
        LEFT + (W - LEFT - 20.0) * (i + 0.5) / self.n
    }

    fn y(self, v: f64) -> f64 {
        self.bottom - (PANEL - 10.0) * v / self.max
    }
}

/// One panel: its axes, its lines and, if the run sold out, the moment it did.
fn panel(out: &mut String, report: &Report, frame: Frame, label: &str, series: &[Series<'_>]) {
    let Frame {
        top, bottom, max, ..
    } = frame;
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#999"/>
<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#999"/>
<text x="6" y="{}" >{max:.0}</text><text x="6" y="{bottom}">0</text>
<text x="{}" y="{}" fill="#555">{label}</text>
"##,
        W - 20.0,
        top + 12.0,
        LEFT + 8.0,
        top + 12.0,
    );
    for (k, (name, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", frame.x(i as f64), frame.y(*v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>
<text x="{}" y="{}" fill="{colour}">{name}</text>
"#,
            points.join(" "),
            W - 120.0,
            top + 14.0 + 14.0 * k as f64
        );
    }
    if let Some(at) = report.sold_out_at {
        let sx =
            LEFT + (W - LEFT - 20.0) * at.as_secs_f64() / report.bucket.as_secs_f64() / frame.n;
        let _ = write!(
            out,
            r##"<line x1="{sx:.1}" y1="{top}" x2="{sx:.1}" y2="{bottom}" stroke="#ff7f0e" stroke-dasharray="5,4"/>
<text x="{:.1}" y="{}" fill="#ff7f0e">sold out {:.2} s</text>
"##,
            sx + 4.0,
            bottom - 6.0,
            at.as_secs_f64()
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
