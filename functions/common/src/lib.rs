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
    use tokio::signal::unix::{SignalKind, signal};

    /// Serve one resource group of the HTTP API (plus the system routes) from API Gateway.
    pub async fn run_http(group: ResourceGroup) -> Result<(), Error> {
        let (settings, backends) = start().await?;
        tracing::info!(group = group.name(), "starting HTTP function");
        let state = AppState::new(settings, backends, "aws");
        write_meter_at_shutdown(&state).await;
        let app =
            synth_api::app(state, &[group], None).layer(axum::middleware::map_request(client_ip));
        lambda_http::run(app).await
    }

    /// The route meter writes its measurements every `FLUSH_EVERY` while requests come; what
    /// the last ones gathered would be lost when Lambda retires an idle container. Lambda
    /// sends a function SIGTERM (and waits 500 ms) only when it has an extension, so this
    /// registers a no-op internal one and writes the meter on SIGTERM. Where none can be
    /// registered (outside Lambda), the function runs without the hook.
    async fn write_meter_at_shutdown(state: &AppState) {
        // Registered before the runtime's first call for an event, as Lambda requires.
        let registered = lambda_extension::Extension::new()
            .with_events(&[])
            .with_extension_name("synth-meter-at-shutdown")
            .register()
            .await;
        let extension = match registered {
            Ok(extension) => extension,
            Err(e) => {
                tracing::warn!(error = %e, "no Lambda extension; the route meter is not written at shutdown");
                return;
            }
        };
        // Only now: once handled, SIGTERM no longer ends the process by itself.
        let terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler; the route meter is not written at shutdown");
                return;
            }
        };
        // Subscribed to no events, it waits on Lambda for the container's life.
        tokio::spawn(async move {
            if let Err(e) = extension.run().await {
                tracing::warn!(error = %e, "the no-op Lambda extension ended");
            }
        });
        let (meter, records) = (state.stats.meter.clone(), state.backends.records.clone());
        tokio::spawn(async move {
            let mut terminate = terminate;
            terminate.recv().await;
            let written = meter.flush(records.as_ref()).await;
            tracing::info!(written, "shutting down; route measurements written");
            std::process::exit(0);
        });
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
