//! The objective of a model search: fit the model with a trial's parameters on the training
//! part of a seeded split of the real table, sample it, and score the sample against the
//! holdout part, which no trial ever fits on — so a model cannot win by copying rows.
//!
//! Along the way, a checkpoint after every epoch ends a trial whose losses stop being
//! finite (failed), whose intermediate score falls far below the best earlier trials had at
//! the same epoch (pruned), or whose search was stopped (cancelled).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};
use synth_evaluate::{EfficacyOptions, PairOptions, PrivacyOptions, QualityReport};
use synth_table::{Metadata, Table};

use synth_search::{Objective, TrialContext, TrialReport};

use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::models::{ModelParams, fit};
use crate::synthesizer::{EpochCallback, EpochReport, FitControl, FitOptions, Synthesizer};
use crate::transformer::TransformerOptions;
pub use synth_models::{Metric, Score};

/// Rows sampled for the final score of a trial, at most.
const MAX_SCORED_ROWS: usize = 10_000;
/// Rows sampled for an intermediate score, at most.
const MAX_CHECKPOINT_ROWS: usize = 1_000;

/// Scores synthetic tables against the holdout; cheap to clone into a fit's checkpoint.
#[derive(Clone)]
struct Scorer {
    train: Arc<Table>,
    holdout: Arc<Table>,
    metadata: Arc<Metadata>,
    score: Score,
    target: Option<String>,
    seed: u64,
}

impl Scorer {
    /// One metric of `synthetic`; `quality` keeps the quality report between metrics.
    fn metric(
        &self,
        m: Metric,
        synthetic: &Table,
        quality: &mut Option<QualityReport>,
    ) -> Result<Option<f64>, String> {
        if m == Metric::MlEfficacy {
            let target = self.target.as_deref().ok_or("ml_efficacy needs a target")?;
            let options = EfficacyOptions {
                seed: self.seed,
                ..EfficacyOptions::default()
            };
            let r = synth_evaluate::ml_efficacy(
                &self.train,
                synthetic,
                &self.holdout,
                &self.metadata,
                target,
                &options,
            )
            .map_err(|e| e.to_string())?;
            return Ok(r.synthetic.f1_macro.or(r.synthetic.r2));
        }
        if quality.is_none() {
            let options = PairOptions {
                seed: self.seed,
                ..PairOptions::default()
            };
            let q =
                synth_evaluate::quality_report(&self.holdout, synthetic, &self.metadata, &options)
                    .map_err(|e| e.to_string())?;
            *quality = Some(q);
        }
        let q = quality.as_ref().expect("just computed");
        Ok(match m {
            Metric::ColumnShapes => q.column_shapes,
            Metric::ColumnPairTrends => q.column_pair_trends,
            _ => q.score,
        })
    }

    /// The trial's score of `synthetic`; with `final_score`, a privacy floor is enforced.
    fn score(&self, synthetic: &Table, final_score: bool) -> Result<f64, String> {
        let mut quality = None;
        let mut values = Vec::new();
        for m in self.score.metrics() {
            let v = self.metric(m, synthetic, &mut quality)?;
            let v = v.ok_or_else(|| format!("{m} cannot be computed on this table"))?;
            values.push((m, v));
        }
        let value = |m: Metric| values.iter().find(|(k, _)| *k == m).map(|(_, v)| *v);
        let score = self.score.combine(value).expect("every metric has a value");
        match self.score.privacy_floor().filter(|_| final_score) {
            Some(floor) => {
                let privacy = self.privacy(synthetic)?;
                if privacy < floor {
                    return Err(format!(
                        "privacy {privacy:.3} is below the floor {floor} (score {score:.4})"
                    ));
                }
                Ok(score)
            }
            None => Ok(score),
        }
    }

    /// `min(1, 2 × (1 − DCR share))` of `synthetic` between the training and holdout rows.
    fn privacy(&self, synthetic: &Table) -> Result<f64, String> {
        let options = PrivacyOptions {
            seed: self.seed,
            ..PrivacyOptions::default()
        };
        let r = synth_evaluate::privacy_report(
            &self.train,
            Some(&self.holdout),
            synthetic,
            &self.metadata,
            &options,
        )
        .map_err(|e| e.to_string())?;
        let share = r.dcr_share.ok_or("the privacy score needs holdout rows")?;
        Ok((2.0 * (1.0 - share)).min(1.0))
    }

    fn score_model(
        &self,
        model: &dyn Synthesizer,
        rows: usize,
        final_score: bool,
    ) -> Result<f64, String> {
        let synthetic = model.sample(rows, self.seed).map_err(|e| e.to_string())?;
        self.score(&synthetic, final_score)
    }
}

/// How a model objective measures trials.
#[derive(Debug, Clone)]
pub struct ObjectiveSettings {
    pub metric: Score,
    /// The column ML efficacy predicts.
    pub target: Option<String>,
    /// Share of the real rows held out for scoring.
    pub holdout_fraction: f64,
    /// Seeds the split, every fit and every sample, so trials differ only by parameters.
    pub seed: u64,
    pub device: EngineDevice,
    pub transformer: TransformerOptions,
}

