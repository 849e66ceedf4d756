//! What every result records about where it was computed: the backend and device, the
//! machine, the code version.

/// Human-readable name of a device of backend B (backend name and device).
pub fn device_name<B: burn::tensor::backend::Backend>(device: &B::Device) -> String {
    format!("{} {:?}", B::name(device), device)
}

/// The CPU model and thread count of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} threads", threads())
}

/// Threads available to this process.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
