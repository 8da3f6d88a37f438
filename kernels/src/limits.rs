//! Named bounds that every model must respect. They keep validation, memory and
//! run time bounded for any bytes a user can upload, and they keep every int32
//! accumulator provably inside its range.
//!
//! Changing any of these is a consensus change (it changes which models are valid).

/// Largest encoded model accepted by [`crate::Model::decode`], in bytes.
///
/// 1 MiB, down from 16 MiB: every inference pays the cold load of its model
/// (8 gas per byte, and 4 per byte of the kernels' prepared weights, at least
/// two bytes per weight: measured by `gas-calibration --adversarial`), so a
/// weight costs at least 16 gas and a larger model could never be called
/// within the 2^24 gas of one transaction. The registry refuses it at
/// `beginUpload` instead of after its last chunk.
pub const MAX_MODEL_BYTES: usize = 1024 * 1024;
/// Most operator nodes in one graph.
pub const MAX_NODES: usize = 512;
/// Most inputs one node may read (bounds `Concat`).
pub const MAX_NODE_INPUTS: usize = 16;
/// Highest tensor rank.
pub const MAX_RANK: usize = 6;
/// Largest single dimension of any tensor.
pub const MAX_DIM: u64 = 1 << 16;
/// Most elements in one tensor (input, output or intermediate).
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 22;
/// Most elements summed over all tensors a model produces, which bounds the
/// memory one inference can hold (at most 4 bytes each).
pub const MAX_TOTAL_ELEMENTS: u64 = 1 << 24;
/// Most multiply-accumulates one inference may perform.
pub const MAX_MODEL_MACS: u64 = 1 << 31;
/// Longest reduction feeding one accumulator (`in_features`, or
/// `in_channels / groups * kh * kw` for a convolution; the count of elements
/// a `Reduce` sums into one output).
pub const MAX_REDUCTION_LEN: u64 = 1 << 16;
/// Longest reduction (`K`) of a `MatMul` of two activations. Both factors are
/// activations, so each product is up to `255 * 255` (not `255 * 128` as
/// against symmetric weights) and the bound is half [`MAX_REDUCTION_LEN`].
pub const MAX_MATMUL_REDUCTION: u64 = 1 << 15;
/// Largest kernel extent (height or width) of a convolution or pool.
pub const MAX_KERNEL_DIM: u64 = 32;
/// Largest stride of a convolution or pool.
pub const MAX_STRIDE: u64 = 32;
/// Largest dilation of a convolution.
pub const MAX_DILATION: u64 = 32;
/// Largest padding on any side of a convolution, pool or `Pad`.
pub const MAX_PAD: u64 = 64;
/// Longest row a layer normalisation normalises (its last axis): keeps its
/// sums, squares and fixed-point products inside i64 (`ops/layer_norm.rs`).
pub const MAX_NORM_LEN: u64 = 1 << 12;
/// Largest epsilon of a layer normalisation, in the units of its row
/// variance (`n³` times the variance of the int8 values).
pub const MAX_NORM_EPS: u64 = 1 << 50;
/// Largest right shift of a requantisation, in bits (keeps the i64 product and
/// its rounding term in range).
pub const MAX_SHIFT_BITS: u8 = 62;

// Relations the arithmetic relies on, checked at compile time.
const _: () = assert!(MAX_TENSOR_ELEMENTS <= MAX_TOTAL_ELEMENTS);
const _: () = assert!(MAX_DIM <= u32::MAX as u64);
// |x - zero_point| <= 255 and |w| <= 128: the largest reduction still fits in an i32
// before the bias (the per-channel check in validation is the exact one).
const _: () = assert!(MAX_REDUCTION_LEN * 255 * 128 <= i32::MAX as u64);
// MatMul: K products of two int8 differences, |(a - za)(b - zb)| <= 255 * 255.
const _: () = assert!(MAX_MATMUL_REDUCTION * 255 * 255 <= i32::MAX as u64);
// Reduce: a sum of int8 differences, |x - zx| <= 255, times a multiplier
// below 2^31, doubled by the rounding division of a mean, stays in i64.
const _: () = assert!(MAX_REDUCTION_LEN * 255 <= i32::MAX as u64);
const _: () =
    assert!(MAX_REDUCTION_LEN * 255 * (1 << 31) * 2 + 2 * MAX_REDUCTION_LEN <= i64::MAX as u64);
// A requantised i32 times an i32 multiplier (< 2^62) plus 2^(shift-1) stays in i64.
const _: () = assert!(MAX_SHIFT_BITS <= 62);
