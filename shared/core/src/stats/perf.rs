//! Performance figures: each API route's request count, errors and latency percentiles, and
//! the trainer's throughput, over the last hour, day or week.
//!
//! The API's middleware measures every request into a [`Meter`] in memory; the meter
//! writes what it gathered every few seconds as atomic `ADD`s into per-minute, per-hour and
//! per-day items of each series, so any number of processes (Lambda instances, `synth
//! serve`) add into the same items and a window is read with one or two key-range queries,
//! whatever the traffic was. Latencies are kept as a histogram of fixed log-spaced buckets
//! (each 20% wider than the one before), which add up across processes and minutes;
//! a percentile is the upper bound of the bucket it falls in, so it is never under-stated
//! and at most 20% over. (A histogram crate's structure cannot be merged by the store's
//! atomic adds; these few lines can.)
//!
//! Why the record store and not CloudWatch: one code path for both deployments, tested on
//! both families; percentiles from CloudWatch need either embedded metric logs (which no
//! emulator reads back) or one `PutMetricData` call per request.
//!
//! Records (expiring through `expires_at`):
//! - `PERF#M#{date}` / `{HH:MM}#{series}` — one minute of a series (kept 3 days);
//! - `PERF#H#{date}` / `{HH}#{series}` — one hour (kept 15 days);
//! - `PERF#D` / `{date}#{series}` — one day (kept 400 days).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::RecordStore;
use crate::error::PortResult;
use crate::ports::records::{Index, Item, Key, Query, SortKey, Update, query_all};

/// The upper bound of the first latency bucket, in microseconds.
const BASE_US: f64 = 100.0;
/// Each bucket's upper bound is this much the previous one's.
const FACTOR: f64 = 1.2;
/// Buckets kept; the last one takes everything longer (about 6 minutes and up).
const BUCKETS: usize = 84;
/// How long the meter keeps measurements before writing them.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// The bucket of a duration.
fn bucket_of(us: u64) -> usize {
    if (us as f64) <= BASE_US {
        return 0;
    }
    let i = ((us as f64) / BASE_US).ln() / FACTOR.ln();
    (i.ceil() as usize).min(BUCKETS - 1)
}

/// The upper bound of bucket `i`, in milliseconds.
fn bucket_upper_ms(i: usize) -> f64 {
    BASE_US * FACTOR.powi(i as i32) / 1000.0
}

fn bucket_attr(i: usize) -> String {
    format!("b{i:02}")
}

/// What one series gathered over some time.
#[derive(Debug, Clone, Default, PartialEq)]
struct Tallied {
    count: i64,
    /// Answers 500 and up.
    errors: i64,
    /// Answers 400 to 499.
    client_errors: i64,
    sum_us: i64,
    buckets: BTreeMap<usize, i64>,
}

impl Tallied {
    fn record(&mut self, elapsed: Duration, status: u16) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.count += 1;
        self.errors += i64::from(status >= 500);
        self.client_errors += i64::from((400..500).contains(&status));
        self.sum_us = self
            .sum_us
            .saturating_add(i64::try_from(us).unwrap_or(i64::MAX));
        *self.buckets.entry(bucket_of(us)).or_default() += 1;
    }

    fn merge(&mut self, other: &Tallied) {
        self.count += other.count;
        self.errors += other.errors;
        self.client_errors += other.client_errors;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_default() += n;
        }
    }

    fn update(&self) -> Update {
        let mut u = Update::default()
            .add("count", self.count)
            .add("errors", self.errors)
            .add("client_errors", self.client_errors)
            .add("sum_us", self.sum_us);
        for (b, n) in &self.buckets {
            u = u.add(&bucket_attr(*b), *n);
        }
        u
    }

    fn of_item(item: &Item) -> Self {
        let n = |a: &str| item.i64(a).unwrap_or(0);
        Self {
            count: n("count"),
            errors: n("errors"),
            client_errors: n("client_errors"),
            sum_us: n("sum_us"),
            buckets: (0..BUCKETS)
                .filter_map(|b| item.i64(&bucket_attr(b)).map(|c| (b, c)))
                .collect(),
        }
    }

    /// The `q` quantile (0..=1) in milliseconds: the upper bound of its bucket.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: i64 = self.buckets.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(round3(bucket_upper_ms(*b)));
            }
        }
        None
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The three items a measurement of `at` adds into, with how long each is kept.
fn rollups(at: DateTime<Utc>, series: &str) -> [(Key, DateTime<Utc>); 3] {
    let date = at.format("%Y-%m-%d");
    [
        (
            Key::new(
                format!("PERF#M#{date}"),
                format!("{}#{series}", at.format("%H:%M")),
            ),
            at + Span::days(3),
        ),
        (
            Key::new(
                format!("PERF#H#{date}"),
                format!("{}#{series}", at.format("%H")),
            ),
            at + Span::days(15),
        ),
        (
            Key::new("PERF#D", format!("{date}#{series}")),
            at + Span::days(400),
        ),
    ]
}

