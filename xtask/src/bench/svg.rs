//! The benchmark's picture, written as SVG by hand: the latency until the last watcher holds
//! the new state, against the number of watchers, the library against the C floor.
//!
//! Both axes are logarithmic (1, 16 and 128 watchers; latencies that span decades). Each
//! program has its median (solid, with dots and values) and its 99th percentile (dashed); a
//! short vertical bar at each median spans the medians of the parts of the run (the spread
//! over the run).

use std::fmt::Write;

use super::report::{Latency, range};

/// One program's points, in the order of [`Chart::watchers`].
pub struct Series<'a> {
    /// The legend's name.
    pub name: &'a str,
    /// Stroke colour.
    pub color: &'a str,
    /// Its latency at each number of watchers (`None`: not measured).
    pub points: Vec<Option<Latency>>,
    /// Which side of the dots the values go on (-1 left, 1 right).
    pub label_side: f64,
}

/// What the picture shows.
pub struct Chart<'a> {
    /// The title.
    pub title: &'a str,
    /// Lines under the title (date, machine, method).
    pub subtitle: Vec<String>,
    /// The numbers of watchers (the x axis).
    pub watchers: Vec<u32>,
    /// A note under each x tick (the ratio there).
    pub tick_notes: Vec<String>,
    /// The programs.
    pub series: Vec<Series<'a>>,
}

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 770.0;
const TOP: f64 = 110.0;
const BOTTOM: f64 = 420.0;
/// Room left and right of the outermost x ticks, inside the plot.
const X_PAD: f64 = 70.0;

impl Chart<'_> {
    /// The SVG document.
    pub fn render(&self) -> String {
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        svg.push('\n');
        rect(&mut svg, 0.0, 0.0, WIDTH, HEIGHT, "white");
        text(
            &mut svg,
            WIDTH / 2.0,
            26.0,
            "middle",
            16.0,
            "bold",
            self.title,
        );
        for (i, line) in self.subtitle.iter().enumerate() {
            text(
                &mut svg,
                WIDTH / 2.0,
                46.0 + 16.0 * i as f64,
                "middle",
                11.0,
                "normal",
                line,
            );
        }
        let Some((lo, hi)) = self.y_range() else {
            text(
                &mut svg,
                WIDTH / 2.0,
                HEIGHT / 2.0,
                "middle",
                14.0,
                "normal",
                "no figures",
            );
            svg.push_str("</svg>\n");
            return svg;
        };
        let y = |us: f64| BOTTOM - (us.log10() - lo) / (hi - lo) * (BOTTOM - TOP);
        self.axes(&mut svg, lo, hi, &y);
        for (k, series) in self.series.iter().enumerate() {
            // Side by side, so the spread bars of the two programs do not hide each other.
            let nudge = (k as f64 - (self.series.len() as f64 - 1.0) / 2.0) * 8.0;
            self.draw(&mut svg, series, nudge, &y);
        }
        self.legend(&mut svg);
        svg.push_str("</svg>\n");
        svg
    }

    /// The x position of the `i`th number of watchers (log scale).
    fn x(&self, i: usize) -> f64 {
        let logs: Vec<f64> = self.watchers.iter().map(|&w| f64::from(w).log2()).collect();
        let (first, last) = (logs.first().copied(), logs.last().copied());
        match (first, last, logs.get(i)) {
            (Some(a), Some(b), Some(&v)) if b > a => {
                LEFT + X_PAD + (v - a) / (b - a) * (RIGHT - LEFT - 2.0 * X_PAD)
            }
            _ => (LEFT + RIGHT) / 2.0,
        }
    }

    /// The y range in decades (log10 of microseconds), widened to whole 1-2-5 steps.
    fn y_range(&self) -> Option<(f64, f64)> {
        let all: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().flatten())
            .flat_map(|p| [p.p50, p.p99, p.part_range().map_or(p.p50, |r| r.0)])
            .filter(|v| *v > 0.0)
            .collect();
        let (min, max) = range(&all)?;
        let lo = step_below(min).log10();
        let hi = step_above(max).log10();
        Some((lo, if hi > lo { hi } else { lo + 1.0 }))
    }

    fn axes(&self, svg: &mut String, lo: f64, hi: f64, y: &impl Fn(f64) -> f64) {
        // Horizontal grid at 1, 2 and 5 times each power of ten in range.
        let mut decade = 10f64.powf(lo.floor());
        while decade.log10() <= hi + 1e-9 {
            for m in [1.0, 2.0, 5.0] {
                let v = decade * m;
                let l = v.log10();
                if l < lo - 1e-9 || l > hi + 1e-9 {
                    continue;
                }
                let yy = y(v);
                let color = if m == 1.0 { "#bbb" } else { "#e4e4e4" };
                line(svg, LEFT, yy, RIGHT, yy, color, 1.0, None);
                text(svg, LEFT - 8.0, yy + 4.0, "end", 11.0, "normal", &fmt_us(v));
            }
            decade *= 10.0;
        }
        line(svg, LEFT, TOP, LEFT, BOTTOM, "#333", 1.0, None);
        line(svg, LEFT, BOTTOM, RIGHT, BOTTOM, "#333", 1.0, None);
        for (i, w) in self.watchers.iter().enumerate() {
            let x = self.x(i);
            line(svg, x, BOTTOM, x, BOTTOM + 5.0, "#333", 1.0, None);
            let label = if *w == 1 {
                "1 watcher".to_owned()
            } else {
                format!("{w} watchers")
            };
            text(svg, x, BOTTOM + 19.0, "middle", 12.0, "bold", &label);
            if let Some(note) = self.tick_notes.get(i) {
                text(svg, x, BOTTOM + 35.0, "middle", 11.0, "normal", note);
            }
        }
        text(
            svg,
            (LEFT + RIGHT) / 2.0,
            BOTTOM + 62.0,
            "middle",
            12.0,
            "normal",
            "watcher processes on the one attribute (log scale)",
        );
        let _ = writeln!(
            svg,
            r#"<text x="22" y="{:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 22 {:.1})">time until the last watcher holds the new state (log scale)</text>"#,
            (TOP + BOTTOM) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
    }

    fn draw(&self, svg: &mut String, series: &Series, nudge: f64, y: &impl Fn(f64) -> f64) {
        let pts: Vec<(f64, &Latency)> = series
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((self.x(i) + nudge, p.as_ref()?)))
            .collect();
        let path = |pick: fn(&Latency) -> f64| -> String {
            pts.iter()
                .map(|(x, p)| format!("{x:.1},{:.1}", y(pick(p))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        polyline(svg, &path(|p| p.p99), series.color, 1.5, Some("6 4"));
        polyline(svg, &path(|p| p.p50), series.color, 2.5, None);
        for (x, p) in &pts {
            if let Some((a, b)) = p.part_range() {
                line(svg, *x, y(a), *x, y(b), series.color, 5.0, None);
            }
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{:.1}" r="4" fill="white" stroke="{}" stroke-width="2"/>"#,
                y(p.p50),
                series.color
            );
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="6" height="6" fill="{}"/>"#,
                x - 3.0,
                y(p.p99) - 3.0,
                series.color
            );
            let anchor = if series.label_side < 0.0 {
                "end"
            } else {
                "start"
            };
            let dx = 13.0 * series.label_side;
            text(
                svg,
                x + dx,
                y(p.p50) + 4.0,
                anchor,
                11.0,
                "bold",
                &fmt_us(p.p50),
            );
            text(
                svg,
                x + dx,
                y(p.p99) + 4.0,
                anchor,
                10.0,
                "normal",
                &fmt_us(p.p99),
            );
        }
    }

    fn legend(&self, svg: &mut String) {
        let (x0, mut yy) = (LEFT + 14.0, TOP + 14.0);
        for series in &self.series {
            line(svg, x0, yy, x0 + 26.0, yy, series.color, 2.5, None);
            text(
                svg,
                x0 + 32.0,
                yy + 4.0,
                "start",
                11.0,
                "normal",
                &format!("{}: median (dots)", series.name),
            );
            yy += 16.0;
            line(svg, x0, yy, x0 + 26.0, yy, series.color, 1.5, Some("6 4"));
            text(
                svg,
                x0 + 32.0,
                yy + 4.0,
                "start",
                11.0,
                "normal",
                &format!("{}: 99th percentile", series.name),
            );
            yy += 18.0;
        }
        text(
            svg,
            x0,
            yy + 2.0,
            "start",
            10.0,
            "normal",
            "bars: the range of the medians of the run's tenths",
        );
    }
}

