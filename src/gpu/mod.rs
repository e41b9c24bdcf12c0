//! The GPU backend: one wgpu device per process, its compute pipelines compiled once, and the
//! kernels that have CPU twins elsewhere in the engine (the flow solver: [`GpuFlowSolver`]; the
//! demons solver: [`GpuDemonsSolver`]).
//!
//! wgpu reports validation errors and device loss through callbacks; the context records them
//! and every operation turns a recorded failure into [`Error::Gpu`], so the caller can fall back
//! to the CPU instead of the process panicking.

mod compose;
mod demons;
mod export;
mod flow;
mod quality;

pub use compose::{Compositor, Frame};
pub use demons::GpuDemonsSolver;
pub use export::export_renderer;
pub use flow::GpuFlowSolver;
pub use quality::GpuBoxMaps;

use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The WGSL of the flow kernels, embedded at build time.
pub const FLOW_SHADER: &str = include_str!("../../shaders/flow.wgsl");

/// The WGSL of the demons kernels, embedded at build time.
pub const DEMONS_SHADER: &str = include_str!("../../shaders/demons.wgsl");

/// The WGSL of the layer compositor, embedded at build time.
pub const COMPOSE_SHADER: &str = include_str!("../../shaders/compose.wgsl");

/// The WGSL of the quality maps' box-sum kernel, embedded at build time.
pub const QUALITY_SHADER: &str = include_str!("../../shaders/quality.wgsl");

/// Every WGSL source the engine compiles, by file name (for validation tests and warmup).
pub const SHADERS: &[(&str, &str)] = &[
    ("flow.wgsl", FLOW_SHADER),
    ("demons.wgsl", DEMONS_SHADER),
    ("compose.wgsl", COMPOSE_SHADER),
    ("quality.wgsl", QUALITY_SHADER),
];

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
    demons: OnceLock<demons::DemonsPipelines>,
    quality: OnceLock<quality::QualityPipeline>,
    pipeline_cache: Option<DiskPipelineCache>,
}

/// A `wgpu::PipelineCache` and the file it is loaded from and saved to.
struct DiskPipelineCache {
    cache: wgpu::PipelineCache,
    path: PathBuf,
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
            required_features: adapter.features() & wgpu::Features::PIPELINE_CACHE,
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
        let info = adapter.get_info();
        let pipeline_cache = DiskPipelineCache::open(&device, &info);
        Ok(Self {
            device,
            queue,
            info,
            limits,
            failure,
            flow: OnceLock::new(),
            demons: OnceLock::new(),
            quality: OnceLock::new(),
            pipeline_cache,
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

    /// Compiles every pipeline now (the flow and the demons kernels, the quality maps), so that
    /// the first run does not pay for it, and saves the pipeline cache to disk where the backend
    /// has one.
    pub fn warm_up(&self) -> Result<()> {
        self.flow_pipelines();
        self.demons_pipelines();
        self.quality_pipeline();
        self.check()?;
        if let Some(disk) = &self.pipeline_cache {
            disk.save()?;
        }
        Ok(())
    }

    /// Waits for the device, maps the first `bytes` of `buffer` (a `MAP_READ` buffer the
    /// submitted work copies into), hands them to `read` and unmaps; `what` names the data in
    /// errors.
    pub fn read_back(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        what: &str,
        read: impl FnOnce(&[u8]),
    ) -> Result<()> {
        let slice = buffer.slice(..bytes);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = sender.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        receiver
            .recv()
            .map_err(|_| Error::Gpu("the device dropped a readback".into()))?
            .map_err(|e| Error::Gpu(format!("reading {what} back: {e}")))?;
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading {what} back: {e}")))?;
            read(&view);
        }
        buffer.unmap();
        self.check()
    }

    /// The file the pipeline cache lives in, when the backend supports one (Vulkan).
    pub fn pipeline_cache_path(&self) -> Option<&std::path::Path> {
        self.pipeline_cache.as_ref().map(|d| d.path.as_path())
    }

    fn quality_pipeline(&self) -> &quality::QualityPipeline {
        self.quality.get_or_init(|| {
            let cache = self.pipeline_cache.as_ref().map(|d| &d.cache);
            quality::QualityPipeline::new(&self.device, cache)
        })
    }

    fn demons_pipelines(&self) -> &demons::DemonsPipelines {
        self.demons.get_or_init(|| {
            let cache = self.pipeline_cache.as_ref().map(|d| &d.cache);
            demons::DemonsPipelines::new(&self.device, cache)
        })
    }

    fn flow_pipelines(&self) -> &flow::FlowPipelines {
        self.flow.get_or_init(|| {
            let cache = self.pipeline_cache.as_ref().map(|d| &d.cache);
            flow::FlowPipelines::new(&self.device, cache)
        })
    }
}

/// The capacity `[pixels, moving pixels]` to allocate when tile buffers of `current`
/// capacity (`None`: none yet) cannot hold `needed`, grown with a quarter's headroom so that the
/// next tiles of a level reuse them; `None` when they fit.
fn grown_capacity(current: Option<[usize; 2]>, needed: [usize; 2]) -> Option<[usize; 2]> {
    let old = current.unwrap_or([0, 0]);
    if current.is_some() && old[0] >= needed[0] && old[1] >= needed[1] {
        return None;
    }
    Some([0, 1].map(|k| needed[k].max(old[k] + old[k] / 4)))
}

/// A view's values in row-major order, as the kernels' buffers hold them.
fn contiguous(view: &ndarray::ArrayView2<'_, f32>) -> Vec<f32> {
    view.rows().into_iter().flatten().copied().collect()
}

/// A bind-group entry for the whole of `buffer`.
fn whole(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// Environment variable naming the folder for the pipeline cache (default: the user's cache
/// folder, `$XDG_CACHE_HOME/alinify` or `~/.cache/alinify`).
pub const CACHE_DIR_ENV: &str = "ALINIFY_CACHE_DIR";

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("alinify"))
}

impl DiskPipelineCache {
    /// The device's pipeline cache, seeded from disk; `None` when the device or backend has no
    /// pipeline cache or there is no cache folder.
    fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<Self> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE) {
            return None;
        }
        let path = cache_dir()?.join(wgpu::util::pipeline_cache_key(info)?);
        let data = std::fs::read(&path).ok();
        // SAFETY: the data is what `PipelineCache::get_data` returned for an adapter with the
        // same cache key (the file name), written atomically by `save`. The driver validates
        // the header (vendor, device, driver version) and `fallback` starts an empty cache when
        // the data does not fit.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("alinify"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Some(Self { cache, path })
    }

    /// Writes the cache's data atomically (a no-op when the driver has none).
    fn save(&self) -> Result<()> {
        let Some(data) = self.cache.get_data() else {
            return Ok(());
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| crate::Error::write(dir, e))?;
        }
        crate::io::write_atomic(&self.path, |w| {
            std::io::Write::write_all(w, &data).map_err(|e| crate::Error::write(&self.path, e))
        })
    }
}

/// Whether tests must fail (rather than skip) when no adapter exists: in CI (`CI=true`), where
/// the software Vulkan adapter is installed on purpose.
pub fn adapter_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
