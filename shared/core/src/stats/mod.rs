//! Statistics: a user's dashboard, the platform's state for administrators, usage per day
//! and the API's and trainer's performance.
//!
//! Every figure is a counter kept as things happen ([`Tally`]: moved in the same
//! transaction as the state change it counts, for the user's own counters) or a
//! measurement the API's middleware adds up per minute ([`perf`]). A statistics call reads
//! a handful of items by key and key range, never every record: the dashboard is one item
//! and one ten-item query whatever the user has, a usage report one query over its days.
//!
//! Records:
//! - `USER#{id}` / `STATS` — the user's totals: datasets and requests by state
//!   (`ds_{state}`, `rq_{state}`), rows generated, quality scores (sum, count and best, in
//!   millionths), trainer time, bytes stored.
//! - `USER#{id}` / `DAY#{date}` — the user's day: uploads and their bytes by format,
//!   requests made, rows generated, and `active` once they used the API that day.
//! - `STATS` / `TOTAL` — the platform's totals: the same, plus accounts, requests ended by
//!   final state, and fitting time and epochs per model.
//! - `STATS#DAY` / `{date}` — the platform's day: the same as a user's day, plus new and
//!   active users.
//! - `PERF#…` — route and trainer measurements (see [`perf`]).
//!
//! The user's items live in their partition, so erasure takes them with the rest and an
//! export includes them; erasure takes the user's share out of the platform's totals.

mod keys;
pub mod perf;
mod tally;

pub use perf::{Meter, Performance, RoutePerformance, TrainingThroughput, Window};
pub use tally::Tally;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::datasets::DatasetStatus;
use crate::generation::{GenerationRequest, RequestKind, RequestStatus};
use crate::ports::records::{Condition, Index, Item, Query, SortKey, Update, query_all};
use crate::service::{ServiceError, ServiceResult};
use crate::{PortError, Queue, RecordStore};
use keys::{
    DAYS_PARTITION, USER_DAY_PREFIX, day_of, day_string, total_key, user_day_key, user_stats_key,
};
use tally::QUALITY_SCALE;

pub(crate) use tally::counter;

/// The longest range a usage report covers, in days.
pub const MAX_USAGE_DAYS: i64 = 366;
/// How many of the newest requests the dashboard lists.
pub const RECENT_REQUESTS: usize = 10;

/// The dataset states a count is kept of.
const DATASET_STATES: [DatasetStatus; 4] = [
    DatasetStatus::PendingUpload,
    DatasetStatus::Validating,
    DatasetStatus::Ready,
    DatasetStatus::Invalid,
];

/// Quality scores of the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityFigures {
    /// Results that have a score.
    pub scored: i64,
    pub mean: Option<f64>,
    pub best: Option<f64>,
}

/// One of the newest requests, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecentRequest {
    pub id: String,
    pub kind: RequestKind,
    pub dataset_id: String,
    pub dataset_name: String,
    pub model_type: String,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Rows generated, once it has a result.
    pub rows: Option<u64>,
    pub quality_score: Option<f64>,
}

impl From<GenerationRequest> for RecentRequest {
    fn from(r: GenerationRequest) -> Self {
        Self {
            rows: r.result.as_ref().map(|x| x.rows),
            quality_score: r.result.as_ref().and_then(|x| x.quality_score),
            id: r.id,
            kind: r.kind,
            dataset_id: r.dataset_id,
            dataset_name: r.dataset_name,
            model_type: r.model_type,
            status: r.status,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// A user's dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dashboard {
    /// The user's datasets by state (`pending_upload`, `validating`, `ready`, `invalid`).
    pub datasets: BTreeMap<String, i64>,
    /// The user's requests (generations and searches) by state.
    pub requests: BTreeMap<String, i64>,
    /// Synthetic rows produced, over all time.
    pub rows_generated: i64,
    pub quality: QualityFigures,
    /// Minutes trainer runs held the user's requests.
    pub training_minutes: f64,
    /// Bytes of uploads and results stored.
    pub storage_bytes: i64,
    /// The newest requests, newest first.
    pub recent_requests: Vec<RecentRequest>,
}

/// Accounts on the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserFigures {
    pub total: i64,
    pub active_today: i64,
    pub new_today: i64,
    /// Per day over the report's days, oldest first.
    pub days: Vec<UserDay>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDay {
    pub date: NaiveDate,
    /// Users who used the API that day.
    pub active: i64,
    /// Accounts made that day.
    pub new: i64,
}

/// The training queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueFigures {
    /// Messages waiting for a trainer.
    pub waiting: u64,
    /// Messages taken and not yet done.
    pub in_flight: u64,
    /// How long the request queued longest has waited, in seconds.
    pub oldest_queued_seconds: Option<f64>,
}

/// Fitting time per model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelFigures {
    pub model: String,
    pub epochs: i64,
    pub seconds: f64,
    pub mean_seconds_per_epoch: f64,
}

