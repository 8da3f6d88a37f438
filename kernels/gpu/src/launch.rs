//! One launcher per operator: the GPU side of each operator module of
//! `infera_kernels::ops` (arguments in the order of `kernels/cuda/README.md`).
//! [`CudaBackend::exec`] dispatches here once, through [`launch_op`],
//! generated from `infera_kernels::with_operators!`.

use super::{Buf, CudaBackend, DevParams, DevTensor, GpuError, cfg, strides, u};
use cudarc::driver::PushKernelArg;
use infera_kernels::ops::{
    AddParams, ArgMaxParams, AvgPoolParams, ClipParams, ConcatParams, Conv2dParams, DenseParams,
    FlattenParams, GlobalAvgPoolParams, LayerNormParams, LutParams, MulParams, Op, PadParams,
    PoolParams, ReshapeParams, SoftmaxParams, TransposeParams,
};
use infera_kernels::ops::{MatMulParams, ReduceParams};
use infera_kernels::quant::Requant;
use infera_kernels::{TensorInfo, TensorSpec};

/// What every launcher reads: the node's inputs, output and constants.
pub(super) struct Args<'a> {
    pub op: &'a Op,
    pub params: Option<&'a DevParams>,
    pub ins: &'a [&'a DevTensor],
    /// The first input.
    pub x: &'a DevTensor,
    pub out: &'a TensorInfo,
    /// Output elements.
    pub items: usize,
    pub zx: i32,
    pub zy: i32,
}

impl Args<'_> {
    fn params(&self) -> Result<&DevParams, GpuError> {
        self.params
            .ok_or_else(|| GpuError::Unsupported(format!("{} without parameters", self.op.name())))
    }

    /// The error for an output type this operator's kernels do not write.
    fn wrong_output(&self) -> GpuError {
        GpuError::Unsupported(format!(
            "{} producing {}",
            self.op.name(),
            TensorSpec::clone(&self.out.spec)
        ))
    }

    fn i8_out<'b>(
        &self,
        y: &'b mut Buf,
    ) -> Result<&'b mut cudarc::driver::CudaSlice<i8>, GpuError> {
        match y {
            Buf::I8(yb) => Ok(yb),
            Buf::I32(_) => Err(self.wrong_output()),
        }
    }

    /// The second input of a binary operator.
    fn second(&self, what: &str) -> Result<&DevTensor, GpuError> {
        self.ins
            .get(1)
            .copied()
            .ok_or_else(|| GpuError::Unsupported(format!("{what} needs two inputs")))
    }
}

impl CudaBackend {
    pub(super) fn launch_dense(
        &self,
        p: &DenseParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let k = p.in_features;
        let rows = u(x.len() / k);
        let (k, n_out) = (u(k), u(p.out_features));
        let xb = x.i8()?;
        let DevParams {
            w,
            bias,
            mult,
            shift,
        } = a.params()?;
        match y {
            Buf::I8(yb) => {
                let (lo, hi) = (i32::from(p.act_min), i32::from(p.act_max));
                launch!(
                    self,
                    "infera_dense_i8",
                    items,
                    [
                        xb, w, bias, mult, shift, yb, &rows, &k, &n_out, &zx, &zy, &lo, &hi
                    ]
                );
            }
            Buf::I32(yb) => {
                launch!(
                    self,
                    "infera_dense_i32",
                    items,
                    [xb, w, bias, yb, &rows, &k, &n_out, &zx]
                );
            }
        }
        Ok(())
    }

