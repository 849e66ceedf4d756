//! 2-d convolutions (f32, one group) as products with a channel-major im2col gather: the
//! forward pass and the weight gradients of convolutions and transposed convolutions.
//!
//! Patched in by fep (see `vendor/README.md`). The forward pass, per sample,
//! `y[n] = W [O, C*kh*kw] * cols(x[n]) [C*kh*kw, P*Q] (+ bias)`, writes the GEMM's result
//! straight into the NCHW output; samples run in parallel. Burn's default backward passes compute a
//! weight gradient by swapping the batch and channel axes and convolving the input with the
//! output gradient as a kernel: a convolution whose "kernel" is the whole output plane, run
//! through the generic 3-d im2col path with output planes of a few pixels. Here the gradient
//! is the matrix product it is:
//!
//! - convolution, `y[n,o,p,q] = sum_{c,i,j} w[o,c,i,j] x[n,c, p*s0 + i*d0 - p0, q*s1 + j*d1 - p1]`:
//!   `dw[o, (c,i,j)] = sum_{n,p,q} dy[n,o,p,q] * cols_n[(c,i,j), (p,q)]` with `cols_n` the
//!   im2col gather of `x[n]` over the output positions;
//! - transposed convolution, `y[n,o, h*s0 + i*d0 - p0, v*s1 + j*d1 - p1] += x[n,c,h,v] w[c,o,i,j]`:
//!   `dw[c, (o,i,j)] = sum_{n,h,v} x[n,c,h,v] * cols_n[(o,i,j), (h,v)]` with `cols_n` the same
//!   gather of `dy[n]` over the input positions.
//!
//! Both are `A [M, P] * cols^T [P, R]` summed over the batch. Samples are taken in chunks
//! so that one GEMM sees a reduction length of about a thousand (`[M, B*P] * [B*P, R]`),
//! the chunks are split between the rayon threads, and each thread accumulates its own
//! `[M, R]` block; the blocks are summed at the end.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// The im2col gather of one `[channels, in_h, in_w]` plane stack onto `out_h x out_w`
/// positions: `cols[(c,i,j), (p,q)] = src[c, p*s0 + i*d0 - p0, q*s1 + j*d1 - p1]`, zero where
/// the index falls outside the plane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gather2d {
    /// Channels of the source planes.
    pub channels: usize,
    /// Source plane height and width.
    pub input: [usize; 2],
    /// Number of positions along each axis.
    pub output: [usize; 2],
    /// Kernel extent.
    pub kernel: [usize; 2],
    /// Stride between positions.
    pub stride: [usize; 2],
    /// Padding subtracted from every index.
    pub padding: [usize; 2],
    /// Spacing of the kernel taps.
    pub dilation: [usize; 2],
}

impl Gather2d {
    /// Rows of the gathered matrix: `channels * kernel_h * kernel_w`.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the gathered matrix: the number of positions.
    pub fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }
}

/// Where every tap of a [`Gather2d`] reads in a zero-padded copy of one source plane: the
/// plane is `padded[0] x padded[1]` with the source at `(padding[0], padding[1])` and zeros
/// around it, so that the gather is a branch-free table lookup per element.
pub(crate) struct GatherPlan {
    padded: [usize; 2],
    /// `offsets[t * P + p * out_w + q] = (p*s0 + i*d0) * padded_w + q*s1 + j*d1` for the tap
    /// `t = i * k_w + j`.
    offsets: Vec<u32>,
}

impl Gather2d {
    /// The lookup table of [`gather_planned`](Self::gather_planned) and
    /// [`scatter_add_planned`](Self::scatter_add_planned).
    pub fn plan(&self) -> GatherPlan {
        let [in_h, in_w] = self.input;
        let [out_h, out_w] = self.output;
        let [k_h, k_w] = self.kernel;
        let [s_h, s_w] = self.stride;
        let [p_h, p_w] = self.padding;
        let [d_h, d_w] = self.dilation;
        let reach = |out: usize, s: usize, k: usize, d: usize| {
            if out == 0 || k == 0 {
                0
            } else {
                (out - 1) * s + (k - 1) * d + 1
            }
        };
        let padded = [
            reach(out_h, s_h, k_h, d_h).max(p_h + in_h),
            reach(out_w, s_w, k_w, d_w).max(p_w + in_w),
        ];
        assert!(
            padded[0]
                .checked_mul(padded[1])
                .is_some_and(|n| n <= u32::MAX as usize),
            "conv: padded plane too large for the gather table"
        );
        let mut offsets = Vec::with_capacity(k_h * k_w * out_h * out_w);
        for i in 0..k_h {
            for j in 0..k_w {
                for p in 0..out_h {
                    let row = (p * s_h + i * d_h) * padded[1] + j * d_w;
                    offsets.extend((0..out_w).map(|q| (row + q * s_w) as u32));
                }
            }
        }
        GatherPlan { padded, offsets }
    }

