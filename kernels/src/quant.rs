//! Requantisation: the single rounding rule of the engine.
//!
//! A real-valued rescale `y = x * s` is represented as `x * multiplier / 2^shift`
//! with `multiplier` a non-negative i32 and `1 <= shift <= 62`, computed exactly in
//! i64 and rounded by [`ROUNDING_RULE`]. The same rule is used by average pooling.

use crate::limits::MAX_SHIFT_BITS;
use serde::{Deserialize, Serialize};

/// The rounding rules the engine could use; exactly one is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundingRule {
    /// Round to nearest, ties toward positive infinity:
    /// `floor(v / 2^n + 1/2)`, i.e. `(v + 2^(n-1)) >> n` with an arithmetic shift.
    /// Chosen because it is one add and one shift on every backend.
    HalfUp,
}

/// The rounding rule used by every requantisation and by average pooling.
pub const ROUNDING_RULE: RoundingRule = RoundingRule::HalfUp;

/// An integer rescale: `round(x * multiplier / 2^shift)` by [`ROUNDING_RULE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    /// Non-negative multiplier (`0..=i32::MAX`).
    pub multiplier: i32,
    /// Right shift in bits, `1..=MAX_SHIFT_BITS`.
    pub shift: u8,
}

impl Requant {
    /// Whether the parameters are in their valid ranges.
    pub fn is_valid(&self) -> bool {
        self.multiplier >= 0 && (1..=MAX_SHIFT_BITS).contains(&self.shift)
    }

    /// `round_half_up(v * multiplier / 2^shift)` for any i32 `v`.
    ///
    /// Exact: `|v * multiplier| < 2^62` and the rounding term is at most `2^61`.
    #[inline(always)]
    pub fn apply(self, v: i32) -> i64 {
        round_shift(i64::from(v) * i64::from(self.multiplier), self.shift)
    }
}

/// `round_half_up(v / 2^shift)` for `1 <= shift <= 62` and `|v| < 2^62`.
#[inline(always)]
pub fn round_shift(v: i64, shift: u8) -> i64 {
    (v + (1i64 << (shift - 1))) >> shift
}

/// `round_half_up(num / den)` for `den > 0`, the rule used by average pooling.
#[inline(always)]
pub fn round_div(num: i64, den: i64) -> i64 {
    (2 * num + den).div_euclid(2 * den)
}

/// Clamp an i64 into `[lo, hi]` (both int8) and narrow.
#[inline(always)]
pub fn saturate_i8(v: i64, lo: i8, hi: i8) -> i8 {
    v.clamp(i64::from(lo), i64::from(hi)) as i8
}

/// Requantise one accumulator to int8: `clamp(zp + round(acc * m / 2^s), lo, hi)`.
#[inline(always)]
pub fn requantize(acc: i32, rq: Requant, zero_point: i8, lo: i8, hi: i8) -> i8 {
    saturate_i8(rq.apply(acc) + i64::from(zero_point), lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_up_rounding() {
        // 2.5 -> 3, -2.5 -> -2, 2.25 -> 2, -2.75 -> -3
        assert_eq!(round_shift(10, 2), 3);
        assert_eq!(round_shift(-10, 2), -2);
        assert_eq!(round_shift(9, 2), 2);
        assert_eq!(round_shift(-11, 2), -3);
        assert_eq!(round_div(5, 2), 3);
        assert_eq!(round_div(-5, 2), -2);
        assert_eq!(round_div(-7, 3), -2);
        assert_eq!(round_div(7, 3), 2);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let rq = Requant {
            multiplier: i32::MAX,
            shift: 1,
        };
        assert_eq!(
            rq.apply(i32::MIN),
            (i64::from(i32::MIN) * i64::from(i32::MAX) + 1) >> 1
        );
        let rq = Requant {
            multiplier: i32::MAX,
            shift: 62,
        };
        assert_eq!(rq.apply(i32::MAX), 1);
        assert_eq!(
            requantize(
                1 << 20,
                Requant {
                    multiplier: 1 << 30,
                    shift: 31
                },
                3,
                -128,
                127
            ),
            127
        );
    }
}
