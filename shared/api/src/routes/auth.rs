//! `/auth`: registration, login, token refresh, the caller, logout.

use crate::envelope::{Failure, Success};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use synth_core::accounts::{TokenPair, User};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Caller, Client};
use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::{Ack, Reply, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![register, login, refresh, me, logout]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$"
    )]
    pub email: String,
    /// 10 to 256 characters besides the email address (or its name), at least 5 different
    /// ones; not one of the most common passwords.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    #[schema(max_length = 200)]
    pub full_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

/// Create an account.
#[utoipa::path(post, path = "/auth/register", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = Success<User>),
        (status = 400, description = "Invalid email or password", body = Failure),
        (status = 409, description = "Email already registered (counts against the client's login failures)", body = Failure),
        (status = 429, description = "This client has failed too often; Retry-After says when to try again", body = Failure),
    ))]
async fn register(
    State(s): State<AppState>,
    Client(client): Client,
    Json(r): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<Success<User>>), ApiError> {
    let user = s
        .accounts
        .register(&r.email, &r.password, r.full_name, &client)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Success::with_message(user, "account created")),
    ))
}

/// Exchange email and password for an access and a refresh token.
#[utoipa::path(post, path = "/auth/login", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = Success<TokenPair>),
        (status = 401, description = "Invalid email or password, or a deactivated account", body = Failure),
        (status = 429, description = "Too many failed logins from this client (for this email, or for any); Retry-After says when to try again", body = Failure),
    ))]
async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    Json(r): Json<LoginRequest>,
) -> Reply<TokenPair> {
    ok(s.accounts.login(&r.email, &r.password, &client).await?)
}

/// Rotate a refresh token: the old one stops working; presenting it again ends the session.
#[utoipa::path(post, path = "/auth/refresh", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = Success<TokenPair>),
        (status = 401, description = "Invalid, expired or reused refresh token", body = Failure),
    ))]
async fn refresh(State(s): State<AppState>, Json(r): Json<RefreshRequest>) -> Reply<TokenPair> {
    ok(s.accounts.refresh(&r.refresh_token).await?)
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me",
    responses(
        (status = 200, description = "The caller", body = Success<User>),
    ))]
async fn me(c: Caller) -> axum::Json<Success<User>> {
    axum::Json(Success::new(c.principal.user))
}

/// End the caller's session: its refresh token and access tokens stop working.
#[utoipa::path(post, path = "/auth/logout",
    responses(
        (status = 200, description = "Logged out", body = Success<Ack>),
    ))]
async fn logout(c: Caller) -> Reply<Ack> {
    c.app.accounts.logout(&c.principal).await?;
    Ok(axum::Json(Success::with_message(
        Ack { ok: true },
        "logged out",
    )))
}
