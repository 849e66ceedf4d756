//! The CPU backend's strided copies (patched in `vendor/burn-flex`, see `vendor/README.md`)
//! against index arithmetic, and the convolution gradients that depend on them against
//! finite differences.

use burn::backend::{Autodiff, Flex};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Int, Tensor, TensorData};

type B = Flex;
type AD = Autodiff<Flex>;

fn arange<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    Tensor::<B, 1, Int>::arange(0..n as i64, &Default::default())
        .float()
        .reshape(shape)
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The expected contents of `arange(shape).permute(axes)`, in row-major order.
fn permuted(shape: &[usize], axes: &[usize]) -> Vec<f32> {
    let src = strides(shape);
    let out_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let n: usize = shape.iter().product();
    let out = strides(&out_shape);
    (0..n)
        .map(|flat| {
            axes.iter()
                .enumerate()
                .map(|(d, &a)| (flat / out[d]) % out_shape[d] * src[a])
                .sum::<usize>() as f32
        })
        .collect()
}

#[test]
fn permuted_copies_are_exact() {
    let shape4 = [3, 4, 5, 6];
    for axes in [
        [1, 0, 2, 3], // the convolution backward's batch/channel swap
        [0, 2, 3, 1],
        [3, 2, 1, 0],
        [2, 0, 3, 1],
        [1, 3, 0, 2],
    ] {
        let got = values(arange(shape4).permute(axes));
        assert_eq!(got, permuted(&shape4, &axes), "permutation {axes:?}");
        // A reshape of a permuted view copies through the same path.
        let n = shape4.iter().product::<usize>();
        let flat = values(arange(shape4).permute(axes).reshape([n]));
        assert_eq!(flat, permuted(&shape4, &axes));
    }
    let shape5 = [2, 3, 2, 4, 3];
    for axes in [[1, 0, 2, 3, 4], [4, 3, 2, 1, 0], [0, 2, 1, 4, 3]] {
        let got = values(arange(shape5).permute(axes));
        assert_eq!(got, permuted(&shape5, &axes), "permutation {axes:?}");
    }
}

