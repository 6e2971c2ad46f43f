//! Where the networks run. A parameter rather than a constant so the same code trains on the
//! CPU here and on the GPU in the trainer container (built with the `cuda` feature).

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The device a model trains or samples on; weights are saved device-independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineDevice {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal; fails at use unless the crate is built with `cuda`.
    Cuda(usize),
}

impl EngineDevice {
    /// The candle device; a clear error when CUDA is asked for but not built in.
    pub fn candle(self) -> Result<Device> {
        Ok(match self {
            EngineDevice::Cpu => Device::Cpu,
            EngineDevice::Cuda(ordinal) => Device::new_cuda(ordinal)?,
        })
    }
}
