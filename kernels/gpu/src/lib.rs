//! CUDA backend of the infera engine: launches the kernels of `kernels/cuda/`
//! through cudarc and returns **the same bytes** as the CPU reference
//! ([`infera_kernels::Model::run`]).
//!
//! * libcuda and libnvrtc are loaded at run time (cudarc `dynamic-loading`):
//!   this crate builds and runs on machines without CUDA, where
//!   [`CudaBackend::open`] and [`probe`] return a [`GpuError`] (never panic).
//! * Semantics are not re-derived here: shapes come from the validated
//!   [`Model`] (or from [`Op::infer`] for [`CudaBackend::run_op`]), parameters
//!   from the CPU engine's own operator structs; the kernels' argument order is
//!   the table of `kernels/cuda/README.md`.
//! * A GPU failure is a local fault, reported as a [`GpuError`]; the caller
//!   falls back to the CPU.
#![deny(clippy::float_arithmetic)]

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use infera_kernels::ops::Op;
use infera_kernels::{DType, Model, ModelError, Tensor, TensorData, TensorInfo};

/// Shared device helpers (`kernels/cuda/common.cuh`), prepended to every
/// kernel source.
pub const COMMON: &str = include_str!("../../cuda/common.cuh");

/// Every kernel source (file name, text) and the kernels it defines, and
/// nothing else (kernels/cuda/README.md). The NVRTC test (`tests/nvrtc.rs`)
/// checks this table against the files and their PTX.
pub const SOURCES: &[(&str, &str, &[&str])] = &[
    (
        "conv2d.cu",
        include_str!("../../cuda/conv2d.cu"),
        &["infera_conv2d_i8", "infera_conv2d_i32"],
    ),
    (
        "dense.cu",
        include_str!("../../cuda/dense.cu"),
        &["infera_dense_i8", "infera_dense_i32"],
    ),
    (
        "elementwise.cu",
        include_str!("../../cuda/elementwise.cu"),
        &[
            "infera_clip",
            "infera_add",
            "infera_mul",
            "infera_requantize_i8",
            "infera_requantize_i32",
            "infera_lut",
        ],
    ),
    (
        "layer_norm.cu",
        include_str!("../../cuda/layer_norm.cu"),
        &["infera_layer_norm"],
    ),
    (
        "layout.cu",
        include_str!("../../cuda/layout.cu"),
        &[
            "infera_copy_bytes",
            "infera_transpose_i8",
            "infera_transpose_i32",
            "infera_concat_i8",
            "infera_concat_i32",
            "infera_pad_i8",
            "infera_pad_i32",
            "infera_arg_max_i8",
            "infera_arg_max_i32",
        ],
    ),
    (
        "mat_mul.cu",
        include_str!("../../cuda/mat_mul.cu"),
        &["infera_mat_mul", "infera_reduce"],
    ),
    (
        "pool.cu",
        include_str!("../../cuda/pool.cu"),
        &[
            "infera_max_pool",
            "infera_avg_pool",
            "infera_global_avg_pool",
        ],
    ),
    (
        "softmax.cu",
        include_str!("../../cuda/softmax.cu"),
        &["infera_softmax"],
    ),
];

/// NVRTC options of every compile (kernels/cuda/README.md, "Compiling"): PTX
/// for the Ampere virtual architecture, C++17.
pub const NVRTC_OPTIONS: &[&str] = &["--gpu-architecture=compute_80", "--std=c++17"];

/// Threads per block (kernels/cuda/README.md, "Launch geometry").
const BLOCK: u32 = 256;

