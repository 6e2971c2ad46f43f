//! `synth generate`: learn a table (CTGAN, TVAE or argn), optionally under constraints, and
//! write a synthetic one — the engine alone, as a data scientist would run it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use synth_constraints::{Constraint, OnViolation};
use synth_engine::{Condition, EngineDevice, EpochReport, FitOptions, ModelParams, Synthesizer};
use synth_table::{Metadata, Table};

use crate::input::{METADATA_FILE, check_output, read_metadata, read_table, save_model};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The real table (CSV, JSON, NDJSON, XLSX, Parquet). Not needed with --load-model.
    input: Option<PathBuf>,
    /// SDV single-table metadata; inferred from the data when absent.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// The model to train: argn (the autoregressive model, the default), ctgan or tvae. A
    /// saved model (--load-model) is of the kind it was saved as.
    #[arg(long, conflicts_with = "load_model")]
    model: Option<String>,
    /// A JSON file of model parameters in the seed platform's shape (e.g. a file holding
    /// {"epochs": 300, "batch_size": 500}); --epochs and --batch-size override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Training epochs (the model's default when absent).
    #[arg(long)]
    epochs: Option<usize>,
    /// Rows per training step (the model's default when absent).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Rows to generate (default: as many as the input has).
    #[arg(long)]
    rows: Option<usize>,
    /// Random seed: the same seed, data and flags give the same table.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only rows that meet it (repeatable): COLUMN=VALUE for any column, or a range of a
    /// numerical or datetime one: COLUMN>=A, COLUMN>A, COLUMN<=B, COLUMN<B, COLUMN=A..B.
    #[arg(long = "condition", value_name = "COLUMN=VALUE")]
    conditions: Vec<String>,
    /// Constraints every synthetic row keeps, in SDV's JSON: a list of
    /// {"constraint_class", "constraint_parameters"}, or {"constraints": [...]}.
    #[arg(long, conflicts_with = "load_model")]
    constraints: Option<PathBuf>,
    /// Also keep every constraint the real table obeys on every row (as `synth profile
    /// --suggest-constraints` finds them).
    #[arg(long, conflicts_with = "load_model")]
    discover_constraints: bool,
    /// What to do with real rows that break a constraint: fail (name them) or drop them.
    #[arg(long, value_enum, default_value = "fail")]
    on_violation: Violations,
    /// Save the fitted model to this folder.
    #[arg(long)]
    save_model: Option<PathBuf>,
    /// Sample from a saved model instead of training.
    #[arg(long, conflicts_with_all = ["config", "epochs", "batch_size"])]
    load_model: Option<PathBuf>,
    /// Stop training once another epoch would end after this many minutes (more than 0).
    #[arg(long, conflicts_with = "load_model", value_parser = positive_minutes)]
    max_minutes: Option<f64>,
    /// Sampling temperature of the argn model (below 1 favours likely values).
    #[arg(long, conflicts_with = "load_model")]
    temperature: Option<f64>,
    /// Fill the null cells of this table (every other cell kept) instead of sampling new
    /// rows (argn).
    #[arg(long, value_name = "TABLE", conflicts_with_all = ["seed_rows", "rebalance", "conditions", "rows"])]
    impute: Option<PathBuf>,
    /// Complete each row of this table (some of the columns) with the columns it lacks
    /// (argn).
    #[arg(long, value_name = "TABLE", conflicts_with_all = ["rebalance", "conditions", "rows"])]
    seed_rows: Option<PathBuf>,
    /// Rows whose COLUMN has these shares of its categories, e.g. sex=F:0.5,M:0.5 (argn);
    /// shares short of 1 leave the rest of the rows to the other categories.
    #[arg(
        long,
        value_name = "COLUMN=CAT:SHARE,...",
        conflicts_with = "conditions"
    )]
    rebalance: Option<String>,
    /// Where to write the synthetic table; the format follows the extension.
    #[arg(short, long)]
    output: PathBuf,
    /// Print one JSON line of figures on stdout at the end.
    #[arg(long)]
    json: bool,
}

/// `--on-violation`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Violations {
    Fail,
    Drop,
}

fn constraints(path: Option<&Path>) -> Result<Vec<Constraint>, String> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    synth_constraints::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn params(args: &GenerateArgs) -> Result<ModelParams, String> {
    let mut config = match &args.config {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            synth_table::json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => json!({}),
    };
    let Some(obj) = config.as_object_mut() else {
        return Err("the config must be a JSON object".into());
    };
    let model = args
        .model
        .as_deref()
        .unwrap_or(synth_core::generation::DEFAULT_MODEL);
    obj.insert("model".into(), Value::String(model.to_lowercase()));
    if let Some(e) = args.epochs {
        obj.insert("epochs".into(), e.into());
    }
    if let Some(b) = args.batch_size {
        obj.insert("batch_size".into(), b.into());
    }
    if let Some(t) = args.temperature {
        obj.insert("temperature".into(), t.into());
    }
    serde_json::from_value(config).map_err(|e| format!("invalid model parameters: {e}"))
}

