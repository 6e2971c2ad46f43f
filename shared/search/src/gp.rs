//! The surrogate of Bayesian search: a Gaussian process on the unit cube with a Matérn 5/2
//! kernel, and the acquisition functions that choose where to look next (expected
//! improvement, probability of improvement, upper confidence bound).
//!
//! Hand-written, and staying so, rather than taken from a GP crate: the searches see tens
//! of points in a few dimensions, so a dense Cholesky factorisation is all the linear
//! algebra needed, and the crates that offer a GP bring a linear-algebra stack (ndarray,
//! linfa, optional BLAS) far heavier than the search. Targets are normalised to zero mean
//! and unit variance; the length scale, signal and noise variances maximise the log
//! marginal likelihood (a coarse grid, then a coordinate search in log space).
//!
//! One length scale serves every dimension (inputs are already scaled to the unit cube):
//! with the tens of points a search affords, a length scale per dimension overfits — on
//! Hartmann-6 with 20 trials it found worse optima than random search, the shared one far
//! better (see the `optimize_functions` benchmark).

use serde::{Deserialize, Serialize};

/// Length scale, signal and noise variances searched within these bounds (unit inputs,
/// normalised targets).
const LENGTH_SCALE: (f64, f64) = (0.01, 20.0);
const SIGNAL: (f64, f64) = (0.05, 20.0);
const NOISE: (f64, f64) = (1e-8, 1.0);
/// Added to the diagonal so that the factorisation of near-duplicate points succeeds.
const JITTER: f64 = 1e-10;
/// Log-likelihood evaluations allowed to the coordinate search.
const MAX_EVALUATIONS: usize = 600;

/// A Gaussian process fitted to points of the unit cube.
#[derive(Debug, Clone)]
pub struct GaussianProcess {
    x: Vec<Vec<f64>>,
    length_scale: f64,
    signal: f64,
    noise: f64,
    /// Lower Cholesky factor of K + noise·I, row-major.
    chol: Vec<f64>,
    /// (K + noise·I)⁻¹ y, normalised targets.
    alpha: Vec<f64>,
    y_mean: f64,
    y_scale: f64,
    log_likelihood: f64,
}

/// Matérn 5/2 correlation of two points at length scale `l`.
fn matern52(a: &[f64], b: &[f64], l: f64) -> f64 {
    let r2: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) / l).powi(2)).sum();
    let s5r = (5.0 * r2).sqrt();
    (1.0 + s5r + 5.0 * r2 / 3.0) * (-s5r).exp()
}

/// In-place lower Cholesky factor of a symmetric `n`×`n` matrix; false if not positive
/// definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
    true
}

