//! A request's work, phase by phase: read the dataset's canonical copy, search the
//! hyperparameters if asked, fit, sample (with the conditions), evaluate, and write every
//! file to the object store. CPU-bound phases run on blocking threads; each reports its
//! progress to the keeper and each stops early when the stop flag is raised.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use synth_constraints::Violation;
use synth_engine::{Bound, Condition, Test};

use serde_json::{Map, Value};
use synth_core::generation::{
    GenerationRequest, GenerationResult, OutputFormat, Progress, RequestKind, ResultFile,
    SearchSummary, SearchTrial, Timings, TrainingFacts, TrialState,
};
use synth_core::{ObjectStore, PortError};
use synth_engine::optimize::{StopReason, Trial, TrialStatus};
use synth_engine::{EngineDevice, EpochReport, FitOptions, ModelParams, Optimization, Synthesizer};
use synth_table::{Metadata, Table};
use tokio::sync::mpsc::UnboundedSender;

use crate::keeper::{Report, Signals, Verdict};
use crate::{Failure, pace::Pace};

/// What the work needs: the request, the dataset it names, and where to write.
pub(crate) struct Job {
    pub request: GenerationRequest,
    pub table: Table,
    pub metadata: Metadata,
    pub objects: Arc<dyn ObjectStore>,
    pub progress: UnboundedSender<Report>,
    pub signals: Signals,
    /// Where the networks train (known to open).
    pub device: EngineDevice,
}

/// The model to sample, the parameters it was fitted with, what a search found, and the
/// constraints real rows left out of training broke.
struct Found {
    model: Box<dyn Synthesizer>,
    parameters: Map<String, Value>,
    search: Option<SearchSummary>,
    left_out: Vec<Violation>,
    /// How the model was fitted; `None` when it is a search trial's model.
    training: Option<TrainingFacts>,
}

/// A request's conditions for the engine: `column: value` is an equality, `column: {">=":
/// a, "<": b}` a range (checked when the request was made).
fn conditions_of(r: &GenerationRequest) -> Result<Vec<Condition>, Failure> {
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
    r.conditions
        .iter()
        .map(|(column, v)| {
            let Value::Object(ops) = v else {
                return Ok(Condition::equals(column.clone(), text(v)));
            };
            let (mut low, mut high) = (None, None);
            for (op, value) in ops {
                let bound = Some(Bound {
                    value: text(value),
                    inclusive: op.ends_with('='),
                });
                match op.as_str() {
                    ">" | ">=" => low = bound,
                    "<" | "<=" => high = bound,
                    _ => {
                        return Err(Failure::User(format!(
                            "condition {column:?}: unknown operator {op:?}"
                        )));
                    }
                }
            }
            Ok(Condition {
                column: column.clone(),
                test: Test::Within { low, high },
            })
        })
        .collect()
}

/// The engine's model parameters of a request (its `model_type` and its parameters).
fn model_params(
    r: &GenerationRequest,
    parameters: &Map<String, Value>,
) -> Result<ModelParams, Failure> {
    let mut json = parameters.clone();
    json.insert("model".into(), Value::String(r.model_type.clone()));
    serde_json::from_value(Value::Object(json))
        .map_err(|e| Failure::User(format!("the model's parameters are not valid: {e}")))
}

/// The seed a request runs with: its own, or one drawn from its id (so a retried run of a
/// request without a seed still gives the same result).
pub(crate) fn seed_of(r: &GenerationRequest) -> u64 {
    r.seed.unwrap_or_else(|| {
        r.id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    })
}

/// A trial of the engine's search as the platform records it.
fn search_trial(t: &Trial) -> SearchTrial {
    SearchTrial {
        number: t.number as u64,
        params: Value::Object(t.params.clone()),
        status: match t.status {
            TrialStatus::Completed => TrialState::Completed,
            TrialStatus::Failed => TrialState::Failed,
            TrialStatus::Pruned => TrialState::Pruned,
            TrialStatus::Cancelled => TrialState::Cancelled,
        },
        score: t.score,
        reason: t.reason.clone(),
        fit_seconds: t.fit_seconds,
        finished_at: chrono::Utc::now(),
    }
}

