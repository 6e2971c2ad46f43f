//! Synth's trainer: runs one generation request from start to finish. It takes the request
//! on (a conditional claim, so a job started twice does the work once), reads the dataset's
//! canonical copy, searches the hyperparameters if asked, fits the model, samples the rows
//! with their conditions, evaluates them, writes the table, the report, the metadata and
//! the model to the object store, and finishes the request as completed — or failed, with
//! a reason the user can act on, or cancelled between epochs when its owner asked.
//!
//! Two entry points call [`Trainer::run`]: the AWS Batch container (`functions/trainer`,
//! the request named on its command line) and `synth serve`'s worker pool. Both use the
//! same [`JobArgs`] the queue carries.

mod keeper;
mod memory;
mod pace;
mod work;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use synth_core::datasets::{Dataset, Datasets, canonical_key};
use synth_core::generation::lifecycle::{Claim, TrainerRun};
use synth_core::generation::{GenerationRequest, GenerationResult, Generations};
use synth_core::service::ServiceError;
use synth_core::{Backends, DevicePreference, JobSpec, PortError, Settings};
use synth_engine::EngineDevice;
use synth_table::{Metadata, Table};

use keeper::{Keeper, Verdict};

/// The device `TRAINER_DEVICE` asks for, opened once; `auto` never fails (the CPU is
/// always there).
fn open_device(preference: DevicePreference) -> Result<EngineDevice, String> {
    match preference {
        DevicePreference::Auto => Ok(EngineDevice::auto()),
        DevicePreference::Cpu => Ok(EngineDevice::Cpu),
        DevicePreference::Cuda(n) => EngineDevice::Cuda(n)
            .check()
            .map_err(|e| format!("TRAINER_DEVICE is {preference}, which does not open: {e}")),
    }
}

/// How a run ended, as far as its job is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    /// Its owner stopped the search; the best trial so far was sampled and stored.
    Stopped,
    /// The request failed; the reason is on it.
    Failed(String),
    Cancelled,
    /// Nothing was done: the request is finished, gone, or held by another run.
    Skipped(String),
    /// Another run took the request over mid-way; this one stopped writing.
    Lost,
    /// The process is shutting down ([`Trainer::shut_down`]): the request was given back
    /// unfinished (or never taken) for the next start to run.
    HandedBack,
}

/// A run that could not even record how it ended (a store is down): the job should be
/// retried, and the next run takes the request over once this one's lease expires.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error("a store failed: {0}")]
    Store(#[from] ServiceError),
    #[error("{0}")]
    Job(String),
}

/// Why the work stopped short.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Something about the request or its data; the user is told.
    User(String),
    /// The trainer itself broke (a crash); the user is told it was not their fault.
    Internal(String),
    /// The stop flag: cancelled, or lost to another run.
    Stopped,
    /// A store failed mid-way: retry the job.
    Store(PortError),
}

/// The request a job is for, as its command line names it:
/// `trainer --owner OWNER --request ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobArgs {
    pub owner: String,
    pub request: String,
}

impl JobArgs {
    /// Read the arguments (the first may be the program's name).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, String> {
        let mut owner = None;
        let mut request = None;
        let mut it = args.iter().map(AsRef::as_ref).peekable();
        if it.peek() == Some(&"trainer") {
            it.next();
        }
        while let Some(a) = it.next() {
            let value = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            match a {
                "--owner" => owner = Some(value.to_owned()),
                "--request" => request = Some(value.to_owned()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Self {
            owner: owner.ok_or("missing --owner")?,
            request: request.ok_or("missing --request")?,
        })
    }

    /// The arguments of a queued job.
    pub fn of(spec: &JobSpec) -> Result<Self, String> {
        Self::parse(&spec.args)
    }
}

/// Runs generation requests on the platform's backends.
#[derive(Clone)]
pub struct Trainer {
    backends: Backends,
    settings: Arc<Settings>,
    /// To start an owner's approved requests when a run frees one of their slots.
    generations: Generations,
    /// Where the networks train, chosen once from `TRAINER_DEVICE`; why not, when the device
    /// asked for does not open.
    device: Result<EngineDevice, String>,
    runs: Arc<Runs>,
}

/// The runs of a trainer in progress, so a shutdown can reach them.
#[derive(Default)]
struct Runs {
    shutting_down: AtomicBool,
    next: AtomicU64,
    active: Mutex<HashMap<u64, keeper::Signals>>,
}

/// A run's place in [`Runs`], left when the run ends however it ends.
struct Registered<'a> {
    runs: &'a Runs,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.runs.active().remove(&self.id);
    }
}