    /// Writes the gather of `src` (`[channels, in_h, in_w]`, contiguous) into `dst`, row
    /// `r = (c, i, j)` at `dst[r * ld + offset ..][.. positions]`: each channel is copied into
    /// a zero-padded plane once, then every row is a lookup in it through `plan`.
    pub fn gather_planned(
        &self,
        plan: &GatherPlan,
        src: &[f32],
        dst: &mut [f32],
        ld: usize,
        offset: usize,
    ) {
        let [in_h, in_w] = self.input;
        let [p_h, p_w] = self.padding;
        let [ph, pw] = plan.padded;
        let taps = self.kernel[0] * self.kernel[1];
        let positions = self.positions();
        let mut plane = vec![0.0f32; ph * pw];
        for c in 0..self.channels {
            let src_c = &src[c * in_h * in_w..(c + 1) * in_h * in_w];
            for h in 0..in_h {
                let at = (h + p_h) * pw + p_w;
                plane[at..at + in_w].copy_from_slice(&src_c[h * in_w..(h + 1) * in_w]);
            }
            for t in 0..taps {
                let r = c * taps + t;
                let row = &mut dst[r * ld + offset..r * ld + offset + positions];
                let offs = &plan.offsets[t * positions..(t + 1) * positions];
                for (d, &o) in row.iter_mut().zip(offs) {
                    // SAFETY: `plan` built every offset below `ph * pw` (`plan`'s `padded`
                    // covers the farthest tap), and `plane` has that length.
                    *d = unsafe { *plane.get_unchecked(o as usize) };
                }
            }
        }
    }

    /// The adjoint of [`gather_planned`](Self::gather_planned): adds row `r = (c, i, j)` of
    /// `src` (at `src[r * ld + offset ..][.. positions]`) into the plane stack `dst`
    /// (`[channels, in_h, in_w]`) where the gather reads from. Each channel accumulates in a
    /// zero-padded plane whose interior is then added into `dst`.
    pub fn scatter_add_planned(
        &self,
        plan: &GatherPlan,
        src: &[f32],
        ld: usize,
        offset: usize,
        dst: &mut [f32],
    ) {
        let [in_h, in_w] = self.input;
        let [p_h, p_w] = self.padding;
        let [ph, pw] = plan.padded;
        let taps = self.kernel[0] * self.kernel[1];
        let positions = self.positions();
        let mut plane = vec![0.0f32; ph * pw];
        for c in 0..self.channels {
            plane.fill(0.0);
            for t in 0..taps {
                let r = c * taps + t;
                let row = &src[r * ld + offset..r * ld + offset + positions];
                let offs = &plan.offsets[t * positions..(t + 1) * positions];
                for (&v, &o) in row.iter().zip(offs) {
                    // SAFETY: as in `gather_planned`.
                    unsafe { *plane.get_unchecked_mut(o as usize) += v };
                }
            }
            let dst_c = &mut dst[c * in_h * in_w..(c + 1) * in_h * in_w];
            for h in 0..in_h {
                let at = (h + p_h) * pw + p_w;
                let inner = &plane[at..at + in_w];
                for (d, &v) in dst_c[h * in_w..(h + 1) * in_w].iter_mut().zip(inner) {
                    *d += v;
                }
            }
        }
    }
}

/// Samples per GEMM for `batch` samples of `positions` columns each: chunks of about 1024
/// columns, as many chunks as a multiple of the thread count so that the threads share them
/// evenly.
fn samples_per_chunk(batch: usize, positions: usize) -> usize {
    #[cfg(feature = "rayon")]
    let threads = rayon::current_num_threads().max(1);
    #[cfg(not(feature = "rayon"))]
    let threads = 1;
    let chunks = (batch * positions).div_ceil(1024).max(1);
    let chunks = chunks.div_ceil(threads) * threads;
    batch.div_ceil(chunks.min(batch).max(1)).max(1)
}

