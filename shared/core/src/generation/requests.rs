//! The users' and administrators' side of generation requests: create, start, read, list,
//! cancel or delete, download, approve and reject. The trainer's side is `lifecycle`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use synth_table::Profile;

use super::validate::{self, Checked};
use super::{
    ALL_PARTITION, Decision, GenerationRequest, RequestKind, RequestStatus, Validation, active_key,
    models, request_key, result_prefix, status_partition,
};
use crate::accounts::{Principal, admin::audit_item};
use crate::datasets::{Dataset, DatasetStatus, Datasets, dataset_key};
use crate::dispatch::JobRequest;
use crate::ports::Paged;
use crate::ports::jobs::JobSpec;
use crate::ports::objects::PresignedRequest;
use crate::ports::records::{Cmp, Condition, Index, Item, Query, SortKey, TxOp, Update};
use crate::service::{RequestContext, ServiceError, ServiceResult, check_id, read_by_id};
use crate::stats::Tally;
use crate::{ObjectStore, PortError, Queue, RecordStore, Settings, Topic};

/// How long a download link stays valid.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(3600);

/// A request as a user asks for it, whichever route it came by.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerationInput {
    /// A generation (the default) or a hyperparameter search (`/optimization`).
    pub kind: RequestKind,
    pub dataset_id: String,
    pub model_type: String,
    /// The model's parameters; those left out take their defaults.
    pub parameters: Map<String, Value>,
    /// `DEFAULT_SAMPLE_SIZE` when absent.
    pub sample_size: Option<u64>,
    /// csv (the default), json, parquet or xlsx.
    pub output_format: Option<String>,
    pub include_metadata: bool,
    pub conditions: BTreeMap<String, Value>,
    pub seed: Option<u64>,
    pub optimization: Option<Value>,
    /// Top-level fields of the body that no field of its route is: each is refused by
    /// name, since ignoring a misspelt `sample_size` would quietly give the default.
    pub unknown_fields: Vec<String>,
}

/// Where to download a completed request's files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultLinks {
    /// The synthetic table, in the requested format.
    pub data: PresignedRequest,
    /// With `include_metadata`: the quality report (JSON and self-contained HTML) and the
    /// SDV metadata.
    pub report_json: Option<PresignedRequest>,
    pub report_html: Option<PresignedRequest>,
    pub metadata: Option<PresignedRequest>,
}

/// The generation requests service.
#[derive(Clone)]
pub struct Generations {
    records: Arc<dyn RecordStore>,
    objects: Arc<dyn ObjectStore>,
    queue: Arc<dyn Queue>,
    topic: Arc<dyn Topic>,
    datasets: Datasets,
    settings: Arc<Settings>,
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("no such generation request".into())
}

/// The message and details of a refused request: the first error, and all of them.
fn refused(v: &Validation) -> ServiceError {
    let first = v
        .errors
        .first()
        .cloned()
        .unwrap_or_else(|| validate::Problem::new("request", "the request is not valid"));
    ServiceError::Validation(
        format!("{}: {}", first.field, first.message),
        json!({ "field": first.field, "errors": v.errors, "warnings": v.warnings }),
    )
}

/// The job that runs a request: the trainer's command line (AWS Batch's container command
/// override; the embedded worker reads the same arguments).
pub fn trainer_job(owner: &str, id: &str) -> JobSpec {
    JobSpec {
        name: format!("generation-{id}"),
        args: vec![
            "trainer".into(),
            "--owner".into(),
            owner.into(),
            "--request".into(),
            id.into(),
        ],
        env: Vec::new(),
    }
}

impl Generations {
    pub fn new(backends: &crate::Backends, datasets: Datasets, settings: Arc<Settings>) -> Self {
        Self {
            records: backends.records.clone(),
            objects: backends.objects.clone(),
            queue: backends.queue.clone(),
            topic: backends.topic.clone(),
            datasets,
            settings,
        }
    }

    pub(crate) fn records(&self) -> &dyn RecordStore {
        self.records.as_ref()
    }

