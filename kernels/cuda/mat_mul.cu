// MatMul of two int8 activations and Reduce (sum or mean over axes).
//
// Mirrors kernels/src/ops/mat_mul.rs and kernels/src/ops/reduce.rs (their
// `reference`). One thread per output element; every sum is an exact i32
// (validation bounds it), so the order of additions does not matter, and the
// rescale is the same i64 rounding as quant.rs through common.cuh.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// `MatMulParams::reference`: a [batch, m, k] x b [batch, k, n] -> y [batch, m, n],
// y = requantize(Σ_k (a - za)(b - zb), multiplier, shift, zy, act_min, act_max).
// |sum| <= k * 255 * 255 < 2^31 (MAX_MATMUL_REDUCTION); the wrapping adds
// mirror the reference's.
extern "C" __global__ void infera_mat_mul(const i8* __restrict__ a, const i8* __restrict__ b,
                                          i8* __restrict__ y, u64 batch, u64 m, u64 k, u64 n,
                                          i32 za, i32 zb, i32 zy, i32 multiplier, i32 shift,
                                          i32 act_min, i32 act_max) {
    INFERA_FOR_EACH(i, batch * m * n) {
        const u64 col = i % n;
        const u64 row = (i / n) % m;
        const u64 g = i / (n * m);
        const i8* ar = a + (g * m + row) * k;
        const i8* bc = b + g * k * n + col;
        i32 acc = 0;
        for (u64 kk = 0; kk < k; ++kk) {
            const i32 p = ((i32)ar[kk] - za) * ((i32)bc[kk * n] - zb);
            acc = infera_wrapping_add(acc, p);
        }
        y[i] = infera_requantize(acc, multiplier, shift, zy, act_min, act_max);
    }
}

// Input offset of position `i` of a row-major walk over `rank` axes with
// extents dims[0..rank] and input strides strides[0..rank] (`Walk::offset`).
__device__ __forceinline__ u64 infera_walk_offset(const u64* dims, const u64* strides, u32 rank,
                                                  u64 i) {
    u64 off = 0;
    for (u32 d = rank; d > 0; --d) {
        off += (i % dims[d - 1]) * strides[d - 1];
        i /= dims[d - 1];
    }
    return off;
}

// `ReduceParams::reference`: for each of `outs` outputs, s = Σ (x - zx) over
// `count` reduced positions (an exact i32), p = s * multiplier (i64), for a
// mean p = round_div(p, count), y = saturate(zy + round_shift(p, shift)).
// meta: kept extents [nk], kept strides [nk], reduced extents [nr], reduced
// strides [nr].
extern "C" __global__ void infera_reduce(const i8* __restrict__ x, i8* __restrict__ y, u64 outs,
                                         u64 count, u32 nk, u32 nr,
                                         const u64* __restrict__ meta, i32 zx, i32 zy,
                                         i32 multiplier, i32 shift, i32 mean) {
    const u64* kd = meta;
    const u64* ks = meta + nk;
    const u64* rd = meta + 2 * nk;
    const u64* rs = meta + 2 * nk + nr;
    INFERA_FOR_EACH(o, outs) {
        const u64 base = infera_walk_offset(kd, ks, nk, o);
        i32 sum = 0;
        for (u64 r = 0; r < count; ++r) {
            const i32 v = (i32)x[base + infera_walk_offset(rd, rs, nr, r)];
            sum = infera_wrapping_add(sum, v - zx);
        }
        i64 p = (i64)sum * (i64)multiplier;
        if (mean) {
            p = infera_round_div(p, (i64)count);
        }
        y[o] = infera_saturate_i8(infera_round_shift(p, shift) + (i64)zy, -128, 127);
    }
}
