//! The flow solver on the GPU: `shaders/flow.wgsl`, driven pass for pass like
//! [`crate::flow::cpu`].

use super::{GpuContext, whole};
use crate::flow::{FlowSolver, TileProblem};
use crate::job::CancelToken;
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// Uniforms of `flow.wgsl` (`struct Params`), byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    width: u32,
    height: u32,
    moving_width: u32,
    moving_height: u32,
    origin_x: u32,
    origin_y: u32,
    moving_x: u32,
    moving_y: u32,
    moving_level_width: u32,
    moving_level_height: u32,
    colour: u32,
    median_radius: u32,
    matrix: [f32; 4],
    offset: [f32; 4],
    alpha: f32,
    omega: f32,
    data_eps2: f32,
    inv_smooth_eps2: f32,
}

/// Distance between the two colours' uniforms (the usual offset alignment).
const UNIFORM_STRIDE: u64 = 256;
const WORKGROUP: u32 = 16;

/// The bind-group layout and the four pipelines, created once per device.
pub(super) struct FlowPipelines {
    layout: wgpu::BindGroupLayout,
    linearize: wgpu::ComputePipeline,
    smoothness: wgpu::ComputePipeline,
    sweep: wgpu::ComputePipeline,
    median: wgpu::ComputePipeline,
}

impl FlowPipelines {
    pub(super) fn new(device: &wgpu::Device, cache: Option<&wgpu::PipelineCache>) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("flow.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::FLOW_SHADER.into()),
        });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        entries.extend([
            storage(1, true),
            storage(2, true),
            storage(3, false),
            storage(4, false),
            storage(5, false),
            storage(6, false),
        ]);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("flow"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("flow"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache,
            })
        };
        Self {
            linearize: pipeline("linearize"),
            smoothness: pipeline("smoothness"),
            sweep: pipeline("sweep"),
            median: pipeline("median"),
            layout,
        }
    }
}

/// Device buffers for tiles up to a capacity, reused between tiles and levels.
struct Buffers {
    pixels: usize,
    moving_pixels: usize,
    params: wgpu::Buffer,
    fixed: wgpu::Buffer,
    moving: wgpu::Buffer,
    flow: wgpu::Buffer,
    rhs: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Bind groups with colour 0 and colour 1 uniforms.
    groups: [wgpu::BindGroup; 2],
}

impl Buffers {
    fn new(device: &wgpu::Device, pipelines: &FlowPipelines, pixels: usize, moving: usize) -> Self {
        let storage = |label: &str, bytes: usize, extra: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16) as u64,
                usage: wgpu::BufferUsages::STORAGE | extra,
                mapped_at_creation: false,
            })
        };
        let copy_dst = wgpu::BufferUsages::COPY_DST;
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("flow params"),
            size: UNIFORM_STRIDE + std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | copy_dst,
            mapped_at_creation: false,
        });
        let fixed = storage("fixed", pixels * 4, copy_dst);
        let moving_buffer = storage("moving", moving * 4, copy_dst);
        let flow = storage("flow", pixels * 8, copy_dst | wgpu::BufferUsages::COPY_SRC);
        let coefficients = storage("coefficients", pixels * 16, wgpu::BufferUsages::empty());
        // The median writes into `rhs`, and the host copies it back to `flow`.
        let rhs = storage("rhs", pixels * 8, wgpu::BufferUsages::COPY_SRC);
        let weights = storage("weights", pixels * 4, wgpu::BufferUsages::empty());
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("flow readback"),
            size: (pixels * 8).max(16) as u64,
            usage: wgpu::BufferUsages::MAP_READ | copy_dst,
            mapped_at_creation: false,
        });
        let group = |colour: u64| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("flow"),
                layout: &pipelines.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params,
                            offset: colour * UNIFORM_STRIDE,
                            size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                        }),
                    },
                    whole(1, &fixed),
                    whole(2, &moving_buffer),
                    whole(3, &flow),
                    whole(4, &coefficients),
                    whole(5, &rhs),
                    whole(6, &weights),
                ],
            })
        };
        let groups = [group(0), group(1)];
        Self {
            pixels,
            moving_pixels: moving,
            params,
            fixed,
            moving: moving_buffer,
            flow,
            rhs,
            readback,
            groups,
        }
    }
}

/// The flow solver on a [`GpuContext`].
pub struct GpuFlowSolver {
    context: Arc<GpuContext>,
    max_tile_pixels: usize,
    buffers: Mutex<Option<Buffers>>,
}

impl std::fmt::Debug for GpuFlowSolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFlowSolver")
            .field("adapter", &self.context.adapter_name())
            .field("max_tile_pixels", &self.max_tile_pixels)
            .finish()
    }
}

impl GpuFlowSolver {
    /// A solver whose tiles fit the device's binding limit (the 16-byte coefficient buffer is
    /// the largest), with a quarter left for the moving crop's overhang.
    pub fn new(context: Arc<GpuContext>) -> Self {
        let max_tile_pixels = (context.max_binding_bytes() / 16 / 4 * 3) as usize;
        Self {
            context,
            max_tile_pixels,
            buffers: Mutex::new(None),
        }
    }