    /// The models and their parameters (defaults, bounds, descriptions) as requests here
    /// take them.
    pub fn models(&self) -> Value {
        models::describe(&self.settings)
    }

    async fn dataset_and_profile(
        &self,
        owner: &str,
        dataset_id: &str,
    ) -> ServiceResult<(Dataset, Option<Profile>)> {
        let dataset = self.datasets.get(owner, dataset_id).await?;
        let profile = self.datasets.profile(&dataset).await?;
        Ok((dataset, profile))
    }

    /// Check a request against its dataset without starting anything.
    pub async fn validate(
        &self,
        owner: &str,
        input: &GenerationInput,
    ) -> ServiceResult<Validation> {
        let (dataset, profile) = self.dataset_and_profile(owner, &input.dataset_id).await?;
        let (v, _) = validate::check(&self.settings, &dataset, profile.as_ref(), input);
        Ok(v)
    }

    /// Store a new request (`pending`), and start it when `start` is set.
    pub async fn create(
        &self,
        owner: &str,
        input: &GenerationInput,
        start: bool,
    ) -> ServiceResult<GenerationRequest> {
        let (dataset, profile) = self.dataset_and_profile(owner, &input.dataset_id).await?;
        let (v, checked) = validate::check(&self.settings, &dataset, profile.as_ref(), input);
        let Some(checked) = checked else {
            return Err(refused(&v));
        };
        // A start the owner's limit refuses stores nothing.
        if start && !self.settings.require_approval {
            self.check_room(owner).await?;
        }
        let r = new_request(owner, &dataset, input, checked);
        let put = vec![TxOp::Put {
            item: item(&r)?,
            condition: Some(Condition::NotExists),
        }];
        Tally::of(owner)
            .request_created()
            .commit(self.records.as_ref(), put)
            .await?;
        tracing::info!(request_id = %r.id, dataset_id = %r.dataset_id, model = %r.model_type, "generation request created");
        if !start {
            return Ok(r);
        }
        match self.start_request(r.clone()).await {
            // Another start took the last slot meanwhile: this one ends, saying why.
            Err(limit @ ServiceError::RateLimited { .. }) => {
                let update = Update::default()
                    .set(
                        "error",
                        "not started: MAX_CONCURRENT_GENERATIONS were running",
                    )
                    .set("finished_at", Utc::now().to_rfc3339());
                self.move_to(&r, RequestStatus::Cancelled, update).await?;
                Err(limit)
            }
            started => started,
        }
    }

    /// Refuse a start when the owner already has MAX_CONCURRENT_GENERATIONS requests queued
    /// or running (enqueueing holds the limit in its transaction; this refuses before
    /// anything is stored).
    async fn check_room(&self, owner: &str) -> ServiceResult<()> {
        let max = self.settings.max_concurrent_generations as i64;
        let active = self.records.get(&active_key(owner)).await?;
        match active.and_then(|a| a.i64("count")) {
            Some(n) if n >= max => Err(limit_reached(max)),
            _ => Ok(()),
        }
    }

    /// Change a pending request's hyperparameter search (`None`: none) before it starts.
    pub async fn set_optimization(
        &self,
        owner: &str,
        id: &str,
        optimization: Option<Value>,
    ) -> ServiceResult<GenerationRequest> {
        let r = self.get(owner, id).await?;
        if r.status != RequestStatus::Pending {
            return Err(ServiceError::Conflict(format!(
                "the request is {}; only a pending request's search can change",
                r.status.as_str()
            )));
        }
        let checked = match optimization {
            Some(config) => {
                let parameters = r.parameters.as_object().cloned().unwrap_or_default();
                let model = models::check(&r.model_type, &parameters).map_err(|p| {
                    refused(&Validation {
                        errors: vec![p],
                        ..Validation::default()
                    })
                })?;
                let input = GenerationInput {
                    model_type: r.model_type.clone(),
                    optimization: Some(config),
                    ..GenerationInput::default()
                };
                let mut v = Validation::default();
                let checked = validate::check_optimization(&self.settings, &model, &input, &mut v);
                if !v.errors.is_empty() {
                    return Err(refused(&v));
                }
                checked
            }
            None => None,
        };
        let update = Update::default()
            .set("optimization", checked.unwrap_or(Value::Null))
            .set("updated_at", Utc::now().to_rfc3339());
        let cond = Condition::eq("status", RequestStatus::Pending.as_str());
        match self
            .records
            .update(&request_key(owner, id), update, Some(cond))
            .await
        {
            Ok(item) => Ok(item.to_value()?),
            Err(PortError::ConditionFailed) => Err(changed()),
            Err(e) => Err(e.into()),
        }
    }

