// Dense (fully connected) layer: y[r, o] = finish(bias[o] + sum_k (x[r, k] - zx) * w[o, k]).
//
// Mirrors `cpu::dense` in kernels/src/cpu/mod.rs (dot products of
// kernels/src/cpu/gemm.rs, then `Finish::i32` / `quant::requantize`); the
// operator is `Op::Dense` (`DenseParams`) in kernels/src/ops.rs.
//
// Validation (`check_accumulators`) proves |bias| + 255 * sum|w| fits in i32,
// so every sum is exact in any order and blocking; adds wrap like Rust's
// `wrapping_add`, so a bug could only give a wrong value, never UB.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// sum_k (x[k] - zx) * w[k] for one row of x and one row of w, each `k` long.
//
// Fast path (k a multiple of 4, rows 4-byte aligned): `__dp4a` on packed raw
// int8, then the zero point is taken out once: sum x*w - zx * sum w. All of it
// wraps modulo 2^32 and the true sum fits in i32, so the result is exact and
// equal to the plain path's.
__device__ __forceinline__ i32 infera_dense_dot(const i8* x, const i8* w, u64 k, i32 x_zp) {
    if ((k & 3) == 0 && (((u64)x | (u64)w) & 3) == 0) {
        const i32* x4 = (const i32*)x;
        const i32* w4 = (const i32*)w;
        i32 acc = 0;
        i32 wsum = 0;
        for (u64 j = 0; j < k / 4; ++j) {
            const i32 a = x4[j];
            const i32 b = w4[j];
            acc = __dp4a(a, b, acc);
            wsum = __dp4a(b, 0x01010101, wsum);
        }
        return infera_wrapping_sub(acc, infera_wrapping_mul(x_zp, wsum));
    }
    i32 acc = 0;
    for (u64 j = 0; j < k; ++j) {
        acc = infera_wrapping_add(acc, ((i32)x[j] - x_zp) * (i32)w[j]);
    }
    return acc;
}

// Int8 output: one thread per output element (row-major [rows, n_out]).
// x: [rows, k] int8, w: [n_out, k] int8, bias/rq_mult/rq_shift: [n_out].
extern "C" __global__ void infera_dense_i8(const i8* __restrict__ x, const i8* __restrict__ w,
                                           const i32* __restrict__ bias,
                                           const i32* __restrict__ rq_mult,
                                           const i32* __restrict__ rq_shift,
                                           i8* __restrict__ y, u64 rows, u64 k, u64 n_out,
                                           i32 x_zp, i32 y_zp, i32 act_min, i32 act_max) {
    INFERA_FOR_EACH(i, rows * n_out) {
        const u64 r = i / n_out;
        const u64 o = i % n_out;
        const i32 acc = infera_wrapping_add(infera_dense_dot(x + r * k, w + o * k, k, x_zp), bias[o]);
        y[i] = infera_requantize(acc, rq_mult[o], rq_shift[o], y_zp, act_min, act_max);
    }
}

// Int32 output (the raw accumulators plus bias, `out_dtype = I32`).
extern "C" __global__ void infera_dense_i32(const i8* __restrict__ x, const i8* __restrict__ w,
                                            const i32* __restrict__ bias, i32* __restrict__ y,
                                            u64 rows, u64 k, u64 n_out, i32 x_zp) {
    INFERA_FOR_EACH(i, rows * n_out) {
        const u64 r = i / n_out;
        const u64 o = i % n_out;
        y[i] = infera_wrapping_add(infera_dense_dot(x + r * k, w + o * k, k, x_zp), bias[o]);
    }
}
