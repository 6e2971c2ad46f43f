//! Hyperparameter searches as platform jobs (`/optimization`): start one, read its trials
//! while it runs, stop it (the best trial so far is kept and sampled), and read the best
//! parameters with a ready-made generation config.
//!
//! A search is a request of kind [`RequestKind::Optimization`]: it is created, approved,
//! queued, claimed, cancelled and listed exactly as a generation is, and the same trainer
//! runs it. Its trials are records of their own in the owner's partition, written by the
//! trainer as each trial ends, so they are read while the search runs without touching
//! the request. A generation request with an `optimization_config` has trials too, read
//! the same way.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::requests::{GenerationInput, ResultLinks};
use super::{
    GenerationRequest, Generations, Progress, RequestKind, RequestStatus, SearchTrial, TrialState,
    request_key, trials_prefix,
};
use crate::ports::Paged;
use crate::ports::records::{Condition, Index, Query, SortKey, Update, query_all};
use crate::service::{ServiceError, ServiceResult};
use crate::{PortError, RecordStore};

/// A search as the seed platform's `POST /optimization/start` asks for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchInput {
    pub dataset_id: String,
    pub model_type: String,
    /// Values of the model's parameters that are not searched; defaults for the rest.
    pub parameters: Map<String, Value>,
    /// `grid`, `random` or `bayesian` (the default).
    pub method: Option<String>,
    pub n_trials: Option<u64>,
    /// `quality_score` (the default), `column_shapes`, `column_pair_trends`, `ml_efficacy`,
    /// or a weighted mix of them with a privacy floor (`{"weights", "privacy_floor"}`).
    pub metric: Option<Value>,
    /// The column `ml_efficacy` predicts.
    pub target: Option<String>,
    /// `{name: [low, high] | [choice, …]}`; the model's default space when absent.
    pub search_space: Option<Value>,
    /// `EI`, `PI` or `UCB`.
    pub acquisition_function: Option<String>,
    pub random_state: Option<u64>,
    pub timeout_seconds: Option<f64>,
    /// Stop trials far behind the best ones early: `true` for the default rule, or the rule
    /// itself (`{"every", "margin", "min_step"}`).
    pub prune: Option<Value>,
    /// The rows sampled from the best model, and their format.
    pub sample_size: Option<u64>,
    pub output_format: Option<String>,
}

impl SearchInput {
    /// The request this search is: a generation input of kind optimisation, its search in
    /// `optimization` with the engine's names.
    pub fn into_generation(self) -> GenerationInput {
        let mut config = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                config.insert(k.into(), v);
            }
        };
        put("method", self.method.map(Value::String));
        put("n_trials", self.n_trials.map(Value::from));
        put("optimization_metric", self.metric);
        put("target", self.target.map(Value::String));
        put("search_space", self.search_space);
        put(
            "acquisition_function",
            self.acquisition_function.map(Value::String),
        );
        put("random_state", self.random_state.map(Value::from));
        put("timeout", self.timeout_seconds.map(Value::from));
        put(
            "pruning",
            match self.prune {
                Some(Value::Bool(true)) => Some(json!({})),
                Some(Value::Bool(false)) | Some(Value::Null) | None => None,
                other => other,
            },
        );
        GenerationInput {
            kind: RequestKind::Optimization,
            dataset_id: self.dataset_id,
            model_type: self.model_type,
            parameters: self.parameters,
            sample_size: self.sample_size,
            output_format: self.output_format,
            include_metadata: true,
            seed: self.random_state,
            optimization: Some(Value::Object(config)),
            ..GenerationInput::default()
        }
    }
}

/// The best completed trial so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BestTrial {
    pub number: u64,
    pub score: f64,
    /// The searched parameters of that trial.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Value,
    /// Every parameter of the model with those: what a generation with it would train.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub model_parameters: Value,
}

/// A search's trials so far, with where the search is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchTrials {
    pub request_id: String,
    pub status: RequestStatus,
    /// The search's phase, percent and ETA while it runs.
    pub progress: Option<Progress>,
    pub n_trials: u64,
    /// The trial running now (1-based), while the search runs.
    pub current_trial: Option<u64>,
    /// Every trial that ended, in order.
    pub trials: Vec<SearchTrial>,
    pub best: Option<BestTrial>,
}

/// What a search found, and what to do with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchBest {
    pub request_id: String,
    pub status: RequestStatus,
    pub best: Option<BestTrial>,
    /// A body for `POST /generation/start` that trains the best parameters on the whole
    /// dataset, as it is.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub generation_config: Option<Value>,
    /// Once the search is completed or stopped: the best model's sample, its report and
    /// metadata.
    pub result: Option<ResultLinks>,
}

