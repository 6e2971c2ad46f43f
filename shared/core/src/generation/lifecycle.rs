//! The trainer's side of a request: take it on ([`TrainerRun::claim`]), hold it (heartbeats,
//! progress and the trials of its search) and finish it (completed, stopped, failed or
//! cancelled). Every write is conditioned
//! on the run's attempt token, so two runs of one request (a message delivered twice, a job
//! retried after a crash) never both work on it or both finish it.
//!
//! A run proves it is alive by a heartbeat at least every [`HEARTBEAT`]; a request whose
//! heartbeat is older than the lease (`TRAINER_LEASE_SECONDS`) was left by a run that died,
//! and the next run takes it over, counting an attempt. After [`MAX_TRAINER_ATTEMPTS`]
//! runs that never finished, the next one marks it failed instead: AWS Batch tries a job
//! three times (template.yaml), so its last try is the one that says so; in `synth serve`
//! a restart runs the job again and the same count ends it.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use super::requests::{notify, release, result_bytes};
use super::{
    GenerationRequest, GenerationResult, Progress, RequestStatus, SearchTrial, request_key,
    trial_key, trials_prefix,
};
use crate::ports::records::{Condition, Index, Item, Query, SortKey, TxOp, Update, query_all};
use crate::service::{ServiceError, ServiceResult};
use crate::stats::{Tally, perf};
use crate::{PortError, RecordStore, Topic};

/// Runs that took a request on and never finished it before it is given up.
pub const MAX_TRAINER_ATTEMPTS: u32 = 2;
/// How often a run tells the store it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Least time between two progress writes (a heartbeat too).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What claiming a request gave.
pub enum Claim {
    /// This run holds the request: do its work.
    Run(Box<TrainerRun>),
    /// Nothing to do, and why (already finished, cancelled, held by a live run, …).
    Skip(String),
}

/// What the store says after a heartbeat or a progress write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Continue,
    /// The owner cancelled it: stop at the next epoch and finish it as cancelled.
    Cancel,
    /// The owner stopped its search: end the search at the next epoch, keep the best trial.
    Stop,
    /// Another run holds it now (or it was finished meanwhile): stop, write nothing more.
    Lost,
}

/// One run of the trainer on one request.
pub struct TrainerRun {
    records: std::sync::Arc<dyn RecordStore>,
    topic: std::sync::Arc<dyn Topic>,
    request: GenerationRequest,
    attempt: String,
    last_progress: Option<Instant>,
}

impl TrainerRun {
    /// Take the request on, waiting at most about one `lease` for a run that may still be
    /// alive to show it.
    pub async fn claim(
        records: std::sync::Arc<dyn RecordStore>,
        topic: std::sync::Arc<dyn Topic>,
        lease: Duration,
        owner: &str,
        id: &str,
    ) -> ServiceResult<Claim> {
        let deadline = Instant::now() + lease + HEARTBEAT;
        loop {
            let Some(item) = records.get(&request_key(owner, id)).await? else {
                return Ok(Claim::Skip("no such request (it was deleted)".into()));
            };
            let r: GenerationRequest = item.to_value()?;
            let previous = item.str("attempt").map(str::to_owned);
            let beat = item.i64("heartbeat_at").unwrap_or(0);
            let stale = Utc::now().timestamp() - beat > lease.as_secs() as i64;
            match r.status {
                s if s.is_final() => {
                    return Ok(Claim::Skip(format!("the request is {}", s.as_str())));
                }
                RequestStatus::Queued => {}
                RequestStatus::Running if stale && r.attempts >= MAX_TRAINER_ATTEMPTS => {
                    give_up(records.as_ref(), topic.as_ref(), &r, previous.as_deref()).await?;
                    return Ok(Claim::Skip(
                        "given up after repeated interrupted runs".into(),
                    ));
                }
                RequestStatus::Running if !stale => {
                    if Instant::now() > deadline {
                        return Ok(Claim::Skip("another trainer run holds the request".into()));
                    }
                    tokio::time::sleep(PROGRESS_EVERY).await;
                    continue;
                }
                RequestStatus::Running => {}
                s => {
                    return Ok(Claim::Skip(format!(
                        "the request is {}, not queued",
                        s.as_str()
                    )));
                }
            }
            let attempt = uuid::Uuid::new_v4().to_string();
            if let Some(run) = take(&records, &topic, r, previous, attempt).await? {
                return Ok(Claim::Run(Box::new(run)));
            }
            // Another run won the race; look again, for a while.
            if Instant::now() > deadline {
                return Ok(Claim::Skip("another trainer run holds the request".into()));
            }
        }
    }

