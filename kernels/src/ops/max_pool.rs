//! Max pool, and the window both pools share ([`PoolParams`]).

use super::Operator;
use super::check::{Cx, Shaped};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Window of a max or average pool over NCHW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolParams {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`, each smaller than the kernel extent so every
    /// window holds at least one real element.
    pub pads: [usize; 4],
}

impl Operator for PoolParams {
    const NAME: &'static str = "max_pool";
    const TAG: u8 = 3;

    /// `kh, kw, sh, sw, pad_t, pad_l, pad_b, pad_r` (u32).
    fn encode(&self, w: &mut Writer) {
        w.axes(&self.kernel);
        w.axes(&self.stride);
        w.axes(&self.pads);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self {
            kernel: r.pair()?,
            stride: r.pair()?,
            pads: r.quad()?,
        })
    }

    /// Validate a pool of this window; every window element is a compare or
    /// add with an index step, counted twice (as an element op and as a
    /// move), as measured.
    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        cx.same_zp(x)?;
        let [n, c, h, w] = cx.nchw(x)?;
        for d in 0..2 {
            cx.range("kernel", self.kernel[d], MAX_KERNEL_DIM)?;
            cx.range("stride", self.stride[d], MAX_STRIDE)?;
        }
        for (i, &pad) in self.pads.iter().enumerate() {
            if pad >= self.kernel[i % 2] {
                return Err(cx.fail(format!("pad {pad} must be smaller than the kernel")));
            }
        }
        let (k, s, p) = (self.kernel, self.stride, self.pads);
        let oh = cx.out_extent(h, k[0], s[0], 1, p[0], p[2])?;
        let ow = cx.out_extent(w, k[1], s[1], 1, p[1], p[3])?;
        let window = (n * c * oh * ow * k[0] * k[1]) as u64;
        let mut shaped = Shaped::new(cx.i8_out(vec![n, c, oh, ow]), window);
        shaped.windows = window;
        Ok(shaped)
    }
    /// Reference kernel entry.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        run.i8_out(cpu::pool::max_pool(
            self,
            run.x_i8(),
            &x.shape,
            &run.out.spec.shape,
        ))
    }
}
