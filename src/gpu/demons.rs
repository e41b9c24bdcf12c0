//! The demons solver on the GPU: `shaders/demons.wgsl`, driven kernel for kernel like
//! [`crate::demons::cpu`].

use super::{GpuContext, whole};
use crate::demons::{DemonsSolver, DemonsTile, MAX_SMOOTHING_RADIUS, TileOutcome, TileRun};
use crate::job::CancelToken;
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// Uniforms of `demons.wgsl` (`struct Params`), byte for byte.
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
    own: [u32; 4],
    radius: u32,
    pad: u32,
    matrix: [f32; 4],
    offset: [f32; 4],
    scalars: [f32; 4],
    weights: [f32; 12],
}

/// Distance between the fluid and the elastic smoothing's uniforms.
const UNIFORM_STRIDE: u64 = 256;
const WORKGROUP: u32 = 16;

/// The bind-group layout and the pipelines, created once per device.
pub(super) struct DemonsPipelines {
    layout: wgpu::BindGroupLayout,
    exp_scale: wgpu::ComputePipeline,
    exp_square: wgpu::ComputePipeline,
    warp: wgpu::ComputePipeline,
    force: wgpu::ComputePipeline,
    smooth_rows: wgpu::ComputePipeline,
    smooth_columns_update: wgpu::ComputePipeline,
    accumulate: wgpu::ComputePipeline,
    smooth_columns_velocity: wgpu::ComputePipeline,
}

impl DemonsPipelines {
    pub(super) fn new(device: &wgpu::Device, cache: Option<&wgpu::PipelineCache>) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("demons.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::DEMONS_SHADER.into()),
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
        let mut entries = vec![
            entry(0, wgpu::BufferBindingType::Uniform),
            entry(1, storage(true)),
            entry(2, storage(true)),
        ];
        entries.extend((3..=9).map(|b| entry(b, storage(false))));
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("demons"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("demons"),
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
            exp_scale: pipeline("exp_scale"),
            exp_square: pipeline("exp_square"),
            warp: pipeline("warp"),
            force: pipeline("force"),
            smooth_rows: pipeline("smooth_rows"),
            smooth_columns_update: pipeline("smooth_columns_update"),
            accumulate: pipeline("accumulate"),
            smooth_columns_velocity: pipeline("smooth_columns_velocity"),
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
    velocity: wgpu::Buffer,
    displacement: wgpu::Buffer,
    squared: wgpu::Buffer,
    partials: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Bind groups with the fluid and the elastic smoothing's uniforms.
    groups: [wgpu::BindGroup; 2],
}

/// Workgroups of a `width x height` dispatch.
fn workgroups(width: usize, height: usize) -> [u32; 2] {
    [
        (width as u32).div_ceil(WORKGROUP),
        (height as u32).div_ceil(WORKGROUP),
    ]
}

impl Buffers {
    fn new(
        device: &wgpu::Device,
        pipelines: &DemonsPipelines,
        pixels: usize,
        moving: usize,
    ) -> Self {
        let storage = |label: &str, bytes: usize, extra: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16) as u64,
                usage: wgpu::BufferUsages::STORAGE | extra,
                mapped_at_creation: false,
            })
        };
        let copy_dst = wgpu::BufferUsages::COPY_DST;
        let copy_src = wgpu::BufferUsages::COPY_SRC;
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("demons params"),
            size: UNIFORM_STRIDE + std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | copy_dst,
            mapped_at_creation: false,
        });
        // Enough partial sums for any tile of `pixels`: a thin tile has more workgroups.
        let partial_count = pixels.div_ceil(WORKGROUP as usize) + pixels.div_ceil(256) + 16;
        let fixed = storage("fixed", pixels * 4, copy_dst);
        let moving_buffer = storage("moving", moving * 4, copy_dst);
        let velocity = storage("velocity", pixels * 8, copy_dst | copy_src);
        let displacement = storage("displacement", pixels * 8, copy_dst);
        let squared = storage("squared", pixels * 8, copy_src);
        let warped = storage("warped", pixels * 4, wgpu::BufferUsages::empty());
        let update = storage("update", pixels * 8, wgpu::BufferUsages::empty());
        let scratch = storage("scratch", pixels * 8, wgpu::BufferUsages::empty());
        let partials = storage("partials", partial_count * 8, copy_src);
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("demons readback"),
            size: (pixels * 8).max(partial_count * 8) as u64,
            usage: wgpu::BufferUsages::MAP_READ | copy_dst,
            mapped_at_creation: false,
        });
        let group = |slot: u64| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("demons"),
                layout: &pipelines.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params,
                            offset: slot * UNIFORM_STRIDE,
                            size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                        }),
                    },
                    whole(1, &fixed),
                    whole(2, &moving_buffer),
                    whole(3, &velocity),
                    whole(4, &displacement),
                    whole(5, &squared),
                    whole(6, &warped),
                    whole(7, &update),
                    whole(8, &scratch),
                    whole(9, &partials),
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
            velocity,
            displacement,
            squared,
            partials,
            readback,
            groups,
        }
    }
}