/// The platform's state, for administrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemStats {
    pub users: UserFigures,
    /// Datasets by state, now.
    pub datasets: BTreeMap<String, i64>,
    /// Requests by state, now.
    pub requests: BTreeMap<String, i64>,
    /// Requests that ended, by final state, over all time.
    pub ended: BTreeMap<String, i64>,
    /// Failed among the requests that ended completed, stopped or failed; `None` before any.
    pub failure_rate: Option<f64>,
    pub queue: QueueFigures,
    /// Per model, from every fit.
    pub training: Vec<ModelFigures>,
    pub rows_generated: i64,
    /// Bytes of uploads and results stored.
    pub storage_bytes: i64,
}

/// Uploads of one file format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadFigures {
    pub count: i64,
    pub bytes: i64,
}

/// One day of usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageDay {
    pub date: NaiveDate,
    /// Uploads that arrived, by detected file format.
    pub uploads: BTreeMap<String, UploadFigures>,
    /// Requests made.
    pub requests: i64,
    /// Synthetic rows produced.
    pub rows_generated: i64,
    /// Users who used the API (for one user's report: 1 or 0).
    pub active_users: i64,
}

/// Usage per day over a range of days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// `user` (the caller's own) or `platform` (everyone's).
    pub scope: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Every day of the range, oldest first (days without use are zeros).
    pub days: Vec<UsageDay>,
}

/// Whose usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageScope {
    User(String),
    Platform,
}

/// The statistics service.
#[derive(Clone)]
pub struct Stats {
    records: Arc<dyn RecordStore>,
    queue: Arc<dyn Queue>,
    /// The API's measurements, written by [`Meter::flush`].
    pub meter: Arc<Meter>,
    /// Users already counted active today by this process: (day, ids).
    active: Arc<Mutex<(String, HashSet<String>)>>,
}

fn counts_of<'a>(
    item: Option<&Item>,
    prefix: &str,
    states: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, i64> {
    states
        .map(|s| (s.to_owned(), number(item, &counter(prefix, s))))
        .collect()
}

/// A counter's value. Never below zero: records made before the counters were kept (a data
/// folder of an earlier version) were never counted in, and their removal must not show
/// as a negative count.
fn number(item: Option<&Item>, name: &str) -> i64 {
    item.and_then(|i| i.i64(name)).unwrap_or(0).max(0)
}

fn quality_of(item: Option<&Item>) -> QualityFigures {
    let n = number(item, "quality_n");
    let sum = number(item, "quality_sum");
    QualityFigures {
        scored: n,
        mean: (n > 0).then(|| round4(sum as f64 / n as f64 / QUALITY_SCALE)),
        best: item
            .and_then(|i| i.i64("quality_best"))
            .map(|b| round4(b as f64 / QUALITY_SCALE)),
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn dataset_states() -> impl Iterator<Item = &'static str> {
    DATASET_STATES.iter().map(|s| s.as_str())
}

fn request_states() -> impl Iterator<Item = &'static str> {
    RequestStatus::ALL.iter().map(|s| s.as_str())
}

impl Stats {
    pub fn new(records: Arc<dyn RecordStore>, queue: Arc<dyn Queue>) -> Self {
        Self {
            records,
            queue,
            meter: Arc::new(Meter::new()),
            active: Arc::new(Mutex::new((String::new(), HashSet::new()))),
        }
    }

