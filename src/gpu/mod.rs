//! The GPU backend: one wgpu device per process, its compute pipelines compiled once, and the
//! kernels that have CPU twins elsewhere in the engine (the flow solver: [`GpuFlowSolver`]).
//!
//! wgpu reports validation errors and device loss through callbacks; the context records them
//! and every operation turns a recorded failure into [`Error::Gpu`], so the caller can fall back
//! to the CPU instead of the process panicking.

mod flow;

pub use flow::GpuFlowSolver;

use crate::{Error, Result};
use std::sync::{Arc, Mutex, OnceLock};

/// The WGSL of the flow kernels, embedded at build time.
pub const FLOW_SHADER: &str = include_str!("../../shaders/flow.wgsl");

/// Every WGSL source the engine compiles, by file name (for validation tests and warmup).
pub const SHADERS: &[(&str, &str)] = &[("flow.wgsl", FLOW_SHADER)];

/// A wgpu device with its queue and the adapter it came from.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter says about itself.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with (the adapter's own).
    pub limits: wgpu::Limits,
    failure: Arc<Mutex<Option<String>>>,
    flow: OnceLock<flow::FlowPipelines>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter_name())
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the best adapter (high performance first; `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`
    /// are honoured) with its own limits.
    pub fn new() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let adapter = pollster::block_on(instance.request_adapter(&options))
            .map_err(|e| Error::Gpu(format!("no adapter: {e}")))?;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("alinify"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("cannot open the device: {e}")))?;
        let failure = Arc::new(Mutex::new(None::<String>));
        let record = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            record.lock().unwrap().get_or_insert_with(|| e.to_string());
        }));
        let record = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            record
                .lock()
                .unwrap()
                .get_or_insert_with(|| format!("device lost ({reason:?}): {message}"));
        });
        Ok(Self {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            failure,
            flow: OnceLock::new(),
        })
    }

    /// The process-wide context, created on first use; the error (no adapter, say) is
    /// remembered so that later callers do not search again.
    pub fn shared() -> Result<Arc<GpuContext>> {
        static SHARED: OnceLock<std::result::Result<Arc<GpuContext>, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| GpuContext::new().map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| Error::Gpu(e.trim_start_matches("GPU: ").to_string()))
    }

    /// `name (backend, device type)`, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn adapter_name(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Largest buffer a shader may bind, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Fails with the first error wgpu reported since the device was opened, if any.
    pub fn check(&self) -> Result<()> {
        match self.failure.lock().unwrap().as_ref() {
            Some(message) => Err(Error::Gpu(message.clone())),
            None => Ok(()),
        }
    }

    /// Compiles every pipeline now (the flow kernels), so that the first run does not pay for it.
    pub fn warm_up(&self) -> Result<()> {
        self.flow_pipelines();
        self.check()
    }

    fn flow_pipelines(&self) -> &flow::FlowPipelines {
        self.flow
            .get_or_init(|| flow::FlowPipelines::new(&self.device))
    }
}

/// Whether tests must fail (rather than skip) when no adapter exists: in CI (`CI=true`), where
/// the software Vulkan adapter is installed on purpose.
pub fn adapter_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