/// The demons solver on a [`GpuContext`].
pub struct GpuDemonsSolver {
    context: Arc<GpuContext>,
    max_tile_pixels: usize,
    buffers: Mutex<Option<Buffers>>,
}

impl std::fmt::Debug for GpuDemonsSolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDemonsSolver")
            .field("adapter", &self.context.adapter_name())
            .field("max_tile_pixels", &self.max_tile_pixels)
            .finish()
    }
}

impl GpuDemonsSolver {
    /// A solver whose tiles fit the device's binding limit (the 8-byte vector buffers are the
    /// largest), with a quarter left for the moving crop's overhang.
    pub fn new(context: Arc<GpuContext>) -> Self {
        let max_tile_pixels = (context.max_binding_bytes() / 8 / 4 * 3) as usize;
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

/// A half kernel in the uniform's layout, with its radius.
fn kernel_uniform(kernel: &[f32]) -> (u32, [f32; 12]) {
    assert!(
        kernel.len() <= MAX_SMOOTHING_RADIUS + 1,
        "radius over the limit"
    );
    let mut weights = [0.0; 12];
    weights[..kernel.len()].copy_from_slice(kernel);
    (kernel.len() as u32 - 1, weights)
}

impl DemonsSolver for GpuDemonsSolver {
    fn name(&self) -> String {
        self.context.adapter_name()
    }

    fn max_tile_pixels(&self) -> usize {
        self.max_tile_pixels
    }

    fn iterate(
        &self,
        tile: &DemonsTile<'_>,
        velocity: &mut [[f32; 2]],
        run: TileRun,
        cancel: &CancelToken,
    ) -> Result<TileOutcome> {
        let context = &self.context;
        let (device, queue) = (&context.device, &context.queue);
        context.check()?;
        let pipelines = context.demons_pipelines();
        let (w, h) = (tile.width(), tile.height());
        let (mh, mw) = tile.moving.dim();
        let (pixels, moving_pixels) = (w * h, mw * mh);
        assert_eq!(velocity.len(), pixels, "the velocity must cover the tile");
        if (moving_pixels * 4) as u64 > context.max_binding_bytes()
            || (pixels * 8) as u64 > context.max_binding_bytes()
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
        queue.write_buffer(
            &buffers.fixed,
            0,
            bytemuck::cast_slice(&super::contiguous(&tile.fixed)),
        );
        queue.write_buffer(
            &buffers.moving,
            0,
            bytemuck::cast_slice(&super::contiguous(&tile.moving)),
        );
        queue.write_buffer(&buffers.velocity, 0, bytemuck::cast_slice(velocity));

        let p = &tile.params;
        let a = tile.affine;
        let uniforms = |kernel: &[f32], steps: u32| {
            let (radius, weights) = kernel_uniform(kernel);
            Params {
                width: w as u32,
                height: h as u32,
                moving_width: mw as u32,
                moving_height: mh as u32,
                origin_x: tile.origin[0],
                origin_y: tile.origin[1],
                moving_x: tile.moving_origin[0],
                moving_y: tile.moving_origin[1],
                moving_level_width: tile.moving_size[0],
                moving_level_height: tile.moving_size[1],
                own: tile.own,
                radius,
                pad: 0,
                matrix: [a[0], a[1], a[2], a[3]],
                offset: [a[4], a[5], 0.0, 0.0],
                scalars: [
                    1.0 / (p.max_step * p.max_step),
                    1.0 / (1u64 << steps) as f32,
                    0.0,
                    0.0,
                ],
                weights,
            }
        };
        let (fluid, elastic) = (p.fluid_kernel(), p.elastic_kernel());
        let [gx, gy] = workgroups(w, h);
        let partial_count = (gx * gy) as usize;
        let partial_bytes = (partial_count * 8) as u64;
        let vector_bytes = (pixels * 8) as u64;
        let mut steps = run.first_steps;
        let mut outcome = TileOutcome::default();
        for iteration in 1..=run.iterations {
            cancel.check()?;
            queue.write_buffer(
                &buffers.params,
                0,
                bytemuck::bytes_of(&uniforms(&fluid, steps)),
            );
            queue.write_buffer(
                &buffers.params,
                UNIFORM_STRIDE,
                bytemuck::bytes_of(&uniforms(&elastic, steps)),
            );
            let mut encoder = device.create_command_encoder(&Default::default());
            let dispatch = |encoder: &mut wgpu::CommandEncoder,
                            group: usize,
                            kernels: &[&wgpu::ComputePipeline]| {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_bind_group(0, &buffers.groups[group], &[]);
                for kernel in kernels {
                    pass.set_pipeline(kernel);
                    pass.dispatch_workgroups(gx, gy, 1);
                }
            };
            dispatch(&mut encoder, 0, &[&pipelines.exp_scale]);
            for _ in 0..steps {
                dispatch(&mut encoder, 0, &[&pipelines.exp_square]);
                encoder.copy_buffer_to_buffer(
                    &buffers.squared,
                    0,
                    &buffers.displacement,
                    0,
                    vector_bytes,
                );
            }
            dispatch(
                &mut encoder,
                0,
                &[
                    &pipelines.warp,
                    &pipelines.force,
                    &pipelines.smooth_rows,
                    &pipelines.smooth_columns_update,
                    &pipelines.accumulate,
                ],
            );
            dispatch(
                &mut encoder,
                1,
                &[&pipelines.smooth_rows, &pipelines.smooth_columns_velocity],
            );
            encoder.copy_buffer_to_buffer(
                &buffers.partials,
                0,
                &buffers.readback,
                0,
                partial_bytes,
            );
            queue.submit([encoder.finish()]);
            let (mut sum, mut longest) = (0.0f64, 0.0f32);
            context.read_back(
                &buffers.readback,
                partial_bytes,
                "the demons' sums",
                |view| {
                    for pair in bytemuck::cast_slice::<u8, [f32; 2]>(view) {
                        sum += f64::from(pair[0]);
                        longest = longest.max(pair[1]);
                    }
                },
            )?;
            let [x0, y0, x1, y1] = tile.own;
            outcome = TileOutcome {
                iterations: iteration,
                update_sum_sq: sum,
                own_pixels: ((x1 - x0) * (y1 - y0)) as usize,
                max_norm: longest,
            };
            steps = crate::transform::velocity::exp_steps(longest);
            if run
                .stop_rms
                .is_some_and(|stop| outcome.rms() < f64::from(stop))
            {
                break;
            }
        }
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&buffers.velocity, 0, &buffers.readback, 0, vector_bytes);
        queue.submit([encoder.finish()]);
        context.read_back(&buffers.readback, vector_bytes, "the velocity", |view| {
            velocity.copy_from_slice(bytemuck::cast_slice(view));
        })?;
        Ok(outcome)
    }
}