    /// Count `user_id` active today, once: the first call of the day marks the user's day
    /// (a conditional write) and adds one to the platform's active users.
    pub async fn touch(&self, user_id: &str) -> ServiceResult<()> {
        let today = day_of(Utc::now());
        {
            let seen = self
                .active
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.0 == today && seen.1.contains(user_id) {
                return Ok(());
            }
        }
        let key = user_day_key(user_id, &today);
        let mark = Update::default().set("active", 1);
        let cond = Condition::AttrNotExists("active".into());
        match self.records.update(&key, mark, Some(cond)).await {
            Ok(_) => {
                Tally::of(user_id)
                    .active()
                    .apply_global(self.records.as_ref())
                    .await
            }
            Err(PortError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
        let mut seen = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.0 != today {
            *seen = (today, HashSet::new());
        }
        seen.1.insert(user_id.to_owned());
        Ok(())
    }

    /// The caller's dashboard: one item and one query of at most ten requests.
    pub async fn dashboard(&self, user_id: &str) -> ServiceResult<Dashboard> {
        let stats = self.records.get(&user_stats_key(user_id)).await?;
        let s = stats.as_ref();
        let q = Query::partition(Index::Primary, crate::accounts::user_partition(user_id))
            .sk(SortKey::BeginsWith("GENREQ#".into()))
            .backward()
            .limit(RECENT_REQUESTS);
        let recent = self.records.query(&q).await?;
        let recent_requests = recent
            .items
            .iter()
            .map(|i| i.to_value::<GenerationRequest>().map(RecentRequest::from))
            .collect::<Result<_, _>>()?;
        Ok(Dashboard {
            datasets: counts_of(s, "ds", dataset_states()),
            requests: counts_of(s, "rq", request_states()),
            rows_generated: number(s, "rows"),
            quality: quality_of(s),
            training_minutes: round4(number(s, "trainer_ms") as f64 / 60_000.0),
            storage_bytes: number(s, "storage_bytes"),
            recent_requests,
        })
    }

    /// The platform's state; users per day over the last `days` days (today included).
    pub async fn system(&self, days: i64) -> ServiceResult<SystemStats> {
        let total = self.records.get(&total_key()).await?;
        let t = total.as_ref();
        let today = Utc::now().date_naive();
        let first = today - chrono::Duration::days(days.clamp(1, MAX_USAGE_DAYS) - 1);
        let day_items = self.platform_days(first, today).await?;
        let user_days: Vec<UserDay> = each_day(first, today)
            .map(|d| {
                let item = day_items.get(&d);
                UserDay {
                    date: d,
                    active: number(item, "active_users"),
                    new: number(item, "new_users"),
                }
            })
            .collect();
        let finals = RequestStatus::ALL.into_iter().filter(|s| s.is_final());
        let ended = counts_of(t, "ended", finals.map(RequestStatus::as_str));
        let failed = ended.get("failed").copied().unwrap_or(0);
        let judged = failed
            + ended.get("completed").copied().unwrap_or(0)
            + ended.get("stopped").copied().unwrap_or(0);
        Ok(SystemStats {
            users: UserFigures {
                total: number(t, "users"),
                active_today: user_days.last().map_or(0, |d| d.active),
                new_today: user_days.last().map_or(0, |d| d.new),
                days: user_days,
            },
            datasets: counts_of(t, "ds", dataset_states()),
            requests: counts_of(t, "rq", request_states()),
            ended,
            failure_rate: (judged > 0).then(|| round4(failed as f64 / judged as f64)),
            queue: self.queue_figures().await?,
            training: models_of(t),
            rows_generated: number(t, "rows"),
            storage_bytes: number(t, "storage_bytes"),
        })
    }

    async fn queue_figures(&self) -> ServiceResult<QueueFigures> {
        let depth = self.queue.depth().await?;
        let q = Query::partition(
            Index::Gsi1,
            crate::generation::status_partition(RequestStatus::Queued),
        )
        .limit(1);
        let oldest = self.records.query(&q).await?;
        let oldest_queued_seconds = oldest
            .items
            .first()
            .and_then(|i| i.str("updated_at"))
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                ((Utc::now() - t.with_timezone(&Utc))
                    .num_milliseconds()
                    .max(0) as f64)
                    / 1000.0
            });
        Ok(QueueFigures {
            waiting: depth.waiting,
            in_flight: depth.in_flight,
            oldest_queued_seconds,
        })
    }

