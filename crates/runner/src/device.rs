//! The command line's choice of compute backend (`--backend`, among those compiled in by
//! cargo features) and of device (`--device`).

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
