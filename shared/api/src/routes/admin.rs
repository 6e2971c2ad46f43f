//! `/admin`: users and the audit log, for administrators only.

use crate::envelope::Failure;
use crate::envelope::Success;
use serde::Deserialize;
use synth_core::Paged;
use synth_core::accounts::{AuditEntry, Role, User, UserFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Admin, Ctx};
use crate::extract::{Json, Path, Query};
use crate::routes::{PageParams, Reply, UserId, ok};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    handlers![list_users, toggle_user, set_role, logs]
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserFilterParams {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub email_prefix: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: Role,
}

/// Users, by email, filtered by role, activity and email prefix.
#[utoipa::path(get, path = "/admin/users", params(UserFilterParams, PageParams),
    responses(
        (status = 200, description = "A page of users", body = Success<Paged<User>>),
    ))]
async fn list_users(
    a: Admin,
    Query(q): Query<UserFilterParams>,
    Query(page): Query<PageParams>,
) -> Reply<Paged<User>> {
    let filter = UserFilter {
        role: q.role,
        is_active: q.is_active,
        email_prefix: q.email_prefix,
    };
    let (limit, cursor) = page.checked()?;
    ok(a.app.accounts.list_users(&filter, limit, cursor).await?)
}

/// Activate or deactivate a user (a deactivated user's tokens stop working at once).
#[utoipa::path(post, path = "/admin/users/{id}/toggle", params(UserId),
    responses(
        (status = 200, description = "The user after the change", body = Success<User>),
        (status = 404, description = "No such user", body = Failure),
        (status = 409, description = "Own account, or changed concurrently", body = Failure),
    ))]
async fn toggle_user(a: Admin, Ctx(ctx): Ctx, Path(UserId { id }): Path<UserId>) -> Reply<User> {
    ok(a.app.accounts.toggle_user(&a.principal, &id, &ctx).await?)
}

/// Change a user's role.
#[utoipa::path(put, path = "/admin/users/{id}/role", params(UserId), request_body = RoleRequest,
    responses(
        (status = 200, description = "The user after the change", body = Success<User>),
        (status = 400, description = "Unknown role", body = Failure),
        (status = 404, description = "No such user", body = Failure),
        (status = 409, description = "Own account", body = Failure),
    ))]
async fn set_role(
    a: Admin,
    Ctx(ctx): Ctx,
    Path(UserId { id }): Path<UserId>,
    Json(r): Json<RoleRequest>,
) -> Reply<User> {
    ok(a.app
        .accounts
        .set_role(&a.principal, &id, r.role, &ctx)
        .await?)
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/logs", params(PageParams),
    responses(
        (status = 200, description = "A page of audit entries", body = Success<Paged<AuditEntry>>),
    ))]
async fn logs(a: Admin, Query(page): Query<PageParams>) -> Reply<Paged<AuditEntry>> {
    let (limit, cursor) = page.checked()?;
    ok(a.app.accounts.audit_log(limit, cursor).await?)
}