impl Runs {
    fn active(&self) -> MutexGuard<'_, HashMap<u64, keeper::Signals>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, signals: &keeper::Signals) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.active().insert(id, signals.clone());
        // A shutdown that began between the claim and now reaches this run too.
        if self.shutting_down.load(Ordering::SeqCst) {
            signals.raise(Verdict::HandBack);
        }
        Registered { runs: self, id }
    }
}

impl Trainer {
    pub fn new(backends: Backends, settings: Arc<Settings>) -> Self {
        let device = open_device(settings.trainer_device);
        match &device {
            Ok(device) => tracing::info!(%device, "the trainer trains on this device"),
            Err(why) => tracing::error!(%why, "the trainer has no device to train on"),
        }
        let datasets = Datasets::new(
            backends.records.clone(),
            backends.objects.clone(),
            &settings,
        );
        Self {
            generations: Generations::new(&backends, datasets, settings.clone()),
            backends,
            settings,
            device,
            runs: Arc::default(),
        }
    }

    /// Where the networks train; why not, when `TRAINER_DEVICE` names a device that does
    /// not open (every run then fails with that reason).
    pub fn device(&self) -> Result<EngineDevice, &str> {
        self.device.as_ref().copied().map_err(String::as_str)
    }

    /// Stop every run in progress at its next step and give its request back for the next
    /// start of the process to take over at once (see [`TrainerRun::hand_back`]); runs asked
    /// for from now on do nothing. Returns once every run has ended, or after `wait`.
    pub async fn shut_down(&self, wait: std::time::Duration) {
        self.runs.shutting_down.store(true, Ordering::SeqCst);
        for signals in self.runs.active().values() {
            signals.raise(Verdict::HandBack);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while !self.runs.active().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let left = self.runs.active().len();
        if left > 0 {
            tracing::warn!(
                left,
                "trainer runs still going at shutdown; their requests resume once their lease expires"
            );
        }
    }

    /// Run one request to its end (see [`Outcome`]); then, as its owner may have a slot
    /// free, start their approved requests that wait for one.
    pub async fn run(&self, job: &JobArgs) -> Result<Outcome, TrainerError> {
        let outcome = self.run_request(job).await?;
        if !matches!(outcome, Outcome::Lost | Outcome::HandedBack) {
            match self.generations.start_approved(&job.owner).await {
                Ok(0) => {}
                Ok(started) => tracing::info!(started, "approved requests started"),
                Err(e) => tracing::warn!(error = %e, "starting approved requests failed"),
            }
        }
        Ok(outcome)
    }

    async fn run_request(&self, job: &JobArgs) -> Result<Outcome, TrainerError> {
        if self.runs.shutting_down.load(Ordering::SeqCst) {
            return Ok(Outcome::HandedBack);
        }
        let lease = std::time::Duration::from_secs(self.settings.trainer_lease_seconds);
        let claim = TrainerRun::claim(
            self.backends.records.clone(),
            self.backends.topic.clone(),
            lease,
            &job.owner,
            &job.request,
        )
        .await?;
        let run = match claim {
            Claim::Run(run) => *run,
            Claim::Skip(why) => {
                tracing::info!(request_id = %job.request, %why, "nothing to run");
                return Ok(Outcome::Skipped(why));
            }
        };
        let request = run.request().clone();
        let memory_alert = self.settings.trainer_memory_alert_percent / 100.0;
        let keeper = Keeper::start(run, memory_alert);
        let signals = keeper.signals.clone();
        let _registered = self.runs.register(&signals);
        let inputs = match self.device.clone() {
            Ok(device) => self.inputs(&request).await.map(|read| (read, device)),
            Err(why) => Err(Failure::Internal(why)),
        };
        let produced = match inputs {
            Ok(((table, metadata), device)) => {
                let work = work::Job {
                    request: request.clone(),
                    table,
                    metadata,
                    objects: self.backends.objects.clone(),
                    progress: keeper.tx.clone(),
                    signals: signals.clone(),
                    device,
                };
                work.run().await
            }
            Err(f) => Err(f),
        };
        let run = keeper.finish().await?;
        self.conclude(run, signals.verdict(), produced).await
    }

    /// The dataset's table (its canonical copy) and metadata.
    async fn inputs(&self, r: &GenerationRequest) -> Result<(Table, Metadata), Failure> {
        let key = synth_core::datasets::dataset_key(&r.owner_id, &r.dataset_id);
        let Some(item) = self.backends.records.get(&key).await? else {
            return Err(Failure::User("the dataset was deleted".into()));
        };
        let dataset: Dataset = item.to_value()?;
        let mut metadata = dataset
            .metadata
            .ok_or_else(|| Failure::User("the dataset has no metadata".into()))?;
        let bytes = self
            .backends
            .objects
            .get(&canonical_key(&r.owner_id, &r.dataset_id))
            .await?
            .bytes()
            .await?;
        let read = tokio::task::spawn_blocking(move || {
            let opts = synth_data::ReadOptions {
                format: Some(synth_data::FileFormat::Parquet),
                ..synth_data::ReadOptions::default()
            };
            synth_data::read_bytes(&bytes, None, &opts)
        })
        .await
        .map_err(|e| Failure::Internal(format!("reading the dataset crashed: {e}")))?
        .map_err(|e| Failure::Internal(format!("the dataset's stored copy does not read: {e}")))?;
        metadata.order_like(&read.table);
        // Typed by the metadata as it is now: an override may have made text dates (in a
        // format of the user's) or numbers categories since the copy was stored.
        let table = synth_data::apply_metadata(read.table, &metadata)
            .map_err(|e| Failure::User(format!("the dataset does not fit its metadata: {e}")))?;
        Ok((table, metadata))
    }

    /// Finish the request as the work and the signals say.
    async fn conclude(
        &self,
        run: TrainerRun,
        verdict: Verdict,
        produced: Result<GenerationResult, Failure>,
    ) -> Result<Outcome, TrainerError> {
        let id = run.request().id.clone();
        match (verdict, produced) {
            (Verdict::Lost, _) => {
                tracing::warn!(request_id = %id, "another run took the request over; stopping");
                Ok(Outcome::Lost)
            }
            (Verdict::HandBack, Err(Failure::Stopped)) => {
                tracing::info!(request_id = %id, "shutting down; the request is handed back");
                run.hand_back().await?;
                Ok(Outcome::HandedBack)
            }
            (Verdict::Cancel, _) | (_, Err(Failure::Stopped)) => {
                run.cancelled().await?;
                Ok(Outcome::Cancelled)
            }
            (verdict, Ok(result)) => {
                if verdict == Verdict::Stop {
                    run.stopped(result).await?;
                    return Ok(Outcome::Stopped);
                }
                run.complete(result).await?;
                Ok(Outcome::Completed)
            }
            (_, Err(Failure::User(reason))) => {
                run.fail(&reason).await?;
                Ok(Outcome::Failed(reason))
            }
            (_, Err(Failure::Internal(detail))) => {
                tracing::error!(request_id = %id, %detail, "the trainer failed");
                let reason =
                    format!("the trainer failed on this request ({detail}); it is not retried");
                run.fail(&reason).await?;
                Ok(Outcome::Failed(reason))
            }
            (_, Err(Failure::Store(e))) => Err(TrainerError::Store(e.into())),
        }
    }
}
