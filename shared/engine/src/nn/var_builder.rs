//! Where a network's variables come from, in the manner of candle-nn's `VarBuilder`: a
//! network is built by `new(&config, vb)` and asks `vb` for each of its variables by name,
//! under a path of prefixes (`vb.pp("generator").pp("block0").pp("fc")` names
//! `generator.block0.fc.weight`). For a fit the values are drawn from the engine's seeded
//! generator in the order the network asks for them, so the same seed gives the same
//! weights; for a load they are the saved weights of the same names, their shapes checked.
//! Every variable handed out is recorded under its full name — the trained ones apart from
//! the buffers (running statistics) — so a model optimises and saves exactly what it built.
//!
//! Ours rather than candle-nn's: its initialisers draw from candle's CPU generator, which
//! cannot be seeded, and its `Linear` is not PyTorch's U(±1/√fan_in) default.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::Rng;

use super::NamedVars;
use crate::error::{EngineError, Result};
use crate::random::EngineRng;

/// Hands out a network's variables under a path of prefixes; cheap to clone, and every
/// clone and sub-path records into the same [`Vars`].
#[derive(Clone)]
pub struct VarBuilder<'r> {
    path: Vec<String>,
    inner: Rc<Inner<'r>>,
}

struct Inner<'r> {
    source: RefCell<Source<'r>>,
    built: RefCell<Vars>,
    dtype: DType,
    device: Device,
}

/// Where initial values come from.
enum Source<'r> {
    /// Drawn from the fit's seeded generator.
    Seeded(&'r mut EngineRng),
    /// A saved model's weights, by name.
    Saved(HashMap<String, Tensor>),
}

/// The variables a network was built with, by full name, in the order it asked for them.
#[derive(Clone, Default)]
pub struct Vars {
    /// What the optimiser trains.
    pub trained: NamedVars,
    /// What is saved with the model but never trained (batch-norm running statistics).
    pub buffers: NamedVars,
}

impl Vars {
    /// The trained variables, for an optimiser.
    pub fn trained_vars(&self) -> Vec<Var> {
        self.trained.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Every variable, trained and buffers, as saved.
    pub fn all(&self) -> NamedVars {
        self.trained.iter().chain(&self.buffers).cloned().collect()
    }
}

impl<'r> VarBuilder<'r> {
    /// Initial values drawn from `rng`, each variable in turn.
    pub fn seeded(rng: &'r mut EngineRng, dtype: DType, device: &Device) -> Self {
        Self::new(Source::Seeded(rng), dtype, device)
    }

    /// Values from a saved model's weights (`weights` loaded onto `device`).
    pub fn from_saved(weights: HashMap<String, Tensor>, dtype: DType, device: &Device) -> Self {
        Self::new(Source::Saved(weights), dtype, device)
    }

    fn new(source: Source<'r>, dtype: DType, device: &Device) -> Self {
        Self {
            path: Vec::new(),
            inner: Rc::new(Inner {
                source: RefCell::new(source),
                built: RefCell::new(Vars::default()),
                dtype,
                device: device.clone(),
            }),
        }
    }