#[test]
fn sliced_and_broadcast_copies_are_exact() {
    // A slice of a swapped view: offset and non-unit strides in every dimension.
    let t = arange([4, 5, 6])
        .swap_dims(0, 1)
        .narrow(0, 1, 3)
        .narrow(2, 2, 3);
    let got = values(t);
    let mut want = Vec::new();
    for i in 1..4 {
        for j in 0..4 {
            for k in 2..5 {
                want.push((j * 30 + i * 6 + k) as f32);
            }
        }
    }
    assert_eq!(got, want);
    // A broadcast (stride 0) copy.
    let row = arange([1, 3, 1, 4]);
    let got = values(row.expand([2, 3, 5, 4]));
    let want: Vec<f32> = (0..2 * 3 * 5 * 4)
        .map(|flat| {
            let (c, w) = ((flat / 20) % 3, flat % 4);
            (c * 4 + w) as f32
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn convolution_gradients_match_finite_differences() {
    let device = Default::default();
    let x = arange([3, 2, 7, 7]).mul_scalar(0.01).sin();
    let w0 = arange([4, 2, 3, 3]).mul_scalar(0.37).cos();
    let b0 = arange([4]).mul_scalar(0.1);
    let r = arange([3, 4, 4, 4]).mul_scalar(0.13).sin();
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    // J(w, b) = sum(conv(x; w, b) * r) is linear in (w, b): differences are exact.
    let loss = |w: Tensor<B, 4>, b: Tensor<B, 1>| -> f64 {
        let out = conv2d(x.clone(), w, Some(b), options.clone());
        f64::from((out * r.clone()).sum().into_scalar())
    };
    let w = Tensor::<AD, 4>::from_inner(w0.clone()).require_grad();
    let b = Tensor::<AD, 1>::from_inner(b0.clone()).require_grad();
    let out = conv2d(
        Tensor::<AD, 4>::from_inner(x.clone()),
        w.clone(),
        Some(b.clone()),
        options.clone(),
    );
    let grads = (out * Tensor::<AD, 4>::from_inner(r.clone()))
        .sum()
        .backward();
    let gw = values(w.grad(&grads).unwrap());
    let gb = values(b.grad(&grads).unwrap());
    let base = loss(w0.clone(), b0.clone());
    let w_flat = values(w0.clone());
    for (i, g) in gw.iter().enumerate().step_by(5) {
        let mut bumped = w_flat.clone();
        bumped[i] += 1.0;
        let wb = Tensor::<B, 4>::from_data(TensorData::new(bumped, [4, 2, 3, 3]), &device);
        let fd = loss(wb, b0.clone()) - base;
        assert!(
            (fd - f64::from(*g)).abs() < 1e-3 * (1.0 + fd.abs()),
            "w[{i}]: {fd} vs {g}"
        );
    }
    for (i, g) in gb.iter().enumerate() {
        let mut bumped = values(b0.clone());
        bumped[i] += 1.0;
        let bb = Tensor::<B, 1>::from_data(TensorData::new(bumped, [4]), &device);
        let fd = loss(w0.clone(), bb) - base;
        assert!(
            (fd - f64::from(*g)).abs() < 1e-3 * (1.0 + fd.abs()),
            "b[{i}]: {fd} vs {g}"
        );
    }
}

/// Row-major index of `index` in `shape`, with broadcast axes (size 1) pinned to zero.
fn broadcast_offset(index: &[usize], shape: &[usize]) -> usize {
    let s = strides(shape);
    index
        .iter()
        .zip(shape)
        .zip(&s)
        .map(|((&i, &n), &st)| if n == 1 { 0 } else { i * st })
        .sum()
}

#[test]
fn broadcast_and_strided_binary_ops_are_exact() {
    // Element-wise ops on operands of different layouts (broadcast, permuted, sliced) run
    // row by row over the collapsed layouts (patched in `vendor/burn-flex`); the values
    // are those of index arithmetic on the logical tensors.
    let full = [2, 3, 4, 5];
    let full_strides = strides(&full);
    let n: usize = full.iter().product();
    let indices = |flat: usize| -> Vec<usize> {
        (0..4).map(|d| (flat / full_strides[d]) % full[d]).collect()
    };
    for small in [
        [1, 3, 1, 1],
        [2, 1, 4, 1],
        [1, 1, 1, 5],
        [2, 3, 1, 5],
        [1, 3, 4, 1],
    ] {
        let lhs = arange(full);
        let rhs = arange(small).add_scalar(1.0);
        let got = values(lhs.clone() * rhs.clone());
        let want: Vec<f32> = (0..n)
            .map(|flat| flat as f32 * (broadcast_offset(&indices(flat), &small) as f32 + 1.0))
            .collect();
        assert_eq!(got, want, "[2, 3, 4, 5] * {small:?}");
        // The broadcast operand on the left, and a division.
        let got = values(rhs.clone() / lhs.clone().add_scalar(1.0));
        let want: Vec<f32> = (0..n)
            .map(|flat| {
                (broadcast_offset(&indices(flat), &small) as f32 + 1.0) / (flat as f32 + 1.0)
            })
            .collect();
        assert_eq!(got, want, "{small:?} / [2, 3, 4, 5]");
    }
    // A permuted operand against a contiguous one, and a sliced one.
    let permuted_lhs = arange([3, 2, 5, 4]).permute([1, 0, 3, 2]);
    let got = values(permuted_lhs - arange(full));
    let want: Vec<f32> = permuted(&[3, 2, 5, 4], &[1, 0, 3, 2])
        .iter()
        .enumerate()
        .map(|(flat, v)| v - flat as f32)
        .collect();
    assert_eq!(got, want);
    let sliced = arange([2, 3, 6, 5]).narrow(2, 1, 4);
    let got = values(sliced + arange([1, 3, 1, 1]));
    let want: Vec<f32> = (0..n)
        .map(|flat| {
            let i = indices(flat);
            ((i[0] * 3 + i[1]) * 6 + i[2] + 1) as f32 * 5.0 + i[3] as f32 + i[1] as f32
        })
        .collect();
    assert_eq!(got, want);
}
