// Shared integer helpers of the CUDA backend: the one rounding rule, the
// clamps and the wrapping adds of the CPU reference, bit for bit.
//
// Mirrors kernels/src/quant.rs (`round_shift`, `round_div`, `saturate_i8`,
// `requantize`, `Requant::apply`) and the `wrapping_add`s of
// kernels/src/cpu/mod.rs. Change one, change the other: the CPU reference
// defines the answer and the GPU must return the same bytes.
//
// Every .cu file includes this header behind `#ifndef INFERA_COMMON_CUH`, so a
// launcher may either compile with `--include-path=kernels/cuda` or prepend
// this text to the embedded source (then the #include is skipped unread).
//
// No floating point, no atomics, no libraries: only integer arithmetic whose
// result does not depend on thread order.
#ifndef INFERA_COMMON_CUH
#define INFERA_COMMON_CUH

typedef signed char i8;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

// Grid-stride loop over `n` work items: any grid size gives the same bytes,
// each item is computed by exactly one thread, so launch geometry is free.
#define INFERA_FOR_EACH(i, n)                                                  \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n);          \
         i += (u64)gridDim.x * blockDim.x)

// `a.wrapping_add(b)` on i32: two's-complement wrap, never undefined behaviour.
__device__ __forceinline__ i32 infera_wrapping_add(i32 a, i32 b) {
    return (i32)((u32)a + (u32)b);
}

// `a.wrapping_sub(b)` on i32.
__device__ __forceinline__ i32 infera_wrapping_sub(i32 a, i32 b) {
    return (i32)((u32)a - (u32)b);
}

// `a.wrapping_mul(b)` on i32.
__device__ __forceinline__ i32 infera_wrapping_mul(i32 a, i32 b) {
    return (i32)((u32)a * (u32)b);
}

// quant::round_shift: round_half_up(v / 2^shift) = (v + 2^(shift-1)) >> shift
// for 1 <= shift <= 62 and |v| < 2^62 (so the add cannot overflow). `>>` of a
// negative i64 is an arithmetic shift (floor) in NVCC/NVRTC (PTX shr.s64), as
// in Rust.
__device__ __forceinline__ i64 infera_round_shift(i64 v, i32 shift) {
    return (v + (1LL << (shift - 1))) >> shift;
}

// quant::round_div: round_half_up(num / den) = (2*num + den).div_euclid(2*den)
// for den > 0. C++ `/` truncates toward zero; div_euclid with a positive
// divisor is floor division, so step down when the remainder is negative.
__device__ __forceinline__ i64 infera_round_div(i64 num, i64 den) {
    const i64 a = 2 * num + den;
    const i64 b = 2 * den;
    i64 q = a / b;
    if (a % b < 0) {
        q -= 1;
    }
    return q;
}

// quant::saturate_i8: clamp an i64 into [lo, hi] (both int8) and narrow.
__device__ __forceinline__ i8 infera_saturate_i8(i64 v, i32 lo, i32 hi) {
    if (v < (i64)lo) {
        v = lo;
    }
    if (v > (i64)hi) {
        v = hi;
    }
    return (i8)v;
}

// quant::requantize (with Requant::apply):
// clamp(zp + round_half_up(acc * multiplier / 2^shift), lo, hi), the product
// exact in i64 (|acc * multiplier| < 2^62). multiplier in 0..=i32::MAX,
// shift in 1..=62 (validated by the Rust side before any launch).
__device__ __forceinline__ i8 infera_requantize(i32 acc, i32 multiplier, i32 shift,
                                                i32 zero_point, i32 lo, i32 hi) {
    const i64 v = infera_round_shift((i64)acc * (i64)multiplier, shift);
    return infera_saturate_i8(v + (i64)zero_point, lo, hi);
}

#endif // INFERA_COMMON_CUH
