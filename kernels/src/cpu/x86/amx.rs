//! Intel AMX (advanced matrix extensions) tiles behind a safe, bounds-checked
//! interface: the second and last module of the crate with `unsafe`.
//!
//! AMX computes `C += A * B` on tiles held in eight tile registers: `C` is 16
//! rows of 16 i32, `A` 16 rows of up to 64 int8, `B` up to 16 rows of 64 int8,
//! each `B` row holding four consecutive reduction elements of 16 columns. The
//! int8 products are summed into the i32 elements without saturation (wrapping,
//! like `vpaddd`), so with the validated bound on every sum the result is the
//! exact integer sum, in whatever order the hardware adds.
//!
//! Rust has no stable AMX intrinsics, so the instructions are inline assembly;
//! this module is the only place they appear. What makes each use sound:
//!
//! * **The CPU and the OS.** [`permitted`] checks CPUID for AMX-TILE and
//!   AMX-INT8, then asks Linux for the tile-data state
//!   (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), once per process.
//!   Without that grant the first tile instruction faults, so no [`Tiles`] can
//!   be made unless it succeeded. Other systems never use AMX.
//! * **The configuration.** A [`Tiles`] value loads the tile configuration on
//!   its thread when made and releases the tiles when dropped; it is `!Send`
//!   (the configuration belongs to the thread), and at most one exists per
//!   thread at a time (a second would change the first one's shapes).
//! * **Memory.** Every tile load and store checks, before the instruction, that
//!   all the rows it touches lie inside the slice it was given.
//!
//! The compiler never allocates tile registers, so their contents survive
//! between the `asm!` blocks of one kernel.
#![allow(unsafe_code)]

use core::arch::asm;
use core::marker::PhantomData;
use std::cell::Cell;
use std::sync::OnceLock;

/// Rows of every tile, and i32 columns of an accumulator tile.
pub(crate) const TILE: usize = 16;
/// Bytes in one tile row at most (64 int8 reduction elements of an `A` row).
pub(crate) const ROW_BYTES: usize = 64;

/// Whether this process may use AMX int8 tiles (checked once, then cached).
pub(crate) fn permitted() -> bool {
    static PERMITTED: OnceLock<bool> = OnceLock::new();
    *PERMITTED.get_or_init(|| cpu_has_amx_int8() && request_tile_data())
}

fn cpu_has_amx_int8() -> bool {
    use core::arch::x86_64::__cpuid_count;
    // Leaf 7 exists when the maximum basic leaf is at least 7.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU.
    let max_leaf = unsafe { __cpuid_count(0, 0) }.eax;
    if max_leaf < 7 {
        return false;
    }
    #[allow(unused_unsafe)]
    // SAFETY: as above; leaf 7 was just found to exist.
    let edx = unsafe { __cpuid_count(7, 0) }.edx;
    // EDX bit 24: AMX-TILE, bit 25: AMX-INT8.
    edx & (1 << 24) != 0 && edx & (1 << 25) != 0
}

#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: `arch_prctl(ARCH_REQ_XCOMP_PERM, 18)` only asks the kernel to
    // allow the tile-data state for this process; it touches no memory of
    // ours. The syscall instruction clobbers rcx and r11, declared below.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// Which operand of a product is unsigned (offset by 128 to u8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signs {
    /// `A` u8, `B` i8 (`tdpbusd`).
    UnsignedA,
    /// `A` i8, `B` u8 (`tdpbsud`).
    UnsignedB,
}

/// The 64-byte tile configuration of palette 1.
#[repr(C, align(64))]
struct Config([u8; 64]);

thread_local! {
    static CONFIGURED: Cell<bool> = const { Cell::new(false) };
}

/// The configured tiles of one kernel call on one thread: accumulators
/// `C[i][j]` (i, j in 0..2, 16 x 16 i32 each), `A[i]` (16 rows of
/// `k_bytes`) and `B[j]` (`k_bytes / 4` rows of 64 bytes). Tile registers:
/// `C` tmm0..tmm3 (`2 * i + j`), `A` tmm4, tmm5, `B` tmm6, tmm7.
pub(crate) struct Tiles {
    k_bytes: usize,
    signs: Signs,
    _not_send: PhantomData<*const ()>,
}