    /// Start a pending (or approved) request: to the administrators first when
    /// `REQUIRE_APPROVAL` is set, otherwise onto the queue.
    pub async fn start(&self, owner: &str, id: &str) -> ServiceResult<GenerationRequest> {
        let r = self.get(owner, id).await?;
        self.start_request(r).await
    }

    async fn start_request(&self, r: GenerationRequest) -> ServiceResult<GenerationRequest> {
        match r.status {
            RequestStatus::Pending if self.settings.require_approval => {
                let update = Update::default().set("updated_at", Utc::now().to_rfc3339());
                self.move_to(&r, RequestStatus::AwaitingApproval, update)
                    .await
            }
            RequestStatus::Pending | RequestStatus::Approved => self.enqueue(&r).await,
            RequestStatus::AwaitingApproval => Err(ServiceError::Conflict(
                "the request is waiting for an administrator's approval".into(),
            )),
            other => Err(ServiceError::Conflict(format!(
                "the request is {}; only a pending or approved request can start",
                other.as_str()
            ))),
        }
    }

    /// Move a request onto the queue: its status, the owner's count of active requests and
    /// the dataset's count of generations change in one transaction, then the job is sent.
    async fn enqueue(&self, r: &GenerationRequest) -> ServiceResult<GenerationRequest> {
        let max = self.settings.max_concurrent_generations as i64;
        let now = Utc::now().to_rfc3339();
        let ops = vec![
            TxOp::Update {
                key: request_key(&r.owner_id, &r.id),
                update: Update::default()
                    .set("status", RequestStatus::Queued.as_str())
                    .set("gsi1pk", status_partition(RequestStatus::Queued))
                    .set("updated_at", now.as_str()),
                condition: Some(Condition::eq("status", r.status.as_str())),
            },
            TxOp::Update {
                key: active_key(&r.owner_id),
                update: Update::default().add("count", 1),
                condition: Some(Condition::Or(vec![
                    Condition::AttrNotExists("count".into()),
                    Condition::cmp("count", Cmp::Lt, max),
                ])),
            },
            TxOp::Update {
                key: dataset_key(&r.owner_id, &r.dataset_id),
                update: Update::default().add("active_generations", 1),
                condition: Some(Condition::eq("status", DatasetStatus::Ready.as_str())),
            },
        ];
        let tally = Tally::of(&r.owner_id).request(Some(r.status), Some(RequestStatus::Queued));
        match tally.commit(self.records.as_ref(), ops).await {
            Ok(()) => {}
            Err(PortError::TransactionCanceled { failed }) if failed.contains(&1) => {
                return Err(limit_reached(max));
            }
            Err(PortError::TransactionCanceled { failed }) if failed.contains(&2) => {
                return Err(ServiceError::Conflict(
                    "the dataset is no longer ready".into(),
                ));
            }
            Err(PortError::TransactionCanceled { .. }) => return Err(changed()),
            Err(e) => return Err(e.into()),
        }
        let message = JobRequest {
            request_id: r.id.clone(),
            job: trainer_job(&r.owner_id, &r.id),
        };
        let body = serde_json::to_string(&message).expect("a job request serialises");
        if let Err(e) = self.queue.send(&body, &r.id).await {
            // Nothing half-done: the request goes back to where it was.
            self.release(r, RequestStatus::Queued, r.status, None)
                .await?;
            return Err(e.into());
        }
        tracing::info!(request_id = %r.id, "generation request queued");
        self.get(&r.owner_id, &r.id).await
    }

