//! ReduceSum and ReduceMean over given axes: one operator, `mean` choosing.
//!
//! For each output element, `s = Σ (x - zx)` over the reduced positions (an
//! exact i32: at most [`MAX_REDUCTION_LEN`] terms of magnitude 255, asserted
//! in `limits.rs`), then `p = s * multiplier` in i64 (below 2^55), then for a
//! mean `p = round_half_up(p / count)` (`quant::round_div`, the rule of
//! average pooling), and `y = clamp(zy + round_half_up(p / 2^shift))`.
//!
//! The mean divides after the multiplier, not before: the quotient keeps
//! `shift` fractional bits, so the mean and the rescale together round once
//! to the output's step (plus at most 2^-shift of one), rather than rounding
//! the mean to the input's step first. The multiplier is therefore the same
//! `sx / sy` for both forms, and `count` stays exact in the model.

use super::check::{Cx, Shaped, elems};
use super::{Operator, check_limit};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::MAX_REDUCTION_LEN;
use crate::quant::{Requant, round_div, round_shift, saturate_i8};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The reduced axes and the rescale of the sum (or mean).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceParams {
    /// Reduced axes, strictly increasing, each below the input's rank.
    pub axes: Vec<usize>,
    /// Divide the sum by the count of reduced elements (ReduceMean).
    pub mean: bool,
    /// Keep reduced axes with length 1 (ONNX `keepdims`), else drop them.
    pub keep_dims: bool,
    /// Rescale of the sum or mean (`sx / sy`).
    pub requant: Requant,
}

/// Index arithmetic of a validated reduction: output elements walk the kept
/// axes, each sums the reduced axes.
pub(crate) struct Walk {
    /// `(extent, input stride)` of each kept axis, outermost first.
    pub kept: Vec<(usize, usize)>,
    /// `(extent, input stride)` of each reduced axis, outermost first.
    pub reduced: Vec<(usize, usize)>,
    /// Elements summed into one output.
    pub count: usize,
}

impl Walk {
    pub fn new(shape: &[usize], axes: &[usize]) -> Self {
        let mut stride = 1;
        let mut strides = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            strides[d] = stride;
            stride *= shape[d];
        }
        let (mut kept, mut reduced) = (Vec::new(), Vec::new());
        for d in 0..shape.len() {
            let e = (shape[d], strides[d]);
            if axes.contains(&d) {
                reduced.push(e);
            } else {
                kept.push(e);
            }
        }
        let count = reduced.iter().map(|e| e.0).product();
        Walk {
            kept,
            reduced,
            count,
        }
    }

    /// The input offsets of a row-major walk over all of `dims`, in order,
    /// built axis by axis: no division.
    fn offsets(dims: &[(usize, usize)]) -> Vec<usize> {
        let mut offsets = vec![0usize];
        for &(extent, stride) in dims {
            offsets = offsets
                .iter()
                .flat_map(|&o| (0..extent).map(move |i| o + i * stride))
                .collect();
        }
        offsets
    }

    /// Input offset of position `i` of a row-major walk over `dims`.
    fn offset(dims: &[(usize, usize)], mut i: usize) -> usize {
        let mut off = 0;
        for &(extent, stride) in dims.iter().rev() {
            off += (i % extent) * stride;
            i /= extent;
        }
        off
    }
}

impl Operator for ReduceParams {
    const NAME: &'static str = "reduce";
    const TAG: u8 = 20;

