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

/// Which device of a backend: `--device default` (the best adapter the backend finds; the
/// default), `N` (index N of the backend's devices: for wgpu the N-th discrete GPU), or, for
/// wgpu, `discrete:N`, `integrated:N`, `virtual:N` or `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The backend's default device (wgpu: the best available adapter; cuda: device 0).
    #[default]
    Default,
    /// Device N of the backend (wgpu: discrete GPU N).
    Index(usize),
    /// Discrete GPU N (wgpu).
    Discrete(usize),
    /// Integrated GPU N (wgpu; Apple silicon, most laptops).
    Integrated(usize),
    /// Virtual GPU N (wgpu).
    Virtual(usize),
    /// A CPU adapter (wgpu; software Vulkan such as llvmpipe).
    Cpu,
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let index = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("--device: `{v}` is not a device index"))
        };
        match s.split_once(':') {
            None if s == "default" => Ok(DeviceSpec::Default),
            None if s == "cpu" => Ok(DeviceSpec::Cpu),
            None => index(&s).map(DeviceSpec::Index),
            Some(("discrete", n)) => index(n).map(DeviceSpec::Discrete),
            Some(("integrated", n)) => index(n).map(DeviceSpec::Integrated),
            Some(("virtual", n)) => index(n).map(DeviceSpec::Virtual),
            Some((kind, _)) => Err(format!(
                "--device: unknown kind `{kind}`; expected default, N, discrete:N, integrated:N, virtual:N or cpu"
            )),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Default => f.write_str("default"),
            DeviceSpec::Index(n) => write!(f, "{n}"),
            DeviceSpec::Discrete(n) => write!(f, "discrete:{n}"),
            DeviceSpec::Integrated(n) => write!(f, "integrated:{n}"),
            DeviceSpec::Virtual(n) => write!(f, "virtual:{n}"),
            DeviceSpec::Cpu => f.write_str("cpu"),
        }
    }
}

impl DeviceSpec {
    /// The index of a backend whose devices are numbered (cuda): 0 by default; an error for
    /// the wgpu-only kinds.
    #[cfg_attr(not(any(feature = "cuda", test)), allow(dead_code))]
    pub fn index(&self, backend: BackendChoice) -> anyhow::Result<usize> {
        match self {
            DeviceSpec::Default => Ok(0),
            DeviceSpec::Index(n) => Ok(*n),
            other => Err(anyhow::anyhow!(
                "--device {other} names a wgpu adapter kind; backend `{backend}` takes a device index (for example --device 0)"
            )),
        }
    }

    /// The wgpu device.
    #[cfg(feature = "wgpu")]
    pub fn wgpu(&self) -> burn::backend::wgpu::WgpuDevice {
        use burn::backend::wgpu::WgpuDevice;
        match *self {
            DeviceSpec::Default => WgpuDevice::DefaultDevice,
            DeviceSpec::Index(n) | DeviceSpec::Discrete(n) => WgpuDevice::DiscreteGpu(n),
            DeviceSpec::Integrated(n) => WgpuDevice::IntegratedGpu(n),
            DeviceSpec::Virtual(n) => WgpuDevice::VirtualGpu(n),
            DeviceSpec::Cpu => WgpuDevice::Cpu,
        }
    }
}

/// Run a generic function `$($func)::+::<B>(&device, args...)` on the autodiff backend
/// chosen at run time. `$func` must be generic over `B: AutodiffBackend` and return
/// `anyhow::Result<_>`.
#[macro_export]
macro_rules! dispatch_autodiff {
    ($choice:expr, $device_spec:expr, $($func:ident)::+ $(, $arg:expr)* $(,)?) => {{
        #[allow(unused_variables)]
        let device_spec: $crate::backend::DeviceSpec = $device_spec;
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
                    Err($crate::backend::BackendChoice::Wgpu.not_compiled_error())
                }
            }
            $crate::backend::BackendChoice::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    match $crate::backend::ensure_cuda_driver()
                        .and_then(|()| device_spec.index($crate::backend::BackendChoice::Cuda))
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
                    Err($crate::backend::BackendChoice::Cuda.not_compiled_error())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse_and_print_back() {
        for (text, spec) in [
            ("default", DeviceSpec::Default),
            ("0", DeviceSpec::Index(0)),
            ("3", DeviceSpec::Index(3)),
            ("discrete:1", DeviceSpec::Discrete(1)),
            ("Integrated:0", DeviceSpec::Integrated(0)),
            ("virtual:2", DeviceSpec::Virtual(2)),
            ("cpu", DeviceSpec::Cpu),
        ] {
            let parsed: DeviceSpec = text.parse().unwrap();
            assert_eq!(parsed, spec, "{text}");
            assert_eq!(parsed.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
        for bad in ["gpu:0", "discrete:x", "-1", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(err.starts_with("--device"), "{bad}: {err}");
        }
        assert_eq!(DeviceSpec::Default.index(BackendChoice::Cuda).unwrap(), 0);
        assert_eq!(DeviceSpec::Index(2).index(BackendChoice::Cuda).unwrap(), 2);
        let err = DeviceSpec::Integrated(0)
            .index(BackendChoice::Cuda)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("integrated:0") && err.contains("cuda"),
            "{err}"
        );
    }
}
