//! Where the node runs inferences: `--inference.device auto|cpu|cuda[:N]`.
//!
//! The CPU reference defines every result; a GPU only computes the same bytes
//! faster (DESIGN.md, "Determinism"). So the choice made here never changes a
//! block, a receipt or the gas, only how long inference takes:
//!
//! - `cpu`: the CPU reference, always.
//! - `auto` (the default): the first CUDA device when a driver, NVRTC and a
//!   device are present, with each model placed by measurement
//!   ([`Placement::Measured`]: small models, where launch and copy overheads
//!   dominate, stay on the CPU); otherwise the CPU. The log says which and why.
//! - `cuda` / `cuda:N`: device N (default 0) for every model
//!   ([`Placement::Always`]); a node that cannot open it refuses to start,
//!   since the operator asked for it explicitly.
//!
//! In every mode a GPU error during a call falls back to the CPU for that
//! call and is logged ([`infera_precompiles::offload`]). A GPU result that is
//! wrong without an error is caught where it matters: a block refused with
//! GPU results is judged again on the CPU reference before its sender is
//! penalised, and the model is moved off the GPU
//! ([`crate::import::import_block_with`]); blocks this node seals never use
//! the GPU ([`crate::chain::ChainManager::seal_next`]).

use std::{collections::HashMap, fmt, str::FromStr, sync::Arc};

use infera_gpu::{CudaBackend, GpuError, GpuModel};
use infera_kernels::Model;
use infera_precompiles::{Accelerator, ModelCache, Offload, Placement};
use infera_primitives::B256;
use parking_lot::Mutex;
use tracing::info;

use crate::{NodeError, NodeResult};

/// The `--inference.device` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InferenceDevice {
    /// A GPU if one can be used, else the CPU.
    #[default]
    Auto,
    /// The CPU reference only.
    Cpu,
    /// CUDA device with this ordinal, for every model.
    Cuda(usize),
}

impl fmt::Display for InferenceDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InferenceDevice::Auto => f.write_str("auto"),
            InferenceDevice::Cpu => f.write_str("cpu"),
            InferenceDevice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for InferenceDevice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(InferenceDevice::Auto),
            "cpu" => Ok(InferenceDevice::Cpu),
            "cuda" | "gpu" => Ok(InferenceDevice::Cuda(0)),
            other => {
                let ordinal = other.strip_prefix("cuda:").ok_or_else(|| {
                    format!("`{s}` is not a device: use auto, cpu, cuda or cuda:N")
                })?;
                ordinal
                    .parse::<usize>()
                    .map(InferenceDevice::Cuda)
                    .map_err(|_| {
                        format!("`{s}`: the CUDA device ordinal `{ordinal}` is not a number")
                    })
            }
        }
    }
}

/// What [`install`] chose, for the log and for callers that report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// Every inference on the CPU, and why.
    Cpu { reason: String },
    /// A CUDA device, by name, with the placement of models on it.
    Cuda {
        ordinal: usize,
        name: String,
        placement: Placement,
    },
}

/// Chooses the inference device for `setting` and logs the choice and its
/// reason; the [`Offload`] goes into the node's model cache
/// ([`infera_precompiles::ModelCache::set_offload`]), which every EVM of the node shares. Fails
/// only when `cuda[:N]` was asked for and the device cannot be used.
pub fn select(setting: InferenceDevice) -> NodeResult<(DeviceChoice, Option<Offload>)> {
    select_with(setting, CudaAccelerator::open)
}

/// The node's one inference engine: a model cache running on the device
/// [`select`] chooses for `setting`. The RPC, the importer and the sealers
/// all execute with it, so a model is decoded once per process.
pub fn model_cache(setting: InferenceDevice) -> NodeResult<Arc<ModelCache>> {
    let (_, offload) = select(setting)?;
    let models = ModelCache::shared();
    if let Some(offload) = offload {
        models.set_offload(offload).map_err(|_| {
            NodeError::Invariant("the model cache already has an inference device".into())
        })?;
    }
    Ok(models)
}

/// [`select`] with the way a CUDA device is opened passed in (tests).
fn select_with(
    setting: InferenceDevice,
    open: impl FnOnce(usize) -> Result<CudaAccelerator, GpuError>,
) -> NodeResult<(DeviceChoice, Option<Offload>)> {
    let (ordinal, placement) = match setting {
        InferenceDevice::Cpu => {
            let choice = DeviceChoice::Cpu {
                reason: "--inference.device cpu".into(),
            };
            return Ok((log(choice), None));
        }
        InferenceDevice::Auto => (0, Placement::Measured),
        InferenceDevice::Cuda(n) => (n, Placement::Always),
    };
    let accelerator = match open(ordinal) {
        Ok(accelerator) => accelerator,
        Err(e) if setting == InferenceDevice::Auto => {
            let choice = DeviceChoice::Cpu {
                reason: format!("no usable GPU: {e}"),
            };
            return Ok((log(choice), None));
        }
        Err(e) => {
            return Err(NodeError::Config(format!(
                "--inference.device {setting}: {e} (use --inference.device auto or cpu to run on the CPU)"
            )));
        }
    };
    let choice = DeviceChoice::Cuda {
        ordinal,
        name: accelerator.name(),
        placement,
    };
    Ok((
        log(choice),
        Some(Offload::new(Arc::new(accelerator), placement)),
    ))
}