#[cfg(feature = "std")]
std::thread_local! {
    /// Per-thread scratch of the gathers and GEMM operands, kept between calls so that every
    /// op neither allocates nor zeroes its temporaries again (only growth is zero-filled).
    static SCRATCH: core::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { core::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's scratch pair (fresh vectors where the thread's pair is in use
/// further up its stack, as when a rayon worker steals work while inside `f`).
fn with_scratch<R>(f: impl FnOnce(&mut (Vec<f32>, Vec<f32>)) -> R) -> R {
    #[cfg(feature = "std")]
    {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut pair) => f(&mut pair),
            Err(_) => f(&mut (Vec::new(), Vec::new())),
        })
    }
    #[cfg(not(feature = "std"))]
    {
        f(&mut (Vec::new(), Vec::new()))
    }
}

/// Makes `v` at least `n` long; what it already holds is kept, not zeroed.
fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Runs `work(chunk index, output chunk, scratch)` over `output` split into chunks of
/// `chunk_len`, in parallel where rayon is on, with the thread's scratch pair.
fn for_each_chunk(
    output: &mut [f32],
    chunk_len: usize,
    work: impl Fn(usize, &mut [f32], &mut (Vec<f32>, Vec<f32>)) + Sync + Send,
) {
    if chunk_len == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        output
            .par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(c, out)| with_scratch(|scratch| work(c, out, scratch)));
    }
    #[cfg(not(feature = "rayon"))]
    {
        for (c, out) in output.chunks_mut(chunk_len).enumerate() {
            with_scratch(|scratch| work(c, out, scratch));
        }
    }
}

/// `sum_n a[n] * cols(src[n])^T`: `a` is `[batch, m, P]`, `src` is `[batch, channels, in_h,
/// in_w]`, both contiguous, `P = gather.positions()`; the result is `[m, gather.rows()]`.
pub(crate) fn batched_gather_product(
    a: &[f32],
    m: usize,
    src: &[f32],
    gather: Gather2d,
    batch: usize,
) -> Vec<f32> {
    let p = gather.positions();
    let r = gather.rows();
    let src_len = gather.channels * gather.input[0] * gather.input[1];
    debug_assert_eq!(a.len(), batch * m * p);
    debug_assert_eq!(src.len(), batch * src_len);
    if batch == 0 || m == 0 || r == 0 || p == 0 {
        return vec![0.0; m * r];
    }

    // Samples per GEMM: a reduction length of about 1024, fewer if the gather would not fit
    // in about 32 MiB.
    let plan = gather.plan();
    let per_chunk = (1024 / p)
        .max(1)
        .min((8 << 20) / (r * p).max(1))
        .max(1)
        .min(batch);

    let accumulate =
        |samples: core::ops::Range<usize>, parallelism: gemm::Parallelism| -> Vec<f32> {
            let mut dst = vec![0.0f32; m * r];
            with_scratch(|(lhs, cols)| {
                let mut start = samples.start;
                while start < samples.end {
                    let end = (start + per_chunk).min(samples.end);
                    let ld = (end - start) * p;
                    grow(lhs, m * ld);
                    grow(cols, r * ld);
                    for (k, n) in (start..end).enumerate() {
                        let a_n = &a[n * m * p..(n + 1) * m * p];
                        for row in 0..m {
                            lhs[row * ld + k * p..row * ld + (k + 1) * p]
                                .copy_from_slice(&a_n[row * p..(row + 1) * p]);
                        }
                        gather.gather_planned(
                            &plan,
                            &src[n * src_len..(n + 1) * src_len],
                            cols,
                            ld,
                            k * p,
                        );
                    }
                    // dst[m, r] += lhs[m, ld] * cols[r, ld]^T
                    // SAFETY: the strides describe `lhs` ([m, ld] row-major), `cols` read as its
                    // transpose ([ld, r], element (k, j) at j*ld + k) and `dst` ([m, r] row-major),
                    // all in bounds of their buffers.
                    unsafe {
                        gemm::gemm(
                            m,
                            r,
                            ld,
                            dst.as_mut_ptr(),
                            1,
                            r as isize,
                            true,
                            lhs.as_ptr(),
                            1,
                            ld as isize,
                            cols.as_ptr(),
                            ld as isize,
                            1,
                            1.0f32,
                            1.0f32,
                            false,
                            false,
                            false,
                            parallelism,
                        );
                    }
                    start = end;
                }
            });
            dst
        };

    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        let chunks = batch.div_ceil(per_chunk);
        let tasks = rayon::current_num_threads().min(chunks).max(1);
        if tasks > 1 {
            // Split whole chunks between the tasks so that each GEMM keeps its length.
            let per_task = chunks.div_ceil(tasks) * per_chunk;
            return (0..tasks)
                .into_par_iter()
                .map(|t| {
                    let samples = (t * per_task).min(batch)..((t + 1) * per_task).min(batch);
                    accumulate(samples, gemm::Parallelism::None)
                })
                // Summed in task order (not by rayon's adaptive reduction tree), so that the
                // gradient is the same from run to run.
                .collect::<Vec<_>>()
                .into_iter()
                .reduce(|mut x, y| {
                    for (u, v) in x.iter_mut().zip(y) {
                        *u += v;
                    }
                    x
                })
                .unwrap_or_else(|| vec![0.0f32; m * r]);
        }
        // One chunk: let the GEMM itself use the threads.
        if rayon::current_num_threads() > 1 && m * r * per_chunk * p >= 64 * 64 * 64 {
            return accumulate(0..batch, gemm::Parallelism::Rayon(0));
        }
    }
    accumulate(0..batch, gemm::Parallelism::None)
}

