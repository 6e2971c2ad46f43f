//! The autoregressive model (after TabularARGN, Tiwald et al. 2025): a table is learnt as
//! p(x) = Π p(x_k | x_<k) over its columns, every column discretised into tokens
//! ([`tokens`]) so each factor is a softmax, one small regressor per column
//! ([`network`]), trained in the table's column order for a quarter of the rows and in
//! a random order for the others ([`train`]). Because every order was trained, one fitted
//! model samples any columns given any others
//! ([`sample`]): fixed values, seed rows to complete, the nulls of a table to impute and
//! a category rebalanced to given shares are all met exactly, without rejection.
//!
//! Rare values are protected by default: categories seen in fewer than `k` rows and the
//! most extreme numbers are never reproduced ([`Synthesizer::protected`] says what was).
//! Sampling takes a temperature; training stops early on held-out rows and keeps the
//! best epoch's weights.
//!
//! It does not use the GMM [`crate::DataTransformer`] the other models share (its
//! encoding is tokens, not a mixture), so it is a [`Synthesizer`] of its own rather than a
//! [`crate::model::Model`]; it uses the same epoch loop, callbacks, early stopping,
//! optimiser and saved-weights format.

pub mod network;
pub mod sample;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod train;

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
pub use synth_models::ArgnParams;
use synth_models::Params;
use synth_table::{Metadata, Table};

use crate::condition::Condition;
use crate::device::EngineDevice;
use crate::error::{EngineError, Result};
use crate::model::fit::run_epochs;
use crate::model::saved::{check_saved_kind, save_weights};
use crate::nn::{VarBuilder, Vars};
use crate::random::rng_for;
use crate::synthesizer::{EpochReport, FitOptions, Synthesizer};
use network::{ArgnConfig, ArgnNet};
use sample::{Asked, Cell, draw_tokens, is_null, resolve};
pub use tokens::Protected;
use tokens::{Codec, Range, Tokenizer, merge, named};
use train::{ArgnTrainer, TokenRows};

/// Tables of fewer rows are trained a second time on every row (see [`Argn::fit`]).
/// Measured (3 seeds, SDMetrics quality): seattle_weather's 730 rows 0.921 → 0.926,
/// penguins' 172 rows 0.854 → 0.865, the held-out protection staying above 0.9.
pub const REFIT_ROWS: usize = 5_000;

/// The saved-model format of this model.
const FORMAT_VERSION: u32 = 1;

/// A fitted autoregressive model: its tokenizer and network; nothing of the training
/// rows beyond the tokens' values and bin edges.
pub struct Argn {
    params: ArgnParams,
    tokenizer: Tokenizer,
    net: ArgnNet,
    vars: Vars,
    history: Vec<EpochReport>,
}

/// What `model.json` holds.
#[derive(Serialize, Deserialize)]
struct Saved<P, T, H> {
    model: String,
    format_version: u32,
    params: P,
    tokenizer: T,
    loss_history: H,
}

/// The embedding size of a table of `columns` modelled columns when the parameters leave
/// it open: 256 / columns, between 4 and 16. Each column's regressor reads every column's
/// embedding, so its input, its weights and their memory grow as columns × size; on a
/// 5,000-row table of 100 columns, size 16 scored 0.844 SDMetrics quality in 293 s and
/// 2.6 GB, size 8 0.885 in 173 s and 1.5 GB, size 4 0.897 in 98 s and 0.9 GB. Tables of up
/// to 16 columns keep 16.
pub fn default_embedding_dim(columns: usize) -> usize {
    (256 / columns.max(1)).clamp(4, 16)
}

fn config(params: &ArgnParams, tokenizer: &Tokenizer) -> ArgnConfig {
    ArgnConfig {
        vocab: tokenizer.modelled().iter().map(|m| m.1).collect(),
        embedding_dim: params
            .embedding_dim
            .unwrap_or_else(|| default_embedding_dim(tokenizer.modelled().len())),
        hidden: params.hidden_dims.clone(),
        ordinal: tokenizer
            .modelled()
            .iter()
            .map(|&(i, _)| tokenizer.columns[i].ordinal())
            .collect(),
    }
}

