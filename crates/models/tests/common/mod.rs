//! The backend the model tests run on: the CPU backend `flex` by default, the GPU backends
//! with `--features test-cuda` or `--features test-wgpu` (what `scripts/gpu-check.sh`
//! runs), so the same tests check every backend.

#![allow(dead_code)]

use burn::backend::Autodiff;

/// The inner (non-autodiff) backend of the tests.
#[cfg(not(any(feature = "test-cuda", feature = "test-wgpu")))]
pub type Inner = burn::backend::Flex;
/// The inner (non-autodiff) backend of the tests.
#[cfg(feature = "test-cuda")]
pub type Inner = burn::backend::Cuda;
/// The inner (non-autodiff) backend of the tests.
#[cfg(all(feature = "test-wgpu", not(feature = "test-cuda")))]
pub type Inner = burn::backend::Wgpu;

/// The autodiff backend of the tests.
pub type TestBackend = Autodiff<Inner>;

/// The default device of the test backend.
#[cfg(not(any(feature = "test-cuda", feature = "test-wgpu")))]
pub fn device() -> burn::backend::flex::FlexDevice {
    Default::default()
}
/// The default device of the test backend (GPU 0).
#[cfg(feature = "test-cuda")]
pub fn device() -> burn::backend::cuda::CudaDevice {
    Default::default()
}
/// The default device of the test backend (the best adapter).
#[cfg(all(feature = "test-wgpu", not(feature = "test-cuda")))]
pub fn device() -> burn::backend::wgpu::WgpuDevice {
    Default::default()
}

/// Whether the backend repeats a computation bit for bit. flex does; the GPU backends pick
/// kernels by autotuning and reduce in parallel, so the same step can differ in the last
/// bits between processes.
pub const BITWISE_REPRODUCIBLE: bool = !cfg!(any(feature = "test-cuda", feature = "test-wgpu"));

/// The largest absolute difference of two parameter vectors.
pub fn max_abs_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "parameter counts differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
