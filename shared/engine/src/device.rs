//! Where the networks run. A parameter rather than a constant so the same code trains on the
//! CPU here and on the GPU in the trainer container (built with the `cuda` feature).

use std::sync::{Mutex, PoisonError};

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
            EngineDevice::Cuda(ordinal) => cuda(ordinal)?,
        })
    }

    /// The first CUDA GPU when the engine is built with `cuda` and one opens; else the CPU.
    pub fn auto() -> Self {
        let gpu = EngineDevice::Cuda(0);
        if candle_core::utils::cuda_is_available() && gpu.check().is_ok() {
            gpu
        } else {
            EngineDevice::Cpu
        }
    }

    /// This device, once it is known to open.
    pub fn check(self) -> Result<Self> {
        self.candle().map(|_| self)
    }
}

/// The process's one candle device for GPU `ordinal`, opened on first use. candle tells
/// devices apart by instance, so tensors made through two `Device::new_cuda` calls could not
/// meet, and each instance would set up its own context and load its own kernels.
fn cuda(ordinal: usize) -> Result<Device> {
    static OPENED: Mutex<Vec<(usize, Device)>> = Mutex::new(Vec::new());
    let mut opened = OPENED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, device)) = opened.iter().find(|(n, _)| *n == ordinal) {
        return Ok(device.clone());
    }
    let device = Device::new_cuda(ordinal)?;
    opened.push((ordinal, device.clone()));
    Ok(device)
}

impl std::fmt::Display for EngineDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineDevice::Cpu => f.write_str("cpu"),
            EngineDevice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EngineDevice;

    #[test]
    fn auto_is_the_gpu_only_where_one_is_built_in() {
        let auto = EngineDevice::auto();
        if cfg!(feature = "cuda") {
            // Built for the GPU: the GPU where one opens, else the CPU.
            let opens = EngineDevice::Cuda(0).check().is_ok();
            assert_eq!(auto == EngineDevice::Cuda(0), opens);
        } else {
            assert_eq!(auto, EngineDevice::Cpu);
            let e = EngineDevice::Cuda(0).check().unwrap_err().to_string();
            assert!(e.contains("cuda"), "{e}");
        }
        assert_eq!(EngineDevice::Cpu.check().unwrap(), EngineDevice::Cpu);
        assert_eq!(EngineDevice::Cpu.to_string(), "cpu");
        assert_eq!(EngineDevice::Cuda(2).to_string(), "cuda:2");
    }
}