    pub(super) fn launch_conv2d(
        &self,
        p: &Conv2dParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let s = &x.info.spec.shape;
        let o = &a.out.spec.shape;
        let dims: [u64; 16] = [
            u(s[0]),
            u(s[1]),
            u(s[2]),
            u(s[3]),
            u(p.out_channels),
            u(o[2]),
            u(o[3]),
            u(p.kernel[0]),
            u(p.kernel[1]),
            u(p.stride[0]),
            u(p.stride[1]),
            u(p.dilation[0]),
            u(p.dilation[1]),
            u(p.pads[0]),
            u(p.pads[1]),
            u(p.groups),
        ];
        let [n, c, h, w_, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, g] = dims;
        let xb = x.i8()?;
        let DevParams {
            w,
            bias,
            mult,
            shift,
        } = a.params()?;
        match y {
            Buf::I8(yb) => {
                let (lo, hi) = (i32::from(p.act_min), i32::from(p.act_max));
                launch!(
                    self,
                    "infera_conv2d_i8",
                    items,
                    [
                        xb, w, bias, mult, shift, yb, &n, &c, &h, &w_, &oc, &oh, &ow, &kh, &kw,
                        &sh, &sw, &dh, &dw, &pt, &pl, &g, &zx, &zy, &lo, &hi
                    ]
                );
            }
            Buf::I32(yb) => {
                launch!(
                    self,
                    "infera_conv2d_i32",
                    items,
                    [
                        xb, w, bias, yb, &n, &c, &h, &w_, &oc, &oh, &ow, &kh, &kw, &sh, &sw, &dh,
                        &dw, &pt, &pl, &g, &zx
                    ]
                );
            }
        }
        Ok(())
    }