/// Add `update` for `series` at `at` into its minute, hour and day.
async fn add_rollups(
    records: &dyn RecordStore,
    at: DateTime<Utc>,
    series: &str,
    kind: &str,
    update: &Update,
) -> PortResult<()> {
    for (key, expires) in rollups(at, series) {
        let u = update
            .clone()
            .set("series", series)
            .set("kind", kind)
            .set("expires_at", expires.timestamp());
        records.update(&key, u, None).await?;
    }
    Ok(())
}

/// Measurements not yet written, by minute (Unix seconds of its start) and series.
#[derive(Debug, Default)]
struct Pending {
    by_minute: HashMap<(i64, String), Tallied>,
    last_flush: Option<Instant>,
}

/// Gathers the API's measurements in memory and writes them in batches.
#[derive(Debug, Default)]
pub struct Meter {
    pending: Mutex<Pending>,
    /// Held while a flush writes, so a flush that returns has seen every earlier one done.
    flushing: tokio::sync::Mutex<()>,
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Count one answer of `series` (`GET /notifications`) that took `elapsed`. True when
    /// the measurements are due to be written ([`Meter::flush`]).
    pub fn record(&self, series: &str, elapsed: Duration, status: u16) -> bool {
        let now = Utc::now();
        let minute = now.timestamp() - i64::from(now.second());
        let mut p = self.lock();
        p.by_minute
            .entry((minute, series.to_owned()))
            .or_default()
            .record(elapsed, status);
        let due = p.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY);
        if due {
            // Claimed here, so concurrent answers do not all start a flush.
            p.last_flush = Some(Instant::now());
        }
        due
    }

    /// Write everything gathered; what could not be written is kept for the next time.
    /// Returns how many series-minutes were written.
    pub async fn flush(&self, records: &dyn RecordStore) -> usize {
        let _one_at_a_time = self.flushing.lock().await;
        let taken = std::mem::take(&mut self.lock().by_minute);
        let mut written = 0;
        let mut failed = Vec::new();
        for ((minute, series), t) in taken {
            let at = DateTime::from_timestamp(minute, 0).unwrap_or_else(Utc::now);
            match add_rollups(records, at, &series, "route", &t.update()).await {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::warn!(error = %e, %series, "route measurements not written; kept");
                    failed.push(((minute, series), t));
                }
            }
        }
        let mut p = self.lock();
        for (k, t) in failed {
            p.by_minute.entry(k).or_default().merge(&t);
        }
        written
    }
}

/// Count one trainer fit: `row_epochs` rows × epochs in `seconds` of training, of `model`
/// on `device`. Best effort (logged).
pub async fn record_training(
    records: &dyn RecordStore,
    model: &str,
    device: &str,
    row_epochs: u64,
    seconds: f64,
) {
    let series = format!("{model} {device}");
    let update = Update::default()
        .add("runs", 1)
        .add("row_epochs", i64::try_from(row_epochs).unwrap_or(i64::MAX))
        .add("train_ms", (seconds * 1000.0).round() as i64)
        .set("model", model)
        .set("device", device);
    if let Err(e) = add_rollups(records, Utc::now(), &series, "training", &update).await {
        tracing::warn!(error = %e, %series, "training throughput not written");
    }
}

/// The span a performance report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Window {
    /// The last 60 minutes, by the minute.
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours, by the hour (the current hour included).
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days, by the day (today included).
    #[serde(rename = "7d")]
    Week,
}

impl std::str::FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1h" => Ok(Self::Hour),
            "24h" => Ok(Self::Day),
            "7d" => Ok(Self::Week),
            _ => Err("one of 1h, 24h, 7d".into()),
        }
    }
}

