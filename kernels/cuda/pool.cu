// Max, average and global average pooling over NCHW int8.
//
// Mirrors `max_pool`, `avg_pool` and `global_avg_pool` in
// kernels/src/cpu/pool.rs (operators `Op::MaxPool`, `Op::AvgPool`,
// `Op::GlobalAvgPool` in kernels/src/ops.rs). Windows are clipped to the
// input exactly like `pool::windows`: rows saturating_sub(oy*sh, pt) ..
// min(saturating_sub(oy*sh + kh, pt), h), columns likewise; padding
// contributes nothing. Averages round half up with `quant::round_div`.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// `a.saturating_sub(b)` on usize.
__device__ __forceinline__ u64 infera_sat_sub(u64 a, u64 b) {
    return a > b ? a - b : 0;
}

__device__ __forceinline__ u64 infera_min_u64(u64 a, u64 b) {
    return a < b ? a : b;
}

// One thread per output element of y [planes = n * c, oh, ow]. Empty windows
// (impossible after validation) give i8::MIN, as `unwrap_or(i8::MIN)`.
extern "C" __global__ void infera_max_pool(const i8* __restrict__ x, i8* __restrict__ y,
                                           u64 planes, u64 h, u64 w, u64 oh, u64 ow, u64 kh,
                                           u64 kw, u64 sh, u64 sw, u64 pt, u64 pl) {
    INFERA_FOR_EACH(i, planes * oh * ow) {
        const u64 ox = i % ow;
        const u64 oy = (i / ow) % oh;
        const u64 plane = i / (ow * oh);
        const i8* src = x + plane * h * w;
        const u64 y0 = infera_sat_sub(oy * sh, pt);
        const u64 y1 = infera_min_u64(infera_sat_sub(oy * sh + kh, pt), h);
        const u64 x0 = infera_sat_sub(ox * sw, pl);
        const u64 x1 = infera_min_u64(infera_sat_sub(ox * sw + kw, pl), w);
        i32 best = -128;
        for (u64 yy = y0; yy < y1; ++yy) {
            for (u64 xx = x0; xx < x1; ++xx) {
                const i32 v = src[yy * w + xx];
                if (v > best) {
                    best = v;
                }
            }
        }
        y[i] = (i8)best;
    }
}

// zp + round_half_up(sum(x - zp) / count), clamped to int8, where count is
// kh * kw when count_include_pad != 0 (padding is 0.0), else the number of
// real elements (at least 1). Input and output share the zero point `zp`.
extern "C" __global__ void infera_avg_pool(const i8* __restrict__ x, i8* __restrict__ y,
                                           u64 planes, u64 h, u64 w, u64 oh, u64 ow, u64 kh,
                                           u64 kw, u64 sh, u64 sw, u64 pt, u64 pl,
                                           i32 count_include_pad, i32 zp) {
    INFERA_FOR_EACH(i, planes * oh * ow) {
        const u64 ox = i % ow;
        const u64 oy = (i / ow) % oh;
        const u64 plane = i / (ow * oh);
        const i8* src = x + plane * h * w;
        const u64 y0 = infera_sat_sub(oy * sh, pt);
        const u64 y1 = infera_min_u64(infera_sat_sub(oy * sh + kh, pt), h);
        const u64 x0 = infera_sat_sub(ox * sw, pl);
        const u64 x1 = infera_min_u64(infera_sat_sub(ox * sw + kw, pl), w);
        i64 sum = 0;
        i64 count = 0;
        for (u64 yy = y0; yy < y1; ++yy) {
            for (u64 xx = x0; xx < x1; ++xx) {
                sum += (i64)src[yy * w + xx] - (i64)zp;
                count += 1;
            }
        }
        if (count_include_pad != 0) {
            count = (i64)(kh * kw);
        } else if (count < 1) {
            count = 1;
        }
        y[i] = infera_saturate_i8(infera_round_div(sum, count) + (i64)zp, -128, 127);
    }
}

// Mean of each H x W plane: one thread per plane of x [planes, hw] (hw > 0,
// as validation guarantees), output [planes].
extern "C" __global__ void infera_global_avg_pool(const i8* __restrict__ x, i8* __restrict__ y,
                                                  u64 planes, u64 hw, i32 zp) {
    if (hw == 0) {
        return;  // no element to average (the CPU reference never gets here)
    }
    INFERA_FOR_EACH(i, planes) {
        const i8* src = x + i * hw;
        i64 sum = 0;
        for (u64 j = 0; j < hw; ++j) {
            sum += (i64)src[j] - (i64)zp;
        }
        y[i] = infera_saturate_i8(infera_round_div(sum, (i64)hw) + (i64)zp, -128, 127);
    }
}
