// Softmax over the last axis by a table of exponentials.
//
// Mirrors `SoftmaxParams::row` in kernels/src/ops/softmax.rs line for line:
// per row m = max(x); sum = Σ table[m - x] (i64, < 2^48); then
// y = clamp(round_div(256 * table[m - x], sum) - 128, -128, 127) with
// `quant::round_div` (round half up). One thread per row, its outputs
// computed from that row alone: no atomics, no shared memory, and the sum
// is exact, so its order cannot matter.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// `x`, `y`: [rows, n] int8, n >= 1; `table`: u32[256], indexed by m - x
// (validated: table[0] >= 1 and non-increasing, so sum >= 1).
extern "C" __global__ void infera_softmax(const i8* __restrict__ x, i8* __restrict__ y, u64 rows,
                                          u64 n, const u32* __restrict__ table) {
    INFERA_FOR_EACH(r, rows) {
        const i8* xr = x + r * n;
        i8* yr = y + r * n;
        i32 m = -128;
        for (u64 j = 0; j < n; ++j) {
            const i32 v = xr[j];
            if (v > m) {
                m = v;
            }
        }
        i64 sum = 0;
        for (u64 j = 0; j < n; ++j) {
            sum += (i64)table[m - (i32)xr[j]];
        }
        for (u64 j = 0; j < n; ++j) {
            const i64 e = (i64)table[m - (i32)xr[j]];
            yr[j] = infera_saturate_i8(infera_round_div(256 * e, sum) - 128, -128, 127);
        }
    }
}
