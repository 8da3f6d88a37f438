//! A proposed inference gas schedule, computed from [`ModelCost`] alone so that
//! it is fixed when a model is registered. The precompile issue owns the final
//! numbers; they are here so every tool (`infera model inspect`) quotes the same.
//!
//! Calibration: the CPU reference runs roughly 10 GMAC/s on one core, i.e. about
//! 0.1 µs per thousand MACs; at the ~15-20 ns per gas that Ethereum's
//! precompiles imply, that is about 6 gas, rounded up for slower nodes.

use crate::model::ModelCost;

/// Fixed gas of one inference call (decode of the cached model, set-up).
pub const INFER_GAS_BASE: u64 = 2_000;
/// Gas per thousand multiply-accumulates.
pub const INFER_GAS_PER_KMAC: u64 = 8;
/// Gas per thousand other element operations (pools, element-wise, copies).
pub const INFER_GAS_PER_KELEM: u64 = 4;

/// Gas of one inference of a model with this cost (saturating, rounded up).
pub fn inference_gas(cost: &ModelCost) -> u64 {
    let kmacs = cost.macs.div_ceil(1000);
    let kelems = (cost.element_ops.saturating_add(cost.activation_elements)).div_ceil(1000);
    INFER_GAS_BASE
        .saturating_add(kmacs.saturating_mul(INFER_GAS_PER_KMAC))
        .saturating_add(kelems.saturating_mul(INFER_GAS_PER_KELEM))
}
