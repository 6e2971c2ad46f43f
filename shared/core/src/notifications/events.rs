//! What a topic message means to its readers: the kind of notification, who receives it,
//! and the title, body, object and link it carries. The publishers (generation requests,
//! ingestion, login throttling, the trainer, the API's middleware) write JSON messages with
//! a `type`; this is the one place that turns them into words.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kinds of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NotificationKind {
    #[serde(rename = "generation.completed")]
    GenerationCompleted,
    #[serde(rename = "generation.failed")]
    GenerationFailed,
    #[serde(rename = "generation.cancelled")]
    GenerationCancelled,
    #[serde(rename = "request.approved")]
    RequestApproved,
    #[serde(rename = "request.rejected")]
    RequestRejected,
    #[serde(rename = "optimization.completed")]
    OptimizationCompleted,
    #[serde(rename = "optimization.stopped")]
    OptimizationStopped,
    #[serde(rename = "optimization.failed")]
    OptimizationFailed,
    #[serde(rename = "optimization.cancelled")]
    OptimizationCancelled,
    #[serde(rename = "dataset.invalid")]
    DatasetInvalid,
    #[serde(rename = "security.login_failures")]
    LoginFailures,
    /// Admins: a request whose trainer runs kept dying (failed after 3 attempts or more).
    #[serde(rename = "admin.request_failing")]
    RequestFailing,
    /// Admins: a trainer above 80% of its memory.
    #[serde(rename = "admin.trainer_memory")]
    TrainerMemory,
    /// Admins: an API call that took over 30 s.
    #[serde(rename = "admin.slow_request")]
    SlowRequest,
}

impl NotificationKind {
    /// The kind's name, as in messages, records and preferences.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerationCompleted => "generation.completed",
            Self::GenerationFailed => "generation.failed",
            Self::GenerationCancelled => "generation.cancelled",
            Self::RequestApproved => "request.approved",
            Self::RequestRejected => "request.rejected",
            Self::OptimizationCompleted => "optimization.completed",
            Self::OptimizationStopped => "optimization.stopped",
            Self::OptimizationFailed => "optimization.failed",
            Self::OptimizationCancelled => "optimization.cancelled",
            Self::DatasetInvalid => "dataset.invalid",
            Self::LoginFailures => "security.login_failures",
            Self::RequestFailing => "admin.request_failing",
            Self::TrainerMemory => "admin.trainer_memory",
            Self::SlowRequest => "admin.slow_request",
        }
    }

    /// The kind of a message `type`; the approval events of both request kinds are one
    /// kind each. `None` for messages that notify nobody.
    pub fn of_event(event: &str) -> Option<Self> {
        Some(match event {
            "generation.completed" => Self::GenerationCompleted,
            "generation.failed" => Self::GenerationFailed,
            "generation.cancelled" => Self::GenerationCancelled,
            "generation.approved" | "optimization.approved" => Self::RequestApproved,
            "generation.rejected" | "optimization.rejected" => Self::RequestRejected,
            "optimization.completed" => Self::OptimizationCompleted,
            // A generation's search its owner stopped (its best trial was kept).
            "optimization.stopped" | "generation.stopped" => Self::OptimizationStopped,
            "optimization.failed" => Self::OptimizationFailed,
            "optimization.cancelled" => Self::OptimizationCancelled,
            "dataset.invalid" => Self::DatasetInvalid,
            "security.login_failures" => Self::LoginFailures,
            "admin.request_failing" => Self::RequestFailing,
            "admin.trainer_memory" => Self::TrainerMemory,
            "admin.slow_request" => Self::SlowRequest,
            _ => return None,
        })
    }

    /// Whether the kind goes to every active administrator rather than to one user.
    pub fn for_admins(self) -> bool {
        matches!(
            self,
            Self::RequestFailing | Self::TrainerMemory | Self::SlowRequest
        )
    }
}

/// What a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectRef {
    /// `generation_request`, `optimization`, `dataset`, `user` or `route`.
    pub kind: String,
    pub id: String,
}

/// The words and references of one notification, before it is addressed.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub object: ObjectRef,
    /// The path of the API (and web app) where the object is seen.
    pub link: String,
    /// The one user it is for; `None` for the administrators' kinds.
    pub user_id: Option<String>,
    /// When it happened (the message's `at`), if the message says.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A message's content, or why it notifies nobody.
