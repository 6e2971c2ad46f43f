//! `/users`: the caller's profile, push tokens, erasure and export.

use crate::envelope::{Failure, Success};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use synth_core::accounts::{ProfileUpdate, User};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Ctx};
use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::{Ack, Reply, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(profile, update_profile))
        .routes(routes!(push_token))
        .routes(routes!(delete_account))
        .routes(routes!(export))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PushTokenRequest {
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub token: String,
    /// `ios`, `android` or `web`.
    #[schema(pattern = "^(ios|android|web)$")]
    pub platform: String,
}

/// The caller's profile.
#[utoipa::path(get, path = "/users/profile", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Profile", body = Success<User>), (status = 401, description = "Not authenticated", body = Failure)))]
async fn profile(Caller(p): Caller) -> axum::Json<Success<User>> {
    axum::Json(Success::new(p.user))
}

/// Change the caller's profile; absent fields are kept, `null` clears one.
#[utoipa::path(put, path = "/users/profile", tag = "users", security(("bearer" = [])), request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated profile", body = Success<User>),
        (status = 400, description = "Invalid field", body = Failure),
        (status = 401, description = "Not authenticated", body = Failure),
    ))]
async fn update_profile(
    State(s): State<AppState>,
    Caller(p): Caller,
    Json(change): Json<ProfileUpdate>,
) -> Reply<User> {
    ok(s.accounts.update_profile(&p, change).await?)
}

/// Register a device push token of the caller.
#[utoipa::path(post, path = "/users/push-token", tag = "users", security(("bearer" = [])), request_body = PushTokenRequest,
    responses(
        (status = 201, description = "Registered", body = Success<Ack>),
        (status = 400, description = "Invalid token or platform", body = Failure),
        (status = 401, description = "Not authenticated", body = Failure),
    ))]
async fn push_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    Json(r): Json<PushTokenRequest>,
) -> Result<(StatusCode, axum::Json<Success<Ack>>), ApiError> {
    s.accounts
        .register_push_token(&p, &r.token, &r.platform)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Success::new(Ack { ok: true })),
    ))
}

/// Right to erasure: delete the caller's account and everything it owns.
#[utoipa::path(delete, path = "/users/account", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Success<Ack>), (status = 401, description = "Not authenticated", body = Failure)))]
async fn delete_account(State(s): State<AppState>, Caller(p): Caller, Ctx(ctx): Ctx) -> Reply<Ack> {
    s.accounts.delete_account(&p, &ctx).await?;
    Ok(axum::Json(Success::with_message(
        Ack { ok: true },
        "account and data deleted",
    )))
}

/// Right to portability: everything stored about the caller, with links to their files.
#[utoipa::path(get, path = "/users/export", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The export document", body = Success<Object>), (status = 401, description = "Not authenticated", body = Failure)))]
async fn export(State(s): State<AppState>, Caller(p): Caller) -> Reply<Value> {
    ok(s.accounts.export(&p).await?)
}