/// What a search found, or why it found nothing (every trial failed).
fn summary(found: &Optimization, stopped: bool) -> Result<SearchSummary, Failure> {
    let (Some(number), Some(score)) = (found.best_trial, found.best_score) else {
        if stopped {
            return Err(Failure::Stopped);
        }
        let reasons: Vec<String> = found
            .trials
            .iter()
            .filter_map(|t| {
                t.reason
                    .as_ref()
                    .map(|r| format!("trial {}: {r}", t.number))
            })
            .collect();
        return Err(Failure::User(format!(
            "every trial of the hyperparameter search failed: {}",
            reasons.join("; ")
        )));
    };
    let completed = found
        .trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed)
        .count();
    let ended_early = match (stopped, found.stopped) {
        (true, _) | (false, Some(StopReason::Cancelled)) => Some("stopped"),
        (false, Some(StopReason::Timeout)) => Some("timeout"),
        (false, Some(StopReason::Exhausted)) => Some("exhausted"),
        (false, None) => None,
    };
    Ok(SearchSummary {
        best_trial: number as u64,
        best_score: score,
        best_params: Value::Object(found.best_params.clone().unwrap_or_default()),
        trials: found.trials.len() as u64,
        completed: completed as u64,
        ended_early: ended_early.map(str::to_owned),
    })
}

impl Job {
    /// The owner cancelled, or another run took over: nothing more is produced. (A stopped
    /// search raises the same flag, but keeps what it found.)
    fn cancelled(&self) -> bool {
        let flag = self.signals.stop.load(std::sync::atomic::Ordering::SeqCst);
        flag && self.signals.verdict() != Verdict::Stop
    }

    /// Run every phase; `Err(Failure::Stopped)` when the stop flag ended it.
    pub async fn run(self) -> Result<GenerationResult, Failure> {
        let job = Arc::new(self);
        let mut pace = Pace::new(&job.request);
        let mut timings = Timings::default();
        let started = Instant::now();
        let Found {
            model,
            parameters,
            search,
            left_out,
            training,
        } = job.clone().model(&mut pace, &mut timings).await?;
        job.report(pace.phase("sampling", "sampling the synthetic rows", 85.0));
        let t = Instant::now();
        let model = Arc::new(model);
        let m = model.clone();
        let synthetic = blocking(job.clone(), move |j| j.sample(m.as_ref().as_ref())).await??;
        timings.sampling = t.elapsed().as_secs_f64();
        job.report(pace.phase("evaluating", "scoring the synthetic table", 90.0));
        let t = Instant::now();
        let synthetic = Arc::new(synthetic);
        let s = synthetic.clone();
        // What the model never reproduces goes into the report beside the scores.
        let protected = model.protected();
        let Scored {
            json: report_json,
            html: report_html,
            quality,
        } = blocking(job.clone(), move |j| j.evaluate(&s, protected)).await??;
        timings.evaluating = t.elapsed().as_secs_f64();
        job.report(pace.phase("writing", "writing the results", 97.0));
        let t = Instant::now();
        let files = job
            .write(
                &synthetic,
                model.as_ref().as_ref(),
                report_json,
                report_html,
            )
            .await?;
        timings.writing = t.elapsed().as_secs_f64();
        timings.total = started.elapsed().as_secs_f64();
        timings.preparing = (timings.total
            - timings.optimizing
            - timings.training
            - timings.sampling
            - timings.evaluating
            - timings.writing)
            .max(0.0);
        Ok(GenerationResult {
            rows: synthetic.n_rows() as u64,
            quality_score: quality,
            files,
            timings,
            parameters: Value::Object(parameters),
            search,
            left_out,
            training,
        })
    }

    /// The model to sample: fitted with the request's parameters, or with the best ones its
    /// search found — or, for a search of its own (or one its owner stopped), the best
    /// trial's model itself, which needs no fit again.
    async fn model(
        self: Arc<Self>,
        pace: &mut Pace,
        timings: &mut Timings,
    ) -> Result<Found, Failure> {
        let mut parameters = self.request.parameter_map();
        let mut search = None;
        if self.request.optimization.is_some() {
            let t = Instant::now();
            let search_pace = pace.clone();
            let found = blocking(self.clone(), move |j| j.optimize(search_pace)).await??;
            timings.optimizing = t.elapsed().as_secs_f64();
            pace.optimized();
            if self.cancelled() {
                return Err(Failure::Stopped);
            }
            let stopped = self.signals.verdict() == Verdict::Stop;
            search = Some(summary(&found, stopped)?);
            let best = found
                .model_params
                .as_ref()
                .expect("a best trial has parameters");
            parameters = match serde_json::to_value(best) {
                Ok(Value::Object(mut m)) => {
                    m.remove("model");
                    m
                }
                _ => return Err(Failure::User("the best parameters do not serialise".into())),
            };
            if stopped || self.request.kind == RequestKind::Optimization {
                let model = found.best_model.expect("a best trial has its model");
                return Ok(Found {
                    model,
                    parameters,
                    search,
                    left_out: Vec::new(),
                    training: None,
                });
            }
        }
        let params = model_params(&self.request, &parameters)?;
        let t = Instant::now();
        let fit_pace = pace.clone();
        let epochs = Arc::new(AtomicU64::new(0));
        let counted = epochs.clone();
        let (model, left_out) =
            blocking(self.clone(), move |j| j.fit(&params, fit_pace, &counted)).await??;
        timings.training = t.elapsed().as_secs_f64();
        let left: u64 = left_out.iter().map(|v| v.rows as u64).sum();
        let training = Some(TrainingFacts {
            rows: (self.table.n_rows() as u64).saturating_sub(left),
            epochs: epochs.load(Ordering::Relaxed),
            seconds: timings.training,
            device: self.device.to_string(),
        });
        if self.cancelled() {
            return Err(Failure::Stopped);
        }
        Ok(Found {
            model,
            parameters,
            search,
            left_out,
            training,
        })
    }