fn conditions(raw: &[String]) -> Result<Vec<Condition>, String> {
    raw.iter().map(|c| Condition::parse(c)).collect()
}

/// Peak resident memory of this process, in MB (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn progress(epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(epochs as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} epoch {pos}/{len} [{bar:30}] {elapsed_precise} eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// A model to sample from: loaded or freshly fitted, with its metadata, the rows it was fitted
/// on (none when loaded) and its loss history.
struct Learned {
    model: Box<dyn Synthesizer>,
    metadata: Metadata,
    n_input: Option<usize>,
    history: Vec<EpochReport>,
}

fn load(dir: &Path, metadata: Option<&Path>, device: EngineDevice) -> Result<Learned, String> {
    let model = synth_engine::load(dir, device)
        .map_err(|e| format!("cannot load {}: {e}", dir.display()))?;
    let metadata = match metadata {
        Some(p) => read_metadata(p)?,
        None => read_metadata(&dir.join(METADATA_FILE))?,
    };
    let history = model.loss_history().to_vec();
    Ok(Learned {
        model,
        metadata,
        n_input: None,
        history,
    })
}

fn fit(args: &GenerateArgs, device: EngineDevice) -> Result<Learned, String> {
    let input = args
        .input
        .as_ref()
        .ok_or("give an INPUT table, or --load-model")?;
    let (table, metadata) = read_table(input, args.metadata.as_deref())?;
    if table.n_rows() < synth_models::MIN_TRAINING_ROWS {
        return Err(format!(
            "{}: {} rows; a model needs at least {} to learn from rather than copy them",
            input.display(),
            table.n_rows(),
            synth_models::MIN_TRAINING_ROWS
        ));
    }
    let params = params(args)?;
    let mut constraints = constraints(args.constraints.as_deref())?;
    if args.discover_constraints {
        let found = synth_constraints::discover(&table, &metadata);
        for c in found {
            if !constraints.contains(&c) {
                eprintln!("keeping {}", c.describe());
                constraints.push(c);
            }
        }
    }
    let policy = match args.on_violation {
        Violations::Fail => OnViolation::Fail,
        Violations::Drop => OnViolation::Drop,
    };
    let bar = progress(params.epochs());
    let bar_cb = bar.clone();
    let options = FitOptions {
        seed: args.seed,
        device,
        on_epoch: Some(Box::new(move |r: &EpochReport| {
            bar_cb.set_position(r.epoch as u64);
            let critic = r
                .critic_loss
                .map_or_else(String::new, |d| format!("  D {d:+.4}"));
            bar_cb.set_message(format!("G {:+.4}{critic}", r.generator_loss));
        })),
        max_seconds: args.max_minutes.map(|m| m * 60.0),
        ..FitOptions::default()
    };
    let (model, dropped) =
        synth_engine::fit_constrained(&table, &metadata, &params, &constraints, policy, options)
            .map_err(|e| e.to_string())?;
    bar.finish();
    for v in &dropped {
        eprintln!(
            "left out {} real row{} that break {}",
            v.rows,
            if v.rows == 1 { "" } else { "s" },
            v.constraint
        );
    }
    let history = model.loss_history().to_vec();
    Ok(Learned {
        model,
        metadata,
        n_input: Some(table.n_rows()),
        history,
    })
}

/// A table of some of the model's columns, typed by its metadata (read once, then typed).
fn read_known(path: &Path, metadata: &Metadata) -> Result<Table, String> {
    let read = synth_data::read_path(path, &synth_data::LoadOptions::default().read)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(c) = read
        .table
        .columns
        .iter()
        .find(|c| metadata.column(&c.name).is_none())
    {
        return Err(format!(
            "{}: column {:?} is not one the model learnt",
            path.display(),
            c.name
        ));
    }
    let given = Metadata::new(
        metadata
            .columns
            .iter()
            .filter(|(name, _)| read.table.column(name).is_some())
            .cloned()
            .collect(),
    );
    synth_data::apply_metadata(read.table, &given).map_err(|e| format!("{}: {e}", path.display()))
}

