//! Seeded randomness. Every random number the engine uses (noise, dropout masks, Gumbel
//! noise, mode sampling) comes from here rather than from candle's unseedable CPU generator,
//! so the same data, parameters and seed give byte-identical output.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The engine's generator: ChaCha8, whose stream is fixed by its seed across platforms.
pub type EngineRng = ChaCha8Rng;

/// A generator for one purpose, derived from a seed and a stream number so that independent
/// consumers (transform, training, sampling) do not shift each other's numbers.
pub fn rng_for(seed: u64, stream: u64) -> EngineRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Fills `out` with standard normal draws (ziggurat, in f32).
pub fn fill_normal(rng: &mut EngineRng, out: &mut [f32]) {
    for v in out {
        *v = rng.sample(rand_distr::StandardNormal);
    }
}

/// Draws an index with probability proportional to `weights` (which need not sum to one).
pub fn weighted_index(rng: &mut EngineRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        r -= w;
        if r < 0.0 {
            return i;
        }
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// Standard Gumbel noise −ln(−ln U), U uniform in (0, 1).
pub fn gumbel_noise(n: usize, rng: &mut EngineRng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u: f32 = rng.sample(rand::distr::Open01);
            -(-u.ln()).ln()
        })
        .collect()
}