    /// Max pool, or average pool when `count_include_pad` is given.
    pub(super) fn launch_pool(
        &self,
        p: &PoolParams,
        count_include_pad: Option<bool>,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, zx, .. } = *a;
        let yb = a.i8_out(y)?;
        let s = &x.info.spec.shape;
        let o = &a.out.spec.shape;
        let (planes, h, w, oh, ow) = (u(s[0] * s[1]), u(s[2]), u(s[3]), u(o[2]), u(o[3]));
        let (kh, kw, sh, sw) = (
            u(p.kernel[0]),
            u(p.kernel[1]),
            u(p.stride[0]),
            u(p.stride[1]),
        );
        let (pt, pl) = (u(p.pads[0]), u(p.pads[1]));
        let xb = x.i8()?;
        if let Some(count_include_pad) = count_include_pad {
            let cip = i32::from(count_include_pad);
            launch!(
                self,
                "infera_avg_pool",
                items,
                [
                    xb, yb, &planes, &h, &w, &oh, &ow, &kh, &kw, &sh, &sw, &pt, &pl, &cip, &zx
                ]
            );
        } else {
            launch!(
                self,
                "infera_max_pool",
                items,
                [
                    xb, yb, &planes, &h, &w, &oh, &ow, &kh, &kw, &sh, &sw, &pt, &pl
                ]
            );
        }
        Ok(())
    }

    pub(super) fn launch_global_avg_pool(&self, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        let Args { x, items, zx, .. } = *a;
        let yb = a.i8_out(y)?;
        let s = &x.info.spec.shape;
        let (planes, hw) = (u(s[0] * s[1]), u(s[2] * s[3]));
        let xb = x.i8()?;
        launch!(
            self,
            "infera_global_avg_pool",
            items,
            [xb, yb, &planes, &hw, &zx]
        );
        Ok(())
    }

    pub(super) fn launch_clip(
        &self,
        min: i8,
        max: i8,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, .. } = *a;
        let yb = a.i8_out(y)?;
        let (len, lo, hi) = (u(items), i32::from(min), i32::from(max));
        let xb = x.i8()?;
        launch!(self, "infera_clip", items, [xb, yb, &len, &lo, &hi]);
        Ok(())
    }

    pub(super) fn launch_add(
        &self,
        p: &AddParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let yb = a.i8_out(y)?;
        let b = a.second("add")?;
        let zb = i32::from(b.info.zero_point);
        let len = u(items);
        let shift = i32::from(p.shift);
        let (lo, hi) = (i32::from(p.act_min), i32::from(p.act_max));
        let (xa, xb) = (x.i8()?, b.i8()?);
        let (ma, mb) = (&p.multiplier_a, &p.multiplier_b);
        launch!(
            self,
            "infera_add",
            items,
            [xa, xb, yb, &len, &zx, &zb, &zy, ma, mb, &shift, &lo, &hi]
        );
        Ok(())
    }

    pub(super) fn launch_mul(
        &self,
        p: &MulParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let yb = a.i8_out(y)?;
        let b = a.second("mul")?;
        let zb = i32::from(b.info.zero_point);
        let len = u(items);
        let shift = i32::from(p.requant.shift);
        let (lo, hi) = (i32::from(p.act_min), i32::from(p.act_max));
        let (xa, xb) = (x.i8()?, b.i8()?);
        let m = &p.requant.multiplier;
        launch!(
            self,
            "infera_mul",
            items,
            [xa, xb, yb, &len, &zx, &zb, &zy, m, &shift, &lo, &hi]
        );
        Ok(())
    }

    /// The table is 256 bytes: uploaded with each launch rather than kept
    /// with the model's weights.
    pub(super) fn launch_lut(
        &self,
        p: &LutParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, .. } = *a;
        let yb = a.i8_out(y)?;
        let len = u(items);
        let table = self.upload(&p.table, "lookup table")?;
        let xb = x.i8()?;
        launch!(self, "infera_lut", items, [xb, yb, &len, &table]);
        Ok(())
    }

    /// One thread per row; the 256-entry table (1 KiB) is uploaded with
    /// each launch, like a lookup table's.
    pub(super) fn launch_softmax(
        &self,
        p: &SoftmaxParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, .. } = *a;
        let yb = a.i8_out(y)?;
        let n = *x.info.spec.shape.last().expect("validated: rank >= 1");
        let rows = items / n;
        let (rows_u, n_u) = (u(rows), u(n));
        let table = self.upload(&p.table, "softmax table")?;
        let xb = x.i8()?;
        launch!(
            self,
            "infera_softmax",
            rows,
            [xb, yb, &rows_u, &n_u, &table]
        );
        Ok(())
    }

    pub(super) fn launch_mat_mul(
        &self,
        p: &MatMulParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let yb = a.i8_out(y)?;
        let b = a.second("mat_mul")?;
        let zb = i32::from(b.info.zero_point);
        let (sa, sb) = (&x.info.spec.shape, &b.info.spec.shape);
        let r = sa.len();
        let batch = u(sa[..r - 2].iter().product());
        let (m, k, n) = (u(sa[r - 2]), u(sa[r - 1]), u(sb[r - 1]));
        let shift = i32::from(p.requant.shift);
        let (lo, hi) = (i32::from(p.act_min), i32::from(p.act_max));
        let (xa, xb) = (x.i8()?, b.i8()?);
        let mult = &p.requant.multiplier;
        launch!(
            self,
            "infera_mat_mul",
            items,
            [
                xa, xb, yb, &batch, &m, &k, &n, &zx, &zb, &zy, mult, &shift, &lo, &hi
            ]
        );
        Ok(())
    }

    /// One thread per row; gamma and beta (4 bytes per channel each) are
    /// uploaded with each launch rather than kept with the model's weights.
    pub(super) fn launch_layer_norm(
        &self,
        p: &LayerNormParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, zy, .. } = *a;
        let yb = a.i8_out(y)?;
        let n = p.gamma.len();
        let rows = items / n;
        let (rows_u, n_u) = (u(rows), u(n));
        let gamma = self.upload(&p.gamma, "layer norm gamma")?;
        let beta = self.upload(&p.beta, "layer norm beta")?;
        let shift = i32::from(p.shift);
        let xb = x.i8()?;
        launch!(
            self,
            "infera_layer_norm",
            rows,
            [xb, yb, &rows_u, &n_u, &gamma, &beta, &p.eps, &shift, &zy]
        );
        Ok(())
    }

    /// The kept and reduced axes' extents and strides go up as one `u64`
    /// table, as Transpose's do.
    pub(super) fn launch_reduce(
        &self,
        p: &ReduceParams,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let yb = a.i8_out(y)?;
        let s = &x.info.spec.shape;
        let st = strides(s);
        let (mut kd, mut ks, mut rd, mut rs) = (vec![], vec![], vec![], vec![]);
        for d in 0..s.len() {
            let (dims, strides) = if p.axes.contains(&d) {
                (&mut rd, &mut rs)
            } else {
                (&mut kd, &mut ks)
            };
            dims.push(u(s[d]));
            strides.push(u(st[d]));
        }
        let count: u64 = rd.iter().product();
        let (nk, nr) = (kd.len() as u32, rd.len() as u32);
        let meta: Vec<u64> = [kd, ks, rd, rs].concat();
        let meta = self.upload(&meta, "reduce meta")?;
        let outs = u(items);
        let shift = i32::from(p.requant.shift);
        let mean = i32::from(p.mean);
        let xb = x.i8()?;
        let mult = &p.requant.multiplier;
        launch!(
            self,
            "infera_reduce",
            items,
            [
                xb, yb, &outs, &count, &nk, &nr, &meta, &zx, &zy, mult, &shift, &mean
            ]
        );
        Ok(())
    }

    pub(super) fn launch_requantize(
        &self,
        rq: Requant,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args {
            x, items, zx, zy, ..
        } = *a;
        let yb = a.i8_out(y)?;
        let len = u(items);
        let shift = i32::from(rq.shift);
        match &x.buf {
            Buf::I8(xb) => launch!(
                self,
                "infera_requantize_i8",
                items,
                [xb, yb, &len, &zx, &zy, &rq.multiplier, &shift]
            ),
            Buf::I32(xb) => launch!(
                self,
                "infera_requantize_i32",
                items,
                [xb, yb, &len, &zy, &rq.multiplier, &shift]
            ),
        }
        Ok(())
    }

    /// Reshape and Flatten: the same bytes.
    pub(super) fn launch_copy(&self, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        let nbytes = u(a.out.spec.byte_len());
        let n = a.out.spec.byte_len();
        match (&a.x.buf, y) {
            (Buf::I8(xb), Buf::I8(yb)) => {
                launch!(self, "infera_copy_bytes", n, [xb, yb, &nbytes])
            }
            // The kernel copies bytes; an i32 buffer is passed as its bytes.
            (Buf::I32(xb), Buf::I32(yb)) => {
                launch!(self, "infera_copy_bytes", n, [xb, yb, &nbytes])
            }
            _ => return Err(GpuError::Unsupported("reshape changing dtype".into())),
        }
        Ok(())
    }

    pub(super) fn launch_transpose(
        &self,
        perm: &[usize],
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, .. } = *a;
        let in_strides = strides(&x.info.spec.shape);
        let mut meta: Vec<u64> = a.out.spec.shape.iter().map(|&d| u(d)).collect();
        meta.extend(perm.iter().map(|&a| u(in_strides[a])));
        let meta = self.upload(&meta, "transpose meta")?;
        let (n, rank) = (u(items), perm.len() as u32);
        match (&x.buf, y) {
            (Buf::I8(xb), Buf::I8(yb)) => launch!(
                self,
                "infera_transpose_i8",
                items,
                [xb, yb, &n, &rank, &meta]
            ),
            (Buf::I32(xb), Buf::I32(yb)) => launch!(
                self,
                "infera_transpose_i32",
                items,
                [xb, yb, &n, &rank, &meta]
            ),
            _ => return Err(GpuError::Unsupported("transpose changing dtype".into())),
        }
        Ok(())
    }

    pub(super) fn launch_concat(
        &self,
        axis: usize,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let outer: usize = a.out.spec.shape[..axis].iter().product();
        let inner_dst: usize = a.out.spec.shape[axis..].iter().product();
        let mut offset = 0usize;
        for t in a.ins {
            let inner_src: usize = t.info.spec.shape[axis..].iter().product();
            let args = (u(outer), u(inner_src), u(inner_dst), u(offset));
            let (o, is, id, off) = args;
            let work = outer * inner_src;
            match (&t.buf, &mut *y) {
                (Buf::I8(tb), Buf::I8(yb)) => {
                    launch!(self, "infera_concat_i8", work, [tb, yb, &o, &is, &id, &off])
                }
                (Buf::I32(tb), Buf::I32(yb)) => launch!(
                    self,
                    "infera_concat_i32",
                    work,
                    [tb, yb, &o, &is, &id, &off]
                ),
                _ => return Err(GpuError::Unsupported("concat of mixed dtypes".into())),
            }
            offset += inner_src;
        }
        Ok(())
    }

    pub(super) fn launch_pad(
        &self,
        before: &[usize],
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, zy, .. } = *a;
        let mut meta: Vec<u64> = a.out.spec.shape.iter().map(|&d| u(d)).collect();
        meta.extend(x.info.spec.shape.iter().map(|&d| u(d)));
        meta.extend(before.iter().map(|&d| u(d)));
        let meta = self.upload(&meta, "pad meta")?;
        let (n, rank) = (u(items), before.len() as u32);
        match (&x.buf, y) {
            (Buf::I8(xb), Buf::I8(yb)) => launch!(
                self,
                "infera_pad_i8",
                items,
                [xb, yb, &n, &rank, &meta, &zy]
            ),
            (Buf::I32(xb), Buf::I32(yb)) => {
                launch!(self, "infera_pad_i32", items, [xb, yb, &n, &rank, &meta])
            }
            _ => return Err(GpuError::Unsupported("pad changing dtype".into())),
        }
        Ok(())
    }

    pub(super) fn launch_arg_max(
        &self,
        axis: usize,
        a: &Args<'_>,
        y: &mut Buf,
    ) -> Result<(), GpuError> {
        let Args { x, items, .. } = *a;
        let Buf::I32(yb) = y else {
            return Err(a.wrong_output());
        };
        let s = &x.info.spec.shape;
        let outer = u(s[..axis].iter().product());
        let len = u(s[axis]);
        let inner = u(s[axis + 1..].iter().product());
        match &x.buf {
            Buf::I8(xb) => launch!(
                self,
                "infera_arg_max_i8",
                items,
                [xb, yb, &outer, &len, &inner]
            ),
            Buf::I32(xb) => launch!(
                self,
                "infera_arg_max_i32",
                items,
                [xb, yb, &outer, &len, &inner]
            ),
        }
        Ok(())
    }
}

