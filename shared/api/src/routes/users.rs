//! `/users`: the caller's profile, push tokens, erasure and export.

use crate::envelope::{Failure, Success};
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
#[serde(deny_unknown_fields)]
pub struct PushTokenRequest {
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub token: String,
    /// `ios`, `android` or `web`.
    #[schema(pattern = "^(ios|android|web)$")]
    pub platform: String,
}

/// The caller's profile.
#[utoipa::path(get, path = "/users/profile",
    responses((status = 200, description = "Profile", body = Success<User>)))]
async fn profile(c: Caller) -> axum::Json<Success<User>> {
    axum::Json(Success::new(c.principal.user))
}

/// Change the caller's profile; absent fields are kept, `null` clears one.
#[utoipa::path(put, path = "/users/profile", request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated profile", body = Success<User>),
        (status = 400, description = "Invalid field", body = Failure),
    ))]
async fn update_profile(c: Caller, Json(change): Json<ProfileUpdate>) -> Reply<User> {
    ok(c.app.accounts.update_profile(&c.principal, change).await?)
}

/// Register a device push token of the caller.
#[utoipa::path(post, path = "/users/push-token", request_body = PushTokenRequest,
    responses(
        (status = 201, description = "Registered", body = Success<Ack>),
        (status = 400, description = "Invalid token or platform", body = Failure),
    ))]
async fn push_token(
    c: Caller,
    Json(r): Json<PushTokenRequest>,
) -> Result<(StatusCode, axum::Json<Success<Ack>>), ApiError> {
    c.app
        .accounts
        .register_push_token(&c.principal, &r.token, &r.platform)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Success::new(Ack { ok: true })),
    ))
}

/// Right to erasure: delete the caller's account and everything it owns.
#[utoipa::path(delete, path = "/users/account",
    responses((status = 200, description = "Deleted", body = Success<Ack>)))]
async fn delete_account(c: Caller, Ctx(ctx): Ctx) -> Reply<Ack> {
    c.app.accounts.delete_account(&c.principal, &ctx).await?;
    Ok(axum::Json(Success::with_message(
        Ack { ok: true },
        "account and data deleted",
    )))
}

/// Right to portability: everything stored about the caller, with links to their files.
#[utoipa::path(get, path = "/users/export",
    responses((status = 200, description = "The export document", body = Success<Object>)))]
async fn export(c: Caller) -> Reply<Value> {
    ok(c.app.accounts.export(&c.principal).await?)
}
