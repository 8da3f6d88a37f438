// Data movement: reshape / flatten (a byte copy), transpose, concat, pad and
// arg-max, for int8 and int32 elements.
//
// Mirrors kernels/src/cpu/layout.rs (`transpose`, `concat`, `pad`,
// `arg_max`) and the `Op::Reshape | Op::Flatten` arm of `execute` in
// kernels/src/cpu/mod.rs (`x.data.clone()`); the operators are in
// kernels/src/ops.rs. Every output element is written by exactly one thread
// (gathers, not scatters), so no ordering between threads matters.
//
// Rank-generic kernels read a small u64 `meta` array from device memory
// (rank <= MAX_RANK = 6); its layout is given at each kernel.
#ifndef INFERA_COMMON_CUH
#include "common.cuh"
#endif

// Reshape / Flatten: dst[i] = src[i] for `nbytes` bytes (or use a
// device-to-device memcpy; the bytes are the same).
extern "C" __global__ void infera_copy_bytes(const i8* __restrict__ src, i8* __restrict__ dst,
                                             u64 nbytes) {
    INFERA_FOR_EACH(i, nbytes) {
        dst[i] = src[i];
    }
}

// Transpose: output axis d is input axis perm[d]. meta = [out_dims[0..rank],
// src_strides[0..rank]] with src_strides[d] = in_strides[perm[d]] (row-major
// strides of the input). n = element count.
template <typename T>
__device__ __forceinline__ void infera_transpose(const T* __restrict__ src, T* __restrict__ dst,
                                                 u64 n, u32 rank, const u64* __restrict__ meta) {
    INFERA_FOR_EACH(i, n) {
        u64 rest = i;
        u64 from = 0;
        for (u32 k = rank; k > 0; --k) {
            const u32 d = k - 1;
            const u64 dim = meta[d];
            from += (rest % dim) * meta[rank + d];
            rest /= dim;
        }
        dst[i] = src[from];
    }
}

extern "C" __global__ void infera_transpose_i8(const i8* __restrict__ src, i8* __restrict__ dst,
                                               u64 n, u32 rank, const u64* __restrict__ meta) {
    infera_transpose<i8>(src, dst, n, rank, meta);
}

extern "C" __global__ void infera_transpose_i32(const i32* __restrict__ src,
                                                i32* __restrict__ dst, u64 n, u32 rank,
                                                const u64* __restrict__ meta) {
    infera_transpose<i32>(src, dst, n, rank, meta);
}

// Concat, one launch per input, in input order: for every outer index o
// (product of dims before `axis`) this input's block of `inner_src` elements
// (product of its dims from `axis` on) lands at dst[o * inner_dst + offset ..],
// where inner_dst is the output's block and offset the sum of the previous
// inputs' blocks. Launches write disjoint elements.
template <typename T>
__device__ __forceinline__ void infera_concat(const T* __restrict__ src, T* __restrict__ dst,
                                              u64 outer, u64 inner_src, u64 inner_dst,
                                              u64 offset) {
    INFERA_FOR_EACH(i, outer * inner_src) {
        const u64 o = i / inner_src;
        const u64 j = i % inner_src;
        dst[o * inner_dst + offset + j] = src[i];
    }
}

extern "C" __global__ void infera_concat_i8(const i8* __restrict__ src, i8* __restrict__ dst,
                                            u64 outer, u64 inner_src, u64 inner_dst, u64 offset) {
    infera_concat<i8>(src, dst, outer, inner_src, inner_dst, offset);
}

extern "C" __global__ void infera_concat_i32(const i32* __restrict__ src, i32* __restrict__ dst,
                                             u64 outer, u64 inner_src, u64 inner_dst,
                                             u64 offset) {
    infera_concat<i32>(src, dst, outer, inner_src, inner_dst, offset);
}

// Pad: every output element is the input element it came from, or `value`
// (the zero point for int8, 0 for int32) outside it. meta = [out_dims[0..rank],
// in_dims[0..rank], before[0..rank]]; n_out = output element count.
template <typename T>
__device__ __forceinline__ void infera_pad(const T* __restrict__ src, T* __restrict__ dst,
                                           u64 n_out, u32 rank, const u64* __restrict__ meta,
                                           T value) {
    INFERA_FOR_EACH(i, n_out) {
        u64 rest = i;
        u64 from = 0;
        u64 stride = 1;
        bool inside = true;
        for (u32 k = rank; k > 0; --k) {
            const u32 d = k - 1;
            const u64 coord = rest % meta[d];
            rest /= meta[d];
            const u64 in_dim = meta[rank + d];
            const u64 before = meta[2 * rank + d];
            if (coord < before || coord - before >= in_dim) {
                inside = false;
            } else {
                from += (coord - before) * stride;
            }
            stride *= in_dim;
        }
        dst[i] = inside ? src[from] : value;
    }
}

extern "C" __global__ void infera_pad_i8(const i8* __restrict__ src, i8* __restrict__ dst,
                                         u64 n_out, u32 rank, const u64* __restrict__ meta,
                                         i32 zero_point) {
    infera_pad<i8>(src, dst, n_out, rank, meta, (i8)zero_point);
}

extern "C" __global__ void infera_pad_i32(const i32* __restrict__ src, i32* __restrict__ dst,
                                          u64 n_out, u32 rank, const u64* __restrict__ meta) {
    infera_pad<i32>(src, dst, n_out, rank, meta, 0);
}

// ArgMax: for every (outer, inner) pair the first index along the axis of the
// largest value (strict `>`, so ties keep the first), as int32.
// x = [outer, len, inner], y = [outer, inner] (len == 0 gives 0, reading nothing).
template <typename T>
__device__ __forceinline__ void infera_arg_max(const T* __restrict__ x, i32* __restrict__ y,
                                               u64 outer, u64 len, u64 inner) {
    INFERA_FOR_EACH(i, outer * inner) {
        const u64 o = i / inner;
        const u64 j = i % inner;
        if (len == 0) {
            y[i] = 0;
            continue;
        }
        const T* base = x + o * len * inner + j;
        u64 best = 0;
        i32 best_v = (i32)base[0];
        for (u64 a = 1; a < len; ++a) {
            const i32 v = (i32)base[a * inner];
            if (v > best_v) {
                best = a;
                best_v = v;
            }
        }
        y[i] = (i32)best;
    }
}

extern "C" __global__ void infera_arg_max_i8(const i8* __restrict__ x, i32* __restrict__ y,
                                             u64 outer, u64 len, u64 inner) {
    infera_arg_max<i8>(x, y, outer, len, inner);
}

extern "C" __global__ void infera_arg_max_i32(const i32* __restrict__ x, i32* __restrict__ y,
                                              u64 outer, u64 len, u64 inner) {
    infera_arg_max<i32>(x, y, outer, len, inner);
}
