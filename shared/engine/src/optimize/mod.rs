//! Hyperparameter search of a model: finds the parameters of CTGAN or TVAE that give the
//! best synthetic data for one table, by grid, random or Bayesian search, and hands back the
//! fitted best model so it need not be trained again.
//!
//! The search itself — spaces, the Gaussian process and acquisition functions, the loop
//! with pruning and cancellation — is the `synth-search` crate, which knows nothing of
//! models; what a caller needs of it is re-exported here. The engine adds:
//!
//! - [`objective`]: the model objective — fit on a training split, score on a holdout —
//!   that plugs into the search as its [`Objective`].
//!
//! [`optimize`] ties them together from an [`OptimizeRequest`] (`synth-models`, so that it
//! is checked without the engine), the seed platform's JSON:
//! `{"model": "ctgan", "method": "bayesian", "n_trials": 20, "search_space": {…},
//! "optimization_metric": "quality_score", "acquisition_function": "EI", "random_state": 42,
//! "timeout": 3600}`.

pub mod objective;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use serde_json::{Map, Value};
use synth_table::{Metadata, Table};

use crate::device::EngineDevice;
use crate::error::Result;
use crate::models::ModelParams;
use crate::synthesizer::Synthesizer;
use crate::transformer::TransformerOptions;
pub use objective::{ModelObjective, ObjectiveSettings, TrialEpochCallback};
pub use synth_models::{Metric, MetricMix, OptimizeRequest, Score};
pub use synth_search::{
    Acquisition, Dimension, Domain, FnObjective, GaussianProcess, Method, Objective, ParamKind,
    PruneGate, Pruning, SearchConfig, SearchOutcome, SearchSpace, StopReason, StopSignal, Trial,
    TrialContext, TrialOutcome, TrialReport, TrialStatus, search,
};

/// Called as each trial ends, with the best score so far.
pub type TrialCallback = Box<dyn FnMut(&Trial, Option<f64>) + Send>;

/// How to run a search, as opposed to what to search.
#[derive(Default)]
pub struct OptimizeOptions {
    pub device: EngineDevice,
    pub transformer: TransformerOptions,
    /// Set from anywhere to stop; the search then returns the best so far.
    pub cancel: Option<Arc<AtomicBool>>,
    pub on_trial: Option<TrialCallback>,
    /// Called after every epoch of every trial, with the trial's number.
    pub on_epoch: Option<TrialEpochCallback>,
}

/// What a model search found; serialises as `synth optimize` writes it.
#[derive(Serialize)]
pub struct Optimization {
    pub model: &'static str,
    pub method: Method,
    pub metric: Score,
    /// The searched parameters of the best completed trial.
    pub best_params: Option<Map<String, Value>>,
    pub best_score: Option<f64>,
    pub best_trial: Option<usize>,
    /// Every parameter of the best model, fixed ones included.
    pub model_params: Option<ModelParams>,
    pub trials: Vec<Trial>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
    /// The best model, fitted on the training split.
    #[serde(skip)]
    pub best_model: Option<Box<dyn Synthesizer>>,
}