impl Argn {
    /// Reads the table into tokens and trains the network on them. A table of fewer than
    /// [`REFIT_ROWS`] rows whose training stopped early is trained again on every row, for
    /// as many epochs as its best held-out epoch (its held-out rows are too many to leave
    /// out); the loss history is the first pass's, the one with held-out losses.
    pub fn fit(
        table: &Table,
        metadata: &Metadata,
        params: ArgnParams,
        mut options: FitOptions,
    ) -> Result<Self> {
        params.validate()?;
        let started = Instant::now();
        let tokenizer = Tokenizer::fit(table, metadata, params.max_bins, params.rare_threshold)?;
        let tokens = tokenizer.encode(table)?;
        if options.stopped() {
            return Err(EngineError::Stopped);
        }
        let mut model = Self::untrained(params, tokenizer, &options)?;
        let (history, stopped_early) = model.train(&tokens, started, &mut options, 1)?;
        let best = history
            .iter()
            .filter_map(|r| r.validation_loss.map(|l| (r.epoch, l)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(epoch, _)| epoch);
        if let (true, Some(best)) = (stopped_early && table.n_rows() < REFIT_ROWS, best) {
            let params = ArgnParams {
                epochs: best,
                validation_share: 0.0,
                ..model.params.clone()
            };
            let mut again = FitOptions {
                seed: options.seed,
                device: options.device,
                stop: options.stop.clone(),
                max_seconds: options.max_seconds,
                ..FitOptions::default()
            };
            let mut refit = Self::untrained(params, model.tokenizer.clone(), &again)?;
            refit.train(&tokens, started, &mut again, 2)?;
            // Cancelled during the second pass: the first pass's model stands.
            if !again.stopped() {
                refit.params = model.params;
                model = refit;
            }
        }
        model.history = history;
        // See `Fitted::fit`: the GPU's last updates land before the model leaves this thread.
        options.device.candle()?.synchronize()?;
        Ok(model)
    }

    /// The network for `tokenizer`, its weights drawn from the fit's seed.
    fn untrained(params: ArgnParams, tokenizer: Tokenizer, options: &FitOptions) -> Result<Self> {
        let device = options.device.candle()?;
        let mut rng = rng_for(options.seed, 1);
        let vb = VarBuilder::seeded(&mut rng, DType::F32, &device);
        let net = ArgnNet::new(&config(&params, &tokenizer), vb.clone())?;
        Ok(Self {
            params,
            tokenizer,
            net,
            vars: vb.vars(),
            history: Vec::new(),
        })
    }

    /// Trains the network in place on `tokens`; returns the epochs' reports and whether the
    /// held-out loss ended training. `pass` seeds the pass's own draws.
    fn train(
        &self,
        tokens: &[u32],
        started: Instant,
        options: &mut FitOptions,
        pass: u64,
    ) -> Result<(Vec<EpochReport>, bool)> {
        let vocab: Vec<usize> = self.tokenizer.modelled().iter().map(|m| m.1).collect();
        let data = TokenRows {
            tokens,
            columns: vocab.len(),
            vocab: &vocab,
        };
        let mut trainer = ArgnTrainer::new(
            &self.net,
            data,
            self.vars.trained_vars(),
            &self.params,
            rng_for(options.seed, 1 + pass),
            options.seed,
        )?;
        let history = run_epochs(self.params.epochs, started, options, self, &mut trainer)?;
        Ok((history, trainer.stopped_early()))
    }

    /// Loads a model saved by [`Synthesizer::save`] onto `device`.
    pub fn load(dir: &Path, device: EngineDevice) -> Result<Self> {
        let text = std::fs::read_to_string(dir.join(crate::MODEL_FILE))?;
        let saved: Saved<ArgnParams, Tokenizer, Vec<EpochReport>> = serde_json::from_str(&text)?;
        check_saved_kind(
            (&saved.model, saved.format_version),
            (ArgnParams::NAME, FORMAT_VERSION),
        )?;
        saved.params.validate()?;
        let device: Device = device.candle()?;
        let weights = candle_core::safetensors::load(dir.join(crate::WEIGHTS_FILE), &device)?;
        let vb = VarBuilder::from_saved(weights, DType::F32, &device);
        let net = ArgnNet::new(&config(&saved.params, &saved.tokenizer), vb.clone())?;
        device.synchronize()?;
        Ok(Self {
            params: saved.params,
            tokenizer: saved.tokenizer,
            net,
            vars: vb.vars(),
            history: saved.loss_history,
        })
    }

    pub fn params(&self) -> &ArgnParams {
        &self.params
    }

    /// The modelled columns' indices into the tokenizer's columns.
    fn modelled(&self) -> Vec<usize> {
        self.tokenizer.modelled().iter().map(|m| m.0).collect()
    }

    /// The modelled position of `column` and the token of each category in `shares`, each
    /// read (and refused) as an equality condition on it would be.
    fn category_tokens(
        &self,
        modelled: &[usize],
        column: &str,
        shares: &[(String, f64)],
    ) -> Result<(usize, Vec<u32>)> {
        let mut tokens = Vec::with_capacity(shares.len());
        for (category, _) in shares {
            let mut weights = self.base_weights();
            let condition = [Condition::equals(column, category)];
            let asked = resolve(&self.tokenizer, modelled, &condition, &mut weights)?;
            if !asked.values.is_empty() {
                return Err(EngineError::InvalidCondition(format!(
                    "column {column:?} is numerical: rebalance a categorical column"
                )));
            }
            let token = asked.fixed.values().next();
            tokens.push(*token.expect("an equality fixes a token"));
        }
        let j = self
            .tokenizer
            .columns
            .iter()
            .position(|c| c.name() == column)
            .and_then(|i| modelled.iter().position(|&m| m == i))
            .expect("resolved above");
        Ok((j, tokens))
    }

    fn base_weights(&self) -> Vec<Vec<f64>> {
        self.modelled()
            .iter()
            .map(|&i| self.tokenizer.columns[i].base_weights())
            .collect()
    }

    /// Draws the cells, then writes every column: drawn tokens decoded (inside `asked`'s
    /// ranges, its exact numbers as asked), and the `given` table's cells where `keep`.
    fn draw(
        &self,
        cells: &[Cell],
        weights: &[Vec<f64>],
        asked: &Asked,
        given: Option<(&Table, &[bool])>,
        seed: u64,
    ) -> Result<Table> {
        let modelled = self.modelled();
        let c = modelled.len();
        let n = cells.len() / c.max(1);
        // Asked columns first (ranges before the rest), then the table's order.
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by_key(|j| {
            (
                !asked.fixed.contains_key(j),
                !asked.ranges.contains_key(j),
                *j,
            )
        });
        let mut rng = rng_for(seed, 10);
        let tokens = draw_tokens(
            &self.net,
            cells,
            weights,
            &order,
            self.params.temperature,
            &mut rng,
        )?;
        let mut columns = Vec::with_capacity(self.tokenizer.columns.len());
        for (i, codec) in self.tokenizer.columns.iter().enumerate() {
            let j = modelled.iter().position(|&m| m == i);
            let column_tokens: Vec<u32> = match j {
                Some(j) => (0..n).map(|r| tokens[r * c + j]).collect(),
                None => vec![0; n],
            };
            let range = j
                .and_then(|j| asked.ranges.get(&j).copied())
                .unwrap_or(Range::ALL);
            let mut data = codec.decode(&column_tokens, range, &mut rng_for(seed, 3000 + i as u64));
            if let Some(x) = j.and_then(|j| asked.values.get(&j)) {
                data = numbers_like(&data, *x, n);
            }
            if let Some((table, keep)) = given
                && let Some(g) = table.column(codec.name())
            {
                let keep: Vec<bool> = match j {
                    Some(j) => (0..n).map(|r| keep[r * c + j]).collect(),
                    None => vec![true; n],
                };
                data = merge(data, &g.data, &keep)?;
            }
            columns.push(named(codec.name(), data));
        }
        Table::new(columns).map_err(EngineError::InvalidData)
    }

    /// Imputing: a personal column is generated, not modelled, so the draw keeps the given
    /// one as it is; its nulls take values of its real shapes here.
    fn fill_personal(&self, out: &mut Table, known: &Table, seed: u64) -> Result<()> {
        for (i, codec) in self.tokenizer.columns.iter().enumerate() {
            let (Codec::Id(id), Some(given)) = (codec, known.column(codec.name())) else {
                continue;
            };
            let n = given.data.len();
            let Some(drawn) = id.generate_present(n, &mut rng_for(seed, 5000 + i as u64)) else {
                continue;
            };
            let keep: Vec<bool> = (0..n).map(|r| !is_null(&given.data, r)).collect();
            if let Some(col) = out.columns.iter_mut().find(|c| c.name == codec.name()) {
                col.data = merge(drawn, &given.data, &keep)?;
            }
        }
        Ok(())
    }
}

/// `n` copies of the number `x` in the type of `like`.
fn numbers_like(like: &synth_table::ColumnData, x: f64, n: usize) -> synth_table::ColumnData {
    use synth_table::ColumnData;
    match like {
        ColumnData::Int(_) => ColumnData::Int(vec![Some(x.round() as i64); n]),
        ColumnData::Datetime(_) => ColumnData::Datetime(vec![Some(x.round() as i64); n]),
        _ => ColumnData::Float(vec![Some(x); n]),
    }
}

impl Synthesizer for Argn {
    fn model_name(&self) -> &'static str {
        ArgnParams::NAME
    }

