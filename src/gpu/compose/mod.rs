//! The GPU compositor: layer pyramids uploaded tile by tile (coarse levels first, within a byte
//! budget per call, so a huge image shows at once and sharpens), the warp grid as a texture,
//! and a render pipeline that composes in one pass (`shaders/compose.wgsl`). It draws into the
//! viewer's render pass (a paint callback) or into an offscreen texture (export, tests). Its
//! CPU twin is [`crate::compose::render`].

use crate::compose::{
    Composite, Display, Level, MAX_OVERLAYS, OverlaySettings, Pyramid, RGB_CODE, Samples, ViewRect,
    WarpGrid,
};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// The uniform block of `compose.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    view: [f32; 4],
    target: [f32; 4],
    scales: [f32; 4],
    bottom: [u32; 4],
    top: [u32; 4],
    grid: [u32; 4],
    mode: [u32; 4],
    overlay_level: [[u32; 4]; MAX_OVERLAYS],
    overlay_info: [[f32; 4]; MAX_OVERLAYS],
    layers: [u32; 4],
    /// Per layer (bottom, top, overlays) two vectors: the window (low, high, gamma, colour
    /// map) and the tint (rgb, the value of one sample unit).
    styles: [[f32; 4]; 2 * (2 + MAX_OVERLAYS)],
}

/// A layer's style in `compose.wgsl`'s form: window and map, then tint and sample unit.
fn style(display: &Display, pyramid: &Pyramid) -> [[f32; 4]; 2] {
    let code = if pyramid.is_rgb() {
        RGB_CODE
    } else {
        display.map.code()
    };
    let tint = display.map.tint();
    [
        [display.low, display.high, display.gamma, code],
        [
            tint[0],
            tint[1],
            tint[2],
            1.0 / pyramid.levels[0].samples.max_value(),
        ],
    ]
}

/// The texture format of a level's tiles: unsigned integers of its depth, one channel or four
/// (RGB levels are widened tile by tile at upload).
fn texel_format(level: &Level) -> wgpu::TextureFormat {
    use wgpu::TextureFormat as F;
    match (&level.samples, level.is_rgb()) {
        (Samples::U8(_), false) => F::R8Uint,
        (Samples::U8(_), true) => F::Rgba8Uint,
        (Samples::U16(_), false) => F::R16Uint,
        (Samples::U16(_), true) => F::Rgba16Uint,
    }
}

/// Tile `[x, y, w, h]` of `level` as the bytes its texture takes, with the bytes per row: the
/// level's own rows for a gray level, RGB widened to RGBA (alpha at the maximum) otherwise.
fn tile_bytes(level: &Level, [x, y, w, h]: [usize; 4]) -> (std::borrow::Cow<'_, [u8]>, usize) {
    use std::borrow::Cow;
    fn widened<T: Copy + bytemuck::Pod>(
        s: &[T],
        width: usize,
        [x, y, w, h]: [usize; 4],
        opaque: T,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(w * h * 4 * std::mem::size_of::<T>());
        for row in y..y + h {
            for px in s[(row * width + x) * 3..(row * width + x + w) * 3].chunks_exact(3) {
                out.extend_from_slice(bytemuck::cast_slice(&[px[0], px[1], px[2], opaque]));
            }
        }
        out
    }
    let bytes = level.samples.sample_bytes();
    if level.is_rgb() {
        let data = match &level.samples {
            Samples::U8(s) => widened(s, level.width, [x, y, w, h], u8::MAX),
            Samples::U16(s) => widened(s, level.width, [x, y, w, h], u16::MAX),
        };
        return (Cow::Owned(data), w * 4 * bytes);
    }
    let start = y * level.width + x;
    let data: &[u8] = match &level.samples {
        Samples::U8(s) => &s[start..],
        Samples::U16(s) => bytemuck::cast_slice(&s[start..]),
    };
    (Cow::Borrowed(data), level.width * bytes)
}

/// The binding of the first overlay's tiles; the others follow (`compose.wgsl`).
const OVERLAY_BINDING: u32 = 4;

