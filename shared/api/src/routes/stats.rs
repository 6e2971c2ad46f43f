//! `/stats`: the caller's dashboard and usage, and for administrators the platform's state
//! and the API's and trainer's performance. Every figure is read from counters kept as
//! things happen: no route here reads more than a handful of items, whatever is stored.

use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use synth_core::stats::{
    Dashboard, MAX_USAGE_DAYS, Performance, SystemStats, Usage, UsageScope, Window,
};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Admin, Caller};
use crate::envelope::{Failure, Success};
use crate::extract::Query;
use crate::routes::{Reply, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![dashboard, usage]
}

/// The routes for administrators only.
pub(crate) fn admin_router() -> OpenApiRouter<AppState> {
    handlers![system, performance]
}

/// The caller's datasets and requests by state, rows generated, quality, training time and
/// newest requests.
#[utoipa::path(get, path = "/stats/dashboard",
    responses(
        (status = 200, description = "The caller's dashboard", body = Success<Dashboard>),
    ))]
async fn dashboard(c: Caller) -> Reply<Dashboard> {
    ok(c.app.stats.dashboard(c.id()).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SystemParams {
    /// Users per day over this many days, today included (1..=366, default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<i64>,
}

/// The platform: users (total, active and new per day), datasets and requests by state,
/// the queue, the failure rate, seconds per epoch per model, storage. Administrators only.
#[utoipa::path(get, path = "/stats/system", params(SystemParams),
    responses(
        (status = 200, description = "The platform's state", body = Success<SystemStats>),
        (status = 400, description = "Invalid parameter", body = Failure),
    ))]
async fn system(a: Admin, Query(q): Query<SystemParams>) -> Reply<SystemStats> {
    let days = q.days.unwrap_or(30);
    if !(1..=MAX_USAGE_DAYS).contains(&days) {
        let why = format!("1..={MAX_USAGE_DAYS}");
        return Err(synth_core::ServiceError::field("days", why).into());
    }
    ok(a.app.stats.system(days).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PerformanceParams {
    /// `1h` (by the minute), `24h` (by the hour, the default) or `7d` (by the day).
    #[param(value_type = Option<String>, pattern = "^(1h|24h|7d)$")]
    pub window: Option<String>,
}

/// Per route: requests, errors and latency percentiles; the trainer's throughput per
/// model and device. Measured by the API itself and added up per minute. Administrators
/// only.
#[utoipa::path(get, path = "/stats/performance", params(PerformanceParams),
    responses(
        (status = 200, description = "Performance over the window", body = Success<Performance>),
        (status = 400, description = "Invalid parameter", body = Failure),
    ))]
async fn performance(a: Admin, Query(q): Query<PerformanceParams>) -> Reply<Performance> {
    let window: Window = match q.window.as_deref().unwrap_or("24h").parse() {
        Ok(w) => w,
        Err(why) => return Err(synth_core::ServiceError::field("window", why).into()),
    };
    // What this process measured so far counts too.
    a.app
        .stats
        .meter
        .flush(a.app.backends.records.as_ref())
        .await;
    ok(a.app.stats.performance(window).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UsageParams {
    /// First day (UTC, `YYYY-MM-DD`); 29 days before `to` when absent.
    pub from: Option<NaiveDate>,
    /// Last day; today when absent. At most 366 days from `from`.
    pub to: Option<NaiveDate>,
}

/// Per day: uploads by format (count and bytes), requests made, rows generated, active
/// users. A user gets their own; an administrator everyone's.
#[utoipa::path(get, path = "/stats/usage", params(UsageParams),
    responses(
        (status = 200, description = "Usage per day", body = Success<Usage>),
        (status = 400, description = "Invalid range", body = Failure),
    ))]
async fn usage(c: Caller, Query(q): Query<UsageParams>) -> Reply<Usage> {
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let Some(from) = q.from.or_else(|| to.checked_sub_signed(Duration::days(29))) else {
        return Err(synth_core::ServiceError::field("to", "out of range").into());
    };
    let scope = if c.principal.is_admin() {
        UsageScope::Platform
    } else {
        UsageScope::User(c.id().to_owned())
    };
    ok(c.app.stats.usage(scope, from, to).await?)
}
