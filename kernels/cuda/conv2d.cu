// 2-D convolution over NCHW int8 with stride, padding, dilation and groups
// (grouped, depthwise and channel-multiplier convolutions included):
// y[n, o, oy, ox] = finish(bias[o] + sum_{ci, ky, kx} (x_pad[..] - zx) * w[o, ci, ky, kx]),
// where padding takes the input's zero point (contributes 0).
//
// Mirrors `cpu::conv2d` (im2col + gemm) and `cpu::depthwise` in
// kernels/src/cpu/mod.rs (both compute the same integers); the operator is
// `Op::Conv2d` (`Conv2dParams`) in kernels/src/ops.rs. Weights are
// [oc, c / groups, kh, kw]; output [n, oc, oh, ow] with oh, ow from
// `out_extent` (computed by the Rust side).
//
// Sums are exact in i32 (validation, `check_accumulators`); adds wrap.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

struct InferaConvGeom {
    u64 c, h, w, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, cg, og;
};

// The accumulator (without bias) of output element `i` (flat NCHW index).
__device__ __forceinline__ i32 infera_conv_acc(const i8* __restrict__ x, const i8* __restrict__ w,
                                               const InferaConvGeom& g, u64 i, i32 x_zp) {
    const u64 ox = i % g.ow;
    const u64 oy = (i / g.ow) % g.oh;
    const u64 ch = (i / (g.ow * g.oh)) % g.oc;
    const u64 img = i / (g.ow * g.oh * g.oc);
    const u64 group = ch / g.og;
    const u64 red = g.cg * g.kh * g.kw;
    const i8* xg = x + (img * g.c + group * g.cg) * g.h * g.w;
    const i8* wr = w + ch * red;
    const i64 y0 = (i64)(oy * g.sh) - (i64)g.pt;
    const i64 x0 = (i64)(ox * g.sw) - (i64)g.pl;

    if ((red & 3) == 0 && ((u64)wr & 3) == 0) {
        // Fast path: walk the reduction (ci, ky, kx) in steps of 4 taps, pack
        // the 4 raw inputs (the zero point for padding) into one word and
        // `__dp4a` it with 4 weights; take the zero point out once at the end:
        // sum x*w - zx * sum w. Wrapping and exact, as in dense.cu.
        const i32* w4 = (const i32*)wr;
        i32 acc = 0;
        i32 wsum = 0;
        u64 ci = 0, ky = 0, kx = 0;
        for (u64 j = 0; j < red / 4; ++j) {
            u32 packed = 0;
            for (u32 lane = 0; lane < 4; ++lane) {
                const i64 iy = y0 + (i64)(ky * g.dh);
                const i64 ix = x0 + (i64)(kx * g.dw);
                i32 v = x_zp;
                if (iy >= 0 && iy < (i64)g.h && ix >= 0 && ix < (i64)g.w) {
                    v = xg[(ci * g.h + (u64)iy) * g.w + (u64)ix];
                }
                packed |= ((u32)(unsigned char)(i8)v) << (8 * lane);
                if (++kx == g.kw) {
                    kx = 0;
                    if (++ky == g.kh) {
                        ky = 0;
                        ++ci;
                    }
                }
            }
            const i32 b = w4[j];
            acc = __dp4a((i32)packed, b, acc);
            wsum = __dp4a(b, 0x01010101, wsum);
        }
        return infera_wrapping_sub(acc, infera_wrapping_mul(x_zp, wsum));
    }

    // Plain path: padded taps are skipped (they contribute (zx - zx) * w = 0).
    i32 acc = 0;
    for (u64 ci = 0; ci < g.cg; ++ci) {
        const i8* plane = xg + ci * g.h * g.w;
        for (u64 ky = 0; ky < g.kh; ++ky) {
            const i64 iy = y0 + (i64)(ky * g.dh);
            if (iy < 0 || iy >= (i64)g.h) {
                continue;
            }
            for (u64 kx = 0; kx < g.kw; ++kx) {
                const i64 ix = x0 + (i64)(kx * g.dw);
                if (ix < 0 || ix >= (i64)g.w) {
                    continue;
                }
                const i32 xv = (i32)plane[(u64)iy * g.w + (u64)ix] - x_zp;
                acc = infera_wrapping_add(acc, xv * (i32)wr[(ci * g.kh + ky) * g.kw + kx]);
            }
        }
    }
    return acc;
}

__device__ __forceinline__ InferaConvGeom infera_conv_geom(u64 c, u64 h, u64 w, u64 oc, u64 oh,
                                                           u64 ow, u64 kh, u64 kw, u64 sh, u64 sw,
                                                           u64 dh, u64 dw, u64 pt, u64 pl,
                                                           u64 groups) {
    InferaConvGeom g;
    g.c = c;
    g.h = h;
    g.w = w;
    g.oc = oc;
    g.oh = oh;
    g.ow = ow;
    g.kh = kh;
    g.kw = kw;
    g.sh = sh;
    g.sw = sw;
    g.dh = dh;
    g.dw = dw;
    g.pt = pt;
    g.pl = pl;
    g.cg = c / groups;
    g.og = oc / groups;
    return g;
}

// Int8 output: one thread per output element of y [n, oc, oh, ow].
// pt / pl are the top / left pads (bottom / right only shape oh / ow).
extern "C" __global__ void infera_conv2d_i8(
    const i8* __restrict__ x, const i8* __restrict__ w, const i32* __restrict__ bias,
    const i32* __restrict__ rq_mult, const i32* __restrict__ rq_shift, i8* __restrict__ y,
    u64 n, u64 c, u64 h, u64 wd, u64 oc, u64 oh, u64 ow, u64 kh, u64 kw, u64 sh, u64 sw, u64 dh,
    u64 dw, u64 pt, u64 pl, u64 groups, i32 x_zp, i32 y_zp, i32 act_min, i32 act_max) {
    const InferaConvGeom g = infera_conv_geom(c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, groups);
    INFERA_FOR_EACH(i, n * oc * oh * ow) {
        const u64 ch = (i / (ow * oh)) % oc;
        const i32 acc = infera_wrapping_add(infera_conv_acc(x, w, g, i, x_zp), bias[ch]);
        y[i] = infera_requantize(acc, rq_mult[ch], rq_shift[ch], y_zp, act_min, act_max);
    }
}

// Int32 output (raw accumulators plus bias, `out_dtype = I32`).
extern "C" __global__ void infera_conv2d_i32(
    const i8* __restrict__ x, const i8* __restrict__ w, const i32* __restrict__ bias,
    i32* __restrict__ y, u64 n, u64 c, u64 h, u64 wd, u64 oc, u64 oh, u64 ow, u64 kh, u64 kw,
    u64 sh, u64 sw, u64 dh, u64 dw, u64 pt, u64 pl, u64 groups, i32 x_zp) {
    const InferaConvGeom g = infera_conv_geom(c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, groups);
    INFERA_FOR_EACH(i, n * oc * oh * ow) {
        const u64 ch = (i / (ow * oh)) % oc;
        y[i] = infera_wrapping_add(infera_conv_acc(x, w, g, i, x_zp), bias[ch]);
    }
}