    pub fn request(&self) -> &GenerationRequest {
        &self.request
    }

    /// Tell the administrators this run uses `share` (0..1) of the memory it may use.
    pub async fn alert_memory(&self, share: f64, used_bytes: u64, limit_bytes: u64) {
        let alert = json!({
            "type": "admin.trainer_memory",
            "request_id": self.request.id,
            "owner_id": self.request.owner_id,
            "share": share,
            "used_bytes": used_bytes,
            "limit_bytes": limit_bytes,
            "at": Utc::now().to_rfc3339(),
        });
        publish_alert(self.topic.as_ref(), "admin.trainer_memory", &alert).await;
    }

    /// Tell the store this run is alive.
    pub async fn heartbeat(&self) -> ServiceResult<Beat> {
        self.write(Update::default()).await
    }

    /// Record progress (at most every [`PROGRESS_EVERY`] unless `force`); it is a heartbeat too.
    pub async fn progress(&mut self, p: Progress, force: bool) -> ServiceResult<Beat> {
        if !force
            && self
                .last_progress
                .is_some_and(|t| t.elapsed() < PROGRESS_EVERY)
        {
            return Ok(Beat::Continue);
        }
        self.last_progress = Some(Instant::now());
        let update = Update::default().set_json("progress", &p);
        self.write(update).await
    }

    async fn write(&self, update: Update) -> ServiceResult<Beat> {
        let update = update
            .set("heartbeat_at", Utc::now().timestamp())
            .set("updated_at", Utc::now().to_rfc3339());
        let key = request_key(&self.request.owner_id, &self.request.id);
        match self
            .records
            .update(&key, update, Some(self.holding()))
            .await
        {
            Ok(item) => Ok(beat_of(&item)),
            Err(PortError::ConditionFailed) => Ok(Beat::Lost),
            Err(e) => Err(e.into()),
        }
    }

    /// Record a trial of the search as it ended, while this run still holds the request.
    pub async fn record_trial(&self, trial: &SearchTrial) -> ServiceResult<Beat> {
        let r = &self.request;
        let key = trial_key(&r.owner_id, &r.id, trial.number);
        let item = Item::from_value(&key, trial)?
            .with("request_id", r.id.as_str())
            .with("owner_id", r.owner_id.as_str());
        let ops = vec![
            TxOp::Put {
                item,
                condition: None,
            },
            TxOp::Check {
                key: request_key(&r.owner_id, &r.id),
                condition: self.holding(),
            },
        ];
        match self.records.transact(ops).await {
            Ok(()) => Ok(Beat::Continue),
            Err(PortError::TransactionCanceled { .. }) => Ok(Beat::Lost),
            Err(e) => Err(e.into()),
        }
    }

    /// The condition that this run still holds the request.
    fn holding(&self) -> Condition {
        Condition::And(vec![
            Condition::eq("status", RequestStatus::Running.as_str()),
            Condition::eq("attempt", self.attempt.as_str()),
        ])
    }

    /// Finish as stopped (its owner stopped the search) with the best trial's result.
    pub async fn stopped(self, result: GenerationResult) -> ServiceResult<()> {
        self.finish_with(RequestStatus::Stopped, result).await
    }

    /// Finish as completed with its result, and say so on the topic.
    pub async fn complete(self, result: GenerationResult) -> ServiceResult<()> {
        self.finish_with(RequestStatus::Completed, result).await
    }