/// Everything that can go wrong on the GPU path. Each is a local fault: the
/// caller falls back to the CPU, never turns it into a consensus result.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// libcuda (the driver) cannot be loaded.
    #[error("no CUDA driver: libcuda cannot be loaded")]
    NoDriver,
    /// libnvrtc cannot be loaded.
    #[error("no NVRTC: libnvrtc cannot be loaded (run scripts/nvrtc.sh and set LD_LIBRARY_PATH)")]
    NoNvrtc,
    /// The driver loaded but reports no device with this ordinal.
    #[error("no CUDA device {ordinal} (the driver reports {count})")]
    NoDevice {
        /// Requested ordinal.
        ordinal: usize,
        /// Devices the driver reports.
        count: usize,
    },
    /// A driver call failed (context, allocation, copy, module load).
    #[error("CUDA driver error in {what}: {source:?}")]
    Driver {
        /// What was being done.
        what: String,
        /// The driver's error.
        source: DriverError,
    },
    /// NVRTC rejected a kernel source.
    #[error("NVRTC failed to compile {file}: {log}")]
    Compile {
        /// The `.cu` file.
        file: &'static str,
        /// NVRTC's log (or the failing step).
        log: String,
    },
    /// A kernel launch failed.
    #[error("launch of {kernel} failed: {source:?}")]
    Launch {
        /// The kernel.
        kernel: &'static str,
        /// The driver's error.
        source: DriverError,
    },
    /// The operator / dtype combination has no kernel.
    #[error("unsupported on the GPU: {0}")]
    Unsupported(String),
    /// The input does not fit the model, or an operator failed validation.
    #[error(transparent)]
    Model(#[from] ModelError),
}

fn driver(what: impl Into<String>) -> impl FnOnce(DriverError) -> GpuError {
    let what = what.into();
    move |source| GpuError::Driver { what, source }
}

fn driver_present() -> bool {
    // SAFETY: only tries to dlopen libcuda under cudarc's candidate names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen libnvrtc under cudarc's candidate names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Number of CUDA devices; never panics. `Err(NoDriver)` without libcuda.
pub fn probe() -> Result<usize, GpuError> {
    if !driver_present() {
        return Err(GpuError::NoDriver);
    }
    let n = CudaContext::device_count().map_err(driver("cuDeviceGetCount"))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A tensor in device memory, with the info of the CPU tensor it stands for.
struct DevTensor {
    info: TensorInfo,
    buf: Buf,
}

enum Buf {
    I8(CudaSlice<i8>),
    I32(CudaSlice<i32>),
}

impl DevTensor {
    fn len(&self) -> usize {
        self.info.spec.elements()
    }
    fn i8(&self) -> Result<&CudaSlice<i8>, GpuError> {
        match &self.buf {
            Buf::I8(b) => Ok(b),
            Buf::I32(_) => Err(GpuError::Unsupported(
                "an i32 tensor where i8 is needed".into(),
            )),
        }
    }
}

/// Constant parameters of a dense or convolution node, in device memory.
struct DevParams {
    w: CudaSlice<i8>,
    bias: CudaSlice<i32>,
    /// `requant[o].multiplier` and `requant[o].shift as i32` (a dummy entry for i32 outputs).
    mult: CudaSlice<i32>,
    shift: CudaSlice<i32>,
}

/// The model a [`GpuModel`] runs: borrowed for one-off runs and benchmarks,
/// shared when a node keeps the device copy beside its model cache.
enum ModelRef<'m> {
    Borrowed(&'m Model),
    Shared(Arc<Model>),
}

impl ModelRef<'_> {
    fn get(&self) -> &Model {
        match self {
            ModelRef::Borrowed(m) => m,
            ModelRef::Shared(m) => m,
        }
    }
}

/// A model whose constant parameters are in device memory
/// ([`CudaBackend::load`], [`CudaBackend::load_shared`]); run it with
/// [`CudaBackend::run_loaded`].
pub struct GpuModel<'m> {
    model: ModelRef<'m>,
    ordinal: usize,
    /// Per node: the dense / convolution parameters, `None` for other operators.
    params: Vec<Option<DevParams>>,
}

impl std::fmt::Debug for GpuModel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuModel")
            .field("ordinal", &self.ordinal)
            .field("nodes", &self.params.len())
            .finish()
    }
}

/// One CUDA device with every kernel compiled and loaded.
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    funcs: HashMap<&'static str, CudaFunction>,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("ordinal", &self.ctx.ordinal())
            .field("kernels", &self.funcs.len())
            .finish()
    }
}