    /// The platform's day items from `first` to `last`, by day.
    async fn platform_days(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> ServiceResult<BTreeMap<NaiveDate, Item>> {
        let q = Query::partition(Index::Primary, DAYS_PARTITION)
            .sk(SortKey::Between(day_string(first), day_string(last)))
            .limit(MAX_USAGE_DAYS as usize);
        Ok(by_day(query_all(self.records.as_ref(), &q).await?, ""))
    }

    /// Usage per day from `from` to `to` (inclusive), of one user or of the platform.
    pub async fn usage(
        &self,
        scope: UsageScope,
        from: NaiveDate,
        to: NaiveDate,
    ) -> ServiceResult<Usage> {
        if from > to {
            return Err(ServiceError::field("from", "must not be after `to`"));
        }
        if (to - from).num_days() + 1 > MAX_USAGE_DAYS {
            return Err(ServiceError::field(
                "from",
                format!("a report covers at most {MAX_USAGE_DAYS} days"),
            ));
        }
        let (items, name) = match &scope {
            UsageScope::User(id) => {
                let q = Query::partition(Index::Primary, crate::accounts::user_partition(id))
                    .sk(SortKey::Between(
                        format!("{USER_DAY_PREFIX}{}", day_string(from)),
                        format!("{USER_DAY_PREFIX}{}", day_string(to)),
                    ))
                    .limit(MAX_USAGE_DAYS as usize);
                let items = query_all(self.records.as_ref(), &q).await?;
                (by_day(items, USER_DAY_PREFIX), "user")
            }
            UsageScope::Platform => (self.platform_days(from, to).await?, "platform"),
        };
        let days = each_day(from, to)
            .map(|d| usage_day(d, items.get(&d), &scope))
            .collect();
        Ok(Usage {
            scope: name.to_owned(),
            from,
            to,
            days,
        })
    }

    /// Route and trainer performance over `window`.
    pub async fn performance(&self, window: Window) -> ServiceResult<Performance> {
        Ok(perf::read(self.records.as_ref(), window, Utc::now()).await?)
    }
}

fn each_day(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

/// Day items keyed by their date (the sort key after `prefix`).
fn by_day(items: Vec<Item>, prefix: &str) -> BTreeMap<NaiveDate, Item> {
    items
        .into_iter()
        .filter_map(|i| {
            let date = i.str("sk")?.strip_prefix(prefix)?;
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            Some((date, i))
        })
        .collect()
}

fn usage_day(date: NaiveDate, item: Option<&Item>, scope: &UsageScope) -> UsageDay {
    let mut uploads: BTreeMap<String, UploadFigures> = BTreeMap::new();
    for (name, v) in item.map(|i| i.0.iter()).into_iter().flatten() {
        let (Some(format), Some(n)) = (name.strip_prefix("uploads_"), v.as_i64()) else {
            continue;
        };
        let bytes = number(item, &counter("upload_bytes", format));
        uploads.insert(format.to_owned(), UploadFigures { count: n, bytes });
    }
    let active_users = match scope {
        UsageScope::User(_) => i64::from(number(item, "active") > 0),
        UsageScope::Platform => number(item, "active_users"),
    };
    UsageDay {
        date,
        uploads,
        requests: number(item, "requests"),
        rows_generated: number(item, "rows"),
        active_users,
    }
}

/// Fitting figures per model from the platform's totals (`fit_epochs_{model}`,
/// `fit_ms_{model}`).
fn models_of(total: Option<&Item>) -> Vec<ModelFigures> {
    let Some(t) = total else { return Vec::new() };
    t.0.iter()
        .filter_map(|(name, v)| {
            let model = name.strip_prefix("fit_epochs_")?;
            let epochs = v.as_i64().filter(|e| *e > 0)?;
            let seconds = number(total, &counter("fit_ms", model)) as f64 / 1000.0;
            Some(ModelFigures {
                model: model.to_owned(),
                epochs,
                seconds,
                mean_seconds_per_epoch: round4(seconds / epochs as f64),
            })
        })
        .collect()
}