    /// Leave the queued/running state (`from`) for `to` in one transaction with the counts
    /// that state held; `extra` sets more attributes on the request.
    pub(crate) async fn release(
        &self,
        r: &GenerationRequest,
        from: RequestStatus,
        to: RequestStatus,
        extra: Option<Update>,
    ) -> ServiceResult<()> {
        release(
            self.records.as_ref(),
            r,
            (from, to),
            extra,
            None,
            Tally::of(&r.owner_id),
        )
        .await
    }

    /// One of the caller's requests; another user's is simply not found.
    pub async fn get(&self, owner: &str, id: &str) -> ServiceResult<GenerationRequest> {
        let key_of = |id: &str| request_key(owner, id);
        read_by_id(self.records.as_ref(), id, key_of, not_found).await
    }

    /// The caller's requests, newest first, optionally in one status. With a status, a page
    /// may hold fewer than `limit` requests: follow `next_cursor` until there is none.
    pub async fn list(
        &self,
        owner: &str,
        status: Option<RequestStatus>,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<Paged<GenerationRequest>> {
        match status {
            None => self.list_where(owner, limit, cursor, None).await,
            Some(s) => {
                let keep = move |r: &GenerationRequest| r.status == s;
                self.list_where(owner, limit, cursor, Some(&keep)).await
            }
        }
    }

    /// The owner's requests newest first, only those `keep` keeps when given: reads on until
    /// the page holds `limit` of them or the list ends, each read at most the rows still
    /// wanted (so every match of it fits, and the cursor holds). A long run of others ends a
    /// page short, with a cursor to read on from.
    pub(crate) async fn list_where(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<String>,
        keep: Option<&(dyn Fn(&GenerationRequest) -> bool + Sync)>,
    ) -> ServiceResult<Paged<GenerationRequest>> {
        let q = Query::partition(Index::Primary, format!("USER#{owner}"))
            .sk(SortKey::BeginsWith("GENREQ#".into()))
            .backward();
        let Some(keep) = keep else {
            return Ok(self
                .records
                .query(&q.limit(limit).after(cursor))
                .await?
                .decode()?);
        };
        let mut page = Paged {
            items: Vec::new(),
            next_cursor: cursor,
        };
        for _ in 0..MAX_FILTERED_READS {
            let wanted = limit - page.items.len();
            let q = q.clone().limit(wanted).after(page.next_cursor.take());
            let read: Paged<GenerationRequest> = self.records.query(&q).await?.decode()?;
            page.items
                .extend(read.items.into_iter().filter(|r| keep(r)));
            page.next_cursor = read.next_cursor;
            if page.items.len() == limit || page.next_cursor.is_none() {
                break;
            }
        }
        Ok(page)
    }

    /// Cancel a request that has not finished (a running one stops at its next epoch), or
    /// delete a finished one with everything it produced. Returns the request as it now
    /// is, `None` once deleted.
    pub async fn cancel_or_delete(
        &self,
        owner: &str,
        id: &str,
    ) -> ServiceResult<Option<GenerationRequest>> {
        let r = self.get(owner, id).await?;
        let key = request_key(owner, id);
        let now = Utc::now().to_rfc3339();
        match r.status {
            s if s.is_final() => {
                self.objects
                    .delete_prefix(&result_prefix(owner, id))
                    .await?;
                super::search::delete_trials(self.records.as_ref(), owner, id).await?;
                let gone = vec![TxOp::Delete {
                    key,
                    condition: Some(Condition::eq("status", s.as_str())),
                }];
                let tally = Tally::of(owner)
                    .request(Some(s), None)
                    .storage(-result_bytes(&r));
                match tally.commit(self.records.as_ref(), gone).await {
                    Ok(()) => Ok(None),
                    Err(PortError::TransactionCanceled { .. }) => Err(changed()),
                    Err(e) => Err(e.into()),
                }
            }
            RequestStatus::Running => {
                let update = Update::default()
                    .set("cancel_requested", true)
                    .set("updated_at", now);
                let cond = Condition::eq("status", RequestStatus::Running.as_str());
                match self.records.update(&key, update, Some(cond)).await {
                    Ok(item) => Ok(Some(item.to_value()?)),
                    // It finished meanwhile; the caller may delete it now.
                    Err(PortError::ConditionFailed) => Err(changed()),
                    Err(e) => Err(e.into()),
                }
            }
            RequestStatus::Queued => {
                let finished = Update::default().set("finished_at", now);
                self.release(
                    &r,
                    RequestStatus::Queued,
                    RequestStatus::Cancelled,
                    Some(finished),
                )
                .await?;
                let r = self.get(owner, id).await?;
                self.notify("cancelled", &r, json!({})).await;
                if let Err(e) = self.start_approved(owner).await {
                    tracing::warn!(error = %e, "starting the owner's approved requests failed");
                }
                Ok(Some(r))
            }
            before => {
                let update = Update::default()
                    .set("finished_at", now.as_str())
                    .set("updated_at", now);
                let r = self.move_to(&r, RequestStatus::Cancelled, update).await?;
                // Told as a queued one is: it was submitted (a pending one never was).
                if before != RequestStatus::Pending {
                    self.notify("cancelled", &r, json!({})).await;
                }
                Ok(Some(r))
            }
        }
    }

    /// Expiring links to a completed request's files.
    pub async fn download(&self, owner: &str, id: &str) -> ServiceResult<ResultLinks> {
        let r = self.get(owner, id).await?;
        self.links(&r).await
    }

    /// Expiring links to the files of `r`, once it has a result.
    pub(crate) async fn links(&self, r: &GenerationRequest) -> ServiceResult<ResultLinks> {
        let Some(result) = r.result.as_ref().filter(|_| r.status.has_result()) else {
            return Err(ServiceError::Conflict(format!(
                "the request is {}, not completed",
                r.status.as_str()
            )));
        };
        let mut links: BTreeMap<&str, PresignedRequest> = BTreeMap::new();
        for f in &result.files {
            let wanted = f.kind == "data" || (r.include_metadata && f.kind != "model");
            if wanted {
                let url = self.objects.presign_get(&f.key, DOWNLOAD_URL_TTL).await?;
                links.insert(f.kind.as_str(), url);
            }
        }
        let data = links
            .remove("data")
            .ok_or_else(|| PortError::Backend(format!("request {} has no data file", r.id)))?;
        Ok(ResultLinks {
            data,
            report_json: links.remove("report_json"),
            report_html: links.remove("report_html"),
            metadata: links.remove("metadata"),
        })
    }

    /// Every user's requests, newest first, optionally in one status (administrators).
    pub async fn list_all(
        &self,
        status: Option<RequestStatus>,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<Paged<GenerationRequest>> {
        let q = match status {
            Some(s) => Query::partition(Index::Gsi1, status_partition(s)),
            None => Query::partition(Index::Gsi2, ALL_PARTITION),
        }
        .backward()
        .limit(limit)
        .after(cursor);
        Ok(self.records.query(&q).await?.decode()?)
    }

    /// Any user's request by its id (administrators).
    async fn find(&self, id: &str) -> ServiceResult<GenerationRequest> {
        check_id(id, not_found)?;
        let q = Query::partition(Index::Gsi2, ALL_PARTITION)
            .sk(SortKey::Eq(id.to_owned()))
            .limit(1);
        let page = self.records.query(&q).await?;
        let item = page.items.first().ok_or_else(not_found)?;
        Ok(item.to_value()?)
    }

    /// Approve a request awaiting approval, and start it if its owner's limit allows;
    /// otherwise it stays `approved` until one of the owner's requests leaves the queue
    /// ([`Generations::start_approved`]). Audited.
    pub async fn approve(
        &self,
        admin: &Principal,
        id: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<GenerationRequest> {
        let r = self.decide(admin, id, None, ctx).await?;
        let started = self.enqueue(&r).await;
        let waiting = matches!(started, Err(ServiceError::RateLimited { .. }));
        self.notify("approved", &r, json!({ "waiting": waiting }))
            .await;
        match started {
            Ok(r) => Ok(r),
            Err(ServiceError::RateLimited { .. }) => Ok(r),
            Err(e) => Err(e),
        }
    }

    /// Start the owner's approved requests, oldest first, while their limit allows. Called
    /// whenever one of their requests leaves the queue (finished, failed, cancelled), so an
    /// approved request waits for a free slot, not for its owner. Returns how many started.
    pub async fn start_approved(&self, owner: &str) -> ServiceResult<usize> {
        // Requests are approved only where approval is required: elsewhere a finished run
        // reads nothing.
        if !self.settings.require_approval {
            return Ok(0);
        }
        // The owner's own requests (read consistently, unlike an index that may not show an
        // approval made a moment ago), the most recent ones; oldest approved first.
        let approved = |r: &GenerationRequest| r.status == RequestStatus::Approved;
        let page = self
            .list_where(owner, MAX_APPROVED_STARTS, None, Some(&approved))
            .await?;
        let mut started = 0;
        for r in page.items.iter().rev() {
            match self.enqueue(r).await {
                Ok(_) => started += 1,
                Err(ServiceError::RateLimited { .. }) => break,
                // Started, cancelled or its dataset gone meanwhile: the next one.
                Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(started)
    }

    /// Reject a request awaiting approval, with the reason its owner is told. Audited.
    pub async fn reject(
        &self,
        admin: &Principal,
        id: &str,
        reason: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<GenerationRequest> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(ServiceError::field(
                "reason",
                "must be 1 to 1000 characters",
            ));
        }
        let r = self.decide(admin, id, Some(reason), ctx).await?;
        self.notify("rejected", &r, json!({ "reason": reason }))
            .await;
        Ok(r)
    }

    /// Record an administrator's decision and its audit entry in one transaction.
    async fn decide(
        &self,
        admin: &Principal,
        id: &str,
        rejection: Option<&str>,
        ctx: &RequestContext,
    ) -> ServiceResult<GenerationRequest> {
        let r = self.find(id).await?;
        if r.status != RequestStatus::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "the request is {}, not awaiting approval",
                r.status.as_str()
            )));
        }
        let now = Utc::now();
        let to = if rejection.is_some() {
            RequestStatus::Rejected
        } else {
            RequestStatus::Approved
        };
        let decision = Decision {
            approved: rejection.is_none(),
            by: admin.user.id.clone(),
            at: now,
            reason: rejection.map(str::to_owned),
        };
        let mut update = Update::default()
            .set("status", to.as_str())
            .set("gsi1pk", status_partition(to))
            .set_json("decision", &decision)
            .set("updated_at", now.to_rfc3339());
        if let Some(reason) = rejection {
            update = update
                .set("error", format!("rejected by an administrator: {reason}"))
                .set("finished_at", now.to_rfc3339());
        }
        let action = if rejection.is_some() {
            "generation.rejected"
        } else {
            "generation.approved"
        };
        let audit = audit_item(
            Some(&admin.user.id),
            action,
            Some(&r.owner_id),
            ctx,
            json!({ "request_id": r.id, "reason": rejection }),
        );
        let ops = vec![
            TxOp::Update {
                key: request_key(&r.owner_id, &r.id),
                update,
                condition: Some(Condition::eq(
                    "status",
                    RequestStatus::AwaitingApproval.as_str(),
                )),
            },
            TxOp::Put {
                item: audit,
                condition: Some(Condition::NotExists),
            },
        ];
        let tally = Tally::of(&r.owner_id).request(Some(r.status), Some(to));
        match tally.commit(self.records.as_ref(), ops).await {
            Ok(()) => self.get(&r.owner_id, &r.id).await,
            Err(PortError::TransactionCanceled { .. }) => Err(changed()),
            Err(e) => Err(e.into()),
        }
    }