    fn report(&self, p: Progress) {
        // The keeper is gone only when the run is finishing; nothing to tell then.
        let _ = self.progress.send(Report::Progress(p));
    }

    /// The hyperparameter search, each trial recorded as it ends.
    fn optimize(&self, pace: Pace) -> Result<Optimization, Failure> {
        let r = &self.request;
        let mut config = r.optimization.clone().unwrap_or(Value::Null);
        let Some(obj) = config.as_object_mut() else {
            return Err(Failure::User(
                "the optimisation config is not an object".into(),
            ));
        };
        obj.remove("enabled");
        obj.insert("model".into(), Value::String(r.model_type.clone()));
        obj.insert("params".into(), Value::Object(r.parameter_map()));
        if obj.get("random_state").is_none_or(Value::is_null) {
            obj.insert("random_state".into(), Value::from(seed_of(r)));
        }
        let request: synth_engine::OptimizeRequest = serde_json::from_value(config)
            .map_err(|e| Failure::User(format!("the optimisation config is not valid: {e}")))?;
        let trials = request.n_trials as u64;
        self.report(pace.search_started(trials));
        let progress = self.progress.clone();
        let (epoch_pace, epoch_progress) = (pace.clone(), self.progress.clone());
        let options = synth_engine::OptimizeOptions {
            device: self.device,
            cancel: Some(self.signals.stop.clone()),
            on_epoch: Some(Arc::new(move |trial, e: &EpochReport| {
                let p = epoch_pace.trial_epoch(trial as u64, trials, e);
                let _ = epoch_progress.send(Report::Progress(p));
            })),
            on_trial: Some(Box::new(move |trial, best| {
                let _ = progress.send(Report::Trial(search_trial(trial)));
                let p = pace.trial(trial.number as u64, trials, best);
                let _ = progress.send(Report::Progress(p));
            })),
            ..synth_engine::OptimizeOptions::default()
        };
        synth_engine::optimize(&self.table, &self.metadata, &request, options)
            .map_err(|e| Failure::User(format!("the hyperparameter search failed: {e}")))
    }

    /// Fits under the request's constraints (none: the model alone).
    fn fit(
        &self,
        params: &ModelParams,
        pace: Pace,
        epochs_run: &Arc<AtomicU64>,
    ) -> Result<(Box<dyn Synthesizer>, Vec<Violation>), Failure> {
        self.report(pace.phase(
            "preparing",
            "learning the columns' distributions",
            pace.start_percent(),
        ));
        let progress = self.progress.clone();
        let epochs = params.epochs() as u64;
        let counted = epochs_run.clone();
        let options = FitOptions {
            seed: seed_of(&self.request),
            device: self.device,
            stop: Some(self.signals.stop.clone()),
            on_epoch: Some(Box::new(move |e: &EpochReport| {
                counted.fetch_add(1, Ordering::Relaxed);
                let _ = progress.send(Report::Progress(pace.epoch(e, epochs)));
            })),
            ..FitOptions::default()
        };
        let r = &self.request;
        synth_engine::fit_constrained(
            &self.table,
            &self.metadata,
            params,
            &r.constraints,
            r.on_violation,
            options,
        )
        .map_err(|e| match e {
            synth_engine::EngineError::Stopped => Failure::Stopped,
            e => Failure::User(format!("training failed: {e}")),
        })
    }

    fn sample(&self, model: &dyn Synthesizer) -> Result<Table, Failure> {
        let r = &self.request;
        let rows = r.sample_size as usize;
        let seed = seed_of(r);
        let conditions: Vec<Condition> = conditions_of(r)?
            .into_iter()
            .map(|c| c.with_iso_dates(&self.metadata))
            .collect();
        let table = if conditions.is_empty() {
            model.sample(rows, seed)
        } else {
            model.sample_conditional(rows, &conditions, seed)
        };
        table.map_err(|e| Failure::User(format!("sampling failed: {e}")))
    }

