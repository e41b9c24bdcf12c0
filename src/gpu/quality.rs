//! The QC box maps on the GPU: `shaders/quality.wgsl`, one dispatch per band, the twin of
//! [`crate::analysis::quality::CpuBoxMaps`].

use super::GpuContext;
use crate::analysis::quality::{BoxBand, BoxMapKernel};
use crate::{Error, Result};
use std::sync::Arc;

/// Uniforms of `quality.wgsl` (`struct Params`), byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    width: u32,
    loaded: u32,
    halo_above: u32,
    rows: u32,
    radius: u32,
    pad: [u32; 3],
}

const WORKGROUP: u32 = 16;
/// Bytes of output per pixel (a `vec4<f32>`).
const OUT_BYTES: usize = 16;

/// The pipeline and its bind-group layout, created once per device.
pub(super) struct QualityPipeline {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl QualityPipeline {
    pub(super) fn new(device: &wgpu::Device, cache: Option<&wgpu::PipelineCache>) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("quality.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::QUALITY_SHADER.into()),
        });
        let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("quality"),
            entries: &[
                entry(0, wgpu::BufferBindingType::Uniform),
                entry(1, storage(true)),
                entry(2, storage(true)),
                entry(3, storage(false)),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("quality"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("box_maps"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("box_maps"),
            compilation_options: Default::default(),
            cache,
        });
        Self { layout, pipeline }
    }
}

/// The box maps on a [`GpuContext`].
pub struct GpuBoxMaps {
    context: Arc<GpuContext>,
    max_band_pixels: usize,
}

impl GpuBoxMaps {
    /// The kernel on `context`; `max_band_pixels` caps a band below what the device allows
    /// (tests force several bands with it).
    pub fn new(context: Arc<GpuContext>, max_band_pixels: Option<usize>) -> Self {
        let device_limit = (context.max_binding_bytes() as usize) / OUT_BYTES;
        let max_band_pixels = max_band_pixels.map_or(device_limit, |m| m.min(device_limit));
        Self {
            context,
            max_band_pixels,
        }
    }
}

impl BoxMapKernel for GpuBoxMaps {
    fn backend(&self) -> &'static str {
        "gpu"
    }

    fn adapter(&self) -> Option<String> {
        Some(self.context.adapter_name())
    }

    fn max_band_pixels(&self) -> usize {
        self.max_band_pixels
    }

    fn run(&self, band: &BoxBand<'_>) -> Result<Vec<[f32; 4]>> {
        let context = &self.context;
        let (device, queue) = (&context.device, &context.queue);
        let pipeline = context.quality_pipeline();
        let (w, loaded) = (band.width, band.loaded_rows());
        if w * loaded > self.max_band_pixels {
            return Err(Error::Internal(format!(
                "a band of {w} x {loaded} exceeds the GPU's {} pixels",
                self.max_band_pixels
            )));
        }
        let params = Params {
            width: w as u32,
            loaded: loaded as u32,
            halo_above: band.halo_above as u32,
            rows: band.rows as u32,
            radius: band.radius as u32,
            pad: [0; 3],
        };
        let buffer = |label: &str, bytes: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let uniform = buffer(
            "quality params",
            size_of::<Params>(),
            U::UNIFORM | U::COPY_DST,
        );
        let fixed = buffer(
            "quality fixed",
            band.fixed.len() * 4,
            U::STORAGE | U::COPY_DST,
        );
        let moving = buffer(
            "quality moving",
            band.moving.len() * 4,
            U::STORAGE | U::COPY_DST,
        );
        let out_bytes = w * band.rows * OUT_BYTES;
        let maps = buffer("quality maps", out_bytes, U::STORAGE | U::COPY_SRC);
        let readback = buffer("quality readback", out_bytes, U::MAP_READ | U::COPY_DST);
        queue.write_buffer(&uniform, 0, bytemuck::bytes_of(&params));
        queue.write_buffer(&fixed, 0, bytemuck::cast_slice(band.fixed));
        queue.write_buffer(&moving, 0, bytemuck::cast_slice(band.moving));
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("quality"),
            layout: &pipeline.layout,
            entries: &[
                whole(0, &uniform),
                whole(1, &fixed),
                whole(2, &moving),
                whole(3, &maps),
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(
                (w as u32).div_ceil(WORKGROUP),
                (band.rows as u32).div_ceil(WORKGROUP),
                1,
            );
        }
        encoder.copy_buffer_to_buffer(&maps, 0, &readback, 0, out_bytes as u64);
        queue.submit([encoder.finish()]);
        let mut out = Vec::new();
        context.read_back(&readback, out_bytes as u64, "the quality maps", |bytes| {
            out = bytemuck::cast_slice::<u8, [f32; 4]>(bytes).to_vec();
        })?;
        Ok(out)
    }
}

fn whole(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}
