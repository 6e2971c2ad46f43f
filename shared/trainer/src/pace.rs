//! How far along a request is, for its status: the phase, the percent of the whole request
//! and an ETA from the pace so far. Training takes most of a request: preparing 0–5 %,
//! a search (when asked) 5–45 %, training up to 85 %, then sampling, evaluating, writing.
//! A search of its own (`/optimization`) has no training after it: it runs 5–85 %.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use synth_core::generation::{GenerationRequest, Progress, RequestKind};
use synth_engine::EpochReport;

/// Shared by the phases of one run (the epoch callback runs on the fitting thread).
#[derive(Clone)]
pub(crate) struct Pace {
    started: Arc<Instant>,
    searching: bool,
    searched: bool,
    /// A search of its own: no fit after it, so it takes what training would.
    search_only: bool,
}

impl Pace {
    pub fn new(r: &GenerationRequest) -> Self {
        Self {
            started: Arc::new(Instant::now()),
            searching: r.optimization.is_some(),
            searched: false,
            search_only: r.kind == RequestKind::Optimization,
        }
    }

    /// The search is over: training starts where it ended.
    pub fn optimized(&mut self) {
        self.searched = true;
    }

    /// Where training's share begins.
    pub fn start_percent(&self) -> f64 {
        if self.searching && self.searched {
            45.0
        } else {
            5.0
        }
    }

    fn progress(&self, phase: &str, message: String, percent: f64) -> Progress {
        let elapsed = self.started.elapsed().as_secs_f64();
        // Only once a tenth is done is the pace worth extrapolating.
        let eta = (percent >= 10.0).then(|| elapsed * (100.0 - percent) / percent);
        Progress {
            phase: phase.into(),
            step: None,
            steps: None,
            percent: (percent * 10.0).round() / 10.0,
            eta_seconds: eta.map(|e| e.round()),
            generator_loss: None,
            critic_loss: None,
            message,
            updated_at: Utc::now(),
        }
    }

    /// A phase without steps.
    pub fn phase(&self, phase: &str, message: &str, percent: f64) -> Progress {
        self.progress(phase, message.into(), percent)
    }

    /// The search begins with its first trial.
    pub fn search_started(&self, trials: u64) -> Progress {
        let mut p = self.progress("optimizing", format!("optimizing: trial 1/{trials}"), 5.0);
        p.step = Some(0);
        p.steps = Some(trials);
        p
    }

    /// A finished trial of the search, with the best score so far.
    pub fn trial(&self, trial: u64, trials: u64, best: Option<f64>) -> Progress {
        let share = trial as f64 / trials.max(1) as f64;
        let span = if self.search_only { 80.0 } else { 40.0 };
        let best = best.map_or_else(String::new, |b| format!(", best score {b:.4}"));
        let mut p = self.progress(
            "optimizing",
            format!("optimizing: trial {trial}/{trials} done{best}"),
            5.0 + span * share,
        );
        p.step = Some(trial);
        p.steps = Some(trials);
        p
    }

    /// An epoch of a trial of the search (1-based trial).
    pub fn trial_epoch(&self, trial: u64, trials: u64, e: &EpochReport) -> Progress {
        let within = e.epoch as f64 / e.epochs.max(1) as f64;
        let share = ((trial - 1) as f64 + within) / trials.max(1) as f64;
        let span = if self.search_only { 80.0 } else { 40.0 };
        let mut p = self.progress(
            "optimizing",
            format!(
                "optimizing: trial {trial}/{trials}, epoch {}/{}",
                e.epoch, e.epochs
            ),
            5.0 + span * share,
        );
        p.step = Some(trial);
        p.steps = Some(trials);
        p.generator_loss = Some(e.generator_loss).filter(|l| l.is_finite());
        p.critic_loss = e.critic_loss.filter(|l| l.is_finite());
        p
    }

    /// A finished epoch of the final fit.
    pub fn epoch(&self, e: &EpochReport, epochs: u64) -> Progress {
        let from = self.start_percent();
        let share = e.epoch as f64 / epochs.max(1) as f64;
        let mut p = self.progress(
            "training",
            format!("training epoch {}/{epochs}", e.epoch),
            from + (85.0 - from) * share,
        );
        p.step = Some(e.epoch as u64);
        p.steps = Some(epochs);
        p.generator_loss = Some(e.generator_loss).filter(|l| l.is_finite());
        p.critic_loss = e.critic_loss.filter(|l| l.is_finite());
        p
    }
}
