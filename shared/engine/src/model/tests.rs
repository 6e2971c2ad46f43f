//! The scaffold with a model of its own, and the saved models of format 1.
//!
//! [`Mean`] is the smallest model the scaffold admits — one trained row, the mean of the
//! encoded table, learnt by Adam and sampled as is — so that these tests show what a model
//! must supply (networks, a training step, a sampler, hyperparameters) and that the rest
//! (fitting, early stopping, saving, loading, sampling) comes from the scaffold.

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::json;
use synth_search::{Dimension, ParamKind, SearchSpace, Tunable};

use super::*;
use crate::device::EngineDevice;
use crate::optim::{Adam, AdamConfig};
use crate::synthesizer::FitOptions;
use crate::test_support::table;
use synth_models::{Bound, Field, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MeanParams {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    /// Epochs without improvement of the loss before training stops.
    patience: usize,
}

impl Default for MeanParams {
    fn default() -> Self {
        Self {
            epochs: 500,
            batch_size: 50,
            learning_rate: 0.05,
            patience: 3,
        }
    }
}

impl Hyperparameters for MeanParams {
    type Model = Mean;
}

impl Params for MeanParams {
    const NAME: &'static str = "mean";
    const FIELDS: &'static [Field] = &[
        Field::new("epochs", Bound::Count, "Passes over the rows."),
        Field::new("batch_size", Bound::Count, "Rows per step."),
        Field::new("learning_rate", Bound::Positive, "Adam's learning rate."),
        Field::new(
            "patience",
            Bound::Count,
            "Epochs without improvement before stopping.",
        ),
    ];
    const TUNABLE: &'static [Tunable] = &[("learning_rate", ParamKind::LogFloat)];

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn search_space() -> SearchSpace {
        SearchSpace::new(vec![Dimension::log_float("learning_rate", 1e-3, 1e-1)])
    }
}

/// One trained row, `mean.row`, sampled as every row.
struct Mean {
    row: Var,
}

#[derive(Serialize, Deserialize)]
struct MeanState {
    /// Kept in the model file, to show that a model's state round-trips.
    rows_seen: usize,
}

impl Model for Mean {
    type Params = MeanParams;
    type State = MeanState;

    fn build(spec: &Spec<'_, Self>, vb: VarBuilder<'_>) -> Result<Self> {
        let width = spec.transformer.output_width();
        let row = vb.pp("mean").uniform("row", (1, width), 0.5)?;
        Ok(Self { row })
    }

    fn start(mut start: Start<'_, Self>) -> Result<Started<Self>> {
        let (params, data) = (start.params, start.data.clone());
        let model = start.build(MeanState {
            rows_seen: data.n_rows,
        })?;
        let config = AdamConfig {
            lr: params.learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let trainer = MeanTrainer {
            row: model.net.row.clone(),
            opt: Adam::new(model.vars.trained_vars(), config)?,
            data,
            batch_size: params.batch_size,
            next: 0,
            loss: 0.0,
            early: EarlyStopping::new(params.patience, 1e-6),
        };
        Ok(Started {
            model,
            trainer: Box::new(trainer),
        })
    }

    fn generate(&self, _: &Spec<'_, Self>, request: Request<'_>) -> Result<Vec<f32>> {
        let row = self.row.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        Ok(row.repeat(request.rows))
    }
}

struct MeanTrainer {
    row: Var,
    opt: Adam,
    data: Arc<Encoded>,
    batch_size: usize,
    next: usize,
    loss: f64,
    early: EarlyStopping,
}

impl Trainer for MeanTrainer {
    fn begin_epoch(&mut self, _: usize) -> Result<usize> {
        self.next = 0;
        Ok(self.data.n_rows.div_ceil(self.batch_size))
    }

