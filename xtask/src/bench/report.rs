//! The guest's `bench: KEY VALUE` lines, read back into figures: for the verdicts, the table
//! printed at the end, `target/bench/report.json` and the picture.

use std::collections::HashMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// The numbers of watchers the guest measures (`luo-bench`'s `WATCHERS`).
pub const WATCHERS: [u32; 3] = [1, 16, 128];

/// The value of each `bench: KEY VALUE` line.
pub struct Values<'a> {
    map: HashMap<&'a str, &'a str>,
    /// The keys in the order the guest printed them.
    order: Vec<&'a str>,
}

/// The latency of one program with one number of watchers, in microseconds; in
/// `report.json` under the names of the guest's keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Measured transitions.
    #[serde(serialize_with = "figure")]
    pub n: f64,
    /// Median of the last watcher's latency.
    #[serde(rename = "p50_us", serialize_with = "figure")]
    pub p50: f64,
    /// 99th percentile of the last watcher's latency.
    #[serde(rename = "p99_us", serialize_with = "figure")]
    pub p99: f64,
    /// Smallest.
    #[serde(rename = "min_us", serialize_with = "figure")]
    pub min: f64,
    /// Largest.
    #[serde(rename = "max_us", serialize_with = "figure")]
    pub max: f64,
    /// The median of each part of the run, in time order: the spread of the median over the
    /// run (part `i` of each program covers the same stretch of time).
    #[serde(rename = "part_p50_us", serialize_with = "figures")]
    pub part_p50: Vec<f64>,
    /// Median of the first watcher's latency (more than one watcher only).
    #[serde(rename = "first_watcher_p50_us", serialize_with = "figure_or_null")]
    pub first_p50: Option<f64>,
}

/// The ioctl's cost with one number of watchers, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ioctl {
    /// How many watchers slept on the attribute.
    pub watchers: u32,
    /// Measured transitions.
    #[serde(serialize_with = "figure")]
    pub n: f64,
    /// Median wall time as the caller sees it.
    #[serde(rename = "wall_p50_us", serialize_with = "figure")]
    pub p50: f64,
    /// 99th percentile wall time.
    #[serde(rename = "wall_p99_us", serialize_with = "figure")]
    pub p99: f64,
    /// Median of the caller's CPU time.
    #[serde(rename = "cpu_p50_us", serialize_with = "figure")]
    pub cpu_p50: f64,
    /// 99th percentile of the caller's CPU time.
    #[serde(rename = "cpu_p99_us", serialize_with = "figure")]
    pub cpu_p99: f64,
}

impl<'a> Values<'a> {
    /// Reads the `bench:` lines among `lines`; others are skipped.
    pub fn parse(lines: &[&'a str]) -> Values<'a> {
        let mut map = HashMap::new();
        let mut order = Vec::new();
        for line in lines {
            let Some(rest) = line.strip_prefix("bench:") else {
                continue;
            };
            let rest = rest.trim_start();
            let (key, value) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(k, v)| (k, v.trim()));
            if map.insert(key, value).is_none() {
                order.push(key);
            }
        }
        Values { map, order }
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).copied()
    }

    /// The value of `key` as a number.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }

    /// The value of `key` as a comma-separated list of numbers.
    pub fn list(&self, key: &str) -> Vec<f64> {
        self.get(key)
            .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The latency of `program` with `watchers` watchers, if measured.
    pub fn latency(&self, program: &str, watchers: u32) -> Option<Latency> {
        let key = |what: &str| format!("latency.{program}.w{watchers}.{what}");
        Some(Latency {
            n: self.num(&key("n"))?,
            p50: self.num(&key("p50_us"))?,
            p99: self.num(&key("p99_us"))?,
            min: self.num(&key("min_us"))?,
            max: self.num(&key("max_us"))?,
            part_p50: self.list(&key("part_p50_us")),
            first_p50: self.num(&key("first_p50_us")),
        })
    }

    /// The ioctl's cost with each number of watchers measured (0, then [`WATCHERS`]).
    pub fn ioctl(&self) -> Vec<Ioctl> {
        [0].into_iter()
            .chain(WATCHERS)
            .filter_map(|watchers| {
                let key = |what: &str| format!("ioctl.w{watchers}.{what}");
                Some(Ioctl {
                    watchers,
                    n: self.num(&key("n"))?,
                    p50: self.num(&key("p50_us"))?,
                    p99: self.num(&key("p99_us"))?,
                    cpu_p50: self.num(&key("cpu_p50_us"))?,
                    cpu_p99: self.num(&key("cpu_p99_us"))?,
                })
            })
            .collect()
    }

    /// Every line, for `report.json`: a flat object in the order the guest printed them,
    /// numbers as numbers.
    pub fn lines(&self) -> Lines<'_, 'a> {
        Lines(self)
    }
}

/// Every `bench:` line as one JSON object (see [`Values::lines`]).
pub struct Lines<'v, 'a>(&'v Values<'a>);

impl Serialize for Lines<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A map by hand rather than a serde_json::Map: that sorts its keys unless the
        // `preserve_order` feature is on, which would change luoctl's output too (features
        // are unified across the workspace).
        let mut map = serializer.serialize_map(Some(self.0.order.len()))?;
        for key in &self.0.order {
            map.serialize_entry(key, &Guessed::from(self.0.map[key]))?;
        }
        map.end()
    }
}

