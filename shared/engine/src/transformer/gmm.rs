//! A one-dimensional variational Bayesian Gaussian mixture with a Dirichlet-process
//! (stick-breaking) prior on the weights — the model behind CTGAN's mode-specific
//! normalisation (RDT's `ClusterBasedNormalizer` uses scikit-learn's
//! `BayesianGaussianMixture`). No crate implements the DP variant, so the mean-field updates
//! are written out here by hand, and stay so, for one dimension, following scikit-learn's priors: mean prior = data
//! mean, mean precision prior 1, degrees of freedom prior 1, variance prior = data variance,
//! `reg_covar` 1e-6, k-means initialisation.
//!
//! The data are standardised before fitting (the priors are chosen from the data, so the
//! solution is the same up to the tiny `reg_covar`) which keeps datetimes in microseconds
//! and other large-scale columns numerically safe.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::random::{EngineRng, weighted_index};

/// Settings of the variational fit.
#[derive(Debug, Clone, Copy)]
pub struct GmmConfig {
    /// Upper bound on the number of components (truncation of the process).
    pub max_components: usize,
    /// Concentration of the stick-breaking prior; small values switch components off.
    pub weight_concentration_prior: f64,
    pub max_iter: usize,
    /// Stop when the mean log-normaliser moves less than this between iterations.
    pub tol: f64,
}

impl Default for GmmConfig {
    fn default() -> Self {
        Self {
            max_components: 10,
            weight_concentration_prior: 0.001,
            max_iter: 100,
            tol: 1e-6,
        }
    }
}

const REG_COVAR: f64 = 1e-6;
const MEAN_PRECISION_PRIOR: f64 = 1.0;
const DOF_PRIOR: f64 = 1.0;

/// The fitted variational posterior, in standardised units.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BayesianGmm {
    /// Centre and scale used to standardise the data.
    shift: f64,
    scale: f64,
    /// Stick-breaking Beta posteriors (a, b) per component.
    concentration_a: Vec<f64>,
    concentration_b: Vec<f64>,
    mean_precision: Vec<f64>,
    means: Vec<f64>,
    dof: Vec<f64>,
    /// Posterior scale of each component's variance (the 1-D Wishart's inverse scale / dof).
    variances: Vec<f64>,
}

impl BayesianGmm {
    /// Fits the mixture to `x` (non-empty, finite values).
    pub fn fit(x: &[f64], config: &GmmConfig, rng: &mut EngineRng) -> Self {
        assert!(!x.is_empty(), "GMM needs data");
        let n = x.len();
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        let scale = if var > 0.0 && var.is_finite() {
            var.sqrt()
        } else {
            1.0
        };
        let z: Vec<f64> = x.iter().map(|v| (v - mean) / scale).collect();
        // Prior variance: the (standardised) data variance, 1 unless the column is constant.
        let var_prior = if var > 0.0 { 1.0 } else { 1e-3 };
        let k = config.max_components.min(n).max(1);

        let labels = kmeans_1d(&z, k, rng);
        let mut resp = vec![0.0; n * k];
        for (i, &l) in labels.iter().enumerate() {
            resp[i * k + l] = 1.0;
        }
        let mut model = BayesianGmm {
            shift: mean,
            scale,
            concentration_a: vec![0.0; k],
            concentration_b: vec![0.0; k],
            mean_precision: vec![0.0; k],
            means: vec![0.0; k],
            dof: vec![0.0; k],
            variances: vec![0.0; k],
        };
        model.m_step(&z, &resp, config, var_prior);
        let mut previous = f64::NEG_INFINITY;
        for _ in 0..config.max_iter {
            let norm = model.e_step(&z, &mut resp);
            model.m_step(&z, &resp, config, var_prior);
            if (norm - previous).abs() < config.tol {
                break;
            }
            previous = norm;
        }
        model
    }

    fn m_step(&mut self, z: &[f64], resp: &[f64], config: &GmmConfig, var_prior: f64) {
        let k = self.means.len();
        let mut nk = vec![10.0 * f64::EPSILON; k];
        let mut sx = vec![0.0; k];
        for (i, &v) in z.iter().enumerate() {
            for j in 0..k {
                let r = resp[i * k + j];
                nk[j] += r;
                sx[j] += r * v;
            }
        }
        let xk: Vec<f64> = (0..k).map(|j| sx[j] / nk[j]).collect();
        let mut sk = vec![0.0; k];
        for (i, &v) in z.iter().enumerate() {
            for j in 0..k {
                sk[j] += resp[i * k + j] * (v - xk[j]).powi(2);
            }
        }
        // Stick-breaking: a_k = 1 + N_k, b_k = γ + Σ_{l>k} N_l.
        let mut tail = 0.0;
        for j in (0..k).rev() {
            self.concentration_a[j] = 1.0 + nk[j];
            self.concentration_b[j] = config.weight_concentration_prior + tail;
            tail += nk[j];
        }
        // The prior mean is the data mean: 0 after standardising.
        for j in 0..k {
            let s = sk[j] / nk[j] + REG_COVAR;
            self.mean_precision[j] = MEAN_PRECISION_PRIOR + nk[j];
            self.means[j] = nk[j] * xk[j] / self.mean_precision[j];
            self.dof[j] = DOF_PRIOR + nk[j];
            let diff = xk[j];
            self.variances[j] = (var_prior
                + nk[j] * s
                + nk[j] * MEAN_PRECISION_PRIOR / self.mean_precision[j] * diff * diff)
                / self.dof[j];
        }
    }

