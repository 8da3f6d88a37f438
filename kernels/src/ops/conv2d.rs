//! 2-D convolution (plain, grouped, depthwise).

use super::affine::{self, check_accumulators, check_output_mode, check_weights};
use super::check::{Cx, Shaped, check_limit};
use super::{Operator, Work};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::quant::Requant;
use crate::tensor::DType;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// 2-D convolution over NCHW with stride, padding, dilation and groups.
///
/// Padding takes the input's zero point (the quantised 0.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dParams {
    /// Input channels `C`.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[dh, dw]`.
    pub dilation: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Groups; `groups == in_channels == out_channels` is depthwise.
    pub groups: usize,
    /// As in [`super::DenseParams::out_dtype`].
    pub out_dtype: DType,
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub weights: Vec<i8>,
    /// One per output channel.
    pub bias: Vec<i32>,
    /// One per output channel when `out_dtype` is `I8`, else empty.
    pub requant: Vec<Requant>,
    /// Lower clamp of the int8 output.
    pub act_min: i8,
    /// Upper clamp of the int8 output.
    pub act_max: i8,
}

impl Operator for Conv2dParams {
    const NAME: &'static str = "conv2d";
    const TAG: u8 = 2;

    /// `in_c, out_c, kh, kw, sh, sw, dh, dw, pad_t, pad_l, pad_b, pad_r, groups`
    /// (u32 each), then the output mode ([`affine::encode`]) with
    /// `weights i8[out_c*in_c/groups*kh*kw]`.
    fn encode(&self, w: &mut Writer) {
        w.usize(self.in_channels);
        w.usize(self.out_channels);
        w.axes(&self.kernel);
        w.axes(&self.stride);
        w.axes(&self.dilation);
        w.axes(&self.pads);
        w.usize(self.groups);
        affine::encode(
            w,
            self.out_dtype,
            self.act_min,
            self.act_max,
            &self.weights,
            &self.bias,
            &self.requant,
        );
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let in_channels = r.usize()?;
        let out_channels = r.usize()?;
        let kernel = r.pair()?;
        let stride = r.pair()?;
        let dilation = r.pair()?;
        let pads = r.quad()?;
        let groups = r.usize()?;
        let red = (in_channels.checked_div(groups).unwrap_or(0) as u64)
            .saturating_mul(kernel[0] as u64)
            .saturating_mul(kernel[1] as u64);
        let m = affine::decode(r, out_channels, red)?;
        Ok(Self {
            in_channels,
            out_channels,
            kernel,
            stride,
            dilation,
            pads,
            groups,
            out_dtype: m.dtype,
            weights: m.weights,
            bias: m.bias,
            requant: m.requant,
            act_min: m.act_min,
            act_max: m.act_max,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        let [n, c, h, w] = cx.nchw(x)?;
        self.check_geometry(cx, c)?;
        let red = self.reduction();
        check_limit("MAX_REDUCTION_LEN", red as u64, MAX_REDUCTION_LEN)?;
        let (k, s, d, p) = (self.kernel, self.stride, self.dilation, self.pads);
        let oh = cx.out_extent(h, k[0], s[0], d[0], p[0], p[2])?;
        let ow = cx.out_extent(w, k[1], s[1], d[1], p[1], p[3])?;
        check_weights(cx, &self.weights, &self.bias, self.out_channels, red)?;
        check_output_mode(
            cx,
            self.out_dtype,
            &self.requant,
            self.out_channels,
            self.act_min,
            self.act_max,
        )?;
        check_accumulators(cx.node, &self.weights, &self.bias, red)?;
        let macs = (n * self.out_channels * oh * ow) as u64 * red as u64;
        let out = cx.out(self.out_dtype, vec![n, self.out_channels, oh, ow]);
        let (kernel_macs, gathered) = self.kernel_work([n, oh, ow].map(|v| v as u64));
        let requantised = match self.out_dtype {
            DType::I8 => out.spec.elements() as u64,
            DType::I32 => 0,
        };
        Ok(Shaped {
            out,
            work: Work {
                macs,
                element_ops: 0,
                kernel_macs,
                moved_elements: 0,
            },
            gathered,
            requantised,
            windows: 0,
        })
    }

    /// Reference kernel entry: im2col and GEMM, or direct taps when each
    /// group has one input channel.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        cpu::conv2d(self, run.prep.rows(run.op), run.x(), run.out, run.threads)
    }

    fn tables(&self) -> Option<(&[i8], &[i32], &[Requant])> {
        Some((&self.weights, &self.bias, &self.requant))
    }

    fn channels(&self) -> u64 {
        self.out_channels as u64
    }

    fn heap_bytes(&self) -> usize {
        affine::table_bytes(&self.weights, &self.bias, &self.requant)
    }
}

impl Conv2dParams {
    /// Length of one output channel's reduction.
    fn reduction(&self) -> usize {
        self.in_channels / self.groups * self.kernel[0] * self.kernel[1]
    }

    /// Channels, groups, window and padding, in the order errors are reported.
    fn check_geometry(&self, cx: &Cx<'_>, c: usize) -> ModelResult<()> {
        if c != self.in_channels {
            return Err(cx.fail(format!(
                "input has {c} channels, params say {}",
                self.in_channels
            )));
        }
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(cx.fail(format!(
                "groups {} must divide in_channels {} and out_channels {}",
                self.groups, self.in_channels, self.out_channels
            )));
        }
        check_limit("MAX_DIM", self.out_channels as u64, MAX_DIM)?;
        if self.out_channels == 0 {
            return Err(cx.fail("out_channels is 0".into()));
        }
        for d in 0..2 {
            cx.range("kernel", self.kernel[d], MAX_KERNEL_DIM)?;
            cx.range("stride", self.stride[d], MAX_STRIDE)?;
            cx.range("dilation", self.dilation[d], MAX_DILATION)?;
        }
        for &pad in &self.pads {
            check_limit("MAX_PAD", pad as u64, MAX_PAD)?;
        }
        Ok(())
    }

    /// The portable kernels' MACs and gathered elements for `[n, oh, ow]`.
    fn kernel_work(&self, [n, oh, ow]: [u64; 3]) -> (u64, u64) {
        let taps = (self.kernel[0] * self.kernel[1]) as u64;
        let plane = oh * ow;
        let cg = (self.in_channels / self.groups) as u64;
        if cg == 1 {
            // Depthwise: every tap of every output as a scalar
            // multiply-add over short rows, priced as a gather.
            (0, n * self.out_channels as u64 * plane * taps)
        } else {
            let kp = crate::cpu::padded_len(cg as usize * taps as usize) as u64;
            // im2col gathers a padded row per position and group.
            (
                n * self.out_channels as u64 * plane * kp,
                n * self.groups as u64 * plane * kp,
            )
        }
    }
}