/// `COLUMN=CAT:SHARE,...`.
fn rebalance_shares(spec: &str) -> Result<(String, Vec<(String, f64)>), String> {
    let bad = || format!("--rebalance {spec:?}: expected COLUMN=CATEGORY:SHARE,...");
    let (column, rest) = spec.split_once('=').ok_or_else(bad)?;
    let shares = rest
        .split(',')
        .map(|part| {
            let (cat, share) = part.rsplit_once(':').ok_or_else(bad)?;
            let share: f64 = share.trim().parse().map_err(|_| bad())?;
            Ok((cat.to_owned(), share))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((column.trim().to_owned(), shares))
}

/// The table asked for: new rows (optionally conditioned or rebalanced), or the given
/// table's rows completed or imputed.
fn draw(
    args: &GenerateArgs,
    model: &dyn Synthesizer,
    metadata: &Metadata,
    n_input: Option<usize>,
    conditions: &[Condition],
) -> Result<Table, String> {
    let known = match (&args.impute, &args.seed_rows) {
        (Some(path), _) => Some((read_known(path, metadata)?, true)),
        (_, Some(path)) => Some((read_known(path, metadata)?, false)),
        _ => None,
    };
    if let Some((table, fill_nulls)) = known {
        return model
            .complete(&table, fill_nulls, args.seed)
            .map_err(|e| e.to_string());
    }
    let rows = args
        .rows
        .or(n_input)
        .ok_or("give --rows when sampling from a saved model")?;
    let drawn = match &args.rebalance {
        Some(spec) => {
            let (column, shares) = rebalance_shares(spec)?;
            model.rebalance(rows, &column, &shares, args.seed)
        }
        None if conditions.is_empty() => model.sample(rows, args.seed),
        None => {
            let conditions: Vec<Condition> = conditions
                .iter()
                .map(|c| c.clone().with_iso_dates(metadata))
                .collect();
            model.sample_conditional(rows, &conditions, args.seed)
        }
    };
    drawn.map_err(|e| e.to_string())
}

/// Says on stderr what the model never reproduces.
fn report_protection(model: &dyn Synthesizer, metadata: &Metadata) {
    for p in model.protected() {
        if p.rare_categories > 0 {
            eprintln!(
                "protected: {}: {} categor{} seen in too few rows ({} rows) never written",
                p.column,
                p.rare_categories,
                if p.rare_categories == 1 { "y" } else { "ies" },
                p.rare_rows
            );
        }
        for (end, clip) in [("lowest", p.clipped_low), ("highest", p.clipped_high)] {
            if let Some((rows, to)) = clip {
                let to = metadata.show(&p.column, to);
                eprintln!(
                    "protected: {}: the {rows} {end} values written as {to}",
                    p.column
                );
            }
        }
    }
}

fn positive_minutes(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
        _ => Err(format!("{raw:?} is not a positive number of minutes")),
    }
}

/// Most rows one run writes: the table is held in memory twice (drawn, then written), and
/// past this a run takes tens of gigabytes.
const MAX_ROWS: usize = 100_000_000;

pub fn run(args: GenerateArgs) -> Result<(), String> {
    let inputs = [&args.input, &args.impute, &args.seed_rows, &args.metadata];
    let inputs: Vec<&Path> = inputs.into_iter().flatten().map(PathBuf::as_path).collect();
    check_output(&args.output, &inputs, true)?;
    if let Some(rows) = args.rows.filter(|&r| r > MAX_ROWS) {
        return Err(format!(
            "--rows {rows}: at most {MAX_ROWS} rows a run; run again with another --seed for more"
        ));
    }
    let conditions = conditions(&args.conditions)?;
    let device = EngineDevice::auto();
    let started = Instant::now();
    let Learned {
        model,
        metadata,
        n_input,
        history,
    } = match &args.load_model {
        Some(dir) => load(dir, args.metadata.as_deref(), device)?,
        None => fit(&args, device)?,
    };
    let fit_seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.save_model {
        save_model(&*model, &metadata, dir)?;
    }
    report_protection(&*model, &metadata);
    let sampling = Instant::now();
    let synthetic = draw(&args, &*model, &metadata, n_input, &conditions)?;
    let sample_seconds = sampling.elapsed().as_secs_f64();
    synth_data::write_path(&synthetic, &metadata, &args.output)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;

    let transformer_fit_seconds = history
        .first()
        .map(|r| (r.elapsed_seconds - r.epoch_seconds).max(0.0));
    let per_epoch = median(history.iter().map(|r| r.epoch_seconds).collect());
    let last = history.last();
    eprintln!(
        "wrote {} rows × {} columns to {} (fit {:.1} s, sample {:.1} s)",
        synthetic.n_rows(),
        synthetic.columns.len(),
        args.output.display(),
        fit_seconds,
        sample_seconds
    );
    if args.json {
        let line = json!({
            "model": model.model_name(),
            "rows": synthetic.n_rows(),
            "columns": synthetic.columns.len(),
            "epochs": history.len(),
            "fit_seconds": fit_seconds,
            "transformer_fit_seconds": transformer_fit_seconds,
            "seconds_per_epoch": per_epoch,
            "sample_seconds": sample_seconds,
            "peak_rss_mb": peak_rss_mb(),
            "final_losses": last.map(|r| json!({"generator": r.generator_loss, "critic": r.critic_loss, "validation": r.validation_loss})),
            "protected": model
                .protected()
                .into_iter()
                .map(|p| p.shown(&metadata))
                .collect::<Vec<_>>(),
        });
        println!("{line}");
    }
    Ok(())
}