fn log(choice: DeviceChoice) -> DeviceChoice {
    match &choice {
        DeviceChoice::Cpu { reason } => {
            info!(target: "infera::inference", backend = "cpu", %reason, "inference runs on the CPU reference")
        }
        DeviceChoice::Cuda {
            name, placement, ..
        } => {
            let placement = match placement {
                Placement::Measured => {
                    "each model timed on both for its first runs, then kept on the faster"
                }
                Placement::Always => "every model on the GPU",
            };
            info!(target: "infera::inference", backend = "cuda", device = %name, %placement, "inference runs on the GPU where it is faster; the CPU reference on any GPU error (same results, same gas)")
        }
    }
    choice
}

/// The CUDA backend of `infera-gpu` as an [`Accelerator`]: one device, its
/// kernels compiled once, and the weights of every model it runs kept on the
/// device until [`Accelerator::release`].
pub struct CudaAccelerator {
    name: String,
    inner: Mutex<CudaState>,
}

struct CudaState {
    backend: CudaBackend,
    /// Device copies of models' weights, by model id. Models are immutable
    /// (their id is their content hash), so a copy never goes stale.
    loaded: HashMap<B256, GpuModel<'static>>,
}

/// Device copies kept at once; beyond it the whole set is dropped and models
/// are uploaded again on their next call (the node's model cache holds 64).
const MAX_LOADED_MODELS: usize = 64;

impl CudaAccelerator {
    /// Opens CUDA device `ordinal` (driver, NVRTC, kernels).
    pub fn open(ordinal: usize) -> Result<Self, GpuError> {
        let backend = CudaBackend::open(ordinal)?;
        let name = format!("CUDA device {ordinal} ({})", backend.device_name());
        Ok(Self {
            name,
            inner: Mutex::new(CudaState {
                backend,
                loaded: HashMap::new(),
            }),
        })
    }
}

impl Accelerator for CudaAccelerator {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(&self, id: B256, model: &Arc<Model>, input: &[u8]) -> Result<Vec<u8>, String> {
        // One call at a time on the device: calls come from block import and
        // RPC threads, and the backend uses one stream.
        let mut state = self.inner.lock();
        let CudaState { backend, loaded } = &mut *state;
        if !loaded.contains_key(&id) {
            if loaded.len() >= MAX_LOADED_MODELS {
                loaded.clear();
            }
            let copy = backend
                .load_shared(model.clone())
                .map_err(|e| e.to_string())?;
            loaded.insert(id, copy);
        }
        let copy = &loaded[&id];
        backend.run_loaded(copy, input).map_err(|e| {
            // A failed run may leave the copy unusable: upload it again next time.
            loaded.remove(&id);
            e.to_string()
        })
    }

    fn release(&self, id: B256) {
        self.inner.lock().loaded.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_print_back() {
        for (text, device) in [
            ("auto", InferenceDevice::Auto),
            ("cpu", InferenceDevice::Cpu),
            ("CPU", InferenceDevice::Cpu),
            ("cuda", InferenceDevice::Cuda(0)),
            ("cuda:0", InferenceDevice::Cuda(0)),
            ("cuda:3", InferenceDevice::Cuda(3)),
        ] {
            assert_eq!(text.parse::<InferenceDevice>(), Ok(device), "{text}");
        }
        assert_eq!(InferenceDevice::Cuda(2).to_string(), "cuda:2");
        assert_eq!(
            InferenceDevice::Auto.to_string().parse(),
            Ok(InferenceDevice::Auto)
        );
        let err = "tpu".parse::<InferenceDevice>().unwrap_err();
        assert!(err.contains("auto, cpu, cuda or cuda:N"), "{err}");
        let err = "cuda:x".parse::<InferenceDevice>().unwrap_err();
        assert!(err.contains("ordinal `x`"), "{err}");
    }

    #[test]
    fn cpu_selects_no_accelerator() {
        let (choice, offload) = select(InferenceDevice::Cpu).unwrap();
        assert!(matches!(choice, DeviceChoice::Cpu { .. }));
        assert!(offload.is_none());
    }

    #[test]
    fn auto_without_a_usable_gpu_runs_on_the_cpu_and_says_why() {
        let (choice, offload) =
            select_with(InferenceDevice::Auto, |_| Err(GpuError::NoDriver)).unwrap();
        let DeviceChoice::Cpu { reason } = choice else {
            panic!("{choice:?}")
        };
        assert!(reason.contains("no CUDA driver"), "{reason}");
        assert!(offload.is_none());
    }

    #[test]
    fn an_explicit_cuda_device_that_cannot_be_opened_is_a_startup_error() {
        let err = select_with(InferenceDevice::Cuda(1), |ordinal| {
            Err(GpuError::NoDevice { ordinal, count: 0 })
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--inference.device cuda:1") && text.contains("no CUDA device 1"),
            "{text}"
        );
    }

    /// On this machine (whatever it has) `auto` never fails, and a chosen
    /// GPU comes with its offload.
    #[test]
    fn auto_on_this_machine_never_fails() {
        match select(InferenceDevice::Auto).unwrap() {
            (DeviceChoice::Cpu { .. }, offload) => assert!(offload.is_none()),
            (DeviceChoice::Cuda { .. }, offload) => assert!(offload.is_some()),
        }
    }
}