fn no_search(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("request {id} runs no hyperparameter search"))
}

/// The trial records of request `id`, in order.
fn trials_query(owner: &str, id: &str) -> Query {
    Query::partition(Index::Primary, format!("USER#{owner}"))
        .sk(SortKey::BeginsWith(trials_prefix(id)))
        .limit(100)
}

/// Every trial record of request `id`, in order.
async fn read_trials(
    records: &dyn RecordStore,
    owner: &str,
    id: &str,
) -> ServiceResult<Vec<SearchTrial>> {
    let items = query_all(records, &trials_query(owner, id)).await?;
    Ok(items
        .iter()
        .map(|i| i.to_value())
        .collect::<Result<_, _>>()?)
}

/// Delete a request's trial records (with the request, or with its owner's account).
pub(crate) async fn delete_trials(
    records: &dyn RecordStore,
    owner: &str,
    id: &str,
) -> ServiceResult<()> {
    for item in query_all(records, &trials_query(owner, id)).await? {
        records.delete(&item.key(), None).await?;
    }
    Ok(())
}

/// The best completed trial of `trials` (the earliest of equals), with every parameter.
fn best_of(r: &GenerationRequest, trials: &[SearchTrial]) -> Option<BestTrial> {
    let best = trials
        .iter()
        .filter(|t| t.status == TrialState::Completed)
        .filter_map(|t| t.score.map(|s| (t, s)))
        .fold(None::<(&SearchTrial, f64)>, |acc, (t, s)| match acc {
            Some((_, b)) if b >= s => acc,
            _ => Some((t, s)),
        })?;
    let (t, score) = best;
    let mut all = r.parameter_map();
    if let Value::Object(searched) = &t.params {
        all.extend(searched.clone());
    }
    Some(BestTrial {
        number: t.number,
        score,
        params: t.params.clone(),
        model_parameters: Value::Object(all),
    })
}

/// `POST /generation/start`'s body for the best parameters.
fn generation_config(r: &GenerationRequest, best: &BestTrial) -> Value {
    let mut model = Map::new();
    model.insert("model_type".into(), Value::String(r.model_type.clone()));
    if let Value::Object(all) = &best.model_parameters {
        model.extend(all.clone());
    }
    json!({
        "dataset_id": r.dataset_id,
        "sample_size": r.sample_size,
        "output_format": r.output_format,
        "include_metadata": true,
        "seed": r.seed,
        "model_config": model,
    })
}

impl Generations {
    /// Store a search and queue it (or send it to the administrators first).
    pub async fn start_search(
        &self,
        owner: &str,
        input: SearchInput,
    ) -> ServiceResult<GenerationRequest> {
        self.create(owner, &input.into_generation(), true).await
    }

    /// The caller's request that runs a search (a search, or a generation with one), and
    /// its trials so far.
    async fn searching(
        &self,
        owner: &str,
        id: &str,
    ) -> ServiceResult<(GenerationRequest, Vec<SearchTrial>)> {
        let r = self.get(owner, id).await?;
        if r.optimization.is_none() {
            return Err(no_search(id));
        }
        let trials = read_trials(self.records(), owner, id).await?;
        Ok((r, trials))
    }

