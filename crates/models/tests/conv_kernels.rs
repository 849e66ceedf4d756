//! The CPU backend's convolution kernels (patched in `vendor/burn-flex`, see
//! `vendor/README.md`: direct weight gradients, batch-parallel transposed convolution)
//! against the definitions, written out as index loops: forward values, and the gradients of
//! `sum(y * r)` with respect to the input and the weight, for strides, paddings, dilations,
//! output paddings, non-square kernels and groups.

use burn::backend::{Autodiff, Flex};
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Tensor, TensorData};

type AD = Autodiff<Flex>;

/// Deterministic values in [-1, 1) (a linear congruential generator).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(values: &[f32], shape: [usize; 4]) -> Tensor<AD, 4> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
}

fn values(t: Tensor<Flex, 4>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Largest absolute difference relative to the largest reference magnitude.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 2e-5 * scale,
        "{what}: largest difference {worst:e} against a scale of {scale:e}"
    );
}

/// One geometry: batch, channels in/out, input size, kernel, stride, padding, dilation,
/// groups, and (transposed only) the output padding.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c_in: usize,
    c_out: usize,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    padding_out: [usize; 2],
}

const GEOMETRIES: [Geometry; 7] = [
    // The shapes of the models' stride-2 4x4 layers, scaled down.
    Geometry {
        batch: 5,
        c_in: 3,
        c_out: 4,
        input: [8, 8],
        kernel: [4, 4],
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
        padding_out: [0, 0],
    },
    Geometry {
        batch: 3,
        c_in: 1,
        c_out: 6,
        input: [7, 9],
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
        padding_out: [0, 0],
    },
    Geometry {
        batch: 2,
        c_in: 4,
        c_out: 2,
        input: [9, 7],
        kernel: [3, 2],
        stride: [3, 2],
        padding: [2, 0],
        dilation: [1, 2],
        groups: 1,
        padding_out: [1, 1],
    },
    Geometry {
        batch: 4,
        c_in: 4,
        c_out: 6,
        input: [6, 6],
        kernel: [3, 3],
        stride: [2, 1],
        padding: [1, 2],
        dilation: [2, 1],
        groups: 2,
        padding_out: [1, 0],
    },
    Geometry {
        batch: 1,
        c_in: 5,
        c_out: 3,
        input: [1, 1],
        kernel: [4, 4],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
        padding_out: [0, 0],
    },
    Geometry {
        batch: 7,
        c_in: 2,
        c_out: 2,
        input: [5, 5],
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
        padding_out: [0, 0],
    },
    // Many samples of a one-pixel output: the gradient's chunking over the batch.
    Geometry {
        batch: 300,
        c_in: 3,
        c_out: 2,
        input: [4, 4],
        kernel: [4, 4],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
        padding_out: [0, 0],
    },
];

fn out_size(input: usize, k: usize, s: usize, p: usize, d: usize) -> usize {
    (input + 2 * p - d * (k - 1) - 1) / s + 1
}

fn out_size_transposed(input: usize, k: usize, s: usize, p: usize, d: usize, po: usize) -> usize {
    (input - 1) * s + d * (k - 1) + po + 1 - 2 * p
}