    /// Move `r` from the state it was read in to `to` (neither queued nor running: no
    /// limit counts change), with `update`'s other attributes; the request as it now is.
    async fn move_to(
        &self,
        r: &GenerationRequest,
        to: RequestStatus,
        update: Update,
    ) -> ServiceResult<GenerationRequest> {
        let key = request_key(&r.owner_id, &r.id);
        let ops = vec![TxOp::Update {
            key: key.clone(),
            update: update
                .set("status", to.as_str())
                .set("gsi1pk", status_partition(to)),
            condition: Some(Condition::eq("status", r.status.as_str())),
        }];
        let tally = Tally::of(&r.owner_id).request(Some(r.status), Some(to));
        match tally.commit(self.records.as_ref(), ops).await {
            Ok(()) => self.get(&r.owner_id, &r.id).await,
            Err(PortError::TransactionCanceled { .. }) => Err(changed()),
            Err(e) => Err(e.into()),
        }
    }

    /// Tell the topic (and so the owner's notifications) what happened to a request; best
    /// effort: the change itself is already stored.
    pub(crate) async fn notify(&self, event: &str, r: &GenerationRequest, extra: Value) {
        notify(self.topic.as_ref(), event, r, extra).await;
    }
}

/// Most approved requests of one owner looked at when a slot frees.
const MAX_APPROVED_STARTS: usize = 100;