/// A value of the guest's report: a number if it reads as one, else its text.
#[derive(Serialize)]
#[serde(untagged)]
enum Guessed<'a> {
    Number(#[serde(serialize_with = "figure")] f64),
    Text(&'a str),
}

impl<'a> From<&'a str> for Guessed<'a> {
    fn from(text: &'a str) -> Guessed<'a> {
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Guessed::Number(n),
            _ => Guessed::Text(text),
        }
    }
}

/// A figure in JSON: a count or other whole value without a fraction (`500`, not `500.0`, as
/// the guest printed it), a non-finite one as `null` (JSON has no NaN).
pub fn figure<S: Serializer>(x: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        // Exact: a whole number below 2^53 converts without loss.
        serializer.serialize_i64(*x as i64)
    } else if x.is_finite() {
        serializer.serialize_f64(*x)
    } else {
        serializer.serialize_none()
    }
}

/// [`figure`], or `null` for none.
pub fn figure_or_null<S: Serializer>(x: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => figure(x, serializer),
        None => serializer.serialize_none(),
    }
}

/// An array of [`figure`]s.
pub fn figures<S: Serializer>(xs: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(xs.iter().map(|&x| Figure(x)))
}

/// One [`figure`], for the places that hold a bare number.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Figure(#[serde(serialize_with = "figure")] pub f64);

impl Latency {
    /// The smallest and largest median of a part, if there are parts.
    pub fn part_range(&self) -> Option<(f64, f64)> {
        range(&self.part_p50)
    }
}

/// The smallest and largest of `xs`.
pub fn range(xs: &[f64]) -> Option<(f64, f64)> {
    let lo = xs.iter().copied().reduce(f64::min)?;
    let hi = xs.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// `YYYY-MM-DD HH:MM UTC` of a time in seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day number counted from 1970-01-01: the days are split
/// into 400-year eras of 146 097 days, and the year is taken to start in March so that the
/// leap day falls at its end.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_767_225_600 + 3_661), "2026-01-01 01:01 UTC");
    }

    #[test]
    fn figures_from_lines() {
        let lines = [
            "bench: latency.library.w1.n 500",
            "bench: latency.library.w1.p50_us 120.5",
            "bench: latency.library.w1.p99_us 300.0",
            "bench: latency.library.w1.min_us 90.0",
            "bench: latency.library.w1.max_us 900.0",
            "bench: latency.library.w1.part_p50_us 119.0,121.5",
            "bench: ioctl.w0.n 500",
            "bench: ioctl.w0.p50_us 20.0",
            "bench: ioctl.w0.p99_us 40.0",
            "bench: ioctl.w0.cpu_p50_us 19.0",
            "bench: ioctl.w0.cpu_p99_us 30.0",
            "not a bench line",
        ];
        let values = Values::parse(&lines);
        let lat = values.latency("library", 1).unwrap();
        assert_eq!((lat.p50, lat.part_range()), (120.5, Some((119.0, 121.5))));
        assert!(values.latency("c_floor", 1).is_none());
        let ioctl = values.ioctl();
        assert_eq!((ioctl.len(), ioctl[0].watchers, ioctl[0].p50), (1, 0, 20.0));
        assert_eq!(
            serde_json::to_string(&values.lines()).unwrap(),
            "{\"latency.library.w1.n\":500,\"latency.library.w1.p50_us\":120.5,\
             \"latency.library.w1.p99_us\":300,\"latency.library.w1.min_us\":90,\
             \"latency.library.w1.max_us\":900,\"latency.library.w1.part_p50_us\":\"119.0,121.5\",\
             \"ioctl.w0.n\":500,\"ioctl.w0.p50_us\":20,\"ioctl.w0.p99_us\":40,\
             \"ioctl.w0.cpu_p50_us\":19,\"ioctl.w0.cpu_p99_us\":30}",
            "every line in the guest's order, numbers as numbers"
        );
    }
}