/// Solves L x = b for lower-triangular L.
fn solve_lower(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut x = b.to_vec();
    for i in 0..n {
        let mut s = x[i];
        for k in 0..i {
            s -= l[i * n + k] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    x
}

/// Solves Lᵀ x = b for lower-triangular L.
fn solve_upper_t(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut x = b.to_vec();
    for i in (0..n).rev() {
        let mut s = x[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    x
}

/// The factorisation and log marginal likelihood under one set of hyperparameters.
struct Factored {
    chol: Vec<f64>,
    alpha: Vec<f64>,
    log_likelihood: f64,
}

fn factor(
    x: &[Vec<f64>],
    y: &[f64],
    length_scale: f64,
    signal: f64,
    noise: f64,
) -> Option<Factored> {
    let n = x.len();
    let mut k = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v = signal * matern52(&x[i], &x[j], length_scale);
            k[i * n + j] = v;
            k[j * n + i] = v;
        }
        k[i * n + i] += noise + JITTER;
    }
    if !cholesky(&mut k, n) {
        return None;
    }
    let alpha = solve_upper_t(&k, n, &solve_lower(&k, n, y));
    let fit: f64 = y.iter().zip(&alpha).map(|(a, b)| a * b).sum();
    let log_det: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
    let log_likelihood = -0.5 * fit - log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    log_likelihood.is_finite().then_some(Factored {
        chol: k,
        alpha,
        log_likelihood,
    })
}

/// Hyperparameters in log space: length scale, signal and noise variances.
type Theta = [f64; 3];

const BOUNDS: [(f64, f64); 3] = [LENGTH_SCALE, SIGNAL, NOISE];

impl GaussianProcess {
    /// Fits a GP to `x` (points of the unit cube, all of one dimension) and targets `y`;
    /// `None` without points.
    pub fn fit(x: Vec<Vec<f64>>, y: &[f64]) -> Option<Self> {
        let n = x.len();
        if n == 0 || n != y.len() {
            return None;
        }
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64;
        let y_scale = if var > 1e-24 { var.sqrt() } else { 1.0 };
        let yn: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_scale).collect();
        let lml = |t: &Theta| {
            factor(&x, &yn, t[0].exp(), t[1].exp(), t[2].exp())
                .map_or(f64::NEG_INFINITY, |f| f.log_likelihood)
        };
        // A coarse grid first, then a coordinate search with halving steps.
        let mut best: (f64, Theta) = (f64::NEG_INFINITY, [0.0; 3]);
        for l in [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2] {
            for noise in [1e-6, 1e-4, 1e-2, 1e-1] {
                for signal in [0.5, 1.0, 2.0] {
                    let theta = [f64::ln(l), f64::ln(signal), f64::ln(noise)];
                    let v = lml(&theta);
                    if v > best.0 {
                        best = (v, theta);
                    }
                }
            }
        }
        if best.0 == f64::NEG_INFINITY {
            best.1 = [f64::ln(0.4), 0.0, NOISE.1.ln()];
        }
        let mut step = std::f64::consts::LN_2;
        let mut evaluations = 0;
        while step > 0.05 && evaluations < MAX_EVALUATIONS {
            let mut improved = false;
            for (i, (lo, hi)) in BOUNDS.iter().enumerate() {
                for dir in [1.0, -1.0] {
                    let mut theta = best.1;
                    theta[i] = (theta[i] + dir * step).clamp(lo.ln(), hi.ln());
                    if theta[i] == best.1[i] {
                        continue;
                    }
                    evaluations += 1;
                    let v = lml(&theta);
                    if v > best.0 + 1e-9 {
                        best = (v, theta);
                        improved = true;
                        break;
                    }
                }
            }
            if !improved {
                step /= 2.0;
            }
        }
        let [length_scale, signal, noise] = best.1.map(f64::exp);
        let f = factor(&x, &yn, length_scale, signal, noise).or_else(|| {
            // Nothing factored (duplicated points, no noise): as much noise as allowed.
            factor(&x, &yn, length_scale, signal, NOISE.1)
        })?;
        Some(Self {
            x,
            length_scale,
            signal,
            noise,
            chol: f.chol,
            alpha: f.alpha,
            y_mean,
            y_scale,
            log_likelihood: f.log_likelihood,
        })
    }

    /// Posterior mean and standard deviation of the latent function at `x`, in normalised
    /// target units (zero mean, unit variance over the training targets).
    pub fn predict_normalised(&self, x: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let k: Vec<f64> = self
            .x
            .iter()
            .map(|xi| self.signal * matern52(xi, x, self.length_scale))
            .collect();
        let mean = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = solve_lower(&self.chol, n, &k);
        let var = self.signal - v.iter().map(|v| v * v).sum::<f64>();
        (mean, var.max(0.0).sqrt())
    }

    /// Posterior mean and standard deviation at `x`, in the units of the targets.
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let (m, s) = self.predict_normalised(x);
        (self.y_mean + m * self.y_scale, s * self.y_scale)
    }

    /// A target in normalised units.
    pub fn normalise(&self, y: f64) -> f64 {
        (y - self.y_mean) / self.y_scale
    }

    pub fn length_scale(&self) -> f64 {
        self.length_scale
    }

    /// Variance of the observation noise, in normalised units.
    pub fn noise(&self) -> f64 {
        self.noise
    }

    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood
    }
}

/// How a Bayesian search scores a candidate from the surrogate's prediction (for a
/// maximisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Acquisition {
    /// Expected improvement over the best score so far.
    #[default]
    #[serde(rename = "EI", alias = "ei")]
    ExpectedImprovement,
    /// Probability of improving on the best score so far.
    #[serde(rename = "PI", alias = "pi")]
    ProbabilityOfImprovement,
    /// Upper confidence bound, mean + κ·sd.
    #[serde(rename = "UCB", alias = "ucb")]
    UpperConfidenceBound,
}

/// Improvement asked of EI and PI beyond the best so far, in normalised units: a little
/// exploration, so they do not keep refining the incumbent.
const XI: f64 = 0.01;
/// κ of the upper confidence bound.
const KAPPA: f64 = 2.0;

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// Expected improvement of N(mean, sd²) over `best` by more than `xi`.
pub fn expected_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let gain = mean - best - xi;
    if sd <= 1e-12 {
        return gain.max(0.0);
    }
    sd * improvement_factor(gain / sd)
}

/// z·Φ(z) + φ(z), the expected improvement of a unit normal. Φ comes from erfc, accurate
/// in the lower tail, so the difference keeps its precision until φ underflows (z ≈ −38).
fn improvement_factor(z: f64) -> f64 {
    (z * normal_cdf(z) + normal_pdf(z)).max(0.0)
}

/// Probability that N(mean, sd²) exceeds `best` by more than `xi`.
pub fn probability_of_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let gain = mean - best - xi;
    if sd <= 1e-12 {
        return if gain > 0.0 { 1.0 } else { 0.0 };
    }
    normal_cdf(gain / sd)
}

