// Element-wise operators: clip (ReLU, ReLU6), add and mul with
// requantisation, requantise (int8 or int32 to int8), and lookup tables.
//
// Mirrors, in kernels/src/cpu/mod.rs: the `Op::Clip` arm of `execute`
// (`v.clamp(min, max)`), `add`, `mul`, and the `Op::Requantize` arm of
// `execute`; the operators are `Op::Clip`, `Op::Add` (`AddParams`),
// `Op::Mul` (`MulParams`) and `Op::Requantize` (`Requant`) in
// kernels/src/ops.rs. One thread per element; `len` is the element count.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// y = clamp(x, lo, hi) (lo <= hi, validated).
extern "C" __global__ void infera_clip(const i8* __restrict__ x, i8* __restrict__ y, u64 len,
                                       i32 lo, i32 hi) {
    INFERA_FOR_EACH(i, len) {
        y[i] = infera_saturate_i8((i64)x[i], lo, hi);
    }
}

// `ops/lut.rs`: y = table[x + 128] (a table of 256 entries, validated).
extern "C" __global__ void infera_lut(const i8* __restrict__ x, i8* __restrict__ y, u64 len,
                                      const i8* __restrict__ table) {
    INFERA_FOR_EACH(i, len) {
        y[i] = table[(i32)x[i] + 128];
    }
}

// `cpu::add`: y = clamp(zy + round_shift((a - za) * ma + (b - zb) * mb, shift),
// act_min, act_max), the sum computed in i64 (|each term| < 2^39).
extern "C" __global__ void infera_add(const i8* __restrict__ a, const i8* __restrict__ b,
                                      i8* __restrict__ y, u64 len, i32 za, i32 zb, i32 zy,
                                      i32 multiplier_a, i32 multiplier_b, i32 shift,
                                      i32 act_min, i32 act_max) {
    INFERA_FOR_EACH(i, len) {
        const i64 v = ((i64)a[i] - (i64)za) * (i64)multiplier_a +
                      ((i64)b[i] - (i64)zb) * (i64)multiplier_b;
        y[i] = infera_saturate_i8(infera_round_shift(v, shift) + (i64)zy, act_min, act_max);
    }
}

// `cpu::mul`: y = requantize((a - za) * (b - zb), multiplier, shift, zy,
// act_min, act_max), the product in i32 (|p| <= 255 * 255).
extern "C" __global__ void infera_mul(const i8* __restrict__ a, const i8* __restrict__ b,
                                      i8* __restrict__ y, u64 len, i32 za, i32 zb, i32 zy,
                                      i32 multiplier, i32 shift, i32 act_min, i32 act_max) {
    INFERA_FOR_EACH(i, len) {
        const i32 p = ((i32)a[i] - za) * ((i32)b[i] - zb);
        y[i] = infera_requantize(p, multiplier, shift, zy, act_min, act_max);
    }
}

// `Op::Requantize` on an int8 input: y = requantize(x - zx, m, s, zy, -128, 127).
extern "C" __global__ void infera_requantize_i8(const i8* __restrict__ x, i8* __restrict__ y,
                                                u64 len, i32 zx, i32 zy, i32 multiplier,
                                                i32 shift) {
    INFERA_FOR_EACH(i, len) {
        y[i] = infera_requantize((i32)x[i] - zx, multiplier, shift, zy, -128, 127);
    }
}

// `Op::Requantize` on an int32 input: y = requantize(x, m, s, zy, -128, 127).
extern "C" __global__ void infera_requantize_i32(const i32* __restrict__ x, i8* __restrict__ y,
                                                 u64 len, i32 zy, i32 multiplier, i32 shift) {
    INFERA_FOR_EACH(i, len) {
        y[i] = infera_requantize(x[i], multiplier, shift, zy, -128, 127);
    }
}