    /// Expected log weight of each component under the stick-breaking posterior.
    fn log_weights(&self) -> Vec<f64> {
        let k = self.means.len();
        let mut out = vec![0.0; k];
        let mut acc = 0.0;
        for (j, o) in out.iter_mut().enumerate() {
            let (a, b) = (self.concentration_a[j], self.concentration_b[j]);
            let ds = digamma(a + b);
            *o = digamma(a) - ds + acc;
            acc += digamma(b) - ds;
        }
        out
    }

    /// Per-component terms of the log posterior that do not depend on the value, computed
    /// once per pass rather than once per value: (mean, precision, constant).
    fn terms(&self) -> Vec<(f64, f64, f64)> {
        let half_ln_2pi = 0.5 * (std::f64::consts::TAU).ln();
        let log_w = self.log_weights();
        (0..self.means.len())
            .map(|j| {
                let prec = 1.0 / self.variances[j].sqrt();
                let log_lambda = std::f64::consts::LN_2 + digamma(0.5 * self.dof[j]);
                let constant = log_w[j] - half_ln_2pi + prec.ln() - 0.5 * self.dof[j].ln()
                    + 0.5 * (log_lambda - 1.0 / self.mean_precision[j]);
                (self.means[j], prec, constant)
            })
            .collect()
    }

    /// Unnormalised log posterior of each component for standardised value `v`.
    fn log_joint(v: f64, terms: &[(f64, f64, f64)], out: &mut [f64]) {
        for (o, &(mean, prec, constant)) in out.iter_mut().zip(terms) {
            let y = (v - mean) * prec;
            *o = constant - 0.5 * y * y;
        }
    }

    /// Writes the responsibilities into `resp`; returns the mean log-normaliser.
    fn e_step(&self, z: &[f64], resp: &mut [f64]) -> f64 {
        let k = self.means.len();
        let terms = self.terms();
        let mut total = 0.0;
        for (i, &v) in z.iter().enumerate() {
            let row = &mut resp[i * k..(i + 1) * k];
            Self::log_joint(v, &terms, row);
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|l| (l - m).exp()).sum();
            let norm = m + s.ln();
            for r in row.iter_mut() {
                *r = (*r - norm).exp();
            }
            total += norm;
        }
        total / z.len() as f64
    }

    /// The posterior-mean mixing weights (they sum to one).
    pub fn weights(&self) -> Vec<f64> {
        let k = self.means.len();
        let mut w = vec![0.0; k];
        let mut remaining = 1.0;
        for (j, wj) in w.iter_mut().enumerate() {
            let (a, b) = (self.concentration_a[j], self.concentration_b[j]);
            *wj = remaining * a / (a + b);
            remaining *= b / (a + b);
        }
        let s: f64 = w.iter().sum();
        w.iter().map(|v| v / s).collect()
    }

    /// Component means in data units.
    pub fn means(&self) -> Vec<f64> {
        self.means
            .iter()
            .map(|m| m * self.scale + self.shift)
            .collect()
    }

    /// Component standard deviations in data units.
    pub fn stds(&self) -> Vec<f64> {
        self.variances
            .iter()
            .map(|v| v.sqrt() * self.scale)
            .collect()
    }

    /// Posterior probability of each component for value `x` (data units).
    pub fn predict_proba(&self, x: f64, out: &mut [f64]) {
        let terms = self.terms();
        self.proba_with(x, &terms, out);
    }

    fn proba_with(&self, x: f64, terms: &[(f64, f64, f64)], out: &mut [f64]) {
        Self::log_joint((x - self.shift) / self.scale, terms, out);
        let m = out.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for o in out.iter_mut() {
            *o = (*o - m).exp();
            s += *o;
        }
        for o in out.iter_mut() {
            *o /= s;
        }
    }

    /// Posterior probabilities of many values at once (row-major, `x.len() × k`).
    pub fn predict_proba_many(&self, x: &[f64]) -> Vec<f64> {
        let k = self.means.len();
        let terms = self.terms();
        let mut out = vec![0.0; x.len() * k];
        for (i, &v) in x.iter().enumerate() {
            self.proba_with(v, &terms, &mut out[i * k..(i + 1) * k]);
        }
        out
    }
}