/// How a window's items are keyed: its step, how many steps it spans, and the partition
/// and the sort-key prefix of the step holding an instant.
type Keying = (
    Span,
    i32,
    fn(DateTime<Utc>) -> String,
    fn(DateTime<Utc>) -> String,
);

impl Window {
    /// The key ranges holding the window ending at `now`: (partition, first sort key,
    /// last sort key), at most two, and the window's first instant.
    fn ranges(self, now: DateTime<Utc>) -> (Vec<(String, String, String)>, DateTime<Utc>) {
        let (step, n, part, sk): Keying = match self {
            Self::Hour => (
                Span::minutes(1),
                60,
                |t| format!("PERF#M#{}", t.format("%Y-%m-%d")),
                |t| t.format("%H:%M").to_string(),
            ),
            Self::Day => (
                Span::hours(1),
                24,
                |t| format!("PERF#H#{}", t.format("%Y-%m-%d")),
                |t| t.format("%H").to_string(),
            ),
            Self::Week => (
                Span::days(1),
                7,
                |_| "PERF#D".to_owned(),
                |t| t.format("%Y-%m-%d").to_string(),
            ),
        };
        let first = now - step * (n - 1);
        let mut ranges: Vec<(String, String, String)> = Vec::new();
        let mut t = first;
        while t <= now {
            let p = part(t);
            match ranges.last_mut() {
                Some(r) if r.0 == p => r.2 = sk(t),
                _ => ranges.push((p, sk(t), sk(t))),
            }
            t += step;
        }
        let start = match self {
            Self::Hour => first.with_second(0),
            Self::Day => first.with_minute(0).and_then(|t| t.with_second(0)),
            Self::Week => first
                .with_hour(0)
                .and_then(|t| t.with_minute(0))
                .and_then(|t| t.with_second(0)),
        }
        .unwrap_or(first)
        .with_nanosecond(0)
        .unwrap_or(first);
        (ranges, start)
    }
}

/// One route's figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoutePerformance {
    /// The method and the route's path template (`GET /generation/status/{id}`).
    pub route: String,
    pub requests: i64,
    /// Answers of 500 and up.
    pub errors: i64,
    /// Answers of 400 to 499.
    pub client_errors: i64,
    /// `errors / requests`.
    pub error_rate: f64,
    pub mean_ms: f64,
    /// Latency percentiles: the upper bound of the histogram bucket each falls in (at most
    /// 20% above the true figure).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The trainer's pace for one model on one device over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainingThroughput {
    pub model: String,
    /// `cpu`, or `cuda:{ordinal}`.
    pub device: String,
    /// Fits finished.
    pub runs: i64,
    /// Training rows times epochs, summed over the fits.
    pub row_epochs: i64,
    /// Seconds spent fitting.
    pub seconds: f64,
    pub row_epochs_per_second: f64,
}

/// Route and trainer performance over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Performance {
    pub window: Window,
    /// The first instant the window covers, and when it was read.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Busiest first.
    pub routes: Vec<RoutePerformance>,
    pub training: Vec<TrainingThroughput>,
}