/// One pyramid level on the device: a texture array of its tiles.
struct LevelTexture {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    /// Tiles across and down.
    tiles: [usize; 2],
    /// Tile side in texels (the level's own size when it fits one tile).
    side: usize,
    /// Tiles uploaded so far, in row-major order.
    uploaded: usize,
}

impl LevelTexture {
    fn complete(&self) -> bool {
        self.uploaded == self.tiles[0] * self.tiles[1]
    }
}

/// A layer's pyramid and its levels on the device (created on first upload).
struct LayerTextures {
    pyramid: Arc<Pyramid>,
    levels: Vec<Option<LevelTexture>>,
}

impl LayerTextures {
    fn new(pyramid: Arc<Pyramid>) -> Self {
        let levels = (0..pyramid.levels.len()).map(|_| None).collect();
        Self { pyramid, levels }
    }

    /// The finest complete level not finer than `desired`, else the finest complete one.
    fn usable_level(&self, desired: usize) -> Option<usize> {
        let complete = |l: &usize| self.levels[*l].as_ref().is_some_and(LevelTexture::complete);
        (desired..self.levels.len())
            .find(complete)
            .or_else(|| (0..desired.min(self.levels.len())).rev().find(complete))
    }

    /// Uploads tiles, coarsest level first, until `budget` bytes are spent; returns the bytes
    /// uploaded.
    fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        budget: usize,
        max_layers: usize,
    ) -> Result<usize> {
        let mut spent = 0;
        for l in (0..self.levels.len()).rev() {
            let level = &self.pyramid.levels[l];
            if self.levels[l].is_none() {
                self.levels[l] = Some(create_level(device, level, l, max_layers)?);
            }
            let texture = self.levels[l].as_mut().expect("just created");
            while !texture.complete() {
                if spent >= budget {
                    return Ok(spent);
                }
                let index = texture.uploaded;
                let (tx, ty) = (index % texture.tiles[0], index / texture.tiles[0]);
                let rect = tile_rect(level, texture.side, tx, ty);
                let [_, _, w, h] = rect;
                let (data, bytes_per_row) = tile_bytes(level, rect);
                queue.write_texture(
                    wgpu::TexelCopyTextureInfo {
                        texture: &texture.texture,
                        mip_level: 0,
                        origin: wgpu::Origin3d {
                            x: 0,
                            y: 0,
                            z: index as u32,
                        },
                        aspect: wgpu::TextureAspect::All,
                    },
                    &data,
                    wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(bytes_per_row as u32),
                        rows_per_image: None,
                    },
                    wgpu::Extent3d {
                        width: w as u32,
                        height: h as u32,
                        depth_or_array_layers: 1,
                    },
                );
                texture.uploaded += 1;
                spent += w * h * texel_format(level).block_copy_size(None).unwrap_or(1) as usize;
            }
        }
        Ok(spent)
    }

    fn complete(&self) -> bool {
        self.levels
            .iter()
            .all(|l| l.as_ref().is_some_and(LevelTexture::complete))
    }
}

fn tile_rect(level: &crate::compose::Level, side: usize, tx: usize, ty: usize) -> [usize; 4] {
    let (x, y) = (tx * side, ty * side);
    [x, y, side.min(level.width - x), side.min(level.height - y)]
}

fn create_level(
    device: &wgpu::Device,
    level: &crate::compose::Level,
    index: usize,
    max_layers: usize,
) -> Result<LevelTexture> {
    let side = crate::compose::TILE.min(level.width.max(level.height));
    let tiles = [level.width.div_ceil(side), level.height.div_ceil(side)];
    if tiles[0] * tiles[1] > max_layers {
        return Err(Error::Gpu(format!(
            "level {index} ({} x {}) needs {} tiles, more than the device's {max_layers} texture layers",
            level.width,
            level.height,
            tiles[0] * tiles[1]
        )));
    }
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("compose level"),
        size: wgpu::Extent3d {
            width: side as u32,
            height: side as u32,
            depth_or_array_layers: (tiles[0] * tiles[1]) as u32,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: texel_format(level),
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor {
        dimension: Some(wgpu::TextureViewDimension::D2Array),
        ..Default::default()
    });
    Ok(LevelTexture {
        texture,
        view,
        tiles,
        side,
        uploaded: 0,
    })
}

