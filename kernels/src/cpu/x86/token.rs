//! Calls from ordinary code into the AVX2 (and AVX-VNNI) kernels of
//! [`super::avx2`] and the AMX kernels of [`super::amx_kernels`]: with
//! [`super::amx`] (the tile instructions themselves), the only `unsafe` in
//! the crate.
//!
//! The kernels are safe `#[target_feature(enable = "avx2")]` functions; Rust
//! requires `unsafe` to call one from a function without the feature, because
//! running AVX2 instructions on a CPU without them is undefined behaviour. An
//! [`Avx2`] value is proof that the check was made: it can only be built by
//! [`Avx2::detect`], which asks the CPU (`is_x86_feature_detected!`, cached by
//! std). Every method below is a plain forwarding call under that proof.
//!
//! The choice depends on the CPU alone (never on environment variables, thread
//! counts or options other than [`crate::cpu::Kernels::Portable`], which forces
//! the portable path, and [`crate::cpu::limit_fast_kernels`], with which the
//! gas benchmark forces the lower levels), and every path gives identical bytes.
#![allow(unsafe_code)]

use super::amx::Granted;
use super::amx_kernels::{self, ConvShape};
use super::avx2::{self, OutMode};
use super::{ChanRq, Grid, Plane};
use crate::cpu::OutSlice;

/// The highest fast-kernel level a benchmark allows (see
/// [`crate::cpu::limit_fast_kernels`]); `u8::MAX` = whatever the CPU has.
static FAST_LIMIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(u8::MAX);

pub(crate) fn set_fast_limit(level: u8) {
    FAST_LIMIT.store(level, std::sync::atomic::Ordering::Relaxed);
}

fn allowed(level: u8) -> bool {
    FAST_LIMIT.load(std::sync::atomic::Ordering::Relaxed) >= level
}

/// Proof that this CPU runs AVX2 instructions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2 {
    _detected: (),
}

impl Avx2 {
    /// `Some` exactly when the CPU supports AVX2.
    pub(crate) fn detect() -> Option<Self> {
        (allowed(1) && std::arch::is_x86_feature_detected!("avx2"))
            .then_some(Avx2 { _detected: () })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dense(
        self,
        w: &[i8],
        x: &[i32],
        rows: usize,
        steps: usize,
        rq: &[ChanRq],
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { avx2::dense(w, x, rows, steps, rq, mode, dst) }
    }

    /// The AVX-VNNI proof, when this CPU also has AVX-VNNI.
    pub(crate) fn vnni(self) -> Option<Vnni> {
        (allowed(2) && std::arch::is_x86_feature_detected!("avxvnni"))
            .then_some(Vnni { _detected: () })
    }

    pub(crate) fn conv_input_quads(
        self,
        x: &[i8],
        zx: i8,
        cg: usize,
        pln: &Plane,
        planes: usize,
    ) -> Vec<i32> {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { avx2::conv_input_quads(x, zx, cg, pln, planes) }
    }

    pub(crate) fn conv_input(self, x: &[i8], zx: i8, cg: usize, pln: &Plane) -> Vec<i32> {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { avx2::conv_input(x, zx, cg, pln) }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv(
        self,
        src: &[i32],
        offs: &[usize],
        w: &[i32],
        rq: &[ChanRq],
        grid: &Grid,
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { avx2::conv(src, offs, w, rq, grid, mode, dst) }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn depthwise(
        self,
        x: &[i8],
        zx: i8,
        pln: &Plane,
        dw: usize,
        ch0: usize,
        og: usize,
        w: &[i32],
        offs: &[usize],
        rq: &[ChanRq],
        grid: &Grid,
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX2 (`self`) and AVX-512F (just checked) are on this CPU.
            unsafe { avx2::depthwise_avx512(x, zx, pln, dw, ch0, og, w, offs, rq, grid, mode, dst) }
        } else {
            // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
            unsafe { avx2::depthwise(x, zx, pln, dw, ch0, og, w, offs, rq, grid, mode, dst) }
        }
    }
}

/// Proof that this CPU runs AVX2 and AVX-VNNI (`vpdpbusd` on 256-bit vectors)
/// instructions; built only by [`Avx2::vnni`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vnni {
    _detected: (),
}

impl Vnni {
    /// The AMX proof, when this CPU has AMX-INT8 and the OS granted this
    /// process the tile state.
    pub(crate) fn amx(self) -> Option<Amx> {
        if !allowed(3) || !std::arch::is_x86_feature_detected!("avx512f") {
            return None;
        }
        Granted::detect().map(|granted| Amx { granted })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dense(
        self,
        w: &[i8],
        x: &[i32],
        rows: usize,
        steps: usize,
        rq: &[ChanRq],
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        // SAFETY: `self` exists only if `Avx2::vnni` found AVX2 and AVX-VNNI
        // on this CPU.
        unsafe { avx2::dense_vnni(w, x, rows, steps, rq, mode, dst) }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv(
        self,
        src: &[i32],
        offs: &[usize],
        w: &[i32],
        rq: &[ChanRq],
        grid: &Grid,
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        // SAFETY: `self` exists only if `Avx2::vnni` found AVX2 and AVX-VNNI
        // on this CPU.
        unsafe { avx2::conv_vnni(src, offs, w, rq, grid, mode, dst) }
    }
}

/// Proof that this CPU runs AVX2, AVX-VNNI, AVX-512F and AMX-INT8 instructions and that
/// the OS let this process use the tiles; built only by [`Vnni::amx`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Amx {
    granted: Granted,
}

impl Amx {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dense(
        self,
        w: &[u8],
        x: &[u8],
        rows: usize,
        k_steps: usize,
        rq: &[ChanRq],
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        // SAFETY: `self` exists only if `Vnni::amx` found AVX2 and AVX-512F
        // on this CPU (the AMX kernels requantise with them).
        unsafe { amx_kernels::dense(self.granted, w, x, rows, k_steps, rq, mode, dst) }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv(
        self,
        src: &[u8],
        shape: &ConvShape<'_>,
        w: &[u8],
        rq: &[ChanRq],
        grid: &Grid,
        mode: OutMode,
        dst: &mut OutSlice<'_>,
    ) {
        // SAFETY: as in `dense`.
        unsafe { amx_kernels::conv(self.granted, src, shape, w, rq, grid, mode, dst) }
    }
}