pub fn content_of(message: &Value) -> Result<Content, String> {
    let event = text(message, "type").ok_or("the message has no type")?;
    let kind =
        NotificationKind::of_event(event).ok_or_else(|| format!("{event} notifies nobody"))?;
    let user_id = text(message, "user_id").map(str::to_owned);
    if !kind.for_admins() && user_id.is_none() {
        return Err(format!("a {event} message names no user"));
    }
    let id = |field: &str| {
        text(message, field)
            .map(str::to_owned)
            .ok_or_else(|| format!("a {event} message has no {field}"))
    };
    let (title, body, object, link) = match kind {
        NotificationKind::DatasetInvalid => {
            let dataset = id("dataset_id")?;
            let name = text(message, "name").unwrap_or("Your upload");
            let why = text(message, "error").unwrap_or("it could not be read");
            (
                "Dataset could not be used".to_owned(),
                format!("{name} is invalid: {why}"),
                object("dataset", &dataset),
                format!("/upload/datasets/{dataset}"),
            )
        }
        NotificationKind::LoginFailures => {
            let user = user_id.clone().unwrap_or_default();
            let failures = message.get("failures").and_then(Value::as_i64).unwrap_or(0);
            let minutes = message.get("window_minutes").and_then(Value::as_i64);
            let window = minutes.map_or(String::new(), |m| format!(" in {m} minutes"));
            (
                "Failed sign-ins on your account".to_owned(),
                format!(
                    "{failures} failed sign-ins{window}. If this was not you, change your password."
                ),
                object("user", &user),
                "/users/profile".to_owned(),
            )
        }
        NotificationKind::RequestFailing
        | NotificationKind::TrainerMemory
        | NotificationKind::SlowRequest => alert_words(kind, message, &id)?,
        _ => request_words(kind, message, &id("request_id")?),
    };
    Ok(Content {
        kind,
        title,
        body,
        object,
        link,
        user_id: if kind.for_admins() { None } else { user_id },
        at: text(message, "at")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    })
}