/// Proof that [`permitted`] returned true on this process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Granted {
    _checked: (),
}

impl Granted {
    pub(crate) fn detect() -> Option<Self> {
        permitted().then_some(Granted { _checked: () })
    }

    /// Configure the tiles of this thread for a reduction of `k_bytes` per
    /// step (a multiple of 4, at most 64) with the given operand signs.
    ///
    /// Panics if this thread already holds a [`Tiles`], or on a bad `k_bytes`.
    pub(crate) fn tiles(self, k_bytes: usize, signs: Signs) -> Tiles {
        assert!(
            k_bytes > 0 && k_bytes <= ROW_BYTES && k_bytes.is_multiple_of(4),
            "AMX step of {k_bytes} bytes"
        );
        assert!(
            !CONFIGURED.with(|c| c.replace(true)),
            "AMX tiles configured twice on one thread"
        );
        let mut cfg = [0u8; 64];
        cfg[0] = 1; // palette 1
        let colsb = |t: usize| 16 + 2 * t;
        let rows = |t: usize| 48 + t;
        for t in 0..4 {
            cfg[colsb(t)] = 64;
            cfg[rows(t)] = TILE as u8;
        }
        for t in 4..6 {
            cfg[colsb(t)] = k_bytes as u8;
            cfg[rows(t)] = TILE as u8;
        }
        for t in 6..8 {
            cfg[colsb(t)] = 64;
            cfg[rows(t)] = (k_bytes / 4) as u8;
        }
        let cfg = Config(cfg);
        // SAFETY: `Granted` proves the CPU has AMX and the OS granted the tile
        // state; the configuration is a valid palette-1 layout (rows <= 16,
        // bytes per row <= 64) read from a live, 64-byte aligned buffer.
        unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
        Tiles {
            k_bytes,
            signs,
            _not_send: PhantomData,
        }
    }
}

/// Panics unless `rows` rows of `row_bytes`, `stride` bytes apart from `at`,
/// lie inside `len` bytes.
#[inline(always)]
fn check(len: usize, at: usize, stride: usize, rows: usize, row_bytes: usize) {
    let end = (rows - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(at))
        .and_then(|v| v.checked_add(row_bytes));
    assert!(
        end.is_some_and(|e| e <= len),
        "AMX tile access past the buffer"
    );
}

/// Emits one tile load of register `$t` from `$p` with row stride `$s`.
macro_rules! tile_load {
    ($t:literal, $p:expr, $s:expr) => {
        asm!(
            concat!("tileloadd tmm", $t, ", [{p} + {s} * 1]"),
            p = in(reg) $p,
            s = in(reg) $s,
            options(nostack, readonly)
        )
    };
}