/// Read the performance of the window ending at `now`: one key-range query per partition
/// it spans (at most two), whatever the traffic was.
pub async fn read(
    records: &dyn RecordStore,
    window: Window,
    now: DateTime<Utc>,
) -> PortResult<Performance> {
    let (ranges, from) = window.ranges(now);
    let mut routes: BTreeMap<String, Tallied> = BTreeMap::new();
    let mut training: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for (pk, first, last) in ranges {
        // `$` sorts right after `#`: every key of the last step is below it.
        let q = Query::partition(Index::Primary, pk)
            .sk(SortKey::Between(format!("{first}#"), format!("{last}$")))
            .limit(1000);
        for item in query_all(records, &q).await? {
            let series = item.str("series").unwrap_or_default().to_owned();
            if item.str("kind") == Some("training") {
                let key = (
                    item.str("model").unwrap_or_default().to_owned(),
                    item.str("device").unwrap_or_default().to_owned(),
                );
                let t = training.entry(key).or_default();
                t.0 += item.i64("runs").unwrap_or(0);
                t.1 += item.i64("row_epochs").unwrap_or(0);
                t.2 += item.i64("train_ms").unwrap_or(0);
            } else {
                routes
                    .entry(series)
                    .or_default()
                    .merge(&Tallied::of_item(&item));
            }
        }
    }
    let mut routes: Vec<RoutePerformance> = routes
        .into_iter()
        .filter(|(_, t)| t.count > 0)
        .map(|(route, t)| RoutePerformance {
            requests: t.count,
            errors: t.errors,
            client_errors: t.client_errors,
            error_rate: round3(t.errors as f64 / t.count as f64),
            mean_ms: round3(t.sum_us as f64 / t.count as f64 / 1000.0),
            p50_ms: t.quantile_ms(0.50).unwrap_or(0.0),
            p95_ms: t.quantile_ms(0.95).unwrap_or(0.0),
            p99_ms: t.quantile_ms(0.99).unwrap_or(0.0),
            route,
        })
        .collect();
    routes.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.route.cmp(&b.route)));
    let training = training
        .into_iter()
        .map(|((model, device), (runs, row_epochs, ms))| {
            let seconds = ms as f64 / 1000.0;
            TrainingThroughput {
                model,
                device,
                runs,
                row_epochs,
                seconds,
                row_epochs_per_second: if seconds > 0.0 {
                    round3(row_epochs as f64 / seconds)
                } else {
                    0.0
                },
            }
        })
        .collect();
    Ok(Performance {
        window,
        from,
        to: now,
        routes,
        training,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_by_a_fifth_and_bound_their_durations() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        for us in [150u64, 999, 1_000, 12_345, 1_500_000, 31_000_000] {
            let b = bucket_of(us);
            let upper = bucket_upper_ms(b) * 1000.0;
            let lower = if b == 0 {
                0.0
            } else {
                bucket_upper_ms(b - 1) * 1000.0
            };
            assert!(
                lower < us as f64 && us as f64 <= upper + 1e-6,
                "{us}: {lower}..{upper}"
            );
            assert!(upper <= us as f64 * FACTOR + 1e-6);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_come_from_the_merged_histogram() {
        let mut a = Tallied::default();
        for ms in 1..=98 {
            a.record(Duration::from_millis(ms), 200);
        }
        let mut b = Tallied::default();
        b.record(Duration::from_millis(2_000), 500);
        b.record(Duration::from_millis(3_000), 404);
        a.merge(&b);
        assert_eq!((a.count, a.errors, a.client_errors), (100, 1, 1));
        let p50 = a.quantile_ms(0.5).unwrap();
        assert!((50.0..=60.0).contains(&p50), "{p50}");
        let p99 = a.quantile_ms(0.99).unwrap();
        assert!((2_000.0..=2_400.0).contains(&p99), "{p99}");
        let p100 = a.quantile_ms(1.0).unwrap();
        assert!((3_000.0..=3_600.0).contains(&p100), "{p100}");
        let stored = Item::new(&Key::new("p", "s")).with("count", 3);
        let read = Tallied::of_item(&a.update().apply(&Key::new("p", "s"), Some(stored)).unwrap());
        assert_eq!(read.count, 103);
        assert_eq!(read.buckets, a.buckets);
    }

    #[test]
    fn windows_read_at_most_two_partitions() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (r, from) = Window::Hour.ranges(t("2026-12-06T00:20:30Z"));
        assert_eq!(
            r,
            [
                ("PERF#M#2026-12-05".into(), "23:21".into(), "23:59".into()),
                ("PERF#M#2026-12-06".into(), "00:00".into(), "00:20".into()),
            ]
        );
        assert_eq!(from, t("2026-12-05T23:21:00Z"));
        let (r, _) = Window::Day.ranges(t("2026-12-06T13:05:00Z"));
        assert_eq!(
            r,
            [
                ("PERF#H#2026-12-05".into(), "14".into(), "23".into()),
                ("PERF#H#2026-12-06".into(), "00".into(), "13".into()),
            ]
        );
        let (r, from) = Window::Week.ranges(t("2026-12-06T13:05:00Z"));
        assert_eq!(
            r,
            [("PERF#D".into(), "2026-11-30".into(), "2026-12-06".into())]
        );
        assert_eq!(from, t("2026-11-30T00:00:00Z"));
        assert_eq!("7d".parse::<Window>(), Ok(Window::Week));
        assert!("2d".parse::<Window>().is_err());
    }
}
