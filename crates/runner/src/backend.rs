//! The only place that names concrete Burn backends: `--backend` chooses among
//! those compiled in by cargo features, and generic code runs on it.

use clap::ValueEnum;
use std::fmt;

/// A compute backend selectable at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Pure-Rust CPU backend (cargo feature `flex`, on by default).
    Flex,
    /// WebGPU / Vulkan / Metal through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// NVIDIA CUDA (cargo feature `cuda`).
    Cuda,
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Flex => "flex",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Cuda => "cuda",
        })
    }
}

impl BackendChoice {
    /// Whether this binary was built with the backend's cargo feature.
    pub fn compiled(&self) -> bool {
        match self {
            BackendChoice::Flex => cfg!(feature = "flex"),
            BackendChoice::Wgpu => cfg!(feature = "wgpu"),
            BackendChoice::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this binary.
    pub fn all_compiled() -> Vec<BackendChoice> {
        BackendChoice::value_variants()
            .iter()
            .copied()
            .filter(BackendChoice::compiled)
            .collect()
    }

    /// An error telling how to build the backend in.
    pub fn not_compiled_error(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "backend `{self}` is not compiled into this binary; rebuild with `cargo build --release --features {self}` (compiled backends: {})",
            BackendChoice::all_compiled()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Run a generic function `$($func)::+::<B>(&device, args...)` on the autodiff backend
/// chosen at run time. `$func` must be generic over `B: AutodiffBackend` and return
/// `anyhow::Result<_>`.
#[macro_export]
macro_rules! dispatch_autodiff {
    ($choice:expr, $device_index:expr, $($func:ident)::+ $(, $arg:expr)* $(,)?) => {{
        #[allow(unused_variables)]
        let device_index: usize = $device_index;
        match $choice {
            $crate::backend::BackendChoice::Flex => {
                #[cfg(feature = "flex")]
                {
                    let device = burn::backend::flex::FlexDevice;
                    $($func)::+::<burn::backend::Autodiff<burn::backend::Flex>>(&device, $($arg),*)
                }
                #[cfg(not(feature = "flex"))]
                {
                    Err($crate::backend::BackendChoice::Flex.not_compiled_error())
                }
            }
            $crate::backend::BackendChoice::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    let device = burn::backend::wgpu::WgpuDevice::DiscreteGpu(device_index);
                    $($func)::+::<burn::backend::Autodiff<burn::backend::Wgpu>>(&device, $($arg),*)
                }
                #[cfg(not(feature = "wgpu"))]
                {
                    Err($crate::backend::BackendChoice::Wgpu.not_compiled_error())
                }
            }
            $crate::backend::BackendChoice::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    let device = burn::backend::cuda::CudaDevice::new(device_index);
                    $($func)::+::<burn::backend::Autodiff<burn::backend::Cuda>>(&device, $($arg),*)
                }
                #[cfg(not(feature = "cuda"))]
                {
                    Err($crate::backend::BackendChoice::Cuda.not_compiled_error())
                }
            }
        }
    }};
}

/// Human-readable name of a device of backend B.
pub fn device_name<B: burn::tensor::backend::Backend>(device: &B::Device) -> String {
    format!("{} {:?}", B::name(device), device)
}