    /// The builder one prefix further down the path.
    pub fn pp(&self, name: impl ToString) -> Self {
        let mut path = self.path.clone();
        path.push(name.to_string());
        Self {
            path,
            inner: self.inner.clone(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }

    /// Everything built so far through this builder, its clones and its sub-paths.
    pub fn vars(&self) -> Vars {
        self.inner.built.borrow().clone()
    }

    /// A trained variable whose initial values are uniform in (−bound, bound), drawn as
    /// f64 in row-major order.
    pub fn uniform(&self, name: &str, shape: impl Into<Shape>, bound: f64) -> Result<Var> {
        let var = self.get(name, shape.into(), |rng, n| {
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        })?;
        Ok(self.record(name, var, false))
    }

    /// A trained variable that starts at `value` everywhere (no draw).
    pub fn constant(&self, name: &str, shape: impl Into<Shape>, value: f32) -> Result<Var> {
        let var = self.get_constant(name, shape.into(), value)?;
        Ok(self.record(name, var, false))
    }

    /// A buffer: saved with the model, never trained; starts at `value` everywhere.
    pub fn buffer(&self, name: &str, shape: impl Into<Shape>, value: f32) -> Result<Var> {
        let var = self.get_constant(name, shape.into(), value)?;
        Ok(self.record(name, var, true))
    }

    fn full_name(&self, name: &str) -> String {
        let mut full = self.path.join(".");
        if !full.is_empty() {
            full.push('.');
        }
        full.push_str(name);
        full
    }

    fn get_constant(&self, name: &str, shape: Shape, value: f32) -> Result<Var> {
        let (dtype, device) = (self.dtype(), self.device());
        match &*self.inner.source.borrow() {
            // An empty constant (TVAE's σ for a table without numerical columns): candle's
            // CUDA fill kernel fails on zero elements, and zeros are as good as any value.
            Source::Seeded(_) if shape.elem_count() == 0 => {
                Ok(Var::from_tensor(&Tensor::zeros(shape, dtype, device)?)?)
            }
            Source::Seeded(_) => Ok(Var::from_tensor(
                &Tensor::full(value, shape, device)?.to_dtype(dtype)?,
            )?),
            Source::Saved(weights) => self.saved(weights, name, &shape),
        }
    }

    /// A variable of `shape`: `draw(rng, n)` values for a fit, the saved weight for a load.
    fn get(
        &self,
        name: &str,
        shape: Shape,
        draw: impl FnOnce(&mut EngineRng, usize) -> Vec<f64>,
    ) -> Result<Var> {
        let (dtype, device) = (self.dtype(), self.device());
        match &mut *self.inner.source.borrow_mut() {
            Source::Seeded(rng) => {
                let values = draw(rng, shape.elem_count());
                let t = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
                Ok(Var::from_tensor(&t)?)
            }
            Source::Saved(weights) => self.saved(weights, name, &shape),
        }
    }

    /// The saved weight of `name`, which must have `shape`.
    fn saved(&self, weights: &HashMap<String, Tensor>, name: &str, shape: &Shape) -> Result<Var> {
        let full = self.full_name(name);
        let w = weights
            .get(&full)
            .ok_or_else(|| EngineError::InvalidModel(format!("weights lack {full}")))?;
        if w.dims() != shape.dims() {
            return Err(EngineError::InvalidModel(format!(
                "{full} has shape {:?}, expected {:?}",
                w.dims(),
                shape.dims()
            )));
        }
        Ok(Var::from_tensor(&w.to_dtype(self.dtype())?)?)
    }

    fn record(&self, name: &str, var: Var, buffer: bool) -> Var {
        let mut built = self.inner.built.borrow_mut();
        let list = if buffer {
            &mut built.buffers
        } else {
            &mut built.trained
        };
        list.push((self.full_name(name), var.clone()));
        var
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    #[test]
    fn seeded_draws_follow_the_seed_and_saved_weights_come_back_by_name() {
        let build = |seed| {
            let mut rng = rng_for(seed, 1);
            let vb = VarBuilder::seeded(&mut rng, DType::F32, &Device::Cpu);
            let w = vb
                .pp("net")
                .pp("fc")
                .uniform("weight", (3, 2), 0.5)
                .unwrap();
            vb.pp("net").buffer("running", 3, 1.0).unwrap();
            (
                w.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                vb.vars(),
            )
        };
        let (a, vars) = build(1);
        assert_eq!(a, build(1).0);
        assert_ne!(a, build(2).0);
        assert!(a.iter().all(|v| v.abs() < 0.5));
        let names = |v: &NamedVars| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&vars.trained), ["net.fc.weight"]);
        assert_eq!(names(&vars.buffers), ["net.running"]);
        assert_eq!(vars.all().len(), 2);
        // Loading: the same names give the saved values; a missing or reshaped one is an
        // error naming it.
        let saved: HashMap<String, Tensor> = vars
            .all()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        let vb = VarBuilder::from_saved(saved, DType::F32, &Device::Cpu);
        let w = vb.pp("net.fc").uniform("weight", (3, 2), 0.5).unwrap();
        assert_eq!(w.flatten_all().unwrap().to_vec1::<f32>().unwrap(), a);
        let err = vb.pp("net.fc").uniform("weight", (2, 3), 0.5).unwrap_err();
        assert!(err.to_string().contains("net.fc.weight has shape"), "{err}");
        let err = vb.pp("net").constant("gamma", 3, 1.0).unwrap_err();
        assert!(err.to_string().contains("weights lack net.gamma"), "{err}");
    }
}