impl Acquisition {
    /// The acquisition of a prediction (normalised units) given the best normalised target.
    pub fn value(self, mean: f64, sd: f64, best: f64) -> f64 {
        match self {
            Acquisition::ExpectedImprovement => expected_improvement(mean, sd, best, XI),
            Acquisition::ProbabilityOfImprovement => probability_of_improvement(mean, sd, best, XI),
            Acquisition::UpperConfidenceBound => mean + KAPPA * sd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: &[f64]) -> f64 {
        (3.0 * x[0]).sin() + (3.0 * x[1]).cos()
    }

    fn training() -> (Vec<Vec<f64>>, Vec<f64>) {
        let x: Vec<Vec<f64>> = (0..12)
            .map(|i| vec![(i as f64 * 0.37) % 1.0, (i as f64 * 0.61) % 1.0])
            .collect();
        let y = x.iter().map(|p| f(p)).collect();
        (x, y)
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] = L Lᵀ with L = [[2, 0], [1, √2]].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        assert!(cholesky(&mut a, 2));
        let expected = [2.0, 0.0, 1.0, 2f64.sqrt()];
        for (a, e) in a.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12);
        }
        // A x = [2, 5] → x = [-0.5, 2].
        let x = solve_upper_t(&a, 2, &solve_lower(&a, 2, &[2.0, 5.0]));
        assert!(
            (x[0] + 0.5).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12,
            "{x:?}"
        );
        assert!(!cholesky(&mut [1.0, 2.0, 2.0, 1.0], 2));
    }

    #[test]
    fn the_gp_interpolates_its_training_points_and_predicts_between_them() {
        let (x, y) = training();
        let gp = GaussianProcess::fit(x.clone(), &y).unwrap();
        for (p, &t) in x.iter().zip(&y) {
            let (m, s) = gp.predict(p);
            assert!((m - t).abs() < 1e-4, "at {p:?}: {m} vs {t}");
            assert!(s < 1e-2, "sd {s} at a training point");
        }
        // Far from the data it is unsure; between points it is close to the function.
        let (_, s_far) = gp.predict(&[3.0, 3.0]);
        assert!(s_far > 0.5, "{s_far}");
        let p = [0.5, 0.5];
        let (m, _) = gp.predict(&p);
        assert!((m - f(&p)).abs() < 0.3, "{m} vs {}", f(&p));
        assert!(gp.noise() < 1e-3, "noise {}", gp.noise());
    }

    #[test]
    fn expected_improvement_vanishes_at_sampled_points_and_not_elsewhere() {
        let (x, y) = training();
        let gp = GaussianProcess::fit(x.clone(), &y).unwrap();
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let best_n = gp.normalise(best);
        let ei_at = |p: &[f64]| {
            let (m, s) = gp.predict_normalised(p);
            expected_improvement(m, s, best_n, 0.0)
        };
        let sampled_max = x.iter().map(|p| ei_at(p)).fold(0.0, f64::max);
        assert!(sampled_max < 1e-4, "EI {sampled_max} at a sampled point");
        // Off the sampled points the posterior is uncertain, so EI is positive wherever the
        // function may still beat the best point.
        let mut positive = 0;
        for i in 0..50 {
            let p = [
                (i as f64 * 0.173 + 0.05) % 1.0,
                (i as f64 * 0.291 + 0.11) % 1.0,
            ];
            let (m, s) = gp.predict_normalised(&p);
            if m + 5.0 * s > best_n {
                assert!(ei_at(&p) > 0.0, "EI 0 at {p:?}, which may beat the best");
                positive += 1;
            }
        }
        assert!(positive >= 5, "{positive}");
        let (m, s) = gp.predict_normalised(&[1.5, -0.5]);
        assert!(expected_improvement(m, s, best_n, 0.0) > 1e-2);
    }

    #[test]
    fn acquisitions_reward_mean_and_uncertainty() {
        let ei = |m, s| Acquisition::ExpectedImprovement.value(m, s, 0.0);
        assert!(ei(1.0, 0.1) > ei(0.5, 0.1));
        assert!(ei(0.0, 1.0) > ei(0.0, 0.1));
        assert!((ei(-1.0, 0.0)).abs() < 1e-15);
        // EI at the best with sd σ is σ·φ(0) (ξ aside).
        assert!((expected_improvement(0.0, 1.0, 0.0, 0.0) - normal_pdf(0.0)).abs() < 1e-12);
        let pi = |m, s| Acquisition::ProbabilityOfImprovement.value(m, s, 0.0);
        assert!(pi(1.0, 1.0) > 0.8 && pi(-1.0, 1.0) < 0.2);
        assert!((probability_of_improvement(0.0, 1.0, 0.0, 0.0) - 0.5).abs() < 1e-12);
        let ucb = |m, s| Acquisition::UpperConfidenceBound.value(m, s, 0.0);
        assert_eq!(ucb(1.0, 0.5), 1.0 + KAPPA * 0.5);
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
        // Deep in the tail it stays positive: 1.564e-10 at z = −6 (tables), tiny at −20.
        assert!((improvement_factor(-6.0) / 1.5643e-10 - 1.0).abs() < 1e-3);
        assert!(improvement_factor(-20.0) > 0.0 && improvement_factor(-20.0) < 1e-80);
        let parsed: Vec<Acquisition> =
            serde_json::from_str(r#"["EI", "PI", "UCB", "ei"]"#).unwrap();
        assert_eq!(
            parsed,
            [
                Acquisition::ExpectedImprovement,
                Acquisition::ProbabilityOfImprovement,
                Acquisition::UpperConfidenceBound,
                Acquisition::ExpectedImprovement
            ]
        );
    }
}