    async fn finish_with(self, to: RequestStatus, result: GenerationResult) -> ServiceResult<()> {
        let quality = result.quality_score;
        let rows = result.rows;
        let r = &self.request;
        let bytes = result_bytes(&GenerationRequest {
            result: Some(result.clone()),
            ..r.clone()
        });
        let mut tally = Tally::of(&r.owner_id)
            .generated(rows, quality)
            .storage(bytes);
        if let Some(t) = &result.training {
            let ms = (t.seconds * 1000.0).round() as i64;
            tally = tally.fitted(&r.model_type, t.epochs, ms);
        }
        let update = Update::default()
            .set_json("result", &result)
            .set("finished_at", Utc::now().to_rfc3339())
            .remove("progress");
        let (records, model) = (self.records.clone(), r.model_type.clone());
        self.finish(
            to,
            update,
            json!({ "quality_score": quality, "rows": rows }),
            tally,
        )
        .await?;
        if let Some(t) = &result.training {
            let row_epochs = t.rows.saturating_mul(t.epochs);
            perf::record_training(records.as_ref(), &model, &t.device, row_epochs, t.seconds).await;
        }
        Ok(())
    }

    /// Finish as failed, with a reason the owner can act on.
    pub async fn fail(self, reason: &str) -> ServiceResult<()> {
        let update = Update::default()
            .set("error", reason)
            .set("finished_at", Utc::now().to_rfc3339());
        let tally = Tally::of(&self.request.owner_id);
        self.finish(
            RequestStatus::Failed,
            update,
            json!({ "error": reason }),
            tally,
        )
        .await
    }