/// `y = conv2d(x, w, b)` and the gradients of `sum(y * r)` by the definition.
struct Reference {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

fn conv_reference(g: Geometry, x: &[f32], w: &[f32], b: &[f32], r: &[f32]) -> Reference {
    let [h, v] = g.input;
    let [kh, kw] = g.kernel;
    let oh = out_size(h, kh, g.stride[0], g.padding[0], g.dilation[0]);
    let ow = out_size(v, kw, g.stride[1], g.padding[1], g.dilation[1]);
    let (ci_g, co_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let mut y = vec![0.0f32; g.batch * g.c_out * oh * ow];
    let mut dx = vec![0.0f32; x.len()];
    let mut dw = vec![0.0f32; w.len()];
    let mut db = vec![0.0f32; g.c_out];
    for n in 0..g.batch {
        for o in 0..g.c_out {
            let group = o / co_g;
            for p in 0..oh {
                for q in 0..ow {
                    let yi = ((n * g.c_out + o) * oh + p) * ow + q;
                    y[yi] += b[o];
                    db[o] += r[yi];
                    for cl in 0..ci_g {
                        let c = group * ci_g + cl;
                        for i in 0..kh {
                            for j in 0..kw {
                                let hh = (p * g.stride[0] + i * g.dilation[0]) as isize
                                    - g.padding[0] as isize;
                                let vv = (q * g.stride[1] + j * g.dilation[1]) as isize
                                    - g.padding[1] as isize;
                                if hh < 0 || vv < 0 || hh >= h as isize || vv >= v as isize {
                                    continue;
                                }
                                let xi = ((n * g.c_in + c) * h + hh as usize) * v + vv as usize;
                                let wi = ((o * ci_g + cl) * kh + i) * kw + j;
                                y[yi] += w[wi] * x[xi];
                                dw[wi] += r[yi] * x[xi];
                                dx[xi] += r[yi] * w[wi];
                            }
                        }
                    }
                }
            }
        }
    }
    Reference { y, dx, dw, db }
}

fn conv_transpose_reference(g: Geometry, x: &[f32], w: &[f32], b: &[f32], r: &[f32]) -> Reference {
    let [h, v] = g.input;
    let [kh, kw] = g.kernel;
    let oh = out_size_transposed(
        h,
        kh,
        g.stride[0],
        g.padding[0],
        g.dilation[0],
        g.padding_out[0],
    );
    let ow = out_size_transposed(
        v,
        kw,
        g.stride[1],
        g.padding[1],
        g.dilation[1],
        g.padding_out[1],
    );
    let (ci_g, co_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let mut y = vec![0.0f32; g.batch * g.c_out * oh * ow];
    let mut dx = vec![0.0f32; x.len()];
    let mut dw = vec![0.0f32; w.len()];
    let mut db = vec![0.0f32; g.c_out];
    for n in 0..g.batch {
        for o in 0..g.c_out {
            for p in 0..oh * ow {
                let yi = (n * g.c_out + o) * oh * ow + p;
                y[yi] += b[o];
                db[o] += r[yi];
            }
        }
        for c in 0..g.c_in {
            let group = c / ci_g;
            for hh in 0..h {
                for vv in 0..v {
                    let xi = ((n * g.c_in + c) * h + hh) * v + vv;
                    for ol in 0..co_g {
                        let o = group * co_g + ol;
                        for i in 0..kh {
                            for j in 0..kw {
                                let p = (hh * g.stride[0] + i * g.dilation[0]) as isize
                                    - g.padding[0] as isize;
                                let q = (vv * g.stride[1] + j * g.dilation[1]) as isize
                                    - g.padding[1] as isize;
                                if p < 0 || q < 0 || p >= oh as isize || q >= ow as isize {
                                    continue;
                                }
                                let yi = ((n * g.c_out + o) * oh + p as usize) * ow + q as usize;
                                let wi = ((c * co_g + ol) * kh + i) * kw + j;
                                y[yi] += x[xi] * w[wi];
                                dw[wi] += r[yi] * x[xi];
                                dx[xi] += r[yi] * w[wi];
                            }
                        }
                    }
                }
            }
        }
    }
    Reference { y, dx, dw, db }
}

fn check(g: Geometry, transposed: bool, seed: u64) {
    let [h, v] = g.input;
    let [kh, kw] = g.kernel;
    let x_shape = [g.batch, g.c_in, h, v];
    let w_shape = if transposed {
        [g.c_in, g.c_out / g.groups, kh, kw]
    } else {
        [g.c_out, g.c_in / g.groups, kh, kw]
    };
    let y_hw = if transposed {
        [
            out_size_transposed(
                h,
                kh,
                g.stride[0],
                g.padding[0],
                g.dilation[0],
                g.padding_out[0],
            ),
            out_size_transposed(
                v,
                kw,
                g.stride[1],
                g.padding[1],
                g.dilation[1],
                g.padding_out[1],
            ),
        ]
    } else {
        [
            out_size(h, kh, g.stride[0], g.padding[0], g.dilation[0]),
            out_size(v, kw, g.stride[1], g.padding[1], g.dilation[1]),
        ]
    };
    let y_shape = [g.batch, g.c_out, y_hw[0], y_hw[1]];
    let x = noise(x_shape.iter().product(), seed);
    let w = noise(w_shape.iter().product(), seed + 1);
    let b = noise(g.c_out, seed + 2);
    let r = noise(y_shape.iter().product(), seed + 3);
    let want = if transposed {
        conv_transpose_reference(g, &x, &w, &b, &r)
    } else {
        conv_reference(g, &x, &w, &b, &r)
    };

    let xt = tensor(&x, x_shape).require_grad();
    let wt = tensor(&w, w_shape).require_grad();
    let bt = Tensor::<AD, 1>::from_data(TensorData::new(b.clone(), [g.c_out]), &Default::default())
        .require_grad();
    let y = if transposed {
        conv_transpose2d(
            xt.clone(),
            wt.clone(),
            Some(bt.clone()),
            ConvTransposeOptions::new(g.stride, g.padding, g.padding_out, g.dilation, g.groups),
        )
    } else {
        conv2d(
            xt.clone(),
            wt.clone(),
            Some(bt.clone()),
            ConvOptions::new(g.stride, g.padding, g.dilation, g.groups),
        )
    };
    assert_eq!(y.dims(), y_shape, "{g:?}: output shape");
    let what = if transposed { "transposed" } else { "conv" };
    assert_close(
        &values(y.clone().inner()),
        &want.y,
        &format!("{what} {g:?}: forward"),
    );
    let grads = (y * tensor(&r, y_shape)).sum().backward();
    assert_close(
        &values(xt.grad(&grads).unwrap()),
        &want.dx,
        &format!("{what} {g:?}: input gradient"),
    );
    assert_close(
        &values(wt.grad(&grads).unwrap()),
        &want.dw,
        &format!("{what} {g:?}: weight gradient"),
    );
    let db = bt
        .grad(&grads)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert_close(&db, &want.db, &format!("{what} {g:?}: bias gradient"));
}

#[test]
fn convolutions_and_their_gradients_match_the_definition() {
    let fits = |g: &Geometry| {
        (0..2).all(|a| g.input[a] + 2 * g.padding[a] > g.dilation[a] * (g.kernel[a] - 1))
    };
    for (k, g) in GEOMETRIES.iter().enumerate().filter(|(_, g)| fits(g)) {
        check(*g, false, 10 * k as u64);
    }
}

#[test]
fn transposed_convolutions_and_their_gradients_match_the_definition() {
    for (k, g) in GEOMETRIES.iter().enumerate() {
        check(*g, true, 100 + 10 * k as u64);
    }
}