    /// Squared distance of the row from the batch's rows.
    fn step(&mut self) -> Result<()> {
        let (w, end) = (
            self.data.width,
            (self.next + self.batch_size).min(self.data.n_rows),
        );
        let rows = self.data.data[self.next * w..end * w].to_vec();
        let batch = Tensor::from_vec(rows, (end - self.next, w), &Device::Cpu)?;
        self.next = end;
        let loss = batch
            .broadcast_sub(self.row.as_tensor())?
            .sqr()?
            .mean_all()?;
        self.opt.step(&loss.backward()?)?;
        self.loss = loss.to_scalar::<f32>()? as f64;
        Ok(())
    }

    fn end_epoch(&mut self) -> Result<Losses> {
        Ok(Losses {
            generator: self.loss,
            critic: None,
            validation: None,
        })
    }

    fn early_stop(&mut self, report: &EpochReport) -> Result<FitControl> {
        Ok(self.early.observe(report.generator_loss))
    }
}

#[test]
fn a_model_of_its_own_fits_stops_early_saves_loads_and_samples() {
    let (t, m) = table(200);
    let fit = || Fitted::<Mean>::fit(&t, &m, MeanParams::default(), FitOptions::default());
    let model = fit().unwrap();
    let epochs = model.loss_history().len();
    // Converged and stopped on its own, long before 500 epochs.
    assert!((4..500).contains(&epochs), "{epochs} epochs");
    let losses: Vec<f64> = model
        .loss_history()
        .iter()
        .map(|r| r.generator_loss)
        .collect();
    assert!(losses[epochs - 1] < losses[0], "{losses:?}");
    // The row is the mean of the encoded table.
    let data = model.transformer().transform(&t).unwrap();
    let row = model
        .net
        .row
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (j, v) in row.iter().enumerate() {
        let mean = (0..data.n_rows)
            .map(|i| data.data[i * data.width + j])
            .sum::<f32>()
            / data.n_rows as f32;
        assert!((v - mean).abs() < 0.05, "column {j}: {v} vs {mean}");
    }
    // The same seed fits the same model.
    assert_eq!(
        fit().unwrap().sample(20, 1).unwrap(),
        model.sample(20, 1).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join(crate::MODEL_FILE)).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["model"], "mean");
    assert_eq!(saved["rows_seen"], json!(200));
    let loaded = Fitted::<Mean>::load(dir.path(), EngineDevice::Cpu).unwrap();
    assert_eq!(loaded.state.rows_seen, 200);
    assert_eq!(loaded.sample(30, 2).unwrap(), model.sample(30, 2).unwrap());
    assert_eq!(loaded.loss_history(), model.loss_history());
    // Another model's loader refuses it.
    assert!(crate::Tvae::load(dir.path(), EngineDevice::Cpu).is_err());
}

#[test]
fn saved_models_of_format_1_are_read_and_written_as_before() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1");
    for name in ["ctgan", "tvae"] {
        let dir = fixtures.join(name);
        let model = crate::load(&dir, EngineDevice::Cpu).unwrap();
        assert_eq!(model.model_name(), name);
        let out = tempfile::tempdir().unwrap();
        model.save(out.path()).unwrap();
        // The model file comes back byte for byte, the weights tensor for tensor.
        let read = |d: &Path| std::fs::read(d.join(crate::MODEL_FILE)).unwrap();
        assert!(read(&dir) == read(out.path()), "{name}: model.json differs");
        let weights = |d: &Path| {
            let w = candle_core::safetensors::load(d.join(crate::WEIGHTS_FILE), &Device::Cpu);
            let mut w: Vec<(String, Vec<f32>)> = w
                .unwrap()
                .into_iter()
                .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
                .collect();
            w.sort_by(|a, b| a.0.cmp(&b.0));
            w
        };
        assert_eq!(weights(&dir), weights(out.path()), "{name}");
        // And it samples the table's columns, the same from either copy.
        let again = crate::load(out.path(), EngineDevice::Cpu).unwrap();
        let sample = model.sample(40, 3).unwrap();
        assert_eq!(sample, again.sample(40, 3).unwrap());
        let names: Vec<&str> = sample.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!((sample.n_rows(), names), (40, vec!["size", "kind", "ok"]));
        assert_eq!(model.loss_history().len(), 2);
    }
}