fn compile(file: &'static str, src: &str) -> Result<Ptx, GpuError> {
    let text = format!("{COMMON}\n{src}");
    let opts = CompileOptions {
        options: NVRTC_OPTIONS.iter().map(|o| o.to_string()).collect(),
        name: Some(file.into()),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(text, opts).map_err(|e| GpuError::Compile {
        file,
        log: match e {
            CompileError::CompileError { nvrtc, log, .. } => {
                format!("{nvrtc:?}: {}", log.to_string_lossy())
            }
            other => format!("{other:?}"),
        },
    })
}

/// `grid = min(ceil(items / 256), 65535)`, at least 1; `block = 256`.
fn cfg(items: usize) -> LaunchConfig {
    let blocks = items.div_ceil(BLOCK as usize).clamp(1, 65535) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

fn u(v: usize) -> u64 {
    v as u64
}

/// Push arguments and launch. `$b` names the builder; arguments are `&expr`.
macro_rules! launch {
    ($self:ident, $name:literal, $items:expr, [$($arg:expr),* $(,)?]) => {{
        let f = $self.func($name)?;
        let mut b = $self.stream.launch_builder(f);
        $( b.arg($arg); )*
        // SAFETY: the argument list above matches the kernel's signature in
        // kernels/cuda/README.md (types and order); every buffer holds the
        // element counts the kernel derives from the shape arguments (shapes
        // validated by the CPU engine's `Op::infer`); kernels bounds-check
        // their grid-stride index and use no shared memory.
        unsafe { b.launch(cfg($items)) }
            .map(|_| ())
            .map_err(|source| GpuError::Launch { kernel: $name, source })?;
    }};
}

mod launch;

impl CudaBackend {
    /// Open device `ordinal`: check libcuda and libnvrtc, create the context,
    /// compile every kernel source with NVRTC once and load the modules.
    pub fn open(ordinal: usize) -> Result<Self, GpuError> {
        let count = probe()?;
        if !nvrtc_present() {
            return Err(GpuError::NoNvrtc);
        }
        if ordinal >= count {
            return Err(GpuError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(driver("cuCtx create"))?;
        let stream = ctx.default_stream();
        let mut funcs = HashMap::new();
        for &(file, src, names) in SOURCES {
            let ptx = compile(file, src)?;
            let module = ctx
                .load_module(ptx)
                .map_err(driver(format!("load module {file}")))?;
            for &name in names {
                let f = module
                    .load_function(name)
                    .map_err(driver(format!("load function {name}")))?;
                funcs.insert(name, f);
            }
        }
        Ok(CudaBackend { ctx, stream, funcs })
    }

    /// The device's name as the driver reports it.
    pub fn device_name(&self) -> String {
        self.ctx
            .name()
            .unwrap_or_else(|e| format!("CUDA device {} ({e:?})", self.ctx.ordinal()))
    }

    /// The device ordinal this backend runs on.
    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }

    /// Wait for all queued work (benchmarks).
    pub fn synchronize(&self) -> Result<(), GpuError> {
        self.stream.synchronize().map_err(driver("synchronize"))
    }

    fn func(&self, name: &'static str) -> Result<&CudaFunction, GpuError> {
        self.funcs
            .get(name)
            .ok_or_else(|| GpuError::Unsupported(format!("kernel {name} not loaded")))
    }

    fn upload<T: cudarc::driver::DeviceRepr>(
        &self,
        data: &[T],
        what: &str,
    ) -> Result<CudaSlice<T>, GpuError> {
        self.stream
            .clone_htod(data)
            .map_err(driver(format!("upload {what}")))
    }

    fn upload_tensor(&self, t: &Tensor) -> Result<DevTensor, GpuError> {
        let buf = match &t.data {
            TensorData::I8(v) => Buf::I8(self.upload(v, "tensor")?),
            TensorData::I32(v) => Buf::I32(self.upload(v, "tensor")?),
        };
        Ok(DevTensor {
            info: t.info(),
            buf,
        })
    }

    fn download(&self, t: &DevTensor) -> Result<Tensor, GpuError> {
        let shape = t.info.spec.shape.clone();
        Ok(match &t.buf {
            Buf::I8(b) => Tensor::i8(
                shape,
                t.info.zero_point,
                self.stream.clone_dtoh(b).map_err(driver("download"))?,
            ),
            Buf::I32(b) => Tensor::i32(
                shape,
                self.stream.clone_dtoh(b).map_err(driver("download"))?,
            ),
        })
    }

    /// Upload the weights, biases and requantisation tables of a dense or
    /// convolution operator; `None` for every other operator.
    fn upload_params(&self, op: &Op) -> Result<Option<DevParams>, GpuError> {
        let Some((w, b, rq)) = op.tables() else {
            return Ok(None);
        };
        let mult: Vec<i32> = rq.iter().map(|r| r.multiplier).collect();
        let shift: Vec<i32> = rq.iter().map(|r| i32::from(r.shift)).collect();
        // No zero-length device allocations: i32 outputs get a dummy entry.
        let pad = |v: Vec<i32>| if v.is_empty() { vec![0] } else { v };
        Ok(Some(DevParams {
            w: self.upload(w, "weights")?,
            bias: self.upload(b, "bias")?,
            mult: self.upload(&pad(mult), "multipliers")?,
            shift: self.upload(&pad(shift), "shifts")?,
        }))
    }

    fn alloc(&self, info: &TensorInfo) -> Result<DevTensor, GpuError> {
        let n = info.spec.elements();
        let buf = match info.spec.dtype {
            DType::I8 => Buf::I8(self.stream.alloc_zeros(n).map_err(driver("alloc"))?),
            DType::I32 => Buf::I32(self.stream.alloc_zeros(n).map_err(driver("alloc"))?),
        };
        Ok(DevTensor {
            info: info.clone(),
            buf,
        })
    }

    /// Run one inference of `model` on `input` (its canonical bytes); returns
    /// the output bytes, identical to [`Model::run`].
    pub fn run(&self, model: &Model, input: &[u8]) -> Result<Vec<u8>, GpuError> {
        self.run_loaded(&self.load(model)?, input)
    }

    /// Upload a model's constant parameters (weights, biases, requant tables)
    /// once, for repeated [`CudaBackend::run_loaded`] calls.
    pub fn load<'m>(&self, model: &'m Model) -> Result<GpuModel<'m>, GpuError> {
        self.load_ref(ModelRef::Borrowed(model))
    }

    /// [`CudaBackend::load`] of a shared model: the result owns its model, so
    /// it can be kept (e.g. per model id) as long as the device copy is wanted.
    pub fn load_shared(&self, model: Arc<Model>) -> Result<GpuModel<'static>, GpuError> {
        self.load_ref(ModelRef::Shared(model))
    }

    fn load_ref<'m>(&self, model: ModelRef<'m>) -> Result<GpuModel<'m>, GpuError> {
        let params = model
            .get()
            .nodes()
            .iter()
            .map(|n| self.upload_params(&n.op))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GpuModel {
            model,
            ordinal: self.ctx.ordinal(),
            params,
        })
    }

    /// [`CudaBackend::run`] with the parameters already on the device.
    pub fn run_loaded(&self, loaded: &GpuModel<'_>, input: &[u8]) -> Result<Vec<u8>, GpuError> {
        if loaded.ordinal != self.ctx.ordinal() {
            return Err(GpuError::Unsupported(format!(
                "model loaded on device {}, run on device {}",
                loaded.ordinal,
                self.ctx.ordinal()
            )));
        }
        let model = loaded.model.get();
        let (info, _) = model.input_info();
        let x = Tensor::from_bytes(info, input)?;
        let nodes = model.nodes();
        // Last node reading each value, to free device buffers early.
        let mut last_use = vec![0usize; nodes.len() + 1];
        for (i, n) in nodes.iter().enumerate() {
            for &v in &n.inputs {
                last_use[v] = i;
            }
        }
        let out_id = model.output_value();
        last_use[out_id] = usize::MAX;
        let mut values: Vec<Option<DevTensor>> = Vec::with_capacity(nodes.len() + 1);
        values.push(Some(self.upload_tensor(&x)?));
        for (i, node) in nodes.iter().enumerate() {
            let out_info = model
                .value(i + 1)
                .ok_or_else(|| GpuError::Unsupported(format!("node {i} has no inferred info")))?;
            let out = {
                let ins = node
                    .inputs
                    .iter()
                    .map(|&v| {
                        values
                            .get(v)
                            .and_then(|t| t.as_ref())
                            .ok_or_else(|| GpuError::Unsupported(format!("value {v} not live")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let params = loaded.params.get(i).and_then(|p| p.as_ref());
                self.exec(&node.op, params, &ins, out_info)?
            };
            for &v in &node.inputs {
                if last_use[v] == i {
                    values[v] = None;
                }
            }
            values.push(Some(out));
        }
        let out = values[out_id]
            .take()
            .ok_or_else(|| GpuError::Unsupported("output not kept".into()))?;
        Ok(self.download(&out)?.to_bytes())
    }

    /// Validate one operator on concrete inputs (the CPU engine's
    /// [`Op::infer`]) and run it on the GPU: the counterpart of
    /// [`infera_kernels::cpu::execute_op`], for golden vectors.
    pub fn run_op(
        &self,
        op: &Op,
        inputs: &[&Tensor],
        out_zero_point: i8,
    ) -> Result<Tensor, GpuError> {
        let infos: Vec<TensorInfo> = inputs.iter().map(|t| t.info()).collect();
        let refs: Vec<&TensorInfo> = infos.iter().collect();
        let (out, _) = op.infer(0, &refs, out_zero_point)?;
        let dev = inputs
            .iter()
            .map(|t| self.upload_tensor(t))
            .collect::<Result<Vec<_>, _>>()?;
        let ins: Vec<&DevTensor> = dev.iter().collect();
        let params = self.upload_params(op)?;
        let y = self.exec(op, params.as_ref(), &ins, &out)?;
        self.download(&y)
    }

    /// For benchmarks: like [`CudaBackend::run_op`], but inputs and parameters
    /// are uploaded once and the operator is launched `reps` times (at least
    /// once) after one warm-up launch; returns the output and the wall time
    /// of the timed launches (to the end of a stream synchronisation).
    pub fn time_op(
        &self,
        op: &Op,
        inputs: &[&Tensor],
        out_zero_point: i8,
        reps: usize,
    ) -> Result<(Tensor, std::time::Duration), GpuError> {
        let infos: Vec<TensorInfo> = inputs.iter().map(|t| t.info()).collect();
        let refs: Vec<&TensorInfo> = infos.iter().collect();
        let (out, _) = op.infer(0, &refs, out_zero_point)?;
        let dev = inputs
            .iter()
            .map(|t| self.upload_tensor(t))
            .collect::<Result<Vec<_>, _>>()?;
        let ins: Vec<&DevTensor> = dev.iter().collect();
        let params = self.upload_params(op)?;
        let mut y = self.exec(op, params.as_ref(), &ins, &out)?;
        self.synchronize()?;
        let start = std::time::Instant::now();
        for _ in 0..reps.max(1) {
            y = self.exec(op, params.as_ref(), &ins, &out)?;
        }
        self.synchronize()?;
        let took = start.elapsed();
        Ok((self.download(&y)?, took))
    }

    /// Launch the kernel(s) of one validated operator.
    fn exec(
        &self,
        op: &Op,
        params: Option<&DevParams>,
        ins: &[&DevTensor],
        out: &TensorInfo,
    ) -> Result<DevTensor, GpuError> {
        let x = ins
            .first()
            .ok_or_else(|| GpuError::Unsupported(format!("{} without inputs", op.name())))?;
        let mut y = self.alloc(out)?;
        let a = launch::Args {
            op,
            params,
            ins,
            x,
            out,
            items: y.len(),
            zx: i32::from(x.info.zero_point),
            zy: i32::from(out.zero_point),
        };
        launch::launch_op(self, &a, &mut y.buf)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_and_open_never_panic() {
        match probe() {
            Ok(n) => eprintln!("probe: {n} CUDA device(s)"),
            Err(e) => eprintln!("probe: {e}"),
        }
        match CudaBackend::open(0) {
            Ok(b) => eprintln!("open(0): {}", b.device_name()),
            Err(e) => {
                // Without a driver the error names it.
                if !driver_present() {
                    assert!(matches!(e, GpuError::NoDriver), "{e}");
                }
                eprintln!("open(0): {e}");
            }
        }
        // An ordinal no machine has is an error, never a panic.
        assert!(CudaBackend::open(1 << 20).is_err());
    }

    #[test]
    fn launch_geometry() {
        assert_eq!(cfg(0).grid_dim.0, 1);
        assert_eq!(cfg(256).grid_dim.0, 1);
        assert_eq!(cfg(257).grid_dim.0, 2);
        assert_eq!(cfg(usize::MAX / 2).grid_dim.0, 65535);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
