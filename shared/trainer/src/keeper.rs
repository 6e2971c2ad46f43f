//! The run's voice to the store while the work goes on: a task that owns the claimed
//! [`TrainerRun`], writes the progress the work reports (at most every couple of seconds,
//! and at once when the phase changes) and each trial of a search as it ends, beats every
//! [`HEARTBEAT`] in between (a transformer fit can take minutes without an epoch), and
//! raises the stop flag the moment the owner cancels or stops it or another run takes the
//! request over. It also watches the run's memory, and alerts the administrators once when
//! it passes `TRAINER_MEMORY_ALERT_PERCENT` of what the run may use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use synth_core::generation::lifecycle::{Beat, HEARTBEAT, TrainerRun};
use synth_core::generation::{Progress, SearchTrial};
use synth_core::service::ServiceResult;
use tokio::sync::mpsc;

use crate::memory;

/// Why the work was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Go,
    /// The owner stopped the search: end it, keep the best trial.
    Stop,
    /// This process is shutting down: stop, and give the request back for the next run.
    HandBack,
    Cancel,
    Lost,
}

/// What the work tells the keeper.
pub(crate) enum Report {
    Progress(Progress),
    Trial(SearchTrial),
}

/// Shared between the work (which reads it) and the keeper (which sets it).
#[derive(Clone, Default)]
pub(crate) struct Signals {
    /// The engine's stop flag: set, a fit returns after the current step.
    pub stop: Arc<AtomicBool>,
    verdict: Arc<AtomicU8>,
}

impl Signals {
    pub fn verdict(&self) -> Verdict {
        match self.verdict.load(Ordering::SeqCst) {
            1 => Verdict::Stop,
            2 => Verdict::HandBack,
            3 => Verdict::Cancel,
            4 => Verdict::Lost,
            _ => Verdict::Go,
        }
    }

    pub fn raise(&self, v: Verdict) {
        let code = match v {
            Verdict::Go => return,
            Verdict::Stop => 1,
            Verdict::HandBack => 2,
            Verdict::Cancel => 3,
            Verdict::Lost => 4,
        };
        // Lost wins over cancel, cancel over a hand-back (finishing cancelled is as quick, and
        // final), a hand-back over a stop (the stop is on the request: the next run sees it).
        // Once lost, nothing more is written.
        self.verdict.fetch_max(code, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The keeper task and the sending side of its progress channel.
pub(crate) struct Keeper {
    pub tx: mpsc::UnboundedSender<Report>,
    pub signals: Signals,
    task: tokio::task::JoinHandle<ServiceResult<TrainerRun>>,
}

impl Keeper {
    /// Keep `run`; alert once its memory use passes `memory_alert` (a share, 0..=1).
    pub fn start(run: TrainerRun, memory_alert: f64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let signals = Signals::default();
        let watch = MemoryWatch::new(memory_alert);
        let task = tokio::spawn(keep(run, rx, signals.clone(), watch));
        Self { tx, signals, task }
    }

    /// Close the channel, let the last progress be written, and hand the run back.
    pub async fn finish(self) -> ServiceResult<TrainerRun> {
        drop(self.tx);
        self.task
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

/// Looks at the run's memory now and then, and alerts once.
struct MemoryWatch {
    alert_at: f64,
    looked: Option<Instant>,
    alerted: bool,
}

impl MemoryWatch {
    fn new(alert_at: f64) -> Self {
        Self {
            alert_at,
            looked: None,
            alerted: false,
        }
    }

    async fn look(&mut self, run: &TrainerRun) {
        if self.alerted || self.looked.is_some_and(|t| t.elapsed() < LOOK_EVERY) {
            return;
        }
        self.looked = Some(Instant::now());
        let Some(m) = memory::current() else { return };
        if m.share() >= self.alert_at {
            tracing::warn!(request_id = %run.request().id, used = m.used, limit = m.limit, "trainer close to its memory limit");
            run.alert_memory(m.share(), m.used, m.limit).await;
            self.alerted = true;
        }
    }
}

/// Least time between two looks at the memory.
const LOOK_EVERY: Duration = Duration::from_secs(2);

async fn keep(
    mut run: TrainerRun,
    mut rx: mpsc::UnboundedReceiver<Report>,
    signals: Signals,
    mut watch: MemoryWatch,
) -> ServiceResult<TrainerRun> {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.tick().await;
    let mut phase = String::new();
    loop {
        let beat = tokio::select! {
            r = rx.recv() => match r {
                Some(_) if signals.verdict() == Verdict::Lost => continue,
                Some(Report::Progress(p)) => {
                    let force = p.phase != phase;
                    phase.clone_from(&p.phase);
                    run.progress(p, force).await?
                }
                Some(Report::Trial(t)) => run.record_trial(&t).await?,
                None => return Ok(run),
            },
            _ = ticker.tick() => {
                if signals.verdict() == Verdict::Lost {
                    continue;
                }
                run.heartbeat().await?
            }
        };
        watch.look(&run).await;
        match beat {
            Beat::Continue => {}
            Beat::Stop => signals.raise(Verdict::Stop),
            Beat::Cancel => signals.raise(Verdict::Cancel),
            Beat::Lost => signals.raise(Verdict::Lost),
        }
    }
}
