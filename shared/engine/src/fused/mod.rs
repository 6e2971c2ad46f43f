//! Fused CPU kernels for the training hot path, as candle custom ops with their own
//! backward passes.
//!
//! Built from candle's primitive ops, one training step of CTGAN is hundreds of small
//! operations: each allocates, makes a pass over memory, and adds a node whose gradient
//! candle's backward accumulates into a freshly zeroed tensor. At the shapes CTGAN trains
//! on (a batch of 500 by a few hundred) that overhead, not arithmetic, dominates. The
//! kernels here do each layer's work in one or two passes and one graph node: a linear
//! layer with its bias (gemm called directly, so no transposed copies and the thread count
//! is chosen by the size of the product), batch normalisation with ReLU, the critic's
//! LeakyReLU with its dropout mask, the generator's output activation (tanh and Gumbel-
//! softmax per span), the conditional cross-entropy and the gradient-penalty norm (Adam's
//! update in place is in [`crate::optim`]).
//!
//! Hand-written, and staying so: no crate offers these layers fused with their backward
//! passes for candle, and they are why the engine trains fast.
//!
//! They run on CPU tensors of f32. Every public function here falls back to the same
//! computation written with candle's primitive ops on other devices and dtypes, so the
//! CUDA path keeps working, and the tests check each fused kernel against that
//! composition, forward and backward.
//!
//! - [`threads`]: when matrix products are split over threads, and running two
//!   computations side by side.
//! - [`storage`]: the f32 contents of CPU tensors, read and updated in place.
//! - [`matmul`]: gemm on strided operands, and the matrix product op.
//! - one module per op: [`linear`], [`batch_norm`], [`leaky_relu`], [`activate`],
//!   [`conditional_loss`], [`penalty_norm`].

pub(crate) mod activate;
pub(crate) mod batch_norm;
pub(crate) mod conditional_loss;
pub(crate) mod leaky_relu;
pub(crate) mod linear;
pub(crate) mod matmul;
pub(crate) mod penalty_norm;
pub(crate) mod storage;
#[cfg(test)]
mod testing;
pub(crate) mod threads;

pub(crate) use activate::{Activation, activate};
pub(crate) use batch_norm::{BN_EPS, BatchStats, batch_norm_relu};
pub(crate) use conditional_loss::{CondSpan, conditional_loss};
pub(crate) use leaky_relu::{leaky_relu_masked, slope_mask};
pub(crate) use linear::{linear, linear_relu};
pub(crate) use matmul::{gemm, matmul};
pub(crate) use penalty_norm::penalty_norm;
pub(crate) use storage::{
    add_in_place, column_sums, fusable, storage_slice, update_in_place, with_data,
};
#[cfg(test)]
pub(crate) use threads::in_sequence;
pub(crate) use threads::side_by_side;