/// k-means on a line with k-means++ seeding; returns each value's cluster.
fn kmeans_1d(z: &[f64], k: usize, rng: &mut EngineRng) -> Vec<usize> {
    let n = z.len();
    let mut centres = vec![z[rng.random_range(0..n)]];
    let mut d2: Vec<f64> = z.iter().map(|v| (v - centres[0]).powi(2)).collect();
    while centres.len() < k {
        let next = if d2.iter().sum::<f64>() > 0.0 {
            z[weighted_index(rng, &d2)]
        } else {
            z[rng.random_range(0..n)]
        };
        centres.push(next);
        for (d, v) in d2.iter_mut().zip(z) {
            *d = d.min((v - next).powi(2));
        }
    }
    let mut labels = vec![0usize; n];
    for _ in 0..100 {
        let mut changed = false;
        for (l, v) in labels.iter_mut().zip(z) {
            let best = nearest(&centres, *v);
            if best != *l {
                *l = best;
                changed = true;
            }
        }
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for (l, v) in labels.iter().zip(z) {
            sum[*l] += v;
            count[*l] += 1;
        }
        for j in 0..k {
            if count[j] > 0 {
                centres[j] = sum[j] / count[j] as f64;
            }
        }
        if !changed {
            break;
        }
    }
    labels
}

fn nearest(centres: &[f64], v: f64) -> usize {
    let mut best = 0;
    for (j, c) in centres.iter().enumerate() {
        if (v - c).abs() < (v - centres[best]).abs() {
            best = j;
        }
    }
    best
}

/// ψ(x) for x > 0: recurrence up to 6, then the asymptotic series.
pub(crate) fn digamma(mut x: f64) -> f64 {
    let mut r = 0.0;
    while x < 10.0 {
        r -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    r + x.ln()
        - 0.5 / x
        - f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f / 132.0))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{fill_normal, rng_for};

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = −γ, ψ(0.5) = −γ − 2 ln 2, ψ(10) from tables.
        let gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + gamma).abs() < 1e-11);
        assert!((digamma(0.5) + gamma + 2.0 * 2f64.ln()).abs() < 1e-11);
        assert!((digamma(10.0) - 2.251_752_589_066_721).abs() < 1e-11);
        assert!((digamma(1e-3) - (-1_000.575_571_932_9)).abs() < 1e-8);
    }

    fn three_modes(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rng_for(seed, 0);
        let mut noise = vec![0f32; n];
        fill_normal(&mut rng, &mut noise);
        (0..n)
            .map(|i| {
                let e = noise[i] as f64;
                // 20% at −5 (σ 1), 50% at 3 (σ 0.5), 30% at 12 (σ 1.5), interleaved.
                match i % 10 {
                    0 | 1 => -5.0 + e,
                    2..=6 => 3.0 + 0.5 * e,
                    _ => 12.0 + 1.5 * e,
                }
            })
            .collect()
    }

    #[test]
    fn recovers_means_weights_and_scales_of_three_modes() {
        let x = three_modes(4000, 7);
        // Run to convergence: with the reference's 100 iterations the widest mode can still
        // be split between two nearby components that are slowly merging.
        let config = GmmConfig {
            max_iter: 2000,
            tol: 1e-9,
            ..GmmConfig::default()
        };
        let gmm = BayesianGmm::fit(&x, &config, &mut rng_for(1, 0));
        let w = gmm.weights();
        let (mu, sd) = (gmm.means(), gmm.stds());
        let mut kept: Vec<(f64, f64, f64)> = (0..w.len())
            .filter(|&j| w[j] > 0.005)
            .map(|j| (mu[j], w[j], sd[j]))
            .collect();
        kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(
            kept.len(),
            3,
            "the DP prior should switch off the extra components: {kept:?}"
        );
        for ((m, wt, s), (em, ew, es)) in
            kept.iter()
                .zip([(-5.0, 0.2, 1.0), (3.0, 0.5, 0.5), (12.0, 0.3, 1.5)])
        {
            assert!((m - em).abs() < 0.1, "mean {m} vs {em}");
            assert!((wt - ew).abs() < 0.02, "weight {wt} vs {ew}");
            assert!((s - es).abs() < 0.1 * es, "std {s} vs {es}");
        }
        // The posterior assigns a value at a mode's centre to that mode.
        let mut p = vec![0.0; w.len()];
        gmm.predict_proba(12.0, &mut p);
        let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert!((mu[best] - 12.0).abs() < 0.2 && p[best] > 0.99);
    }

    #[test]
    fn handles_constant_and_large_scale_columns() {
        let constant = vec![4.0; 50];
        let gmm = BayesianGmm::fit(&constant, &GmmConfig::default(), &mut rng_for(1, 0));
        let w = gmm.weights();
        let j = (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap();
        assert!((gmm.means()[j] - 4.0).abs() < 1e-9 && w[j] > 0.9);
        // Microsecond timestamps around 2020 with a spread of days.
        let ts: Vec<f64> = three_modes(1000, 3)
            .iter()
            .map(|v| 1.6e15 + v * 8.64e10)
            .collect();
        let gmm = BayesianGmm::fit(&ts, &GmmConfig::default(), &mut rng_for(2, 0));
        assert!(gmm.means().iter().all(|m| m.is_finite()) && gmm.stds().iter().all(|s| *s > 0.0));
    }
}
