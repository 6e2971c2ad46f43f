//! CTGAN's conditional vector and training-by-sampling. Each training row is conditioned on
//! one discrete column's value: the column is picked uniformly, the value with probability ∝
//! log(count + 1) (so rare categories are seen), and the real row shown to the critic is one
//! that has that value. At sampling time the values are drawn with their real frequencies.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::random::{EngineRng, weighted_index};
use crate::transformer::{DiscreteSpan, Encoded};

/// Category frequencies of the discrete columns: what sampling needs, kept with the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CondSpace {
    pub spans: Vec<DiscreteSpan>,
    /// Real count of each category of each discrete column.
    pub counts: Vec<Vec<u64>>,
}

impl CondSpace {
    /// Width of the conditional vector: every discrete column's one-hot, side by side.
    pub fn dim(&self) -> usize {
        self.spans.iter().map(|s| s.width).sum()
    }

    /// Where discrete column `i`'s one-hot starts in the conditional vector.
    pub fn cond_offset(&self, i: usize) -> usize {
        self.spans[..i].iter().map(|s| s.width).sum()
    }

    /// Conditional vectors for sampling: a column uniformly, a category with its real
    /// frequency (the reference draws with the training log-frequencies here, which skews
    /// the marginals of rare categories upwards).
    pub fn sample_original(&self, batch: usize, rng: &mut EngineRng) -> Vec<f32> {
        let dim = self.dim();
        let mut cond = vec![0f32; batch * dim];
        if self.spans.is_empty() {
            return cond;
        }
        let probs: Vec<Vec<f64>> = self
            .counts
            .iter()
            .map(|c| c.iter().map(|&x| x as f64).collect())
            .collect();
        for row in cond.chunks_exact_mut(dim) {
            let col = rng.random_range(0..self.spans.len());
            row[self.cond_offset(col) + weighted_index(rng, &probs[col])] = 1.0;
        }
        cond
    }

    /// Conditional vectors that all fix discrete column `col` to category `slot`.
    pub fn fixed(&self, batch: usize, col: usize, slot: usize) -> Vec<f32> {
        let dim = self.dim();
        let mut cond = vec![0f32; batch * dim];
        for row in cond.chunks_exact_mut(dim) {
            row[self.cond_offset(col) + slot] = 1.0;
        }
        cond
    }
}

/// Training-time sampler over the encoded training data.
pub struct TrainingSampler {
    pub space: CondSpace,
    /// Row indices holding each category of each discrete column.
    rows_by_category: Vec<Vec<Vec<u32>>>,
    /// Per column, the probability of drawing each category during training.
    train_probs: Vec<Vec<f64>>,
}

/// One batch of conditions: the conditional vectors and which column / category each row
/// was conditioned on.
pub struct CondBatch {
    pub cond: Vec<f32>,
    pub columns: Vec<usize>,
    pub categories: Vec<usize>,
}

impl TrainingSampler {
    pub fn new(data: &Encoded, spans: Vec<DiscreteSpan>, log_frequency: bool) -> Self {
        let mut rows_by_category = Vec::with_capacity(spans.len());
        let mut counts = Vec::with_capacity(spans.len());
        for s in &spans {
            let mut rows = vec![Vec::new(); s.width];
            for (i, row) in data.data.chunks_exact(data.width).enumerate() {
                let span = &row[s.offset..s.offset + s.width];
                if let Some(k) = span.iter().position(|v| *v == 1.0) {
                    rows[k].push(i as u32);
                }
            }
            counts.push(rows.iter().map(|r| r.len() as u64).collect::<Vec<_>>());
            rows_by_category.push(rows);
        }
        let train_probs = counts
            .iter()
            .map(|c| {
                c.iter()
                    .map(|&x| {
                        if log_frequency {
                            (x as f64 + 1.0).ln()
                        } else {
                            x as f64
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            space: CondSpace { spans, counts },
            rows_by_category,
            train_probs,
        }
    }

    /// Training conditions: a column uniformly, a category by (log-)frequency.
    pub fn sample_cond(&self, batch: usize, rng: &mut EngineRng) -> Option<CondBatch> {
        if self.space.spans.is_empty() {
            return None;
        }
        let dim = self.space.dim();
        let mut out = CondBatch {
            cond: vec![0f32; batch * dim],
            columns: Vec::with_capacity(batch),
            categories: Vec::with_capacity(batch),
        };
        for row in out.cond.chunks_exact_mut(dim) {
            let col = rng.random_range(0..self.space.spans.len());
            let cat = weighted_index(rng, &self.train_probs[col]);
            row[self.space.cond_offset(col) + cat] = 1.0;
            out.columns.push(col);
            out.categories.push(cat);
        }
        Some(out)
    }

    /// Real rows, one per (column, category) pair, each drawn among the rows that have it;
    /// uniformly random rows when there are no conditions.
    pub fn sample_rows(
        &self,
        data: &Encoded,
        picks: Option<(&[usize], &[usize])>,
        batch: usize,
        rng: &mut EngineRng,
    ) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch * data.width);
        for b in 0..batch {
            let i = match picks {
                Some((cols, cats)) => {
                    let rows = &self.rows_by_category[cols[b]][cats[b]];
                    rows[rng.random_range(0..rows.len())] as usize
                }
                None => rng.random_range(0..data.n_rows),
            };
            out.extend_from_slice(&data.data[i * data.width..(i + 1) * data.width]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    #[test]
    fn conditions_pick_real_rows_with_the_chosen_category() {
        // Two discrete columns (widths 2 and 3) behind a one-wide continuous value.
        let rows: Vec<[f32; 6]> = (0..60)
            .map(|i| {
                let mut r = [i as f32, 0., 0., 0., 0., 0.];
                r[1 + usize::from(i % 10 == 0)] = 1.0;
                r[3 + i % 3] = 1.0;
                r
            })
            .collect();
        let data = Encoded {
            data: rows.concat(),
            n_rows: 60,
            width: 6,
        };
        let spans = vec![
            DiscreteSpan {
                column: "a".into(),
                offset: 1,
                width: 2,
            },
            DiscreteSpan {
                column: "b".into(),
                offset: 3,
                width: 3,
            },
        ];
        let sampler = TrainingSampler::new(&data, spans, true);
        assert_eq!(sampler.space.counts, vec![vec![54, 6], vec![20, 20, 20]]);
        let mut rng = rng_for(1, 0);
        let batch = sampler.sample_cond(2000, &mut rng).unwrap();
        let real = sampler.sample_rows(
            &data,
            Some((&batch.columns, &batch.categories)),
            2000,
            &mut rng,
        );
        let mut rare = 0;
        for b in 0..2000 {
            let (col, cat) = (batch.columns[b], batch.categories[b]);
            let row = &real[b * 6..(b + 1) * 6];
            let cond = &batch.cond[b * 5..(b + 1) * 5];
            assert_eq!(cond.iter().sum::<f32>(), 1.0);
            let (off, cond_off) = if col == 0 { (1, 0) } else { (3, 2) };
            assert_eq!(row[off + cat], 1.0);
            assert_eq!(cond[cond_off + cat], 1.0);
            rare += usize::from(col == 0 && cat == 1);
        }
        // Log-frequency: P(rare) = ½ · ln 7 / (ln 55 + ln 7) ≈ 0.163 rather than ½ · 0.1.
        let p = rare as f64 / 2000.0;
        assert!((p - 0.163).abs() < 0.03, "{p}");
    }
}