/// The words of an alert to the administrators.
fn alert_words(
    kind: NotificationKind,
    message: &Value,
    id: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(String, String, ObjectRef, String), String> {
    Ok(match kind {
        NotificationKind::RequestFailing => {
            let request = id("request_id")?;
            let attempts = message.get("attempts").and_then(Value::as_i64).unwrap_or(0);
            (
                "A request keeps failing".to_owned(),
                format!("Request {request} failed after {attempts} trainer runs."),
                object("generation_request", &request),
                "/admin/requests".to_owned(),
            )
        }
        NotificationKind::TrainerMemory => {
            let request = id("request_id")?;
            let share = message.get("share").and_then(Value::as_f64).unwrap_or(0.0);
            (
                "Trainer close to its memory limit".to_owned(),
                format!(
                    "The trainer of request {request} uses {:.0}% of its memory.",
                    share * 100.0
                ),
                object("generation_request", &request),
                "/admin/requests".to_owned(),
            )
        }
        NotificationKind::SlowRequest => {
            let route = id("route")?;
            let method = text(message, "method").unwrap_or("");
            let ms = message.get("ms").and_then(Value::as_u64).unwrap_or(0);
            (
                "A slow API call".to_owned(),
                format!("{method} {route} took {:.1} s.", ms as f64 / 1000.0)
                    .trim_start()
                    .to_owned(),
                object("route", format!("{method} {route}").trim()),
                "/stats/performance".to_owned(),
            )
        }
        _ => unreachable!("{kind:?} is not an alert"),
    })
}

/// The words of a request's events.
fn request_words(
    kind: NotificationKind,
    message: &Value,
    request: &str,
) -> (String, String, ObjectRef, String) {
    let search = text(message, "type").is_some_and(|t| t.starts_with("optimization."));
    let (object_kind, noun, link) = if search {
        (
            "optimization",
            "Your hyperparameter search",
            format!("/optimization/trials/{request}"),
        )
    } else {
        (
            "generation_request",
            "Your synthetic data",
            format!("/generation/status/{request}"),
        )
    };
    let quality = message
        .get("quality_score")
        .and_then(Value::as_f64)
        .map_or(String::new(), |q| format!(" Quality score {q:.2}."));
    let rows = message
        .get("rows")
        .and_then(Value::as_u64)
        .map_or(String::new(), |r| format!(" {r} rows."));
    let error = text(message, "error").unwrap_or("no reason was given");
    let (title, body) = match kind {
        NotificationKind::GenerationCompleted => (
            "Synthetic data ready",
            format!("{noun} is ready to download.{rows}{quality}"),
        ),
        NotificationKind::OptimizationCompleted => (
            "Search finished",
            format!("{noun} finished; its best model's data is ready.{rows}{quality}"),
        ),
        NotificationKind::OptimizationStopped => (
            "Search stopped",
            format!("{noun} was stopped; the best trial so far was kept.{rows}{quality}"),
        ),
        NotificationKind::GenerationFailed | NotificationKind::OptimizationFailed => {
            ("Request failed", format!("{noun} failed: {error}"))
        }
        NotificationKind::GenerationCancelled | NotificationKind::OptimizationCancelled => {
            ("Request cancelled", format!("{noun} was cancelled."))
        }
        NotificationKind::RequestApproved
            if message.get("waiting").and_then(Value::as_bool) == Some(true) =>
        {
            (
                "Request approved",
                format!(
                    "{noun} was approved; it starts once one of your running requests finishes."
                ),
            )
        }
        NotificationKind::RequestApproved => (
            "Request approved",
            format!("{noun} was approved and will start shortly."),
        ),
        _ => {
            let reason = text(message, "reason").map_or(String::new(), |r| format!(": {r}"));
            ("Request rejected", format!("{noun} was rejected{reason}"))
        }
    };
    (title.to_owned(), body, object(object_kind, request), link)
}

fn object(kind: &str, id: &str) -> ObjectRef {
    ObjectRef {
        kind: kind.to_owned(),
        id: id.to_owned(),
    }
}

fn text<'a>(message: &'a Value, field: &str) -> Option<&'a str> {
    message
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for event in [
            "generation.completed",
            "generation.failed",
            "generation.cancelled",
            "request.approved",
            "request.rejected",
            "optimization.completed",
            "optimization.stopped",
            "optimization.failed",
            "optimization.cancelled",
            "dataset.invalid",
            "security.login_failures",
            "admin.request_failing",
            "admin.trainer_memory",
            "admin.slow_request",
        ] {
            let kind: NotificationKind = serde_json::from_value(json!(event)).unwrap();
            assert_eq!(kind.as_str(), event);
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(event));
        }
        assert_eq!(
            NotificationKind::of_event("optimization.approved"),
            Some(NotificationKind::RequestApproved)
        );
        assert_eq!(NotificationKind::of_event("generation.running"), None);
    }

    #[test]
    fn messages_become_words_objects_and_links() {
        let done = json!({"type": "generation.completed", "user_id": "u1", "request_id": "r1",
                          "rows": 500, "quality_score": 0.912});
        let c = content_of(&done).unwrap();
        assert_eq!(c.kind, NotificationKind::GenerationCompleted);
        assert_eq!(c.user_id.as_deref(), Some("u1"));
        assert_eq!(c.link, "/generation/status/r1");
        assert_eq!(c.object, object("generation_request", "r1"));
        assert!(
            c.body.contains("500 rows") && c.body.contains("0.91"),
            "{}",
            c.body
        );

        let stopped = json!({"type": "optimization.stopped", "user_id": "u1", "request_id": "s1"});
        let c = content_of(&stopped).unwrap();
        assert_eq!(c.link, "/optimization/trials/s1");
        assert_eq!(c.object.kind, "optimization");

        let rejected = json!({"type": "generation.rejected", "user_id": "u1", "request_id": "r2",
                              "reason": "too many rows"});
        let c = content_of(&rejected).unwrap();
        assert_eq!(c.kind, NotificationKind::RequestRejected);
        assert!(c.body.ends_with(": too many rows"), "{}", c.body);

        let invalid = json!({"type": "dataset.invalid", "user_id": "u1", "dataset_id": "d1",
                             "name": "a.csv", "error": "no columns"});
        let c = content_of(&invalid).unwrap();
        assert_eq!(
            (c.link.as_str(), c.body.as_str()),
            ("/upload/datasets/d1", "a.csv is invalid: no columns")
        );

        let slow =
            json!({"type": "admin.slow_request", "method": "GET", "route": "/x", "ms": 31500});
        let c = content_of(&slow).unwrap();
        assert_eq!(c.user_id, None);
        assert_eq!(c.body, "GET /x took 31.5 s.");
    }

    #[test]
    fn messages_that_notify_nobody_say_why() {
        assert!(content_of(&json!({"no": "type"})).is_err());
        assert!(content_of(&json!({"type": "generation.running", "user_id": "u"})).is_err());
        let anonymous = json!({"type": "generation.completed", "request_id": "r"});
        assert!(
            content_of(&anonymous)
                .unwrap_err()
                .contains("names no user")
        );
        let no_request = json!({"type": "generation.failed", "user_id": "u"});
        assert!(content_of(&no_request).unwrap_err().contains("request_id"));
    }
}
