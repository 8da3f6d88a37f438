//! Validation helpers shared by the operator modules: one node's context
//! (inputs, output zero point, how errors are labelled) and the checks
//! several operators make.

use super::Work;
use crate::error::{ModelError, ModelResult};
use crate::limits::*;
use crate::quant::Requant;
use crate::tensor::{DType, TensorInfo, TensorSpec};

/// Error if `actual > max`, naming the limit.
pub(crate) fn check_limit(limit: &'static str, actual: u64, max: u64) -> ModelResult<()> {
    if actual > max {
        Err(ModelError::LimitExceeded { limit, max, actual })
    } else {
        Ok(())
    }
}

/// Product of dims, `None` on overflow.
pub(crate) fn checked_product(dims: &[usize]) -> Option<u64> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
}

/// One node being validated: what its errors name and what it reads.
pub(crate) struct Cx<'a> {
    /// Node index, only to label errors.
    pub node: usize,
    /// Operator name, only to label errors.
    pub op: &'static str,
    pub inputs: &'a [&'a TensorInfo],
    pub out_zero_point: i8,
}

impl Cx<'_> {
    pub fn fail(&self, reason: String) -> ModelError {
        ModelError::InvalidNode {
            node: self.node,
            op: self.op,
            reason,
        }
    }

    pub fn arity(&self, n: usize) -> ModelResult<()> {
        if self.inputs.len() == n {
            Ok(())
        } else {
            Err(self.fail(format!("takes {n} inputs, got {}", self.inputs.len())))
        }
    }

    pub fn want_i8(&self, t: &TensorInfo) -> ModelResult<()> {
        if t.spec.dtype == DType::I8 {
            Ok(())
        } else {
            Err(self.fail(format!("needs an i8 input, got {}", t.spec)))
        }
    }

    pub fn same_zp(&self, t: &TensorInfo) -> ModelResult<()> {
        if t.zero_point == self.out_zero_point {
            Ok(())
        } else {
            Err(self.fail(format!(
                "output zero point {} must equal the input's {}",
                self.out_zero_point, t.zero_point
            )))
        }
    }

    /// An int8 output of `shape` with the node's zero point.
    pub fn i8_out(&self, shape: Vec<usize>) -> TensorInfo {
        self.out(DType::I8, shape)
    }

    pub fn out(&self, dtype: DType, shape: Vec<usize>) -> TensorInfo {
        TensorInfo {
            spec: TensorSpec { dtype, shape },
            zero_point: self.out_zero_point,
        }
    }

    pub fn range(&self, what: &str, v: usize, max: u64) -> ModelResult<()> {
        if v == 0 || v as u64 > max {
            Err(self.fail(format!("{what} {v} outside 1..={max}")))
        } else {
            Ok(())
        }
    }

    pub fn nchw(&self, x: &TensorInfo) -> ModelResult<[usize; 4]> {
        match x.spec.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(self.fail(format!("needs an NCHW (rank 4) input, got {}", x.spec))),
        }
    }

    pub fn same_shape(&self, a: &TensorInfo, b: &TensorInfo) -> ModelResult<()> {
        if a.spec.shape == b.spec.shape {
            Ok(())
        } else {
            Err(self.fail(format!("shapes differ: {} vs {}", a.spec, b.spec)))
        }
    }

    pub fn requant(&self, rq: Requant) -> ModelResult<()> {
        if rq.is_valid() {
            Ok(())
        } else {
            Err(self.fail(format!(
                "requant multiplier {} must be >= 0 and shift {} in 1..={MAX_SHIFT_BITS}",
                rq.multiplier, rq.shift
            )))
        }
    }

    pub fn act(&self, lo: i8, hi: i8) -> ModelResult<()> {
        if lo <= hi {
            Ok(())
        } else {
            Err(self.fail(format!("act_min {lo} > act_max {hi}")))
        }
    }

    /// Output extent of a sliding window, erroring when the window does not fit.
    pub fn out_extent(
        &self,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad_begin: usize,
        pad_end: usize,
    ) -> ModelResult<usize> {
        let span = dilation * (kernel - 1) + 1;
        let padded = input + pad_begin + pad_end;
        if padded < span {
            return Err(self.fail(format!(
                "window of {span} does not fit padded extent {padded}"
            )));
        }
        Ok((padded - span) / stride + 1)
    }

    /// The error of an axis outside the first input's rank.
    pub fn bad_axis(&self, axis: usize) -> ModelError {
        self.fail(format!(
            "axis {axis} out of range for {}",
            self.inputs[0].spec
        ))
    }
}

/// Elements of a tensor.
pub(crate) fn elems(t: &TensorInfo) -> u64 {
    t.spec.elements() as u64
}

/// Same dtype and zero point as `t`, new shape.
pub(crate) fn same_type(t: &TensorInfo, shape: Vec<usize>) -> TensorInfo {
    TensorInfo {
        spec: TensorSpec {
            dtype: t.spec.dtype,
            shape,
        },
        zero_point: t.zero_point,
    }
}

/// What an operator's validation yields: its output, its work, and the
/// counts behind [`Work::moved_elements`] that depend on the operator.
pub(crate) struct Shaped {
    pub out: TensorInfo,
    pub work: Work,
    /// Elements gathered (im2col entries, depthwise taps, widened rows).
    pub gathered: u64,
    /// Outputs requantised.
    pub requantised: u64,
    /// Pool window elements, counted again as moves.
    pub windows: u64,
}

impl Shaped {
    /// An output and its element operations, with no MACs or extra moves.
    pub fn new(out: TensorInfo, element_ops: u64) -> Self {
        Shaped {
            out,
            work: Work {
                macs: 0,
                element_ops,
                ..Work::default()
            },
            gathered: 0,
            requantised: 0,
            windows: 0,
        }
    }

    /// Every output requantised (an i64 product, a rounding shift, a clamp).
    pub fn requantising(mut self) -> Self {
        self.requantised = elems(&self.out);
        self
    }
}