    /// The report as JSON and as HTML, and its overall quality score.
    fn evaluate(
        &self,
        synthetic: &Table,
        protected: Vec<synth_evaluate::Protected>,
    ) -> Result<Scored, Failure> {
        let options = synth_evaluate::EvaluateOptions {
            seed: seed_of(&self.request),
            ..synth_evaluate::EvaluateOptions::default()
        };
        let mut report = synth_evaluate::evaluate(&self.table, synthetic, &self.metadata, &options)
            .map_err(|e| Failure::User(format!("evaluating the synthetic table failed: {e}")))?;
        report.protected = protected
            .into_iter()
            .map(|p| p.shown(&self.metadata))
            .collect();
        let html = synth_evaluate::render_html(&report, &self.table, synthetic, &self.metadata);
        let json = serde_json::to_vec_pretty(&report).expect("the report serialises");
        Ok(Scored {
            json,
            html: html.into_bytes(),
            quality: report.quality.score,
        })
    }

    async fn write(
        &self,
        synthetic: &Table,
        model: &dyn Synthesizer,
        report_json: Vec<u8>,
        report_html: Vec<u8>,
    ) -> Result<Vec<ResultFile>, Failure> {
        let r = &self.request;
        let format = r.output_format;
        let data = synth_data::write_bytes(synthetic, &self.metadata, data_format(format))
            .map_err(|e| {
                Failure::User(format!(
                    "writing the {} file failed: {e}",
                    format.extension()
                ))
            })?;
        let written = synth_data::metadata_as_written(&self.metadata, data_format(format));
        let metadata = serde_json::to_vec_pretty(&written).expect("metadata serialises");
        let stem = r
            .dataset_name
            .rsplit_once('.')
            .map_or(r.dataset_name.as_str(), |(s, _)| s);
        let mut files = vec![
            (
                "data",
                format!("{stem}-synthetic.{}", format.extension()),
                format!("synthetic.{}", format.extension()),
                data,
                format.content_type(),
            ),
            (
                "report_json",
                format!("{stem}-report.json"),
                "report.json".into(),
                report_json,
                "application/json",
            ),
            (
                "report_html",
                format!("{stem}-report.html"),
                "report.html".into(),
                report_html,
                "text/html; charset=utf-8",
            ),
            (
                "metadata",
                format!("{stem}-metadata.json"),
                "metadata.json".into(),
                metadata,
                "application/json",
            ),
        ];
        for (name, bytes) in saved_model(model)? {
            files.push((
                "model",
                name.clone(),
                format!("model/{name}"),
                bytes,
                "application/octet-stream",
            ));
        }
        let prefix = synth_core::generation::result_prefix(&r.owner_id, &r.id);
        let mut out = Vec::with_capacity(files.len());
        for (kind, name, path, bytes, content_type) in files {
            let key = format!("{prefix}{path}");
            let size = bytes.len() as u64;
            self.objects
                .put(&key, bytes.into(), content_type)
                .await
                .map_err(Failure::Store)?;
            out.push(ResultFile::new(kind, name, size, key));
        }
        Ok(out)
    }
}

fn data_format(f: OutputFormat) -> synth_data::FileFormat {
    match f {
        OutputFormat::Csv => synth_data::FileFormat::Csv,
        OutputFormat::Json => synth_data::FileFormat::Json,
        OutputFormat::Parquet => synth_data::FileFormat::Parquet,
        OutputFormat::Xlsx => synth_data::FileFormat::Xlsx,
    }
}

/// The fitted model's files (what `synth generate --load-model` reads).
fn saved_model(model: &dyn Synthesizer) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::Internal(format!("temp dir: {e}")))?;
    model
        .save(dir.path())
        .map_err(|e| Failure::Internal(format!("saving the model failed: {e}")))?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).map_err(|e| Failure::Internal(e.to_string()))? {
        let entry = entry.map_err(|e| Failure::Internal(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).map_err(|e| Failure::Internal(e.to_string()))?;
        files.push((name, bytes));
    }
    files.sort();
    Ok(files)
}

/// Run a CPU-bound phase on a blocking thread; a panic in it is a failure of the request.
async fn blocking<T: Send + 'static>(
    job: Arc<Job>,
    f: impl FnOnce(&Job) -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(move || f(&job))
        .await
        .map_err(|e| {
            let what = e
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                })
                .unwrap_or_default();
            Failure::Internal(format!("the trainer crashed: {what}"))
        })
}

impl From<PortError> for Failure {
    fn from(e: PortError) -> Self {
        Failure::Store(e)
    }
}

/// The quality report of a synthetic table, as written beside it.
struct Scored {
    json: Vec<u8>,
    html: Vec<u8>,
    quality: Option<f64>,
}