    /// `count u8, axes u8[count], mean bool u8, keep_dims bool u8, m i32, shift u8`.
    fn encode(&self, w: &mut Writer) {
        w.rank(self.axes.len());
        self.axes.iter().for_each(|&a| w.axis(a));
        w.u8(u8::from(self.mean));
        w.u8(u8::from(self.keep_dims));
        w.requant(self.requant);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let count = r.rank()?;
        Ok(Self {
            axes: (0..count).map(|_| r.axis()).collect::<ModelResult<_>>()?,
            mean: r.bool("mean")?,
            keep_dims: r.bool("keep_dims")?,
            requant: r.requant()?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        let s = &x.spec.shape;
        let axes = &self.axes;
        if axes.is_empty()
            || axes.windows(2).any(|w| w[0] >= w[1])
            || axes.iter().any(|&a| a >= s.len())
        {
            return Err(cx.fail(format!(
                "axes {axes:?} must be strictly increasing axes of {}",
                x.spec
            )));
        }
        if !self.keep_dims && axes.len() == s.len() {
            return Err(cx.fail("reducing every axis without keep_dims leaves rank 0".into()));
        }
        let count: u64 = axes.iter().map(|&a| s[a] as u64).product();
        check_limit("MAX_REDUCTION_LEN", count, MAX_REDUCTION_LEN)?;
        cx.requant(self.requant)?;
        let shape = (0..s.len())
            .filter_map(|d| match (axes.contains(&d), self.keep_dims) {
                (false, _) => Some(s[d]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        // Every input element is read and summed once; each output also
        // finds its first element (a division per kept axis) and, for a
        // mean, divides in 64 bits: eight element operations, as measured by
        // the gas search (outputs of one element each were the slowest per
        // gas: 2.0x the ERC-20 block at four).
        let out = cx.i8_out(shape);
        let work = elems(x) + 8 * elems(&out);
        Ok(Shaped::new(out, work).requantising())
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        let xs = run.x_i8();
        let zx = i32::from(x.zero_point);
        let zy = i64::from(run.out.zero_point);
        let walk = Walk::new(&x.shape, &self.axes);
        let outs: usize = walk.kept.iter().map(|e| e.0).product();
        let count = walk.count;
        // The reduced elements' offsets from an output's first, once (at
        // most MAX_REDUCTION_LEN of them): no division per element.
        let offsets = Walk::offsets(&walk.reduced);
        debug_assert_eq!(offsets.len(), count);
        let y = (0..outs)
            .map(|o| {
                let base = Walk::offset(&walk.kept, o);
                // Exact: at most MAX_REDUCTION_LEN terms of magnitude 255.
                let sum = offsets.iter().fold(0i32, |acc, &off| {
                    acc.wrapping_add(i32::from(xs[base + off]) - zx)
                });
                let mut p = i64::from(sum) * i64::from(self.requant.multiplier);
                if self.mean {
                    p = round_div(p, count as i64);
                }
                saturate_i8(round_shift(p, self.requant.shift) + zy, -128, 127)
            })
            .collect();
        run.i8_out(y)
    }

    fn heap_bytes(&self) -> usize {
        self.axes.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;
    use crate::cpu::execute_op;

    fn reduce(axes: Vec<usize>, mean: bool, keep_dims: bool, rq: (i32, u8)) -> Op {
        Op::Reduce(ReduceParams {
            axes,
            mean,
            keep_dims,
            requant: Requant {
                multiplier: rq.0,
                shift: rq.1,
            },
        })
    }

    #[test]
    fn sum_and_mean_over_axes() {
        // [2, 3, 2], zero point 1.
        let data: Vec<i8> = vec![1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6];
        let x = Tensor::i8(vec![2, 3, 2], 1, data.clone());
        let unit = (1 << 30, 30);
        // Sum over axis 1, keep dims: [2, 1, 2].
        let y = execute_op(&reduce(vec![1], false, true, unit), &[&x], 0).expect("valid");
        assert_eq!(y.shape, [2, 1, 2]);
        assert_eq!(y.as_i8().expect("i8"), &[6, 9, -12, -15]);
        // Mean over axes 0 and 2, dropped: [3]; (x - 1) sums 0-4, 2+3-7-8, ...
        let y = execute_op(&reduce(vec![0, 2], true, false, unit), &[&x], 5).expect("valid");
        assert_eq!(y.shape, [3]);
        // Column sums of x - 1: {0,1,-2,-3} = -4, {2,3,-4,-5} = -4, {4,5,-6,-7} = -4:
        // -4 / 4 = -1 exactly, plus zero point 5.
        assert_eq!(y.as_i8().expect("i8"), &[4, 4, 4]);
        // Half up on ties: mean of (x - 1) over [0, 1] is 0.5 -> 1; over
        // [-1, -2] is -1.5 -> -1.
        let x = Tensor::i8(vec![2, 2], 1, vec![1, 2, 0, -1]);
        let y = execute_op(&reduce(vec![1], true, false, unit), &[&x], 0).expect("valid");
        assert_eq!(y.as_i8().expect("i8"), &[1, -1]);
    }

    #[test]
    fn the_mean_rounds_once_after_the_rescale() {
        // Mean of (x - 0) over 3 elements {1, 1, 0} = 2/3, times 3/2 = 1.0
        // exactly: dividing first would give round(2/3) = 1, times 1.5 = 2.
        let x = Tensor::i8(vec![1, 3], 0, vec![1, 1, 0]);
        let y = execute_op(&reduce(vec![1], true, false, (3 << 29, 30)), &[&x], 0).expect("valid");
        assert_eq!(y.as_i8().expect("i8"), &[1]);
    }

    #[test]
    fn the_longest_reduction_saturates_without_overflow() {
        let n = MAX_REDUCTION_LEN as usize;
        let x = Tensor::i8(vec![n], 127, vec![-128; n]);
        let y = execute_op(&reduce(vec![0], false, true, (i32::MAX, 1)), &[&x], 0).expect("valid");
        assert_eq!(y.as_i8().expect("i8"), &[-128]);
        let y = execute_op(&reduce(vec![0], true, true, (1 << 30, 30)), &[&x], 0).expect("valid");
        assert_eq!(y.as_i8().expect("i8"), &[-128]);
        let x = Tensor::i8(vec![2, n], 0, vec![0; 2 * n]);
        assert!(execute_op(&reduce(vec![0, 1], false, true, (1, 1)), &[&x], 0).is_err());
    }

    #[test]
    fn bad_axes_are_refused() {
        let x = Tensor::i8(vec![2, 3], 0, vec![0; 6]);
        for axes in [vec![], vec![1, 0], vec![1, 1], vec![2]] {
            assert!(
                execute_op(&reduce(axes.clone(), false, true, (1, 1)), &[&x], 0).is_err(),
                "{axes:?}"
            );
        }
        assert!(execute_op(&reduce(vec![0, 1], false, false, (1, 1)), &[&x], 0).is_err());
    }
}
