//! Who is calling: extractors for the bearer-authenticated caller, the admin, the client's
//! address (what login throttling counts by), and the request context carried into audit
//! entries.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use synth_core::RequestContext;
use synth_core::accounts::{ClientId, Principal};

use crate::error::ApiError;
use crate::middleware::REQUEST_ID;
use crate::state::AppState;

/// The authenticated caller (any role), with the application it calls: what nearly every
/// handler starts from.
pub struct Caller {
    pub app: AppState,
    pub principal: Principal,
}

impl Caller {
    /// The caller's user id, which scopes everything the caller may see.
    pub fn id(&self) -> &str {
        &self.principal.user.id
    }
}

/// The authenticated caller, who must be an administrator (403 otherwise), with the
/// application.
pub struct Admin {
    pub app: AppState,
    pub principal: Principal,
}

/// The request id and other context of the current request.
pub struct Ctx(pub RequestContext);

/// The client's address as the platform's edge saw it: the Lambda adapter puts API
/// Gateway's `sourceIp` in the request's extensions; `synth serve` has the connection's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The calling client, for throttling. With `TRUST_FORWARDED_FOR` (behind a reverse proxy
/// that sets it), the first address of `X-Forwarded-For`; otherwise what the edge saw.
pub struct Client(pub ClientId);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        let forwarded = state
            .settings
            .trust_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        let ip = forwarded
            .or_else(|| parts.extensions.get::<ClientIp>().map(|c| c.0))
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            });
        Ok(Client(match ip {
            Some(ip) => ClientId::new(&ip.to_string()),
            None => ClientId::unknown(),
        }))
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("expected a bearer token"));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let p = state.accounts.authenticate(token).await?;
        // Counted active today (a write the first time a day, per process).
        if let Err(e) = state.stats.touch(&p.user.id).await {
            tracing::warn!(error = %e, "the caller's activity was not counted");
        }
        Ok(Caller {
            app: state.clone(),
            principal: p,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller { app, principal } = Caller::from_request_parts(parts, state).await?;
        if !principal.is_admin() {
            return Err(ApiError::forbidden("administrators only"));
        }
        Ok(Admin { app, principal })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Ctx(RequestContext { request_id }))
    }
}