/// The largest 1-2-5 step at or below `v`.
fn step_below(v: f64) -> f64 {
    let decade = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s <= v * (1.0 + 1e-9))
        .unwrap_or(decade)
}

/// The smallest 1-2-5 step at or above `v`.
fn step_above(v: f64) -> f64 {
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade)
}

/// Microseconds for a label: `85`, `1.2k` would be ambiguous, so milliseconds past 1000 µs.
fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        let ms = us / 1000.0;
        if ms >= 10.0 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else if us >= 10.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

fn rect(svg: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    let _ = writeln!(
        svg,
        r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}"/>"#
    );
}

#[allow(clippy::too_many_arguments)] // An SVG line is these eight things.
fn line(
    svg: &mut String,
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    color: &str,
    width: f64,
    dash: Option<&str>,
) {
    let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
    let _ = writeln!(
        svg,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{color}" stroke-width="{width}"{dash}/>"#
    );
}

fn polyline(svg: &mut String, points: &str, color: &str, width: f64, dash: Option<&str>) {
    let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
    let _ = writeln!(
        svg,
        r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>"#
    );
}

fn text(svg: &mut String, x: f64, y: f64, anchor: &str, size: f64, weight: &str, s: &str) {
    let _ = writeln!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}">{}</text>"#,
        escape(s)
    );
}

/// `s` with XML's special characters escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(p50: f64, p99: f64) -> Option<Latency> {
        Some(Latency {
            n: 100.0,
            p50,
            p99,
            min: p50 / 2.0,
            max: p99 * 2.0,
            part_p50: vec![p50 * 0.9, p50 * 1.1],
            first_p50: None,
        })
    }

    #[test]
    fn renders_a_document_with_both_series() {
        let chart = Chart {
            title: "t <&>",
            subtitle: vec!["s".to_owned()],
            watchers: vec![1, 16, 128],
            tick_notes: vec!["1.0x".to_owned(); 3],
            series: vec![
                Series {
                    name: "library",
                    color: "#0072B2",
                    points: vec![point(100.0, 300.0), point(900.0, 2000.0), None],
                    label_side: -1.0,
                },
                Series {
                    name: "C floor",
                    color: "#E69F00",
                    points: vec![point(95.0, 250.0), point(850.0, 1900.0), point(7e3, 9e3)],
                    label_side: 1.0,
                },
            ],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;&amp;&gt;"));
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("9.0 ms") && svg.contains("100 µs"));
    }

    #[test]
    fn steps() {
        assert_eq!(step_below(73.0), 50.0);
        assert_eq!(step_above(73.0), 100.0);
        assert_eq!(step_above(1500.0), 2000.0);
        assert_eq!(step_below(100.0), 100.0);
    }
}