/// Most reads behind one filtered page of a user's requests.
const MAX_FILTERED_READS: usize = 20;

/// The owner has `max` requests queued or running.
fn limit_reached(max: i64) -> ServiceError {
    ServiceError::RateLimited {
        message: format!(
            "you have {max} generation requests queued or running \
             (MAX_CONCURRENT_GENERATIONS); start this one when one finishes"
        ),
        retry_after_seconds: 60,
    }
}

fn changed() -> ServiceError {
    ServiceError::Conflict("the request changed meanwhile; read it again".into())
}

fn new_request(
    owner: &str,
    dataset: &Dataset,
    input: &GenerationInput,
    checked: Checked,
) -> GenerationRequest {
    let now = Utc::now();
    GenerationRequest {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: owner.to_owned(),
        kind: input.kind,
        dataset_id: dataset.id.clone(),
        dataset_name: dataset.filename.clone(),
        model_type: checked.model.model_type,
        parameters: Value::Object(checked.model.parameters),
        sample_size: checked.sample_size,
        output_format: checked.output_format,
        include_metadata: input.include_metadata,
        conditions: checked.conditions,
        seed: input.seed,
        optimization: checked.optimization,
        constraints: checked.constraints,
        on_violation: checked.on_violation,
        status: RequestStatus::Pending,
        error: None,
        progress: None,
        cancel_requested: false,
        stop_requested: false,
        attempts: 0,
        result: None,
        decision: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    }
}

