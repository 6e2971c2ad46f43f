//! Routers per resource group, and the whole application.

/// A router of the given handlers, each on its own path; handlers that share a path go
/// together in brackets: `handlers![list, [get, delete]]`.
macro_rules! handlers {
    ($($on_path:tt),* $(,)?) => {
        utoipa_axum::router::OpenApiRouter::new() $(.routes(handlers!(@path $on_path)))*
    };
    (@path [$($handler:path),+]) => { utoipa_axum::routes!($($handler),+) };
    (@path $handler:path) => { utoipa_axum::routes!($handler) };
}

pub mod admin;
pub mod auth;
pub mod datasets;
pub mod generation;
pub mod notifications;
pub mod optimization;
pub mod stats;
pub mod system;
pub mod users;

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{docs, middleware};

/// The resource groups of the API; on AWS each is served by its own Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceGroup {
    Auth,
    Users,
    Datasets,
    Generation,
    Optimization,
    Stats,
    Notifications,
    Admin,
}

impl ResourceGroup {
    pub const ALL: [ResourceGroup; 8] = [
        Self::Auth,
        Self::Users,
        Self::Datasets,
        Self::Generation,
        Self::Optimization,
        Self::Stats,
        Self::Notifications,
        Self::Admin,
    ];

    /// The function name of the group's Lambda.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Users => "users",
            Self::Datasets => "datasets",
            Self::Generation => "generation",
            Self::Optimization => "optimization",
            Self::Stats => "stats",
            Self::Notifications => "notifications",
            Self::Admin => "admin",
        }
    }

    /// The routes of this group, each documented under the group's tag and, unless it is
    /// [`PUBLIC`], as needing a bearer token (what the `Caller` extractor asks); those of
    /// administrators (what the `Admin` extractor asks) with the role [`ADMIN_ROLE`].
    fn router(self) -> OpenApiRouter<AppState> {
        let none = OpenApiRouter::new;
        let (anyone, admins) = match self {
            Self::Auth => (auth::router(), none()),
            Self::Users => (users::router(), none()),
            Self::Admin => (none(), admin::router().merge(generation::admin_router())),
            Self::Datasets => (datasets::router(), none()),
            Self::Generation => (generation::router(), none()),
            Self::Optimization => (optimization::router(), none()),
            Self::Notifications => (notifications::router(), none()),
            Self::Stats => (stats::router(), stats::admin_router()),
        };
        self.document(anyone, &[])
            .merge(self.document(admins, &[ADMIN_ROLE]))
    }

    fn document(
        self,
        mut router: OpenApiRouter<AppState>,
        roles: &[&str],
    ) -> OpenApiRouter<AppState> {
        let bearer = bearer(roles);
        for op in crate::spec::operations(router.get_openapi_mut()) {
            op.tags = Some(vec![self.name().to_owned()]);
            let id = op.operation_id.as_deref().unwrap_or_default();
            if !PUBLIC.contains(&id) {
                op.security = Some(vec![bearer.clone()]);
            }
        }
        router
    }
}

/// The bearer token requirement, with the roles its user must have (OpenAPI 3.1 lets the
/// requirement of a scheme other than OAuth list roles).
pub(crate) fn bearer(roles: &[&str]) -> SecurityRequirement {
    SecurityRequirement::new("bearer", roles.iter().copied())
}

/// The role of administrators, as the bearer requirement of their operations lists it.
pub(crate) const ADMIN_ROLE: &str = "admin";

/// The operations of the resource groups that anyone may call.
const PUBLIC: [&str; 3] = ["register", "login", "refresh"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Synth API",
        description = "Synthetic tabular data: upload a table, learn it with CTGAN or TVAE, \
                       download a synthetic table and its quality report."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "system", description = "Health and API description"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "The caller's profile and data"),
        (name = "datasets", description = "Uploading and inspecting tables"),
        (name = "generation", description = "Asking for, following and downloading synthetic tables"),
        (name = "optimization", description = "Hyperparameter searches: trials as they run, stop, the best model"),
        (name = "stats", description = "The caller's dashboard and usage; the platform's state and performance for administrators"),
        (name = "notifications", description = "What happened to the caller's requests and datasets, unread first, with a long poll"),
        (name = "admin", description = "Administration (admins only)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

/// What most handlers answer: `data` in the success envelope, or the error envelope.
pub(crate) type Reply<T> = Result<axum::Json<crate::envelope::Success<T>>, ApiError>;

/// `data` as a handler's successful answer.
pub(crate) fn ok<T>(data: T) -> Reply<T> {
    Ok(axum::Json(crate::envelope::Success::new(data)))
}

/// Which page of a list: its size and where it starts.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Page size, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page, as it was given.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size, checked, and the cursor.
    pub(crate) fn checked(self) -> Result<(usize, Option<String>), ApiError> {
        Ok((synth_core::service::page_size(self.limit)?, self.cursor))
    }
}

/// The `{id}` in the path of a route about one thing: its type says which kind of thing,
/// and documents the parameter.
macro_rules! path_ids {
    ($($name:ident: $what:literal),+ $(,)?) => {$(
        #[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
        #[into_params(parameter_in = Path)]
        pub struct $name {
            #[doc = $what]
            pub id: String,
        }
    )+};
}

path_ids!(
    UserId: "User id",
    DatasetId: "Dataset id",
    RequestId: "Request id",
    NotificationId: "Notification id",
);

/// A plain acknowledgement.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Ack {
    pub ok: bool,
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/auth/login`. An operation whose requirement \
                         lists the role `admin` takes an administrator's token only.",
                    ))
                    .build(),
            ),
        );
    }
}

fn documented(groups: &[ResourceGroup]) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(system::router());
    for g in groups {
        router = router.merge(g.router());
    }
    router
}

/// The paths one group serves, besides the system routes every deployment serves (what
/// the template must route to the group's function).
pub fn group_paths(group: ResourceGroup) -> Vec<String> {
    group
        .router()
        .into_openapi()
        .paths
        .paths
        .into_keys()
        .collect()
}

/// The OpenAPI 3.1 document of every route of every group.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented(&ResourceGroup::ALL).into_openapi();
    doc.info.version = synth_core::VERSION.to_owned();
    crate::spec::complete(&mut doc);
    doc
}

/// The OpenAPI document as JSON and the page that renders it, made on first use: the
/// document is the same for every group, most Lambdas never serve it, and every one
/// starts faster without making it.
fn documents() -> &'static (String, String) {
    static DOCUMENTS: OnceLock<(String, String)> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let json = openapi().to_json().expect("OpenAPI document serialises");
        let page = docs::render(&serde_json::from_str(&json).expect("OpenAPI document parses"));
        (json, page)
    })
}

/// The application: the system routes plus the given groups (all of them for
/// `synth serve`, one for a Lambda) and any `extra` routes of the deployment (the embedded
/// object URLs), wrapped in the shared middleware.
pub fn app(state: AppState, groups: &[ResourceGroup], extra: Option<Router>) -> Router {
    let (router, _) = documented(groups).split_for_parts();
    let settings = state.settings.clone();
    let router = router
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    documents().0.as_str(),
                )
            }),
        )
        .route("/docs", get(|| async { Html(documents().1.as_str()) }))
        .route(
            "/docs.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], docs::CSS).into_response() }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::measure,
        ))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state);
    let router = match extra {
        Some(extra) => router.merge(extra),
        None => router,
    };
    middleware::apply(router, &settings)
}
