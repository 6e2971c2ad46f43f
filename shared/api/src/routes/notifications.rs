//! `/notifications`: the caller's notifications, unread first, with a long poll so a
//! client hears of a new one as it is made; marking read and deleting. Another user's
//! notification is never found (404).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use synth_core::notifications::{MAX_IDS, MAX_WAIT, NotificationPage};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Caller;
use crate::envelope::{Failure, Success};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::metrics::Waited;
use crate::routes::{Ack, NotificationId, PageParams, Reply, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![list, mark_read, mark_one_read, delete_one]
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WaitParams {
    /// Wait up to this many seconds (0..=20) for a notification newer than `since`, and
    /// answer as soon as one is made.
    #[param(minimum = 0, maximum = 20)]
    pub wait: Option<u64>,
    /// With `wait`: what counts as new (the `latest_at` of an earlier answer); the time of
    /// the call when absent.
    pub since: Option<DateTime<Utc>>,
}

/// Which notifications to mark read: some by id, or every unread one. A body with both, or
/// with any other field, is neither and is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged, expecting = "one of {\"ids\": [...]} or {\"all\": true}")]
pub enum MarkRead {
    Ids(MarkIds),
    All(MarkAll),
}

/// These notifications (all of them the caller's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkIds {
    #[schema(min_items = 1, max_items = 100)]
    ids: Vec<String>,
}

/// Every unread notification of the caller when `true`; nothing when `false`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkAll {
    all: bool,
}

/// How many notifications a call marked read, and how many are left unread.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Marked {
    pub marked: usize,
    pub unread_count: i64,
}

/// The caller's notifications: unread first, then read, newest first in each; with the
/// unread count. With `wait`, a long poll.
#[utoipa::path(get, path = "/notifications", params(PageParams, WaitParams),
    responses(
        (status = 200, description = "A page of notifications", body = Success<NotificationPage>),
        (status = 400, description = "Invalid parameter", body = Failure),
    ))]
async fn list(
    c: Caller,
    Query(q): Query<WaitParams>,
    Query(page): Query<PageParams>,
) -> Result<
    (
        axum::Extension<Waited>,
        axum::Json<Success<NotificationPage>>,
    ),
    ApiError,
> {
    let (limit, cursor) = page.checked()?;
    let wait = match q.wait {
        None => None,
        Some(w) if w <= MAX_WAIT.as_secs() => Some(Duration::from_secs(w).min(
            Duration::from_secs(c.app.settings.notification_max_wait_seconds),
        )),
        Some(_) => {
            return Err(synth_core::ServiceError::field(
                "wait",
                format!("at most {} seconds", MAX_WAIT.as_secs()),
            )
            .into());
        }
    };
    let n = &c.app.notifications;
    let waited = match wait.filter(|w| !w.is_zero()) {
        Some(w) => n.wait_for_new(c.id(), q.since, w).await?,
        None => Duration::ZERO,
    };
    let page = n.list(c.id(), limit, cursor).await?;
    Ok((
        axum::Extension(Waited(waited)),
        axum::Json(Success::new(page)),
    ))
}

/// Mark notifications read: `{"ids": [...]}` (each must be the caller's, else 404 and
/// nothing changes) or `{"all": true}`.
#[utoipa::path(post, path = "/notifications/read", request_body = MarkRead,
    responses(
        (status = 200, description = "Marked", body = Success<Marked>),
        (status = 400, description = "Invalid body", body = Failure),
        (status = 404, description = "An id is no notification of the caller", body = Failure),
    ))]
async fn mark_read(c: Caller, Json(body): Json<MarkRead>) -> Reply<Marked> {
    let n = &c.app.notifications;
    let marked = match body {
        MarkRead::Ids(MarkIds { ids }) if ids.len() > MAX_IDS => {
            return Err(synth_core::ServiceError::field(
                "ids",
                format!("1..={MAX_IDS} notification ids"),
            )
            .into());
        }
        MarkRead::Ids(MarkIds { ids }) => n.mark_read(c.id(), &ids).await?,
        MarkRead::All(MarkAll { all: true }) => n.mark_all_read(c.id()).await?,
        MarkRead::All(MarkAll { all: false }) => 0,
    };
    ok(Marked {
        marked,
        unread_count: n.unread_count(c.id()).await?,
    })
}

/// Mark one notification read.
#[utoipa::path(post, path = "/notifications/{id}/read", params(NotificationId),
    responses(
        (status = 200, description = "Marked", body = Success<Marked>),
        (status = 404, description = "No such notification of the caller", body = Failure),
    ))]
async fn mark_one_read(
    c: Caller,
    Path(NotificationId { id }): Path<NotificationId>,
) -> Reply<Marked> {
    let n = &c.app.notifications;
    let marked = n.mark_read(c.id(), &[id]).await?;
    ok(Marked {
        marked,
        unread_count: n.unread_count(c.id()).await?,
    })
}

/// Delete one notification.
#[utoipa::path(delete, path = "/notifications/{id}", params(NotificationId),
    responses(
        (status = 200, description = "Deleted", body = Success<Ack>),
        (status = 404, description = "No such notification of the caller", body = Failure),
    ))]
async fn delete_one(c: Caller, Path(NotificationId { id }): Path<NotificationId>) -> Reply<Ack> {
    c.app.notifications.delete(c.id(), &id).await?;
    ok(Ack { ok: true })
}