    fn sample(&self, n: usize, seed: u64) -> Result<Table> {
        self.sample_conditional(n, &[], seed)
    }

    /// Exact: equalities are given to every row, ranges restrict their column's draw.
    fn sample_conditional(&self, n: usize, conditions: &[Condition], seed: u64) -> Result<Table> {
        let modelled = self.modelled();
        let mut weights = self.base_weights();
        let asked = resolve(&self.tokenizer, &modelled, conditions, &mut weights)?;
        let c = modelled.len();
        let mut cells = vec![Cell::Draw; n * c];
        for (&j, &t) in &asked.fixed {
            for r in 0..n {
                cells[r * c + j] = Cell::Seen(t);
            }
        }
        self.draw(&cells, &weights, &asked, None, seed)
    }

    /// Every cell of `known` is kept and seen by the model; the columns `known` lacks (and
    /// its nulls, with `fill_nulls`) are drawn given them.
    fn complete(&self, known: &Table, fill_nulls: bool, seed: u64) -> Result<Table> {
        if let Some(extra) = known
            .columns
            .iter()
            .find(|col| !self.tokenizer.columns.iter().any(|c| c.name() == col.name))
        {
            return Err(EngineError::InvalidData(format!(
                "column {:?} is not one the model learnt",
                extra.name
            )));
        }
        let modelled = self.modelled();
        let (n, c) = (known.n_rows(), modelled.len());
        let mut cells = vec![Cell::Draw; n * c];
        for (j, &i) in modelled.iter().enumerate() {
            let codec = &self.tokenizer.columns[i];
            let Some(given) = known.column(codec.name()) else {
                continue;
            };
            let tokens = codec.tokens(&given.data)?;
            for (r, token) in tokens.into_iter().enumerate() {
                cells[r * c + j] = match (is_null(&given.data, r), token) {
                    (true, _) if fill_nulls => Cell::Draw,
                    (_, Some(t)) => Cell::Seen(t),
                    // Seed rows ask for rows with their values: one the model cannot place is
                    // refused, as a condition on it is. A table being imputed keeps its own.
                    (false, None) if !fill_nulls => {
                        let value = crate::transformer::discrete::value_key(&given.data, r);
                        return Err(EngineError::InvalidCondition(format!(
                            "seed row {}: column {:?} has no category {:?}",
                            r + 1,
                            codec.name(),
                            value.unwrap_or_default()
                        )));
                    }
                    (_, None) => Cell::Hidden,
                };
            }
        }
        let keep: Vec<bool> = cells.iter().map(|cell| *cell != Cell::Draw).collect();
        let mut weights = self.base_weights();
        if fill_nulls {
            // A given column's nulls are filled, never drawn null again.
            for (j, &i) in modelled.iter().enumerate() {
                let codec = &self.tokenizer.columns[i];
                if known.column(codec.name()).is_some()
                    && let Some(null) = codec.null_token()
                    && weights[j]
                        .iter()
                        .enumerate()
                        .any(|(t, w)| t != null && *w > 0.0)
                {
                    weights[j][null] = 0.0;
                }
            }
        }
        let mut out = self.draw(
            &cells,
            &weights,
            &Asked::default(),
            Some((known, &keep)),
            seed,
        )?;
        if fill_nulls {
            self.fill_personal(&mut out, known, seed)?;
        }
        Ok(out)
    }