/// Searches the hyperparameters of the requested model on `table`.
pub fn optimize(
    table: &Table,
    metadata: &Metadata,
    request: &OptimizeRequest,
    options: OptimizeOptions,
) -> Result<Optimization> {
    let base = request.base_params()?;
    let space = request.space(&base)?;
    let config = request.config(options.cancel)?;
    let mut objective = ModelObjective::new(
        table,
        metadata,
        base.clone(),
        ObjectiveSettings {
            metric: request.optimization_metric.clone(),
            target: request.target.clone(),
            holdout_fraction: request.holdout_fraction,
            seed: config.random_state,
            device: options.device,
            transformer: options.transformer,
        },
    )?
    .with_epoch_callback(options.on_epoch);
    let mut on_trial = options.on_trial;
    let outcome = search(&space, &config, &mut objective, |t, best| {
        if let Some(cb) = on_trial.as_mut() {
            cb(t, best);
        }
    })?;
    let (best_params, best_score, best_trial, best_model, model_params) = match outcome.best {
        Some(b) => {
            let params = base.with_point(&b.params)?;
            (
                Some(b.params),
                Some(b.score),
                Some(b.number),
                Some(b.model),
                Some(params),
            )
        }
        None => (None, None, None, None, None),
    };
    Ok(Optimization {
        model: base.model_name(),
        method: config.method,
        metric: request.optimization_metric.clone(),
        best_params,
        best_score,
        best_trial,
        model_params,
        trials: outcome.trials,
        stopped: outcome.stopped,
        best_model,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::EpochReport;
    use crate::test_support::table;
    use serde_json::json;

    /// Tiny networks and one or two epochs: plumbing, not quality.
    fn tiny(model: &str, method: Method, n_trials: usize) -> OptimizeRequest {
        let space = match model {
            "ctgan" => json!({"epochs": [1, 2], "learning_rate": [1e-4, 1e-2],
                              "generator_dim": [[16], [32]]}),
            _ => json!({"epochs": [1, 2], "learning_rate": [1e-4, 1e-2],
                        "compress_dims": [[16], [32]]}),
        };
        let params = match model {
            "ctgan" => json!({"batch_size": 50, "pac": 5, "discriminator_dim": [16],
                              "embedding_dim": 8}),
            _ => json!({"batch_size": 50, "decompress_dims": [16], "embedding_dim": 8}),
        };
        OptimizeRequest {
            model: model.into(),
            method,
            n_trials,
            search_space: Some(space),
            random_state: Some(3),
            params: params.as_object().unwrap().clone(),
            ..OptimizeRequest::default()
        }
    }

    fn objective_of(t: &Table, m: &Metadata, request: &OptimizeRequest) -> ModelObjective {
        let base = request.base_params().unwrap();
        ModelObjective::new(t, m, base, ObjectiveSettings::default()).unwrap()
    }

    #[test]
    fn a_model_search_returns_its_best_fitted_model() {
        let (t, m) = table(200);
        for model in ["ctgan", "tvae"] {
            let mut lines = Vec::new();
            let sink = Arc::new(std::sync::Mutex::new(Vec::new()));
            let s = sink.clone();
            let epochs_seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let e = epochs_seen.clone();
            let out = optimize(
                &t,
                &m,
                &tiny(model, Method::Random, 3),
                OptimizeOptions {
                    on_trial: Some(Box::new(move |t, best| {
                        s.lock().unwrap().push((t.number, best))
                    })),
                    on_epoch: Some(Arc::new(move |trial, r: &EpochReport| {
                        e.lock().unwrap().push((trial, r.epoch, r.epochs))
                    })),
                    ..OptimizeOptions::default()
                },
            )
            .unwrap();
            // Every epoch of every trial was reported, in order, with its trial's number.
            let mut expected = Vec::new();
            for trial in &out.trials {
                let epochs = trial.params["epochs"].as_u64().unwrap() as usize;
                expected.extend((1..=epochs).map(|e| (trial.number, e, epochs)));
            }
            assert_eq!(*epochs_seen.lock().unwrap(), expected, "{model}");
            lines.extend(sink.lock().unwrap().iter().copied());
            assert_eq!(lines.len(), 3, "{model}");
            assert_eq!(out.trials.len(), 3);
            assert!(
                out.trials
                    .iter()
                    .all(|t| t.status == TrialStatus::Completed)
            );
            let best = out.best_score.unwrap();
            assert!((0.0..=1.0).contains(&best), "{best}");
            let n = out.best_trial.unwrap();
            assert_eq!(out.trials[n - 1].score, Some(best));
            assert_eq!(out.best_params.as_ref(), Some(&out.trials[n - 1].params));
            // The returned model is the best trial's: same epochs, samples the table's columns.
            let fitted = out.best_model.as_ref().unwrap();
            let epochs = out.best_params.as_ref().unwrap()["epochs"]
                .as_u64()
                .unwrap();
            assert_eq!(fitted.loss_history().len() as u64, epochs);
            assert_eq!(fitted.model_name(), model);
            assert_eq!(out.model_params.as_ref().unwrap().epochs() as u64, epochs);
            let sample = fitted.sample(20, 1).unwrap();
            assert_eq!(sample.columns.len(), 3);
            // The same seed gives the same search.
            let again = optimize(
                &t,
                &m,
                &tiny(model, Method::Random, 3),
                OptimizeOptions::default(),
            )
            .unwrap();
            assert_eq!(
                again
                    .trials
                    .iter()
                    .map(|t| (&t.params, t.score))
                    .collect::<Vec<_>>(),
                out.trials
                    .iter()
                    .map(|t| (&t.params, t.score))
                    .collect::<Vec<_>>()
            );
            let json = serde_json::to_value(&out).unwrap();
            for key in ["method", "metric", "best_params", "best_score", "trials"] {
                assert!(json.get(key).is_some(), "{key}: {json}");
            }
            assert_eq!(json["trials"][0]["status"], "completed");
        }
    }

    #[test]
    fn a_model_search_survives_a_failing_trial() {
        let (t, m) = table(120);
        // An embedding of width 0 cannot be trained: that trial fails, the others run.
        let space = SearchSpace::new(vec![Dimension::choice(
            "embedding_dim",
            vec![json!(0), json!(4), json!(8)],
        )]);
        let request = tiny("tvae", Method::Grid, 3);
        let mut objective = objective_of(&t, &m, &request);
        let config = SearchConfig {
            method: Method::Grid,
            n_trials: 3,
            ..SearchConfig::default()
        };
        let out = search(&space, &config, &mut objective, |_, _| {}).unwrap();
        let status: Vec<_> = out.trials.iter().map(|t| t.status).collect();
        assert_eq!(
            status,
            [
                TrialStatus::Failed,
                TrialStatus::Completed,
                TrialStatus::Completed
            ]
        );
        assert!(
            out.trials[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("embedding_dim")
        );
        assert!(out.best.is_some());
    }

    #[test]
    fn cancelling_between_trials_returns_the_best_so_far() {
        let (t, m) = table(120);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let out = optimize(
            &t,
            &m,
            &tiny("ctgan", Method::Bayesian, 5),
            OptimizeOptions {
                cancel: Some(cancel),
                on_trial: Some(Box::new(move |t, _| {
                    if t.number == 2 {
                        flag.store(true, Ordering::Relaxed);
                    }
                })),
                ..OptimizeOptions::default()
            },
        )
        .unwrap();
        assert_eq!(out.trials.len(), 2);
        assert_eq!(out.stopped, Some(StopReason::Cancelled));
        assert!(out.best_model.is_some() && out.best_score.is_some());
    }

    #[test]
    fn a_stop_inside_a_fit_cancels_the_trial() {
        let (t, m) = table(120);
        let request = tiny("ctgan", Method::Random, 2);
        let mut objective = objective_of(&t, &m, &request);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let mut calls = 0;
        // The objective of the first trial is cancelled before it starts training: the fit
        // stops before training begins and the trial is recorded as cancelled.
        let mut wrapped = FnObjective(|ctx: TrialContext| {
            calls += 1;
            flag.store(true, Ordering::Relaxed);
            objective.evaluate(ctx)
        });
        let space = SearchSpace::new(vec![Dimension::int("epochs", 3, 3)]);
        let config = SearchConfig {
            n_trials: 2,
            cancel: Some(cancel),
            ..SearchConfig::default()
        };
        let out = search(&space, &config, &mut wrapped, |_, _| {}).unwrap();
        assert_eq!(calls, 1);
        assert_eq!(out.trials[0].status, TrialStatus::Cancelled);
        assert!(out.best.is_none());
    }

    #[test]
    fn pruning_stops_a_trial_behind_the_best_at_the_same_epoch() {
        let (t, m) = table(120);
        let mut request = tiny("tvae", Method::Random, 3);
        request.search_space = Some(json!({"epochs": [3, 3], "learning_rate": [1e-4, 1e-2]}));
        // A margin below zero prunes any trial that has a reference to compare with.
        request.pruning = Some(Pruning {
            every: 1,
            margin: -1.0,
            min_step: 1,
        });
        let out = optimize(&t, &m, &request, OptimizeOptions::default()).unwrap();
        let status: Vec<_> = out.trials.iter().map(|t| t.status).collect();
        assert_eq!(
            status,
            [
                TrialStatus::Completed,
                TrialStatus::Pruned,
                TrialStatus::Pruned
            ]
        );
        assert_eq!(out.trials[0].intermediate_scores.len(), 2, "epochs 1 and 2");
        assert_eq!(
            out.trials[1].intermediate_scores.len(),
            1,
            "pruned at epoch 1"
        );
        assert!(out.trials[1].reason.as_deref().unwrap().contains("epoch 1"));
        assert_eq!(out.best_trial, Some(1));
    }

    #[test]
    fn ml_efficacy_scores_predictions_of_the_target_on_the_holdout() {
        let (t, m) = table(200);
        let request = OptimizeRequest {
            optimization_metric: Metric::MlEfficacy.into(),
            target: Some("kind".into()),
            ..tiny("tvae", Method::Random, 1)
        };
        let out = optimize(&t, &m, &request, OptimizeOptions::default()).unwrap();
        assert_eq!(
            out.trials[0].status,
            TrialStatus::Completed,
            "{:?}",
            out.trials[0]
        );
        let f1 = out.best_score.unwrap();
        assert!((0.0..=1.0).contains(&f1), "{f1}");
        assert_eq!(serde_json::to_value(&out).unwrap()["metric"], "ml_efficacy");
    }

    /// What needs the table (the request alone is checked in `synth-models`).
    #[test]
    fn bad_requests_are_clear_errors() {
        let (t, m) = table(50);
        let err = |r: OptimizeRequest| {
            optimize(&t, &m, &r, OptimizeOptions::default())
                .err()
                .unwrap_or_else(|| panic!("{r:?} ran"))
                .to_string()
        };
        let base = || tiny("ctgan", Method::Random, 1);
        assert!(
            err(OptimizeRequest {
                search_space: Some(json!({"generator_dim": [[16], "wide"]})),
                ..base()
            })
            .contains("generator_dim")
        );
        assert!(
            err(OptimizeRequest {
                target: Some("nope".into()),
                ..base()
            })
            .contains("nope")
        );
        let (empty, _) = table(0);
        assert!(
            optimize(&empty, &m, &base(), OptimizeOptions::default())
                .err()
                .unwrap()
                .to_string()
                .contains("rows")
        );
    }
}