    /// Give the request back unfinished, because this process is shutting down: it stays
    /// running, with a heartbeat so old that the next run takes it over at once instead of
    /// waiting out the lease, and this run not counted among its attempts (it did not die;
    /// its work is redone). A no-op when the run no longer holds it.
    pub async fn hand_back(self) -> ServiceResult<()> {
        let update = Update::default()
            .set("heartbeat_at", 0i64)
            .set("updated_at", Utc::now().to_rfc3339())
            .add("attempts", -1);
        let key = request_key(&self.request.owner_id, &self.request.id);
        match self
            .records
            .update(&key, update, Some(self.holding()))
            .await
        {
            Ok(_) | Err(PortError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Finish as cancelled (the owner asked; this run stopped between epochs).
    pub async fn cancelled(self) -> ServiceResult<()> {
        let update = Update::default().set("finished_at", Utc::now().to_rfc3339());
        let tally = Tally::of(&self.request.owner_id);
        self.finish(RequestStatus::Cancelled, update, json!({}), tally)
            .await
    }

    async fn finish(
        self,
        to: RequestStatus,
        update: Update,
        notice: serde_json::Value,
        tally: Tally,
    ) -> ServiceResult<()> {
        let r = &self.request;
        release(
            self.records.as_ref(),
            r,
            (RequestStatus::Running, to),
            Some(update),
            Some(&self.attempt),
            tally,
        )
        .await?;
        let done = GenerationRequest {
            status: to,
            ..r.clone()
        };
        notify(self.topic.as_ref(), to.as_str(), &done, notice).await;
        tracing::info!(request_id = %r.id, status = to.as_str(), "generation request finished");
        Ok(())
    }
}

/// The trials an interrupted run recorded: the run taking the request over searches again
/// from the first trial, so they would stand beside its own.
async fn forget_trials(records: &dyn RecordStore, r: &GenerationRequest) -> ServiceResult<()> {
    let q = Query::partition(Index::Primary, format!("USER#{}", r.owner_id))
        .sk(SortKey::BeginsWith(trials_prefix(&r.id)));
    for trial in query_all(records, &q).await? {
        records.delete(&trial.key(), None).await?;
    }
    Ok(())
}

/// What the request as written asks of the run: a cancel wins over a stop.
fn beat_of(item: &Item) -> Beat {
    if item.get("cancel_requested") == Some(&json!(true)) {
        Beat::Cancel
    } else if item.get("stop_requested") == Some(&json!(true)) {
        Beat::Stop
    } else {
        Beat::Continue
    }
}

/// Claim `r` for a new attempt (from queued, or over a dead run's `previous` attempt).
async fn take(
    records: &std::sync::Arc<dyn RecordStore>,
    topic: &std::sync::Arc<dyn Topic>,
    r: GenerationRequest,
    previous: Option<String>,
    attempt: String,
) -> ServiceResult<Option<TrainerRun>> {
    let now = Utc::now();
    let mut update = Update::default()
        .set("status", RequestStatus::Running.as_str())
        .set("gsi1pk", super::status_partition(RequestStatus::Running))
        .set("attempt", attempt.as_str())
        .set("heartbeat_at", now.timestamp())
        .set("updated_at", now.to_rfc3339())
        .add("attempts", 1);
    if r.started_at.is_none() {
        update = update.set("started_at", now.to_rfc3339());
    }
    let cond = match (r.status, &previous) {
        (RequestStatus::Running, Some(p)) => Condition::And(vec![
            Condition::eq("status", RequestStatus::Running.as_str()),
            Condition::eq("attempt", p.as_str()),
        ]),
        _ => Condition::eq("status", RequestStatus::Queued.as_str()),
    };
    let key = request_key(&r.owner_id, &r.id);
    let claim = vec![TxOp::Update {
        key: key.clone(),
        update,
        condition: Some(cond),
    }];
    let tally = Tally::of(&r.owner_id).request(Some(r.status), Some(RequestStatus::Running));
    match tally.commit(records.as_ref(), claim).await {
        Ok(()) => {
            let Some(item) = records.get(&key).await? else {
                return Ok(None);
            };
            let request: GenerationRequest = item.to_value()?;
            // Best effort: the request is this run's now, whatever a store says.
            if r.status == RequestStatus::Running
                && let Err(e) = forget_trials(records.as_ref(), &request).await
            {
                tracing::warn!(request_id = %request.id, error = %e, "the interrupted run's trials stay listed");
            }
            tracing::info!(request_id = %request.id, attempt = request.attempts, "trainer run took the request");
            Ok(Some(TrainerRun {
                records: records.clone(),
                topic: topic.clone(),
                request,
                attempt,
                last_progress: None,
            }))
        }
        Err(PortError::TransactionCanceled { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Mark a request failed whose runs kept dying before they finished.
async fn give_up(
    records: &dyn RecordStore,
    topic: &dyn Topic,
    r: &GenerationRequest,
    previous: Option<&str>,
) -> ServiceResult<()> {
    let reason = format!(
        "the trainer stopped {} times before finishing (the process was killed or ran out of \
         memory or time); try fewer rows, epochs or a smaller model",
        r.attempts
    );
    let update = Update::default()
        .set("error", reason.as_str())
        .set("finished_at", Utc::now().to_rfc3339());
    match release(
        records,
        r,
        (RequestStatus::Running, RequestStatus::Failed),
        Some(update),
        previous,
        Tally::of(&r.owner_id),
    )
    .await
    {
        Ok(()) => {}
        Err(ServiceError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e),
    }
    let failed = GenerationRequest {
        status: RequestStatus::Failed,
        ..r.clone()
    };
    notify(topic, "failed", &failed, json!({ "error": reason })).await;
    tracing::warn!(request_id = %r.id, attempts = r.attempts, "generation request given up");
    let alert = json!({
        "type": "admin.request_failing",
        "request_id": r.id,
        "owner_id": r.owner_id,
        "attempts": r.attempts + 1,
        "error": reason,
        "at": Utc::now().to_rfc3339(),
    });
    publish_alert(topic, "admin.request_failing", &alert).await;
    Ok(())
}

/// Tell the administrators (best effort: what it is about is stored already).
async fn publish_alert(topic: &dyn Topic, kind: &str, message: &serde_json::Value) {
    if let Err(e) = topic.publish(kind, &message.to_string()).await {
        tracing::error!(error = %e, kind, "could not publish an admin alert");
    }
}
