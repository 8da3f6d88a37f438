//! Deterministic integer inference engine for the infera chain.
//!
//! Every node re-executes every inference, so this crate is part of consensus:
//! the same model bytes and input bytes must give the same output bytes on every
//! machine, forever. The rules that make that true:
//!
//! * **No floating point.** Tensors are int8 (or int32), accumulators are int32,
//!   and rescaling is an integer multiplier and shift with one named rounding rule
//!   ([`quant::ROUNDING_RULE`]). `clippy::float_arithmetic` is denied below.
//! * **Overflow is ruled out at validation.** [`Model::decode`] proves, from the
//!   actual weights, that no int32 accumulator can overflow for any input
//!   ([`limits`] names every bound). Sums are therefore exact, and exact integer
//!   sums do not depend on the order of additions: a GPU may reduce in any order.
//! * **The CPU reference in [`cpu`] defines the answer.** Any other backend must
//!   return identical bytes (checked against the golden vectors in `kernels/vectors/`).
//! * **No I/O, clock, RNG or thread-count dependence.** [`Model::run`] is
//!   single-threaded; [`Model::run_with`] may split work across threads and is
//!   property-tested to return identical bytes.
//!
//! * **One answer, several speeds.** On x86-64 the dense and convolution layers
//!   have AVX2, AVX-VNNI and AMX paths chosen at run time by CPU feature
//!   detection alone (and the OS granting AMX its tile state); each
//!   returns the same bytes as the portable kernels by construction (exact sums)
//!   and is property-tested against them ([`cpu::Kernels`]).
//!
//! Each operator is defined once, in its own module under [`ops`] (parameters,
//! encoding, shape rules, validation, cost, reference kernel entry); a fast
//! path only supplies a faster computation of the same bytes (see
//! [`cpu::execute`]).
//!
//! `unsafe` is denied everywhere except two modules. `cpu/x86/token.rs`'s
//! only `unsafe` blocks call the (safe) `#[target_feature]` kernels after
//! `is_x86_feature_detected!` has confirmed the CPU has them; Rust offers no
//! safe way to make that call. `cpu/x86/amx.rs` wraps the AMX tile
//! instructions, which stable Rust reaches only through inline assembly,
//! behind loads and stores that check every row against their slice, a
//! per-thread tile configuration, and the OS grant of the tile state. The
//! kernels themselves are under `#![forbid(unsafe_code)]`; the portable
//! operators, the definition of the answer, use no `unsafe` at all.
#![deny(unsafe_code)]
#![deny(clippy::float_arithmetic)]

pub mod cpu;
pub mod error;
pub mod format;
pub mod limits;
pub mod model;
pub mod ops;
pub mod quant;
pub mod tensor;

pub use cpu::Kernels;
pub use error::{ModelError, ModelResult};
pub use model::{Model, ModelCost, Node, RunOptions};
pub use ops::Op;
pub use tensor::{DType, Tensor, TensorData, TensorInfo, TensorSpec};
