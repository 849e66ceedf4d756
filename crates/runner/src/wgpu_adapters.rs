//! The adapters wgpu sees, and the check that the one `--device` names exists before Burn
//! is asked for it (Burn's wgpu runtime panics in a worker thread when it does not).

use anyhow::{Result, bail};
use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::device::DeviceSpec;

/// One adapter as wgpu reports it.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Adapter name (for example `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub kind: wgpu::DeviceType,
    /// Driver name and version.
    pub driver: String,
}

impl std::fmt::Display for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        };
        write!(f, "{} [{kind}", self.name)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        f.write_str("]")
    }
}

/// The graphics API Burn's wgpu backend runs on here (Vulkan on Linux and Windows, Metal
/// on macOS).
pub fn graphics_api() -> wgpu::Backend {
    AutoGraphicsApi::backend()
}

/// Every adapter of [`graphics_api`], in wgpu's order (the order Burn indexes them in).
pub fn adapters() -> Vec<Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: graphics_api().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    block_on(instance.enumerate_adapters(graphics_api().into()))
        .into_iter()
        .map(|adapter| {
            let info = adapter.get_info();
            let driver = [info.driver, info.driver_info]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Adapter {
                name: info.name,
                kind: info.device_type,
                driver,
            }
        })
        .collect()
}

/// The adapter `spec` selects among `adapters`, by Burn's rule: the N-th adapter of the
/// named kind, else the N-th of kind "other"; `default` takes any adapter.
pub fn select(spec: DeviceSpec, adapters: &[Adapter]) -> Result<usize> {
    let (kind, n, words) = match spec {
        DeviceSpec::Default => (None, 0, "adapter".to_string()),
        DeviceSpec::Index(n) | DeviceSpec::Discrete(n) => (
            Some(wgpu::DeviceType::DiscreteGpu),
            n,
            format!("discrete GPU {n}"),
        ),
        DeviceSpec::Integrated(n) => (
            Some(wgpu::DeviceType::IntegratedGpu),
            n,
            format!("integrated GPU {n}"),
        ),
        DeviceSpec::Virtual(n) => (
            Some(wgpu::DeviceType::VirtualGpu),
            n,
            format!("virtual GPU {n}"),
        ),
        DeviceSpec::Cpu => (Some(wgpu::DeviceType::Cpu), 0, "a CPU adapter".to_string()),
    };
    let of_kind = |wanted: Option<wgpu::DeviceType>| -> Vec<usize> {
        adapters
            .iter()
            .enumerate()
            .filter(|(_, a)| match wanted {
                None => true,
                Some(k) => a.kind == k,
            })
            .map(|(i, _)| i)
            .collect()
    };
    let matching = of_kind(kind);
    if let Some(&i) = matching.get(n) {
        return Ok(i);
    }
    if let Some(&i) = of_kind(Some(wgpu::DeviceType::Other)).get(n) {
        return Ok(i);
    }
    let found = if adapters.is_empty() {
        "none".to_string()
    } else {
        adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{i}: {a}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let hint = if adapters.is_empty() {
        "install a driver for your GPU (on Linux without one, `apt-get install mesa-vulkan-drivers` gives the software device llvmpipe) or use --backend flex"
    } else {
        "choose one of them with --device (default, discrete:N, integrated:N, virtual:N, cpu) or use --backend flex"
    };
    bail!(
        "--backend wgpu: no {words} on {:?} (--device {spec}); adapters found: {found}; {hint}",
        graphics_api()
    )
}

/// Fails with one line naming what was found when `spec` selects no adapter.
pub fn ensure_adapter(spec: DeviceSpec) -> Result<()> {
    select(spec, &adapters()).map(|_| ())
}

/// Runs a future to completion on this thread (wgpu's enumeration is a future that is
/// ready at once on native platforms).
fn block_on<T>(future: impl Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(value) => return value,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, kind: wgpu::DeviceType) -> Adapter {
        Adapter {
            name: name.into(),
            kind,
            driver: String::new(),
        }
    }

    #[test]
    fn selection_follows_burns_rule_and_names_what_was_found() {
        use wgpu::DeviceType::*;
        let list = [
            adapter("llvmpipe", Cpu),
            adapter("igpu", IntegratedGpu),
            adapter("dgpu0", DiscreteGpu),
            adapter("dgpu1", DiscreteGpu),
        ];
        assert_eq!(select(DeviceSpec::Default, &list).unwrap(), 0);
        assert_eq!(select(DeviceSpec::Cpu, &list).unwrap(), 0);
        assert_eq!(select(DeviceSpec::Integrated(0), &list).unwrap(), 1);
        assert_eq!(select(DeviceSpec::Index(1), &list).unwrap(), 3);
        assert_eq!(select(DeviceSpec::Discrete(0), &list).unwrap(), 2);
        let err = select(DeviceSpec::Virtual(0), &list)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no virtual GPU 0") && err.contains("3: dgpu1 [discrete]"),
            "{err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
        let err = select(DeviceSpec::Default, &[]).unwrap_err().to_string();
        assert!(
            err.contains("adapters found: none") && err.contains("mesa-vulkan-drivers"),
            "{err}"
        );
        // Burn falls back to adapters of kind "other".
        let other = [adapter("mystery", Other)];
        assert_eq!(select(DeviceSpec::Discrete(0), &other).unwrap(), 0);
    }
}