/// The GPU launch of one operator, implemented on each parameter type of
/// `infera_kernels::with_operators!`: an operator added to that list
/// without a launcher fails to compile here, not at run time.
pub(super) trait Launch {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError>;
}

macro_rules! launch_dispatch {
    ($($(#[$doc:meta])* $variant:ident($params:ty)),* $(,)?) => {
        /// Launch the kernel(s) of `a.op`: one arm per operator of the list.
        pub(super) fn launch_op(gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
            match a.op {
                $(Op::$variant(p) => Launch::launch(p, gpu, a, y),)*
            }
        }
    };
}

infera_kernels::with_operators!(launch_dispatch);

impl Launch for DenseParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_dense(self, a, y)
    }
}

impl Launch for Conv2dParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_conv2d(self, a, y)
    }
}

impl Launch for PoolParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_pool(self, None, a, y)
    }
}

impl Launch for AvgPoolParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_pool(&self.pool, Some(self.count_include_pad), a, y)
    }
}

impl Launch for GlobalAvgPoolParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_global_avg_pool(a, y)
    }
}

impl Launch for ClipParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_clip(self.min, self.max, a, y)
    }
}

impl Launch for AddParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_add(self, a, y)
    }
}

impl Launch for MulParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_mul(self, a, y)
    }
}

impl Launch for Requant {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_requantize(*self, a, y)
    }
}

impl Launch for ReshapeParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_copy(a, y)
    }
}

impl Launch for FlattenParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_copy(a, y)
    }
}

impl Launch for TransposeParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_transpose(&self.perm, a, y)
    }
}

impl Launch for ConcatParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_concat(self.axis, a, y)
    }
}

impl Launch for PadParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_pad(&self.before, a, y)
    }
}

impl Launch for ArgMaxParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_arg_max(self.axis, a, y)
    }
}

impl Launch for LutParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_lut(self, a, y)
    }
}

impl Launch for SoftmaxParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_softmax(self, a, y)
    }
}

impl Launch for LayerNormParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_layer_norm(self, a, y)
    }
}

impl Launch for MatMulParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_mat_mul(self, a, y)
    }
}

impl Launch for ReduceParams {
    fn launch(&self, gpu: &CudaBackend, a: &Args<'_>, y: &mut Buf) -> Result<(), GpuError> {
        gpu.launch_reduce(self, a, y)
    }
}