    /// Exact: each row is given its category, the counts of `n` × share rounded by
    /// largest remainder and the rows shuffled.
    fn rebalance(
        &self,
        n: usize,
        column: &str,
        shares: &[(String, f64)],
        seed: u64,
    ) -> Result<Table> {
        let bad = |m: String| EngineError::InvalidCondition(m);
        if shares.is_empty() || shares.iter().any(|(_, s)| !(s.is_finite() && *s >= 0.0)) {
            return Err(bad(format!(
                "the shares of column {column:?} must be non-negative numbers"
            )));
        }
        // Shares are of all rows: those not listed go to the other categories, as the model
        // draws them; more than all rows is a mistake, not something to scale down.
        let total: f64 = shares.iter().map(|(_, s)| s).sum();
        if total > 1.0 + 1e-9 {
            return Err(bad(format!(
                "the shares of column {column:?} sum to {total}, more than 1"
            )));
        }
        let modelled = self.modelled();
        let (j, tokens) = self.category_tokens(&modelled, column, shares)?;
        // The rows left over draw the column from its other categories.
        let rest = (1.0 - total).max(0.0);
        let mut others = self.base_weights();
        for &t in &tokens {
            others[j][t as usize] = 0.0;
        }
        if rest > 1e-9 && others[j].iter().all(|w| *w <= 0.0) {
            return Err(bad(format!(
                "the shares of column {column:?} sum to {total}, less than 1, and no other \
                 category is left to take the rest"
            )));
        }
        let mut weights: Vec<f64> = shares.iter().map(|(_, s)| *s).collect();
        weights.push(rest);
        let counts = crate::transformer::largest_remainders(&weights, n);
        let mut rows: Vec<Option<u32>> = tokens
            .iter()
            .zip(&counts)
            .flat_map(|(&t, &k)| std::iter::repeat_n(Some(t), k))
            .chain(std::iter::repeat_n(None, counts[tokens.len()]))
            .collect();
        rand::seq::SliceRandom::shuffle(&mut rows[..], &mut rng_for(seed, 12));
        let c = modelled.len();
        let mut cells = vec![Cell::Draw; n * c];
        for (r, t) in rows.into_iter().enumerate() {
            if let Some(t) = t {
                cells[r * c + j] = Cell::Seen(t);
            }
        }
        let asked = Asked::default();
        self.draw(&cells, &others, &asked, None, seed)
    }

    fn protected(&self) -> Vec<Protected> {
        self.tokenizer.protected()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        save_weights(self.vars.all(), dir)?;
        let saved = Saved {
            model: ArgnParams::NAME.to_owned(),
            format_version: FORMAT_VERSION,
            params: &self.params,
            tokenizer: &self.tokenizer,
            loss_history: &self.history[..],
        };
        std::fs::write(dir.join(crate::MODEL_FILE), serde_json::to_vec(&saved)?)?;
        Ok(())
    }

    fn loss_history(&self) -> &[EpochReport] {
        &self.history
    }
}