impl Default for ObjectiveSettings {
    fn default() -> Self {
        Self {
            metric: Score::default(),
            target: None,
            holdout_fraction: 0.2,
            seed: 0,
            device: EngineDevice::default(),
            transformer: TransformerOptions::default(),
        }
    }
}

/// How a fit's checkpoint ended it.
enum Ended {
    NonFinite(String),
    Pruned(String),
    Cancelled,
}

#[derive(Default)]
struct CheckpointLog {
    intermediate: Vec<(usize, f64)>,
    ended: Option<Ended>,
}

/// Fits a model per trial and scores it on the holdout.
pub struct ModelObjective {
    base: ModelParams,
    scorer: Scorer,
    settings: ObjectiveSettings,
    on_epoch: Option<TrialEpochCallback>,
}

/// Called after every epoch of every trial, with the trial's number (1-based).
pub type TrialEpochCallback = Arc<dyn Fn(usize, &EpochReport) + Send + Sync>;

impl ModelObjective {
    /// Splits `table` into training and holdout rows; `base` gives every parameter a trial
    /// does not set.
    pub fn new(
        table: &Table,
        metadata: &Metadata,
        base: ModelParams,
        settings: ObjectiveSettings,
    ) -> Result<Self> {
        base.validate()?;
        let bad = |m: String| Err(EngineError::InvalidSearch(m));
        let f = settings.holdout_fraction;
        if !(f > 0.0 && f < 1.0) {
            return bad(format!("the holdout fraction must be in (0, 1), got {f}"));
        }
        if table.n_rows() < 2 {
            return bad(format!(
                "the table has {} rows; a search needs at least 2 to hold some out",
                table.n_rows()
            ));
        }
        match (&settings.target, settings.metric.needs_target()) {
            (None, true) => {
                return bad("the ml_efficacy metric needs a target column".into());
            }
            (Some(t), _) if metadata.column(t).is_none() => {
                return bad(format!("the target {t:?} is not a column of the table"));
            }
            _ => {}
        }
        let (train, holdout) = synth_evaluate::split(table, f, settings.seed);
        Ok(Self {
            base,
            scorer: Scorer {
                train: Arc::new(train),
                holdout: Arc::new(holdout),
                metadata: Arc::new(metadata.clone()),
                score: settings.metric.clone(),
                target: settings.target.clone(),
                seed: settings.seed,
            },
            settings,
            on_epoch: None,
        })
    }

    /// Report every epoch of every trial to `cb` (a search's live progress).
    pub fn with_epoch_callback(mut self, cb: Option<TrialEpochCallback>) -> Self {
        self.on_epoch = cb;
        self
    }

    /// The real rows trials are scored against.
    pub fn holdout(&self) -> &Table {
        &self.scorer.holdout
    }

    /// The real rows trials are fitted on.
    pub fn train(&self) -> &Table {
        &self.scorer.train
    }

    /// After every epoch: stop on non-finite losses or a stop request; on pruning epochs,
    /// score the model so far and stop it if it is far behind.
    fn checkpoint(
        &self,
        ctx: &TrialContext,
        log: Arc<Mutex<CheckpointLog>>,
    ) -> impl FnMut(&EpochReport, &dyn Synthesizer) -> FitControl + Send + 'static {
        let (scorer, stop, gate) = (self.scorer.clone(), ctx.stop.clone(), ctx.prune.clone());
        let rows = scorer.holdout.n_rows().min(MAX_CHECKPOINT_ROWS);
        move |r: &EpochReport, model: &dyn Synthesizer| {
            let mut log = log.lock().expect("checkpoint log");
            if !(r.generator_loss.is_finite() && r.critic_loss.is_none_or(f64::is_finite)) {
                let critic = r
                    .critic_loss
                    .map_or_else(String::new, |c| format!(", critic {c}"));
                log.ended = Some(Ended::NonFinite(format!(
                    "the loss is not finite at epoch {} (generator {}{critic})",
                    r.epoch, r.generator_loss
                )));
                return FitControl::Stop;
            }
            if r.epoch == r.epochs {
                return FitControl::Continue;
            }
            if stop.is_set() {
                log.ended = Some(Ended::Cancelled);
                return FitControl::Stop;
            }
            let Some(gate) = gate.as_ref().filter(|g| g.due(r.epoch)) else {
                return FitControl::Continue;
            };
            let Ok(value) = scorer.score_model(model, rows, false) else {
                return FitControl::Continue;
            };
            log.intermediate.push((r.epoch, value));
            if gate.should_prune(r.epoch, value) {
                let best = gate.best_at(r.epoch).unwrap_or(f64::NAN);
                log.ended = Some(Ended::Pruned(format!(
                    "{} {value:.4} at epoch {} is more than {} below the best {best:.4} there",
                    scorer.score, r.epoch, gate.rule.margin
                )));
                return FitControl::Stop;
            }
            FitControl::Continue
        }
    }
}

