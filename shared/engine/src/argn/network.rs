//! The autoregressive model's network: one embedding per column value, and per column a
//! regressor (a small ReLU MLP) from the embeddings of the columns it may see to that
//! column's logits. Which columns a regressor sees is a mask per row: the columns before it
//! in the row's order (training gives each row an order), or the cells a caller gave
//! and those already sampled. A masked column contributes nothing, so a regressor never
//! sees its own column or a later one.
//!
//! Besides its embedding, each value is seen as one number: its place in the column's
//! order (−1 the least … 1 the greatest; 0 for categories and nulls). Quantile bins are
//! tokens of their own, so without it a regressor would have to learn from the data alone
//! that neighbouring bins are alike; with it, a column that rises with another is one
//! weight away.

use candle_core::{Module, Tensor};

use crate::error::Result;
use crate::nn::{Linear, VarBuilder};

/// The network's shape.
#[derive(Debug, Clone)]
pub struct ArgnConfig {
    /// Tokens of each modelled column, in order.
    pub vocab: Vec<usize>,
    pub embedding_dim: usize,
    pub hidden: Vec<usize>,
    /// Each column's tokens' places in its order (see the module docs).
    pub ordinal: Vec<Vec<f32>>,
}

/// One column's regressor.
struct Regressor {
    hidden: Vec<Linear>,
    out: Linear,
}

/// Embeddings and regressors.
pub struct ArgnNet {
    /// Every column's value embeddings, stacked: column `j`'s token `t` is row
    /// `offsets[j] + t`.
    embedding: Tensor,
    offsets: Vec<u32>,
    /// Every token's place, stacked as the embeddings are.
    ordinal: Vec<f32>,
    dim: usize,
    heads: Vec<Regressor>,
}

impl ArgnNet {
    /// `embedding` (U(±1)) and `head.{j}.hidden.{i}` / `head.{j}.out` per column.
    pub fn new(config: &ArgnConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let total: usize = config.vocab.iter().sum();
        let d = config.embedding_dim;
        let embedding = vb.uniform("embedding", (total, d), 1.0)?;
        let mut offsets = Vec::with_capacity(config.vocab.len());
        let mut at = 0u32;
        for &v in &config.vocab {
            offsets.push(at);
            at += v as u32;
        }
        let input = (d + 1) * config.vocab.len();
        let heads = config
            .vocab
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                let vb = vb.pp(format!("head.{j}"));
                let mut width = input;
                let mut hidden = Vec::with_capacity(config.hidden.len());
                for (i, &h) in config.hidden.iter().enumerate() {
                    hidden.push(Linear::new(width, h, vb.pp(format!("hidden.{i}")))?);
                    width = h;
                }
                let out = Linear::new(width, v, vb.pp("out"))?;
                Ok(Regressor { hidden, out })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embedding: embedding.as_tensor().clone(),
            offsets,
            ordinal: config.ordinal.iter().flatten().copied().collect(),
            dim: d,
            heads,
        })
    }

    pub fn columns(&self) -> usize {
        self.heads.len()
    }

    /// Width of the embedded rows: each column's embedding, then each column's place.
    pub fn width(&self) -> usize {
        (self.dim + 1) * self.heads.len()
    }

    /// The embedded rows of `tokens` (row-major, one per column): `rows × width`.
    pub fn embed(&self, tokens: &[u32], rows: usize) -> Result<Tensor> {
        let c = self.heads.len();
        let global: Vec<u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| self.offsets[i % c] + t)
            .collect();
        let places: Vec<f32> = global.iter().map(|&g| self.ordinal[g as usize]).collect();
        let device = self.embedding.device();
        let places = Tensor::from_vec(places, (rows, c), device)?;
        let ids = Tensor::from_vec(global, rows * c, device)?;
        let embedded = self
            .embedding
            .index_select(&ids, 0)?
            .reshape((rows, c * self.dim))?;
        Ok(Tensor::cat(&[&embedded, &places], 1)?)
    }

    /// The visibility of each row's columns (`rows × columns`, 1 seen, 0 not) spread over
    /// their embeddings and places: `rows × width`, for [`Self::logits`].
    pub fn spread(&self, visible: &[f32], rows: usize) -> Result<Tensor> {
        let c = self.heads.len();
        let mut out = Vec::with_capacity(rows * self.width());
        for row in visible.chunks_exact(c) {
            for v in row {
                out.extend(std::iter::repeat_n(*v, self.dim));
            }
            out.extend_from_slice(row);
        }
        Ok(Tensor::from_vec(
            out,
            (rows, self.width()),
            self.embedding.device(),
        )?)
    }

    /// Column `j`'s logits for embedded rows seen through `mask` (from [`Self::spread`]).
    pub fn logits(&self, j: usize, embedded: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let head = &self.heads[j];
        let mut x = embedded.mul(mask)?;
        for layer in &head.hidden {
            x = layer.forward_relu(&x)?;
        }
        Ok(head.out.forward(&x)?)
    }
}