    /// The same solver with tiles of at most `pixels` (tests force small tiles with this).
    pub fn with_max_tile_pixels(mut self, pixels: usize) -> Self {
        self.max_tile_pixels = self.max_tile_pixels.min(pixels);
        self
    }
}

impl FlowSolver for GpuFlowSolver {
    fn name(&self) -> String {
        self.context.adapter_name()
    }

    fn max_tile_pixels(&self) -> usize {
        self.max_tile_pixels
    }

    fn refine(
        &self,
        problem: &TileProblem<'_>,
        flow: &mut [[f32; 2]],
        cancel: &CancelToken,
    ) -> Result<()> {
        let context = &self.context;
        let (device, queue) = (&context.device, &context.queue);
        context.check()?;
        let pipelines = context.flow_pipelines();
        let (w, h) = (problem.width(), problem.height());
        let (mh, mw) = problem.moving.dim();
        let (pixels, moving_pixels) = (w * h, mw * mh);
        assert_eq!(flow.len(), pixels, "flow must cover the tile");
        if (moving_pixels * 4) as u64 > context.max_binding_bytes()
            || (pixels * 16) as u64 > context.max_binding_bytes()
        {
            return Err(Error::Gpu(format!(
                "a {w} x {h} tile reaching {mw} x {mh} moving pixels exceeds the adapter's {} MiB binding limit",
                context.max_binding_bytes() >> 20
            )));
        }
        let mut cache = self.buffers.lock().unwrap();
        let capacity = cache.as_ref().map(|b| [b.pixels, b.moving_pixels]);
        if let Some([pixels, moving]) = super::grown_capacity(capacity, [pixels, moving_pixels]) {
            *cache = Some(Buffers::new(device, pipelines, pixels, moving));
        }
        let buffers = cache.as_ref().expect("just created");

        let p = &problem.params;
        let a = problem.affine;
        let params = |colour: u32| Params {
            width: w as u32,
            height: h as u32,
            moving_width: mw as u32,
            moving_height: mh as u32,
            origin_x: problem.origin[0],
            origin_y: problem.origin[1],
            moving_x: problem.moving_origin[0],
            moving_y: problem.moving_origin[1],
            moving_level_width: problem.moving_size[0],
            moving_level_height: problem.moving_size[1],
            colour,
            median_radius: p.median_radius,
            matrix: [a[0], a[1], a[2], a[3]],
            offset: [a[4], a[5], 0.0, 0.0],
            alpha: p.smoothness,
            omega: p.relaxation,
            data_eps2: p.data_epsilon * p.data_epsilon,
            inv_smooth_eps2: 1.0 / (p.smooth_epsilon * p.smooth_epsilon),
        };
        queue.write_buffer(&buffers.params, 0, bytemuck::bytes_of(&params(0)));
        queue.write_buffer(
            &buffers.params,
            UNIFORM_STRIDE,
            bytemuck::bytes_of(&params(1)),
        );
        queue.write_buffer(
            &buffers.fixed,
            0,
            bytemuck::cast_slice(&super::contiguous(&problem.fixed)),
        );
        queue.write_buffer(
            &buffers.moving,
            0,
            bytemuck::cast_slice(&super::contiguous(&problem.moving)),
        );
        queue.write_buffer(&buffers.flow, 0, bytemuck::cast_slice(flow));

        let groups_x = (w as u32).div_ceil(WORKGROUP);
        let groups_y = (h as u32).div_ceil(WORKGROUP);
        let sweep_x = (w as u32).div_ceil(2).div_ceil(WORKGROUP);
        for _ in 0..p.warps {
            cancel.check()?;
            let mut encoder = device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_bind_group(0, &buffers.groups[0], &[]);
                pass.set_pipeline(&pipelines.linearize);
                pass.dispatch_workgroups(groups_x, groups_y, 1);
                pass.set_pipeline(&pipelines.smoothness);
                pass.dispatch_workgroups(groups_x, groups_y, 1);
                pass.set_pipeline(&pipelines.sweep);
                for _ in 0..p.sweeps {
                    for group in &buffers.groups {
                        pass.set_bind_group(0, group, &[]);
                        pass.dispatch_workgroups(sweep_x, groups_y, 1);
                    }
                }
                if p.median_radius > 0 {
                    pass.set_pipeline(&pipelines.median);
                    pass.dispatch_workgroups(groups_x, groups_y, 1);
                }
            }
            if p.median_radius > 0 {
                let bytes = (pixels * 8) as u64;
                encoder.copy_buffer_to_buffer(&buffers.rhs, 0, &buffers.flow, 0, bytes);
            }
            queue.submit([encoder.finish()]);
        }
        let bytes = (pixels * 8) as u64;
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&buffers.flow, 0, &buffers.readback, 0, bytes);
        queue.submit([encoder.finish()]);
        context.read_back(&buffers.readback, bytes, "the flow", |view| {
            flow.copy_from_slice(bytemuck::cast_slice(view));
        })
    }
}
