//! Synth's HTTP layer: one handler per endpoint, a router per resource group, the
//! middleware every route shares, and the OpenAPI document generated from the handlers.
//! The same router is served by a Lambda (lambda_http) and by `synth serve`.

pub mod auth;
pub mod docs;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod routes;
mod spec;
pub mod state;

pub use envelope::{ErrorBody, ErrorCode, Failure, Success};
pub use error::ApiError;
pub use routes::{ResourceGroup, app, group_paths, openapi};
pub use state::AppState;