/// The stored form of a request, with its index keys.
pub(crate) fn item(r: &GenerationRequest) -> ServiceResult<Item> {
    Ok(Item::from_value(&request_key(&r.owner_id, &r.id), r)?
        .with_gsi1(status_partition(r.status), r.id.as_str())
        .with_gsi2(ALL_PARTITION, r.id.as_str()))
}

/// Leave `from` (queued or running) for `to`: the request, the owner's active count, the
/// dataset's generation count and the owner's counters (`tally`, with the move itself and
/// the trainer's time added) change in one transaction. `attempt`, when given, must still
/// own the request (a trainer run finishing it).
pub(crate) async fn release(
    records: &dyn RecordStore,
    r: &GenerationRequest,
    (from, to): (RequestStatus, RequestStatus),
    extra: Option<Update>,
    attempt: Option<&str>,
    tally: Tally,
) -> ServiceResult<()> {
    let mut tally = tally.request(Some(from), Some(to));
    if from == RequestStatus::Running
        && let Some(started) = r.started_at
    {
        tally = tally.trainer_time((Utc::now() - started).num_milliseconds());
    }
    let mut update = extra
        .unwrap_or_default()
        .set("status", to.as_str())
        .set("gsi1pk", status_partition(to))
        .set("updated_at", Utc::now().to_rfc3339());
    if to.is_final() {
        update = update.remove("attempt");
    }
    let mut cond = vec![Condition::eq("status", from.as_str())];
    if let Some(a) = attempt {
        cond.push(Condition::eq("attempt", a));
    }
    let mut ops = vec![TxOp::Update {
        key: request_key(&r.owner_id, &r.id),
        update,
        condition: Some(Condition::And(cond)),
    }];
    if from.is_active() && !to.is_active() {
        ops.push(TxOp::Update {
            key: active_key(&r.owner_id),
            update: Update::default().add("count", -1),
            condition: None,
        });
        ops.push(TxOp::Update {
            key: dataset_key(&r.owner_id, &r.dataset_id),
            update: Update::default().add("active_generations", -1),
            condition: Some(Condition::Exists),
        });
    }
    match tally.commit(records, ops).await {
        Ok(()) => Ok(()),
        Err(PortError::TransactionCanceled { failed }) if failed == [2] => {
            // The dataset went (erasure): release the request and the count without it.
            Box::pin(release_without_dataset(
                records,
                r,
                (from, to),
                attempt,
                tally,
            ))
            .await
        }
        Err(PortError::TransactionCanceled { .. }) => Err(changed()),
        Err(e) => Err(e.into()),
    }
}

