//! A model's hyperparameters, seen from the engine: the `synth-models` crate defines each
//! model's parameters (defaults, bounds, validation, search space) without the engine;
//! [`Hyperparameters`] ties such a type to the networks that train with it.

use super::Model;

/// Parameters of one of the engine's models.
pub trait Hyperparameters: synth_models::Params {
    type Model: Model<Params = Self>;
}