impl Objective for ModelObjective {
    type Model = Box<dyn Synthesizer>;

    fn normalise(&self, mut params: Map<String, Value>) -> Map<String, Value> {
        self.base.normalise_point(&mut params);
        params
    }

    fn evaluate(&mut self, ctx: TrialContext) -> TrialReport<Box<dyn Synthesizer>> {
        let params = match self.base.with_point(&ctx.params) {
            Ok(p) => p,
            Err(e) => return TrialReport::failed(e.to_string()),
        };
        let log = Arc::new(Mutex::new(CheckpointLog::default()));
        let stop = ctx.stop.flag();
        let options = FitOptions {
            seed: self.settings.seed,
            device: self.settings.device,
            transformer: self.settings.transformer.clone(),
            on_epoch: self.on_epoch.clone().map(|cb| {
                let number = ctx.number;
                Box::new(move |r: &EpochReport| cb(number, r)) as EpochCallback
            }),
            stop: Some(ctx.stop.flag()),
            checkpoint: Some(Box::new(self.checkpoint(&ctx, log.clone()))),
            max_seconds: None,
        };
        let started = Instant::now();
        let fitted = fit(&self.scorer.train, &self.scorer.metadata, &params, options);
        let fit_seconds = started.elapsed().as_secs_f64();
        let log = std::mem::take(&mut *log.lock().expect("checkpoint log"));
        let mut report = match (fitted, log.ended) {
            // Stopped while the columns were still being learnt.
            (Err(EngineError::Stopped), _) => TrialReport::cancelled(),
            (Err(e), _) => TrialReport::failed(e.to_string()),
            (Ok(_), Some(Ended::NonFinite(reason))) => TrialReport::failed(reason),
            (Ok(_), Some(Ended::Pruned(reason))) => TrialReport::pruned(reason),
            (Ok(_), Some(Ended::Cancelled)) => TrialReport::cancelled(),
            // Stopped inside an epoch, before its checkpoint (a model's own early stopping
            // ends a trial short of its epochs too, and is a completed trial).
            (Ok(_), None) if stop.load(std::sync::atomic::Ordering::Relaxed) => {
                TrialReport::cancelled()
            }
            (Ok(model), None) => {
                let rows = self.scorer.train.n_rows().min(MAX_SCORED_ROWS);
                match self.scorer.score_model(&*model, rows, true) {
                    Ok(score) => TrialReport::completed(score, model),
                    Err(e) => TrialReport::failed(e),
                }
            }
        };
        report.fit_seconds = Some(fit_seconds);
        report.intermediate = log.intermediate;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::table;
    use synth_models::MetricMix;

    /// [`table`] with a column of distinct values, so no two real rows are the same.
    fn distinct_rows() -> (Table, Metadata) {
        let (mut t, mut m) = table(400);
        let values = (0..400).map(|i| Some(f64::from(i) * 1.37)).collect();
        t.columns.push(synth_table::Column {
            name: "x".into(),
            data: synth_table::ColumnData::Float(values),
        });
        let numerical = synth_table::ColumnMetadata::new(synth_table::SdType::Numerical);
        m.columns.push(("x".into(), numerical));
        (t, m)
    }

    fn scorer(score: Score) -> Scorer {
        let (t, m) = distinct_rows();
        let (train, holdout) = synth_evaluate::split(&t, 0.5, 3);
        Scorer {
            train: Arc::new(train),
            holdout: Arc::new(holdout),
            metadata: Arc::new(m),
            score,
            target: None,
            seed: 3,
        }
    }

    fn mix(floor: Option<f64>) -> Score {
        Score::Mix(MetricMix {
            weights: [(Metric::ColumnShapes, 3.0), (Metric::ColumnPairTrends, 1.0)].into(),
            privacy_floor: floor,
        })
    }

    #[test]
    fn a_mix_is_the_weighted_mean_of_its_metrics() {
        let s = scorer(mix(None));
        let sample = s.holdout.as_ref().clone();
        let shapes = scorer(Metric::ColumnShapes.into());
        let pairs = scorer(Metric::ColumnPairTrends.into());
        let (a, b) = (
            shapes.score(&sample, true).unwrap(),
            pairs.score(&sample, true).unwrap(),
        );
        let mixed = s.score(&sample, true).unwrap();
        assert!(
            (mixed - (3.0 * a + b) / 4.0).abs() < 1e-12,
            "{mixed} {a} {b}"
        );
    }

    #[test]
    fn a_sample_that_copies_its_training_rows_fails_the_privacy_floor() {
        let s = scorer(mix(Some(0.5)));
        let copied = s.train.as_ref().clone();
        let err = s.score(&copied, true).unwrap_err();
        assert!(err.contains("below the floor 0.5"), "{err}");
        // Scores along the way skip the floor; unseen real rows keep it.
        assert!(s.score(&copied, false).is_ok());
        let unseen = s.holdout.as_ref().clone();
        assert!(s.privacy(&unseen).unwrap() > 0.9);
        assert!(s.score(&unseen, true).is_ok());
    }
}