impl Tiles {
    /// Set the four accumulators to zero.
    #[inline]
    pub(crate) fn zero(&mut self) {
        // SAFETY: tiles are configured on this thread (`self` exists).
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            )
        };
    }

    /// Load `A[i]`: 16 rows of `k_bytes` from `src[at..]`, `stride` bytes apart.
    #[inline]
    pub(crate) fn load_a(&mut self, i: usize, src: &[u8], at: usize, stride: usize) {
        check(src.len(), at, stride, TILE, self.k_bytes);
        let p = src[at..].as_ptr();
        // SAFETY: configured tiles; every byte read was checked to be in `src`.
        unsafe {
            match i {
                0 => tile_load!("4", p, stride),
                _ => tile_load!("5", p, stride),
            }
        }
    }

    /// Load `B[j]`: `k_bytes / 4` rows of 64 bytes from `src[at..]`, `stride`
    /// bytes apart.
    #[inline]
    pub(crate) fn load_b(&mut self, j: usize, src: &[u8], at: usize, stride: usize) {
        check(src.len(), at, stride, self.k_bytes / 4, ROW_BYTES);
        let p = src[at..].as_ptr();
        // SAFETY: configured tiles; every byte read was checked to be in `src`.
        unsafe {
            match j {
                0 => tile_load!("6", p, stride),
                _ => tile_load!("7", p, stride),
            }
        }
    }

    /// `C[i][j] += A[i] * B[j]`.
    #[inline]
    pub(crate) fn mul(&mut self, i: usize, j: usize) {
        macro_rules! dp {
            ($ins:literal, $c:literal, $a:literal, $b:literal) => {
                asm!(
                    concat!($ins, " tmm", $c, ", tmm", $a, ", tmm", $b),
                    options(nostack, nomem)
                )
            };
        }
        // SAFETY: configured tiles; register-only instructions.
        unsafe {
            match (self.signs, i, j) {
                (Signs::UnsignedA, 0, 0) => dp!("tdpbusd", "0", "4", "6"),
                (Signs::UnsignedA, 0, _) => dp!("tdpbusd", "1", "4", "7"),
                (Signs::UnsignedA, _, 0) => dp!("tdpbusd", "2", "5", "6"),
                (Signs::UnsignedA, _, _) => dp!("tdpbusd", "3", "5", "7"),
                (Signs::UnsignedB, 0, 0) => dp!("tdpbsud", "0", "4", "6"),
                (Signs::UnsignedB, 0, _) => dp!("tdpbsud", "1", "4", "7"),
                (Signs::UnsignedB, _, 0) => dp!("tdpbsud", "2", "5", "6"),
                (Signs::UnsignedB, _, _) => dp!("tdpbsud", "3", "5", "7"),
            }
        }
    }

    /// Store `C[i][j]` as 16 rows of 16 i32 at `dst[at..]`, rows `stride`
    /// elements apart.
    #[inline]
    pub(crate) fn store(&mut self, i: usize, j: usize, dst: &mut [i32], at: usize, stride: usize) {
        check(dst.len(), at, stride, TILE, TILE);
        let p = dst[at..].as_mut_ptr();
        let s = stride * 4;
        macro_rules! st {
            ($t:literal) => {
                asm!(
                    concat!("tilestored [{p} + {s} * 1], tmm", $t),
                    p = in(reg) p,
                    s = in(reg) s,
                    options(nostack)
                )
            };
        }
        // SAFETY: configured tiles; every element written was checked to be
        // in `dst`, which is borrowed mutably.
        unsafe {
            match (i, j) {
                (0, 0) => st!("0"),
                (0, _) => st!("1"),
                (_, 0) => st!("2"),
                _ => st!("3"),
            }
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: releases this thread's tile configuration, made by `tiles`.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
        CONFIGURED.with(|c| c.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_wrap_instead_of_saturating() {
        let Some(g) = Granted::detect() else { return };
        // 255 * 127 * 64 per step, 1100 steps: about 2.28e9, past i32::MAX.
        let a = vec![255u8; 16 * 64];
        let b = vec![127u8; 16 * 64];
        let mut t = g.tiles(64, Signs::UnsignedA);
        t.zero();
        t.load_a(0, &a, 0, 64);
        t.load_b(0, &b, 0, 64);
        for _ in 0..1100 {
            t.mul(0, 0);
        }
        let mut c = vec![0i32; 256];
        t.store(0, 0, &mut c, 0, 16);
        let expect = (255i64 * 127 * 64 * 1100) as i32; // wrapping
        assert!(c.iter().all(|&v| v == expect), "{} vs {expect}", c[0]);
    }

    #[test]
    fn signs_select_the_operand_offset() {
        let Some(g) = Granted::detect() else { return };
        let a = vec![200u8; 16 * 8];
        let b = vec![3u8; 2 * 64];
        let mut c = vec![0i32; 256];
        for (signs, expect) in [
            (Signs::UnsignedA, 200 * 3 * 8),
            (Signs::UnsignedB, -56 * 3 * 8),
        ] {
            let mut t = g.tiles(8, signs);
            t.zero();
            t.load_a(0, &a, 0, 8);
            t.load_b(0, &b, 0, 64);
            t.mul(0, 0);
            t.store(0, 0, &mut c, 0, 16);
            assert!(c.iter().all(|&v| v == expect), "{signs:?}: {}", c[0]);
        }
    }

    #[test]
    #[should_panic(expected = "past the buffer")]
    fn loads_past_the_buffer_are_refused() {
        let Some(g) = Granted::detect() else {
            panic!("AMX tile access past the buffer (no AMX here)")
        };
        let a = vec![0u8; 16 * 64 - 1];
        let mut t = g.tiles(64, Signs::UnsignedA);
        t.load_a(0, &a, 0, 64);
    }
}