async fn release_without_dataset(
    records: &dyn RecordStore,
    r: &GenerationRequest,
    (from, to): (RequestStatus, RequestStatus),
    attempt: Option<&str>,
    tally: Tally,
) -> ServiceResult<()> {
    let mut cond = vec![Condition::eq("status", from.as_str())];
    if let Some(a) = attempt {
        cond.push(Condition::eq("attempt", a));
    }
    let ops = vec![
        TxOp::Update {
            key: request_key(&r.owner_id, &r.id),
            update: Update::default()
                .set("status", to.as_str())
                .set("gsi1pk", status_partition(to))
                .set("updated_at", Utc::now().to_rfc3339()),
            condition: Some(Condition::And(cond)),
        },
        TxOp::Update {
            key: active_key(&r.owner_id),
            update: Update::default().add("count", -1),
            condition: None,
        },
    ];
    match tally.commit(records, ops).await {
        Ok(()) => Ok(()),
        Err(PortError::TransactionCanceled { .. }) => Err(changed()),
        Err(e) => Err(e.into()),
    }
}

/// Bytes of the files a request produced.
pub(crate) fn result_bytes(r: &GenerationRequest) -> i64 {
    r.result.as_ref().map_or(0, |x| {
        x.files
            .iter()
            .map(|f| i64::try_from(f.size_bytes).unwrap_or(i64::MAX))
            .sum()
    })
}

/// Publish what happened to a request on the topic; the subject is the request's kind and
/// the `event` (`generation.completed`, `optimization.stopped`).
pub(crate) async fn notify(topic: &dyn Topic, event: &str, r: &GenerationRequest, extra: Value) {
    let kind = format!("{}.{event}", r.kind.event_prefix());
    let kind = kind.as_str();
    let mut message = json!({
        "type": kind,
        "user_id": r.owner_id,
        "request_id": r.id,
        "dataset_id": r.dataset_id,
        "status": r.status,
        "at": Utc::now().to_rfc3339(),
    });
    if let (Some(m), Value::Object(extra)) = (message.as_object_mut(), extra) {
        m.extend(extra);
    }
    if let Err(e) = topic.publish(kind, &message.to_string()).await {
        tracing::error!(request_id = %r.id, error = %e, kind, "could not publish a generation notice");
    }
}