/// Weight gradient of a 2-d convolution with one group, f32: `x` `[N, C, H, W]`,
/// `output_grad` `[N, O, P, Q]`, result `[O, C, k_h, k_w]`.
pub fn conv2d_weight_grad_f32(
    x: FlexTensor,
    output_grad: FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> FlexTensor {
    let x = x.to_contiguous();
    let dy = output_grad.to_contiguous();
    let xs = x.layout().shape();
    let ys = dy.layout().shape();
    let (batch, channels, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (out_channels, p, q) = (ys[1], ys[2], ys[3]);
    let gather = Gather2d {
        channels,
        input: [h, w],
        output: [p, q],
        kernel,
        stride,
        padding,
        dilation,
    };
    let grad = batched_gather_product(dy.storage(), out_channels, x.storage(), gather, batch);
    FlexTensor::new(
        Bytes::from_elems(grad),
        Layout::contiguous(Shape::from(vec![
            out_channels,
            channels,
            kernel[0],
            kernel[1],
        ])),
        DType::F32,
    )
}

/// Weight gradient of a 2-d transposed convolution with one group, f32: `x` `[N, C, H, W]`,
/// `output_grad` `[N, O, H', W']`, result `[C, O, k_h, k_w]`.
pub fn conv_transpose2d_weight_grad_f32(
    x: FlexTensor,
    output_grad: FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> FlexTensor {
    let x = x.to_contiguous();
    let dy = output_grad.to_contiguous();
    let xs = x.layout().shape();
    let ys = dy.layout().shape();
    let (batch, channels, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (out_channels, oh, ow) = (ys[1], ys[2], ys[3]);
    let gather = Gather2d {
        channels: out_channels,
        input: [oh, ow],
        output: [h, w],
        kernel,
        stride,
        padding,
        dilation,
    };
    let grad = batched_gather_product(x.storage(), channels, dy.storage(), gather, batch);
    FlexTensor::new(
        Bytes::from_elems(grad),
        Layout::contiguous(Shape::from(vec![
            channels,
            out_channels,
            kernel[0],
            kernel[1],
        ])),
        DType::F32,
    )
}

/// A 2-d convolution with one group, f32: `x` `[N, C, H, W]`, `weight` `[O, C, k_h, k_w]`,
/// `bias` `[O]`; `y[n] = weight * cols(x[n]) + bias`, `[N, O, P, Q]`.
pub fn conv2d_f32(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let bias = bias.map(|b| b.to_contiguous());
    let xs = x.layout().shape();
    let ws = weight.layout().shape();
    let (batch, channels, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (out_channels, kernel) = (ws[0], [ws[2], ws[3]]);
    let out_size =
        |a: usize| (xs[2 + a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
    let gather = Gather2d {
        channels,
        input: [h, w],
        output: [out_size(0), out_size(1)],
        kernel,
        stride,
        padding,
        dilation,
    };
    let (p, r) = (gather.positions(), gather.rows());
    let x_data: &[f32] = x.storage();
    let w_data: &[f32] = weight.storage();
    let b_data: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let sample_len = out_channels * p;
    let mut output = vec![0.0f32; batch * sample_len];
    let x_len = channels * h * w;
    let plan = gather.plan();
    let per_chunk = samples_per_chunk(batch, p);

    // A chunk of samples: cols [R, B*P] gathered side by side, one GEMM
    // tmp [O, B*P] = weight [O, R] * cols, then each sample's block (+ bias) into place.
    for_each_chunk(
        &mut output,
        per_chunk * sample_len,
        |c, out, (cols, tmp)| {
            let count = out.len() / sample_len;
            let ld = count * p;
            grow(cols, r * ld);
            grow(tmp, out_channels * ld);
            for k in 0..count {
                let n = c * per_chunk + k;
                gather.gather_planned(&plan, &x_data[n * x_len..(n + 1) * x_len], cols, ld, k * p);
            }
            if r > 0 {
                // SAFETY: row-major strides of `weight` ([O, R]), `cols` ([R, ld]) and `tmp`
                // ([O, ld]), all within their buffers.
                unsafe {
                    gemm::gemm(
                        out_channels,
                        ld,
                        r,
                        tmp.as_mut_ptr(),
                        1,
                        ld as isize,
                        false,
                        w_data.as_ptr(),
                        1,
                        r as isize,
                        cols.as_ptr(),
                        1,
                        ld as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            } else {
                tmp.fill(0.0);
            }
            for k in 0..count {
                for o in 0..out_channels {
                    let dst = &mut out[k * sample_len + o * p..k * sample_len + (o + 1) * p];
                    let src = &tmp[o * ld + k * p..o * ld + (k + 1) * p];
                    let b = b_data.map_or(0.0, |b| b[o]);
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = v + b;
                    }
                }
            }
        },
    );
    FlexTensor::new(
        Bytes::from_elems(output),
        Layout::contiguous(Shape::from(vec![
            batch,
            out_channels,
            gather.output[0],
            gather.output[1],
        ])),
        DType::F32,
    )
}

/// A 2-d transposed convolution with one group, f32: `x` `[N, C, H, W]`, `weight`
/// `[C, O, k_h, k_w]`, `bias` `[O]`; `y[n] = scatter(weight^T * x[n]) + bias` with the output
/// size `(H - 1) s - 2 p + d (k - 1) + padding_out + 1` per axis. Chunks of samples share
/// one GEMM `[O*k_h*k_w, C] * [C, B*H*W]`; the scatter is the adjoint of the im2col gather.
pub fn conv_transpose2d_f32(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    stride: [usize; 2],
    padding: [usize; 2],
    padding_out: [usize; 2],
    dilation: [usize; 2],
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let bias = bias.map(|b| b.to_contiguous());
    let xs = x.layout().shape();
    let ws = weight.layout().shape();
    let (batch, channels, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (out_channels, kernel) = (ws[1], [ws[2], ws[3]]);
    let out_size = |a: usize| {
        (xs[2 + a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + padding_out[a] + 1
            - 2 * padding[a]
    };
    let out_hw = [out_size(0), out_size(1)];
    let scatter = Gather2d {
        channels: out_channels,
        input: out_hw,
        output: [h, w],
        kernel,
        stride,
        padding,
        dilation,
    };
    let (p, r) = (scatter.positions(), scatter.rows());
    let x_data: &[f32] = x.storage();
    let w_data: &[f32] = weight.storage();
    let b_data: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let plane = out_hw[0] * out_hw[1];
    let sample_len = out_channels * plane;
    let mut output = vec![0.0f32; batch * sample_len];
    let plan = scatter.plan();
    let per_chunk = samples_per_chunk(batch, p);

    for_each_chunk(&mut output, per_chunk * sample_len, |c, out, (xc, cols)| {
        let count = out.len() / sample_len;
        let ld = count * p;
        grow(xc, channels * ld);
        grow(cols, r * ld);
        for k in 0..count {
            let n = c * per_chunk + k;
            for ch in 0..channels {
                let src = &x_data[(n * channels + ch) * p..(n * channels + ch + 1) * p];
                xc[ch * ld + k * p..ch * ld + (k + 1) * p].copy_from_slice(src);
            }
        }
        if r > 0 && ld > 0 && channels > 0 {
            // cols [R, ld] = weight^T [R, C] * xc [C, ld]
            // SAFETY: `weight` is [C, R] row-major, read as its transpose (element (i, c)
            // at c*R + i); `xc` is [C, ld] and `cols` [R, ld], row-major; all in bounds.
            unsafe {
                gemm::gemm(
                    r,
                    ld,
                    channels,
                    cols.as_mut_ptr(),
                    1,
                    ld as isize,
                    false,
                    w_data.as_ptr(),
                    r as isize,
                    1,
                    xc.as_ptr(),
                    1,
                    ld as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        } else {
            cols.fill(0.0);
        }
        for k in 0..count {
            let out_n = &mut out[k * sample_len..(k + 1) * sample_len];
            if let Some(b) = b_data {
                for (o, plane_o) in out_n.chunks_mut(plane.max(1)).enumerate() {
                    plane_o.fill(b[o]);
                }
            }
            scatter.scatter_add_planned(&plan, cols, ld, k * p, out_n);
        }
    });
    FlexTensor::new(
        Bytes::from_elems(output),
        Layout::contiguous(Shape::from(vec![batch, out_channels, out_hw[0], out_hw[1]])),
        DType::F32,
    )
}
