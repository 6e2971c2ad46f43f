//! `synth optimize`: search a model's hyperparameters on a table (grid, random or Bayesian
//! search), scored on real rows held out from every fit, and keep the best model.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};
use synth_engine::optimize::{Pruning, Trial, TrialStatus};
use synth_engine::{EngineDevice, OptimizeOptions, OptimizeRequest};

use crate::input::{check_output, read_table, save_model};

#[derive(clap::Args)]
pub struct OptimizeArgs {
    /// The real table (CSV, JSON, NDJSON, XLSX, Parquet).
    input: PathBuf,
    /// SDV single-table metadata; inferred from the data when absent.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// The whole request in the seed platform's JSON ({"model": "ctgan", "method":
    /// "bayesian", "n_trials": 20, "search_space": {…}, …}); flags override its fields.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The model to tune: ctgan (default), tvae or argn.
    #[arg(long)]
    model: Option<String>,
    /// grid, random or bayesian (default).
    #[arg(long)]
    method: Option<String>,
    /// How many models to train (default 10).
    #[arg(long)]
    trials: Option<usize>,
    /// The space to search, e.g. {"epochs": [50, 200], "learning_rate": [1e-4, 1e-2]};
    /// the model's default space when absent.
    #[arg(long)]
    search_space: Option<PathBuf>,
    /// quality_score (default), column_shapes, column_pair_trends or ml_efficacy.
    #[arg(long)]
    metric: Option<String>,
    /// The acquisition function of Bayesian search: EI (default), PI or UCB.
    #[arg(long)]
    acquisition: Option<String>,
    /// The column ml_efficacy predicts.
    #[arg(long)]
    target: Option<String>,
    /// Share of the rows held out for scoring, never trained on (default 0.2).
    #[arg(long)]
    holdout: Option<f64>,
    /// Seconds after which no trial starts and the running one stops.
    #[arg(long)]
    timeout: Option<f64>,
    /// Values per numeric dimension of a grid search (default: the finest grid within the
    /// trials).
    #[arg(long)]
    grid_resolution: Option<usize>,
    /// Stop trials whose score, every 10 epochs, is far below the best at the same epoch.
    #[arg(long)]
    prune: bool,
    /// Random seed of the search and its trials (the same seed gives the same trials).
    #[arg(long)]
    seed: Option<u64>,
    /// Where to write the search's results as JSON.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Save the best model (fitted on the non-holdout rows) to this folder.
    #[arg(long)]
    save_model: Option<PathBuf>,
    /// Print the results as one JSON line on stdout.
    #[arg(long)]
    json: bool,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    synth_table::json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The request: the config file's, with each flag given in place of its field.
fn request(args: &OptimizeArgs) -> Result<OptimizeRequest, String> {
    let mut config = match &args.config {
        Some(path) => read_json(path)?,
        None => json!({}),
    };
    let Some(fields) = config.as_object_mut() else {
        return Err("the config must be a JSON object".into());
    };
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            fields.insert(name.into(), v);
        }
    };
    let lower = |s: &Option<String>| s.as_ref().map(|s| json!(s.to_lowercase()));
    set("model", lower(&args.model));
    set("method", lower(&args.method));
    set("n_trials", args.trials.map(Value::from));
    set("optimization_metric", lower(&args.metric));
    set(
        "acquisition_function",
        args.acquisition.as_ref().map(|s| json!(s.to_uppercase())),
    );
    set("target", args.target.clone().map(Value::from));
    set("holdout_fraction", args.holdout.map(Value::from));
    set("timeout", args.timeout.map(Value::from));
    set("grid_resolution", args.grid_resolution.map(Value::from));
    set("random_state", args.seed.map(Value::from));
    if args.prune {
        set("pruning", Some(json!(Pruning::default())));
    }
    if let Some(path) = &args.search_space {
        set("search_space", Some(read_json(path)?));
    }
    serde_json::from_value(config).map_err(|e| format!("invalid optimize request: {e}"))
}

/// A parameter value, short: floats to four significant digits.
fn short(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => {
            if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e5) {
                format!("{x:.3e}")
            } else {
                format!("{}", (x * 1e4).round() / 1e4)
            }
        }
        _ => v.to_string(),
    }
}

fn params_line(params: &Map<String, Value>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", short(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn score(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{s:.4}"))
}

fn trial_line(t: &Trial, n_trials: usize, best: Option<f64>) -> String {
    let status = match t.status {
        TrialStatus::Completed => "completed",
        TrialStatus::Failed => "failed",
        TrialStatus::Pruned => "pruned",
        TrialStatus::Cancelled => "cancelled",
    };
    let mut line = format!(
        "trial {}/{n_trials}  {status:<9}  score {}  best {}  {:.1} s  {}",
        t.number,
        score(t.score),
        score(best),
        t.fit_seconds,
        params_line(&t.params)
    );
    if let Some(r) = &t.reason {
        line.push_str(&format!("  ({r})"));
    }
    line
}

/// A flag that Ctrl-C sets, so the search stops after (or inside) the current trial and
/// still writes the best so far; a second Ctrl-C quits at once.
fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    set.store(true, Ordering::Relaxed);
                    eprintln!("stopping: the best model so far is kept (Ctrl-C again to quit)");
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
        });
    if let Err(e) = spawned {
        eprintln!("warning: Ctrl-C will not stop the search cleanly: {e}");
    }
    flag
}

pub fn run(args: OptimizeArgs) -> Result<(), String> {
    if let Some(output) = &args.output {
        check_output(output, &[args.input.as_path()], false)?;
    }
    let request = request(&args)?;
    let (table, metadata) = read_table(&args.input, args.metadata.as_deref())?;
    let n_trials = request.n_trials;
    let on_trial =
        move |t: &Trial, best: Option<f64>| eprintln!("{}", trial_line(t, n_trials, best));
    let options = OptimizeOptions {
        device: EngineDevice::auto(),
        cancel: Some(cancel_on_ctrl_c()),
        on_trial: Some(Box::new(on_trial)),
        ..OptimizeOptions::default()
    };
    let result =
        synth_engine::optimize(&table, &metadata, &request, options).map_err(|e| e.to_string())?;
    let summary = serde_json::to_value(&result).expect("results serialise");
    if let Some(path) = &args.output {
        let text = serde_json::to_string_pretty(&summary).expect("results serialise");
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        println!("{summary}");
    }
    if let Some(reason) = &result.stopped {
        eprintln!(
            "search stopped early: {}",
            json!(reason).as_str().unwrap_or("?")
        );
    }
    let (Some(best), Some(params), Some(number)) =
        (result.best_score, &result.best_params, result.best_trial)
    else {
        return Err(format!(
            "no trial completed out of {}; the trials say why",
            result.trials.len()
        ));
    };
    eprintln!(
        "best {} {best:.4} (trial {number}): {}",
        result.metric,
        params_line(params)
    );
    if let Some(dir) = &args.save_model {
        let model = result
            .best_model
            .as_deref()
            .ok_or("the best trial kept no model")?;
        save_model(model, &metadata, dir)?;
        eprintln!("saved the best model to {}", dir.display());
    }
    Ok(())
}
