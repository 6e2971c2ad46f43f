//! What every Lambda of Synth does at start: read settings, build the AWS adapters, log
//! as JSON. Each function's `main` is a call into this crate. The HTTP functions' entry
//! point ([`run_http`]) is behind the `http` feature, so the event functions (dispatch,
//! ingest, notify) link no HTTP stack.

use synth_aws::AwsSettings;
use synth_core::{Backends, Settings};

pub use lambda_runtime::Error;

/// Settings and AWS adapters from the function's environment.
pub async fn start() -> Result<(Settings, Backends), Error> {
    let settings = Settings::from_env()?;
    synth_telemetry::init(&settings.log_level);
    let aws = AwsSettings::from_env()?;
    let backends = synth_aws::backends(&aws).await;
    Ok((settings, backends))
}

#[cfg(feature = "http")]
pub use http::run_http;

#[cfg(feature = "http")]
mod http {
    use super::{Error, start};
    use synth_api::{AppState, ResourceGroup};

    /// Serve one resource group of the HTTP API (plus the system routes) from API Gateway.
    pub async fn run_http(group: ResourceGroup) -> Result<(), Error> {
        let (settings, backends) = start().await?;
        tracing::info!(group = group.name(), "starting HTTP function");
        let app = synth_api::app(AppState::new(settings, backends, "aws"), &[group], None)
            .layer(axum::middleware::map_request(client_ip));
        lambda_http::run(app).await
    }

    /// Hand the caller's address, as API Gateway saw it, to the API's extractors.
    async fn client_ip(mut req: axum::extract::Request) -> axum::extract::Request {
        use lambda_http::RequestExt;
        use lambda_http::request::RequestContext;
        let ip = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
            }
            _ => None,
        };
        if let Some(ip) = ip {
            req.extensions_mut().insert(synth_api::auth::ClientIp(ip));
        }
        req
    }
}
