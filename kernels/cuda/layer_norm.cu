// Layer normalisation over the last axis, with an integer square root.
//
// Mirrors kernels/src/ops/layer_norm.rs (`isqrt`, `sqrt_len`,
// `LayerNormParams::row`) line for line; the module docs there give the
// definition and the overflow bounds (every intermediate fits in i64 for
// rows up to MAX_NORM_LEN = 4096, which validation enforces before any
// launch). One thread per row: the row's sum and variance are computed by
// that thread alone, in the reference's order (integer sums are exact, so
// the order would not matter anyway), with no atomics or shared memory.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// ops/layer_norm.rs `isqrt`: floor(sqrt(v)) for every u64, one result bit
// per step, 32 steps.
__device__ __forceinline__ u64 infera_isqrt(u64 v) {
    u64 rem = v;
    u64 root = 0;
    u64 bit = 1ULL << 62;
    for (int step = 0; step < 32; ++step) {
        u64 trial = root + bit;
        u64 take = rem >= trial ? 1 : 0;
        rem -= trial * take;
        root = (root >> 1) + bit * take;
        bit >>= 2;
    }
    return root;
}

// NORM_FRAC_BITS (F) and NORM_SQRT_EXTRA_BITS (K) of ops/layer_norm.rs.
#define INFERA_NORM_F 16
#define INFERA_NORM_K 5

// x, y: [rows, n] int8; gamma, beta: [n] i32; eps in var units; shift in
// 1..=62; zy the output zero point.
extern "C" __global__ void infera_layer_norm(const i8* __restrict__ x, i8* __restrict__ y,
                                             u64 rows, u64 n, const i32* __restrict__ gamma,
                                             const i32* __restrict__ beta, u64 eps, i32 shift,
                                             i32 zy) {
    // S * 2^K, S = floor(sqrt(n) * 2^F) (shifted while non-negative: a left
    // shift of a negative value is undefined in C++17).
    const i64 s = (i64)infera_isqrt(n << (2 * INFERA_NORM_F)) << INFERA_NORM_K;
    INFERA_FOR_EACH(row, rows) {
        const i8* src = x + row * n;
        i8* dst = y + row * n;
        i32 sum = 0;
        for (u64 j = 0; j < n; ++j) {
            sum += (i32)src[j];
        }
        const i32 ni = (i32)n;
        u64 var = 0;
        for (u64 j = 0; j < n; ++j) {
            const i64 c = (i64)(ni * (i32)src[j] - sum);
            var += (u64)(c * c);
        }
        i64 d = (i64)infera_isqrt((var + eps) << (2 * INFERA_NORM_K));
        if (d < 1) {
            d = 1;
        }
        for (u64 j = 0; j < n; ++j) {
            const i64 c = (i64)(ni * (i32)src[j] - sum);
            const i64 z = infera_round_div(c * s, d);
            const i64 acc = z * (i64)gamma[j] + (i64)beta[j];
            dst[j] = infera_saturate_i8(infera_round_shift(acc, shift) + (i64)zy, -128, 127);
        }
    }
}