/// What one frame composes.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// The part of the fixed image shown.
    pub view: ViewRect,
    /// Blend settings.
    pub composite: Composite,
    /// The overlays' settings, in the order of the pyramids given to
    /// [`Compositor::set_scene`].
    pub overlays: [OverlaySettings; MAX_OVERLAYS],
    /// Framebuffer pixel of output pixel `(0, 0)`'s top-left corner.
    pub target_origin: [f32; 2],
}

/// One drawing's per-frame state: a view drawn in the same frame as others (the side-by-side
/// panes) needs its own parameters and bindings, since every prepare runs before any draw.
struct Slot {
    uniform: wgpu::Buffer,
    bind_group: Option<wgpu::BindGroup>,
}

/// The compositor's device state: the layers' tiles and the warp grid, shared by every slot.
pub struct Compositor {
    module: wgpu::ShaderModule,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: HashMap<(wgpu::TextureFormat, bool), wgpu::RenderPipeline>,
    slots: Vec<Slot>,
    layers: Vec<LayerTextures>,
    grid: Option<(Arc<WarpGrid>, wgpu::TextureView)>,
    empty_grid: wgpu::TextureView,
    empty_tiles: wgpu::TextureView,
    max_layers: usize,
}

impl Compositor {
    /// Compiles the shader and creates the fixed resources.
    pub fn new(device: &wgpu::Device) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("compose.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::COMPOSE_SHADER.into()),
        });
        let texture = |binding, view_dimension, sample_type| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type,
                view_dimension,
                multisampled: false,
            },
            count: None,
        };
        // A layer's tiles are one 2D array texture of unsigned integers.
        let tiles = |binding| {
            texture(
                binding,
                wgpu::TextureViewDimension::D2Array,
                wgpu::TextureSampleType::Uint,
            )
        };
        let mut entries = vec![
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            tiles(1),
            tiles(2),
            // The warp grid.
            texture(
                3,
                wgpu::TextureViewDimension::D2,
                wgpu::TextureSampleType::Float { filterable: false },
            ),
        ];
        entries.extend((0..MAX_OVERLAYS).map(|i| tiles(OVERLAY_BINDING + i as u32)));
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("compose"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("compose"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let empty_grid = grid_texture(device, 1, 1).create_view(&Default::default());
        let empty_level = Level::gray(1, 1, vec![0]);
        let empty_tiles = create_level(device, &empty_level, 0, 1)
            .expect("one tile fits every device")
            .view;
        Self {
            module,
            layout,
            pipeline_layout,
            pipelines: HashMap::new(),
            slots: Vec::new(),
            layers: Vec::new(),
            grid: None,
            empty_grid,
            empty_tiles,
            max_layers: device.limits().max_texture_array_layers as usize,
        }
    }

    /// Sets the layers (bottom, top, then up to [`MAX_OVERLAYS`] overlays) and the warp;
    /// unchanged layers (the same `Arc`) keep their uploads.
    pub fn set_scene(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layers: &[Arc<Pyramid>],
        warp: Option<&Arc<WarpGrid>>,
    ) {
        let mut old: Vec<LayerTextures> = std::mem::take(&mut self.layers);
        self.layers = layers
            .iter()
            .take(2 + MAX_OVERLAYS)
            .map(
                |new| match old.iter().position(|o| Arc::ptr_eq(&o.pyramid, new)) {
                    Some(i) => old.swap_remove(i),
                    None => LayerTextures::new(new.clone()),
                },
            )
            .collect();
        let same_grid = match (&self.grid, warp) {
            (Some((old, _)), Some(new)) => Arc::ptr_eq(old, new),
            (None, None) => true,
            _ => false,
        };
        if !same_grid {
            self.grid = warp.map(|g| (g.clone(), upload_grid(device, queue, g)));
        }
    }

    /// Uploads up to `budget` bytes of tiles (coarse levels first); true when every level of
    /// both layers is on the device.
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        budget: usize,
    ) -> Result<bool> {
        let mut left = budget;
        for layer in self.layers.iter_mut() {
            let spent = layer.upload(device, queue, left, self.max_layers)?;
            left = left.saturating_sub(spent);
        }
        Ok(self.layers.iter().all(LayerTextures::complete))
    }

    /// The level of every layer `view` would use now (the finest uploaded near the zoom),
    /// once every layer has one.
    pub fn levels(&self, view: &ViewRect) -> Option<Vec<usize>> {
        if self.layers.len() < 2 {
            return None;
        }
        self.layers
            .iter()
            .map(|l| l.usable_level(l.pyramid.level_for(view)))
            .collect()
    }

    /// Writes the frame's parameters into `slot` and binds the levels it uses; false (and
    /// nothing to draw in that slot) when nothing is uploaded yet. Slots are numbered from 0;
    /// each drawing of one frame uses its own.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame: &Frame,
        srgb_target: bool,
        slot: usize,
    ) -> bool {
        while self.slots.len() <= slot {
            self.slots.push(Slot {
                uniform: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("compose params"),
                    size: std::mem::size_of::<Params>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                bind_group: None,
            });
        }
        let Some(levels) = self.levels(&frame.view) else {
            self.slots[slot].bind_group = None;
            return false;
        };
        let (bottom, top) = (&self.layers[0], &self.layers[1]);
        let overlays = &self.layers[2..];
        let level_params = |layer: &LayerTextures, l: usize| {
            let level = &layer.pyramid.levels[l];
            let texture = layer.levels[l].as_ref().expect("usable level exists");
            [
                level.width as u32,
                level.height as u32,
                texture.tiles[0] as u32,
                texture.side as u32,
            ]
        };
        let (grid, grid_on) = match &self.grid {
            Some((g, _)) => ([g.width as u32, g.height as u32, 1, 0], g.scale as f32),
            None => ([1, 1, 0, 0], 1.0),
        };
        let c = &frame.composite;
        let params = Params {
            view: [
                frame.view.origin[0] as f32,
                frame.view.origin[1] as f32,
                frame.view.step as f32,
                if srgb_target { 1.0 } else { 0.0 },
            ],
            target: [
                frame.target_origin[0],
                frame.target_origin[1],
                c.opacity,
                c.square as f32,
            ],
            scales: [
                bottom.pyramid.scale(levels[0]) as f32,
                top.pyramid.scale(levels[1]) as f32,
                grid_on,
                0.0,
            ],
            bottom: level_params(bottom, levels[0]),
            top: level_params(top, levels[1]),
            grid,
            mode: [
                c.blend.code(),
                c.flicker_top as u32,
                overlays.len() as u32,
                c.show_top as u32,
            ],
            overlay_level: std::array::from_fn(|i| match overlays.get(i) {
                Some(o) => level_params(o, levels[2 + i]),
                None => [1, 1, 1, 1],
            }),
            overlay_info: std::array::from_fn(|i| {
                let settings = frame.overlays[i];
                [
                    overlays
                        .get(i)
                        .zip(levels.get(2 + i))
                        .map_or(1.0, |(o, &l)| o.pyramid.scale(l) as f32),
                    settings.opacity,
                    if settings.warped { 1.0 } else { 0.0 },
                    if settings.heatmap { 1.0 } else { 0.0 },
                ]
            }),
            layers: [c.show_bottom as u32, 0, 0, 0],
            styles: {
                let mut styles = [[0.0; 4]; 2 * (2 + MAX_OVERLAYS)];
                let displays = c
                    .displays
                    .iter()
                    .chain(frame.overlays.iter().map(|o| &o.display));
                for (i, (layer, display)) in self.layers.iter().zip(displays).enumerate() {
                    styles[2 * i..2 * i + 2].copy_from_slice(&style(display, &layer.pyramid));
                }
                styles
            },
        };
        let uniform = &self.slots[slot].uniform;
        queue.write_buffer(uniform, 0, bytemuck::bytes_of(&params));
        fn view(layer: &LayerTextures, l: usize) -> &wgpu::TextureView {
            &layer.levels[l].as_ref().expect("usable level exists").view
        }
        let grid_view = self.grid.as_ref().map_or(&self.empty_grid, |(_, v)| v);
        let overlay_view = |i: usize| match overlays.get(i) {
            Some(o) => view(o, levels[2 + i]),
            None => &self.empty_tiles,
        };
        fn texture(binding: u32, view: &wgpu::TextureView) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::TextureView(view),
            }
        }
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            texture(1, view(bottom, levels[0])),
            texture(2, view(top, levels[1])),
            texture(3, grid_view),
        ];
        entries.extend(
            (0..MAX_OVERLAYS).map(|i| texture(OVERLAY_BINDING + i as u32, overlay_view(i))),
        );
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("compose"),
            layout: &self.layout,
            entries: &entries,
        });
        self.slots[slot].bind_group = Some(bind_group);
        true
    }

    /// Makes sure a pipeline for `format` exists (call before [`Compositor::draw`]).
    pub fn ensure_pipeline(
        &mut self,
        device: &wgpu::Device,
        format: wgpu::TextureFormat,
        blended: bool,
    ) {
        let (module, layout) = (&self.module, &self.pipeline_layout);
        self.pipelines.entry((format, blended)).or_insert_with(|| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some("compose"),
                layout: Some(layout),
                vertex: wgpu::VertexState {
                    module,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                fragment: Some(wgpu::FragmentState {
                    module,
                    entry_point: Some("fs_main"),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend: blended.then_some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                multiview_mask: None,
                cache: None,
            })
        });
    }

    /// Draws the frame prepared in `slot` into `pass` (whose target has `format`).
    pub fn draw(
        &self,
        pass: &mut wgpu::RenderPass<'_>,
        format: wgpu::TextureFormat,
        blended: bool,
        slot: usize,
    ) {
        let bind_group = self.slots.get(slot).and_then(|s| s.bind_group.as_ref());
        let (Some(pipeline), Some(bind_group)) =
            (self.pipelines.get(&(format, blended)), bind_group)
        else {
            return;
        };
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Renders `size` output pixels of the whole scene (every tile uploaded first) into RGBA
    /// bytes, row-major: the export's and the tests' path. `size` must fit one texture.
    pub fn render_offscreen(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame: Frame,
        size: [usize; 2],
    ) -> Result<Vec<u8>> {
        while !self.upload(device, queue, usize::MAX)? {}
        let format = wgpu::TextureFormat::Rgba8Unorm;
        self.ensure_pipeline(device, format, false);
        let frame = Frame {
            target_origin: [0.0, 0.0],
            ..frame
        };
        if !self.prepare(device, queue, &frame, false, 0) {
            return Err(Error::Gpu("no layers to compose".into()));
        }
        let [w, h] = size.map(|v| v as u32);
        let target = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("compose target"),
            size: wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let target_view = target.create_view(&Default::default());
        let row_bytes = (w * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
            * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("compose readback"),
            size: row_bytes as u64 * h as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("compose"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            self.draw(&mut pass, format, false, 0);
        }
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &target,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row_bytes),
                    rows_per_image: None,
                },
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
        queue.submit([encoder.finish()]);
        let slice = readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the composite: {e}")))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("reading the composite: {e}")))?;
        let mut rgba = Vec::with_capacity((w * h * 4) as usize);
        for row in data.chunks(row_bytes as usize) {
            rgba.extend_from_slice(&row[..(w * 4) as usize]);
        }
        Ok(rgba)
    }
}

fn grid_texture(device: &wgpu::Device, width: u32, height: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("compose warp grid"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rg32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

fn upload_grid(device: &wgpu::Device, queue: &wgpu::Queue, grid: &WarpGrid) -> wgpu::TextureView {
    let texture = grid_texture(device, grid.width as u32, grid.height as u32);
    queue.write_texture(
        texture.as_image_copy(),
        bytemuck::cast_slice(&grid.displacement),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(grid.width as u32 * 8),
            rows_per_image: None,
        },
        wgpu::Extent3d {
            width: grid.width as u32,
            height: grid.height as u32,
            depth_or_array_layers: 1,
        },
    );
    texture.create_view(&Default::default())
}

#[cfg(test)]
mod tests;
