//! `synth serve`: the whole platform in one process on the embedded adapters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use synth_api::{AppState, ResourceGroup};
use synth_core::Settings;
use synth_embedded::{Embedded, EmbeddedOptions, triggers};
use synth_trainer::Trainer;

use crate::worker::EmbeddedTrainer;
use tokio::net::TcpListener;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "SYNTH_HOST")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000, env = "SYNTH_PORT")]
    port: u16,
    /// Folder holding the database and the stored files; created if missing.
    #[arg(long, default_value = "./synth-data", env = "SYNTH_DATA_DIR")]
    data_dir: PathBuf,
    /// Base URL clients use to reach this server (for signed download/upload links);
    /// defaults to http://HOST:PORT.
    #[arg(long, env = "SYNTH_PUBLIC_URL")]
    public_url: Option<String>,
}

/// The hidden `analyze-upload` subcommand: one upload, analysed in this process.
#[derive(Args)]
pub struct AnalyzeUploadArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    filename: String,
    #[arg(long)]
    max_bytes: u64,
    #[arg(long)]
    output: PathBuf,
}

pub fn analyze_upload(args: &AnalyzeUploadArgs) -> std::process::ExitCode {
    synth_analysis::run_child(&args.input, &args.filename, args.max_bytes, &args.output)
}

/// Where uploads are staged for their analysis process; emptied at every start (what a
/// crash left there is of no use).
fn analysis_dir(data_dir: &Path) -> Result<PathBuf, String> {
    let dir = data_dir.join("analysis");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// How often expired records (read notifications past retention, ended sessions) go.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// How long a shutdown waits for training runs to reach their next step and hand their
/// requests back (a step takes well under a second; a transformer fit can take longer).
const TRAINER_SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// How long the runtime then waits for blocking work still going (a run that did not stop
/// in time) before the process exits without it.
pub const RUNTIME_SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let mut settings = Settings::from_env().map_err(|e| e.to_string())?;
    synth_telemetry::init(&settings.log_level);
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", args.data_dir.display()))?;
    if settings.secret_key_generated {
        settings.secret_key = dev_secret(&args.data_dir)?;
        tracing::warn!(
            "SECRET_KEY is not set: using a generated development key kept in the data dir; \
             set SECRET_KEY (32+ bytes) for anything but local use"
        );
    }
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = args.public_url.unwrap_or_else(|| default_public_url(addr));
    let trainer = EmbeddedTrainer::new();
    let embedded = synth_embedded::open(
        EmbeddedOptions {
            data_dir: args.data_dir.clone(),
            secret_key: settings.secret_key.clone(),
            public_base_url: public_url.clone(),
            max_concurrent_jobs: settings.max_concurrent_generations as usize,
            max_upload_bytes: settings.max_file_bytes(),
        },
        trainer.clone(),
    )
    .await
    .map_err(|e| format!("cannot open the data dir {}: {e}", args.data_dir.display()))?;

    let backends = embedded.backends.clone();
    let state = AppState::new(settings, backends.clone(), "embedded");
    let worker = Trainer::new(backends, state.settings.clone());
    worker
        .device()
        .map_err(|why| format!("configuration: {why}"))?;
    trainer.set(worker);
    let app = synth_api::app(
        state.clone(),
        &ResourceGroup::ALL,
        Some(embedded.router.clone()),
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let triggers = start_triggers(&state, &embedded, &args.data_dir, stop_rx)?;

    tracing::info!(address = %addr, public_url = %public_url, data_dir = %args.data_dir.display(), "synth serve listening");
    println!("Synth is listening on {public_url} (API page: {public_url}/docs)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))?;

    let _ = stop_tx.send(true);
    for trigger in triggers {
        let _ = trigger.await;
    }
    trainer.shut_down(TRAINER_SHUTDOWN_WAIT).await;
    tracing::info!("synth serve stopped");
    Ok(())
}

/// The stand-ins for the AWS triggers: queue → dispatch, upload → ingest, topic → notify,
/// the time-to-live purge and the route meter's flush. Each ends once `stop` turns true.
fn start_triggers(
    state: &AppState,
    embedded: &Embedded,
    data_dir: &Path,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let program = std::env::current_exe()
        .map_err(|e| format!("cannot find this program's path to run analyses: {e}"))?;
    let analyzer = synth_analysis::ProcessAnalyzer::new(
        program,
        state.settings.max_file_bytes(),
        analysis_dir(data_dir)?,
    );
    Ok(vec![
        tokio::spawn(triggers::run_queue_consumer(
            embedded.backends.clone(),
            stop.clone(),
        )),
        tokio::spawn(triggers::run_ingest_loop(
            state.datasets.clone(),
            Arc::new(analyzer),
            embedded.objects.subscribe_created(),
            stop.clone(),
        )),
        tokio::spawn(triggers::run_notify_loop(
            state.notifications.clone(),
            embedded.topic.subscribe(),
            stop.clone(),
        )),
        tokio::spawn(triggers::run_purge_loop(
            embedded.records.clone(),
            PURGE_EVERY,
            stop.clone(),
        )),
        tokio::spawn(triggers::run_meter_flush(
            state.stats.meter.clone(),
            state.backends.records.clone(),
            synth_core::stats::perf::FLUSH_EVERY,
            stop,
        )),
    ])
}

fn default_public_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// A development secret that survives restarts, so sessions and signed links stay valid.
fn dev_secret(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join("dev-secret-key");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= synth_core::config::MIN_SECRET_BYTES
    {
        return Ok(s.trim().to_owned());
    }
    let fresh = Settings::from_map(&Default::default())
        .map_err(|e| e.to_string())?
        .secret_key;
    write_private(&path, &fresh).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(fresh)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Resolve on Ctrl-C or SIGTERM; the server then stops accepting and finishes in-flight
/// requests.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