    /// A search's trials so far, the best of them and where the search is.
    pub async fn trials(&self, owner: &str, id: &str) -> ServiceResult<SearchTrials> {
        let (r, trials) = self.searching(owner, id).await?;
        let n_trials = r
            .optimization
            .as_ref()
            .and_then(|o| o.get("n_trials"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let current_trial = r
            .progress
            .as_ref()
            .filter(|_| r.status == RequestStatus::Running)
            .filter(|p| p.phase == "preparing" || p.phase == "optimizing")
            .map(|_| trials.len() as u64 + 1)
            .filter(|&n| n <= n_trials);
        Ok(SearchTrials {
            request_id: r.id.clone(),
            status: r.status,
            best: best_of(&r, &trials),
            progress: r.progress.clone(),
            n_trials,
            current_trial,
            trials,
        })
    }

    /// The best parameters so far; once the search has a result, links to it.
    pub async fn best(&self, owner: &str, id: &str) -> ServiceResult<SearchBest> {
        let (r, trials) = self.searching(owner, id).await?;
        let best = best_of(&r, &trials);
        let result = match r.status.has_result() {
            true => Some(self.links(&r).await?),
            false => None,
        };
        Ok(SearchBest {
            request_id: r.id.clone(),
            status: r.status,
            generation_config: best.as_ref().map(|b| generation_config(&r, b)),
            best,
            result,
        })
    }

    /// Stop a search: a running one ends after the current epoch of its trial, keeping the
    /// best trial so far (`stopped`); one that has not started yet is cancelled.
    pub async fn stop(&self, owner: &str, id: &str) -> ServiceResult<GenerationRequest> {
        let r = self.get(owner, id).await?;
        if r.kind != RequestKind::Optimization {
            return Err(ServiceError::Conflict(
                "a generation request is cancelled (DELETE /generation/requests/{id}), not \
                 stopped"
                    .into(),
            ));
        }
        match r.status {
            RequestStatus::Running => {
                let update = Update::default()
                    .set("stop_requested", true)
                    .set("updated_at", chrono::Utc::now().to_rfc3339());
                let cond = Condition::eq("status", RequestStatus::Running.as_str());
                let key = request_key(owner, id);
                match self.records().update(&key, update, Some(cond)).await {
                    Ok(item) => Ok(item.to_value()?),
                    Err(PortError::ConditionFailed) => Err(ServiceError::Conflict(
                        "the search finished meanwhile; read it again".into(),
                    )),
                    Err(e) => Err(e.into()),
                }
            }
            s if s.is_final() => Err(ServiceError::Conflict(format!(
                "the search is {}; there is nothing to stop",
                s.as_str()
            ))),
            _ => Ok(self
                .cancel_or_delete(owner, id)
                .await?
                .expect("a request that is not final is cancelled, not deleted")),
        }
    }

    /// The caller's searches, newest first. A page may hold fewer than `limit` (after a long
    /// run of generations): follow `next_cursor` until there is none.
    pub async fn list_searches(
        &self,
        owner: &str,
        status: Option<RequestStatus>,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<Paged<GenerationRequest>> {
        let keep = move |r: &GenerationRequest| {
            r.kind == RequestKind::Optimization && status.is_none_or(|s| s == r.status)
        };
        self.list_where(owner, limit, cursor, Some(&keep)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn trial(number: u64, status: TrialState, score: Option<f64>) -> SearchTrial {
        SearchTrial {
            number,
            params: json!({ "epochs": number * 10 }),
            status,
            score,
            reason: None,
            fit_seconds: 1.0,
            finished_at: Utc::now(),
        }
    }

    #[test]
    fn the_seed_body_becomes_the_engines_search() {
        let input = SearchInput {
            dataset_id: "d".into(),
            model_type: "ctgan".into(),
            method: Some("bayesian".into()),
            n_trials: Some(4),
            metric: Some(json!("column_shapes")),
            timeout_seconds: Some(60.0),
            prune: Some(Value::Bool(true)),
            random_state: Some(3),
            ..SearchInput::default()
        }
        .into_generation();
        assert_eq!(input.kind, RequestKind::Optimization);
        assert_eq!(input.seed, Some(3));
        assert_eq!(
            input.optimization,
            Some(json!({"method": "bayesian", "n_trials": 4,
                "optimization_metric": "column_shapes", "random_state": 3, "timeout": 60.0,
                "pruning": {}}))
        );
        let unpruned = SearchInput {
            prune: Some(Value::Bool(false)),
            ..SearchInput::default()
        };
        let config = unpruned.into_generation().optimization.unwrap();
        assert!(config.get("pruning").is_none(), "{config}");
    }

    #[test]
    fn the_best_trial_is_the_highest_completed_score_with_every_parameter() {
        let r: GenerationRequest = serde_json::from_value(json!({
            "id": "r", "owner_id": "o", "dataset_id": "d", "dataset_name": "d.csv",
            "model_type": "ctgan", "parameters": {"epochs": 300, "batch_size": 500},
            "sample_size": 10, "output_format": "csv", "include_metadata": true,
            "conditions": {}, "seed": null, "optimization": {"n_trials": 4},
            "status": "running", "error": null, "progress": null, "result": null,
            "decision": null, "created_at": Utc::now(), "updated_at": Utc::now(),
            "started_at": null, "finished_at": null,
        }))
        .unwrap();
        let trials = [
            trial(1, TrialState::Completed, Some(0.7)),
            trial(2, TrialState::Failed, None),
            trial(3, TrialState::Completed, Some(0.8)),
            trial(4, TrialState::Pruned, Some(0.9)),
            trial(5, TrialState::Completed, Some(0.8)),
        ];
        let best = best_of(&r, &trials).unwrap();
        assert_eq!((best.number, best.score), (3, 0.8));
        assert_eq!(
            best.model_parameters,
            json!({"epochs": 30, "batch_size": 500})
        );
        let config = generation_config(&r, &best);
        assert_eq!(config["model_config"]["model_type"], "ctgan");
        assert_eq!(config["model_config"]["epochs"], 30);
        assert_eq!(config["dataset_id"], "d");
        assert!(best_of(&r, &trials[1..2]).is_none());
    }
}
