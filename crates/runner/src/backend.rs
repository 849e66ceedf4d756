//! The only place that names concrete Burn backends: `--backend` chooses among
//! those compiled in by cargo features, and generic code runs on it.

/// Run a generic function `$($func)::+::<B>(&device, args...)` on the autodiff backend
/// chosen at run time. `$func` must be generic over `B: AutodiffBackend` and return
/// `anyhow::Result<_>`.
#[macro_export]
macro_rules! dispatch_autodiff {
    ($choice:expr, $device_spec:expr, $($func:ident)::+ $(, $arg:expr)* $(,)?) => {{
        #[allow(unused_variables)]
        let device_spec: $crate::device::DeviceSpec = $device_spec;
        match $choice {
            $crate::device::BackendChoice::Flex => {
                #[cfg(feature = "flex")]
                {
                    let device = burn::backend::flex::FlexDevice;
                    $($func)::+::<burn::backend::Autodiff<burn::backend::Flex>>(&device, $($arg),*)
                }
                #[cfg(not(feature = "flex"))]
                {
                    Err($crate::device::BackendChoice::Flex.not_compiled_error())
                }
            }
            $crate::device::BackendChoice::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    match $crate::wgpu_adapters::ensure_adapter(device_spec) {
                        Err(e) => Err(e),
                        Ok(()) => {
                            let device = device_spec.wgpu();
                            $($func)::+::<burn::backend::Autodiff<burn::backend::Wgpu>>(&device, $($arg),*)
                        }
                    }
                }
                #[cfg(not(feature = "wgpu"))]
                {
                    Err($crate::device::BackendChoice::Wgpu.not_compiled_error())
                }
            }
            $crate::device::BackendChoice::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    match $crate::backend::ensure_cuda_driver()
                        .and_then(|()| device_spec.index($crate::device::BackendChoice::Cuda))
                    {
                        Err(e) => Err(e),
                        Ok(device_index) => {
                            let device = burn::backend::cuda::CudaDevice::new(device_index);
                            $($func)::+::<burn::backend::Autodiff<burn::backend::Cuda>>(&device, $($arg),*)
                        }
                    }
                }
                #[cfg(not(feature = "cuda"))]
                {
                    Err($crate::device::BackendChoice::Cuda.not_compiled_error())
                }
            }
        }
    }};
}

/// The CUDA backend loads the driver library at run time and panics (in a worker thread)
/// when there is none; look for it first so that the user gets an error instead. On Linux
/// the library is searched in `LD_LIBRARY_PATH`, the folders of `/etc/ld.so.conf.d` and the
/// usual system folders; `FEP_CUDA_PROBE=off` skips the search.
#[cfg(feature = "cuda")]
pub fn ensure_cuda_driver() -> anyhow::Result<()> {
    if !cfg!(target_os = "linux") || std::env::var("FEP_CUDA_PROBE").as_deref() == Ok("off") {
        return Ok(());
    }
    let dirs = cuda_library_dirs();
    if dirs.iter().any(|dir| holds_cuda_driver(dir)) {
        return Ok(());
    }
    anyhow::bail!(
        "--backend cuda: the NVIDIA driver library (libcuda.so) was not found in LD_LIBRARY_PATH, \
         /etc/ld.so.conf.d or the system library folders; install the NVIDIA driver, add its \
         folder to LD_LIBRARY_PATH (or set FEP_CUDA_PROBE=off if it is there after all), or use \
         --backend flex"
    )
}

#[cfg(feature = "cuda")]
fn cuda_library_dirs() -> Vec<std::path::PathBuf> {
    use std::path::PathBuf;
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/etc/ld.so.conf.d") {
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                dirs.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| l.starts_with('/'))
                        .map(PathBuf::from),
                );
            }
        }
    }
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/local/cuda/lib64",
        "/usr/local/cuda/compat",
        "/usr/lib/wsl/lib",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs
}

#[cfg(feature = "cuda")]
fn holds_cuda_driver(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libcuda.so"))
    })
}
