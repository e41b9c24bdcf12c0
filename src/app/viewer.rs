//! The viewer: pan and zoom over the fixed image's frame, the composite drawn by the GPU
//! compositor in a wgpu paint callback (tiles stream in, coarse levels first), or by the CPU
//! twin into a texture when the window has no wgpu renderer. The layers are shown blended in
//! one pane, or side by side in two panes that share one camera (linked navigation, and the
//! cursor's position marked in the other pane).

use crate::compose::{self, Composite, MAX_OVERLAYS, OverlaySettings, SharedScene, ViewRect};
use crate::gpu::{Compositor, Frame};
use eframe::egui;
use eframe::egui_wgpu;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Tile bytes uploaded per frame: enough to fill a 300 MP layer in a few dozen frames while
/// keeping each frame short.
const UPLOAD_BUDGET: usize = 48 << 20;

/// Where the viewer looks: the fixed-image point at the centre and the zoom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Fixed-image coordinates at the viewport's centre.
    pub center: [f64; 2],
    /// Fixed-image pixels per screen point.
    pub step: f64,
}

impl Camera {
    /// The whole `size` image in a viewport of `viewport` points.
    pub fn fit(size: [usize; 2], viewport: egui::Vec2) -> Self {
        let step = (size[0] as f64 / viewport.x.max(1.0) as f64)
            .max(size[1] as f64 / viewport.y.max(1.0) as f64);
        Self {
            center: [size[0] as f64 / 2.0, size[1] as f64 / 2.0],
            step: step.max(1e-3),
        }
    }

    /// Fixed-image coordinates of screen point `pos` in `rect`.
    pub fn to_image(&self, rect: egui::Rect, pos: egui::Pos2) -> [f64; 2] {
        let d = pos - rect.center();
        [
            self.center[0] + d.x as f64 * self.step,
            self.center[1] + d.y as f64 * self.step,
        ]
    }

    /// The view of `rect` in physical pixels (`ppp` per point).
    pub fn view_rect(&self, rect: egui::Rect, ppp: f32) -> ViewRect {
        let step = self.step / ppp as f64;
        let min = self.to_image(rect, rect.min);
        ViewRect {
            origin: [min[0] + 0.5 * step, min[1] + 0.5 * step],
            step,
        }
    }

    /// Screen point of fixed-image coordinates `p` in `rect` (the inverse of
    /// [`Camera::to_image`]).
    pub fn to_screen(&self, rect: egui::Rect, p: [f64; 2]) -> egui::Pos2 {
        rect.center()
            + egui::vec2(
                ((p[0] - self.center[0]) / self.step) as f32,
                ((p[1] - self.center[1]) / self.step) as f32,
            )
    }

    /// Zooms by `factor` (>1 enlarges) keeping the image point under `pos` in place.
    pub fn zoom_at(&mut self, rect: egui::Rect, pos: egui::Pos2, factor: f64) {
        let before = self.to_image(rect, pos);
        self.step = (self.step / factor).clamp(1.0 / 64.0, 1e4);
        let after = self.to_image(rect, pos);
        self.center[0] += before[0] - after[0];
        self.center[1] += before[1] - after[1];
    }
}

/// How the viewer arranges the layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// One pane: the layers blended (the blend mode applies).
    #[default]
    Overlay,
    /// Two panes with one camera: the fixed layer (and the overlays in its frame) on the left,
    /// the moving layer as the view warps it (and the overlays that follow it) on the right.
    SideBySide,
}

impl Layout {
    /// The name shown in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Layout::Overlay => "Overlay",
            Layout::SideBySide => "Side by side",
        }
    }
}

/// Where the pointer acts on a pane, for a [`PaneTool`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointerAt {
    /// The pane (0: the fixed side; 1: the moving side, side by side).
    pub pane: usize,
    /// The point in the view's frame (fixed-image coordinates).
    pub at: [f64; 2],
    /// How far from `at` a point still counts as under the pointer (view-frame pixels).
    pub radius: f64,
}

/// Something that takes the viewer's pointer and draws over its panes (placing landmarks):
/// clicks go to it, and a drag it takes moves its point instead of panning the view.
pub trait PaneTool {
    /// A primary click.
    fn click(&mut self, pointer: PointerAt);
    /// A secondary (right) click.
    fn secondary_click(&mut self, pointer: PointerAt);
    /// A drag begins where the button went down; `true` when the tool takes the drag.
    fn drag_start(&mut self, pointer: PointerAt) -> bool;
    /// A drag the tool took moved on.
    fn drag_to(&mut self, pointer: PointerAt);
    /// A drag the tool took ended.
    fn drag_end(&mut self);
    /// Draws over pane `pane`; `to_screen` places view-frame points.
    fn paint(
        &self,
        painter: &egui::Painter,
        pane: usize,
        to_screen: &dyn Fn([f64; 2]) -> egui::Pos2,
    );
}

/// Screen points within which a click or drag picks a tool's point.
const PICK_RADIUS: f32 = 8.0;

/// One pane's drawing: the shared scene with its own composite and overlay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Pane {
    /// Where on screen.
    pub rect: egui::Rect,
    /// Which of the pair it shows and how.
    pub composite: Composite,
    /// The overlays' settings in this pane (hidden ones at opacity 0).
    pub overlays: [OverlaySettings; MAX_OVERLAYS],
    /// The caption drawn in the pane's corner (side by side only).
    pub caption: Option<&'static str>,
}

/// Space between the side-by-side panes, in points.
const PANE_GAP: f32 = 4.0;

/// The panes of `layout` in `rect` (`warped`: the moving layer is drawn through a transform).
pub fn panes(
    layout: Layout,
    rect: egui::Rect,
    composite: &Composite,
    overlays: [OverlaySettings; MAX_OVERLAYS],
    warped: bool,
) -> Vec<Pane> {
    match layout {
        Layout::Overlay => vec![Pane {
            rect,
            composite: *composite,
            overlays,
            caption: None,
        }],
        Layout::SideBySide => {
            let half = (rect.width() - PANE_GAP).max(2.0) / 2.0;
            let left = egui::Rect::from_min_size(rect.min, egui::vec2(half, rect.height()));
            let right = left.translate(egui::vec2(half + PANE_GAP, 0.0));
            // Each side keeps the overlays in its own frame.
            let only = |warped: bool| {
                overlays.map(|o| OverlaySettings {
                    opacity: if o.warped == warped { o.opacity } else { 0.0 },
                    ..o
                })
            };
            vec![
                Pane {
                    rect: left,
                    composite: Composite {
                        show_top: false,
                        show_bottom: true,
                        ..*composite
                    },
                    overlays: only(false),
                    caption: Some("fixed"),
                },
                Pane {
                    rect: right,
                    composite: Composite {
                        show_bottom: false,
                        ..*composite
                    },
                    overlays: only(true),
                    caption: Some(if warped { "moving, warped" } else { "moving" }),
                },
            ]
        }
    }
}

/// What the viewer keeps between frames.
pub struct Viewer {
    /// Pan and zoom (`None` until the first frame fits the image).
    pub camera: Option<Camera>,
    /// The GPU target, when the window renders with wgpu.
    gpu: Option<(egui_wgpu::RenderState, Arc<AtomicBool>)>,
    /// The CPU path's texture per pane and what it shows.
    cpu_textures: Vec<Option<(egui::TextureHandle, CpuKey)>>,
    /// The panes of the last frame (for tests and the debug panel).
    pub last_panes: Vec<Pane>,
    /// Frame intervals (ms) of the current pan or zoom gesture.
    gesture: Vec<f32>,
    /// The last finished gesture's frame times: (frames, median ms, 95th percentile ms).
    pub last_gesture: Option<(usize, f32, f32)>,
    /// The pane whose drag a [`PaneTool`] took (the view does not pan meanwhile).
    tool_drag: Option<usize>,
}

#[derive(PartialEq)]
struct CpuKey {
    view: [u64; 3],
    size: [usize; 2],
    composite: Composite,
    layers: Vec<usize>,
    overlays: [OverlaySettings; MAX_OVERLAYS],
}

impl Viewer {
    /// A viewer drawing with `render_state`'s device when given (the compositor is registered
    /// in its callback resources), else on the CPU.
    pub fn new(render_state: Option<egui_wgpu::RenderState>) -> Self {
        let gpu = render_state.map(|rs| {
            let compositor = Compositor::new(&rs.device);
            rs.renderer.write().callback_resources.insert(compositor);
            (rs, Arc::new(AtomicBool::new(false)))
        });
        Self {
            camera: None,
            gpu,
            cpu_textures: Vec::new(),
            last_panes: Vec::new(),
            gesture: Vec::new(),
            last_gesture: None,
            tool_drag: None,
        }
    }

    /// `gpu` or `cpu`: which path draws.
    pub fn backend(&self) -> &'static str {
        if self.gpu.is_some() { "gpu" } else { "cpu" }
    }

    /// Draws `scene` in the remaining space, in one pane or two (`layout`); `tool`, when given,
    /// takes clicks and the drags that start on its points, and draws over the panes. Returns
    /// the hover position in fixed-image coordinates.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        scene: &SharedScene,
        composite: &Composite,
        layout: Layout,
        mut tool: Option<&mut dyn PaneTool>,
    ) -> Option<[f64; 2]> {
        let (outer, _) = ui.allocate_exact_size(ui.available_size(), egui::Sense::hover());
        let panes = panes(
            layout,
            outer,
            composite,
            scene.overlay_settings(),
            scene.warp.is_some(),
        );
        let responses: Vec<egui::Response> = panes
            .iter()
            .enumerate()
            .map(|(i, pane)| {
                ui.interact(
                    pane.rect,
                    ui.make_persistent_id(("viewer pane", i)),
                    egui::Sense::click_and_drag(),
                )
            })
            .collect();
        let size = scene.bottom.size();
        if let (Some(camera), Some(last)) = (&mut self.camera, self.last_panes.first())
            && self.last_panes.len() != panes.len()
        {
            // Switching layouts keeps the centre and the width of image in view.
            camera.step *= (last.rect.width() / panes[0].rect.width().max(1.0)) as f64;
        }
        let camera = self
            .camera
            .get_or_insert_with(|| Camera::fit(size, panes[0].rect.size()));
        // Every pane moves the one camera: navigation is linked.
        for (index, (pane, response)) in panes.iter().zip(&responses).enumerate() {
            let pointer = |pos: egui::Pos2| PointerAt {
                pane: index,
                at: camera.to_image(pane.rect, pos),
                radius: PICK_RADIUS as f64 * camera.step,
            };
            if let Some(tool) = tool.as_deref_mut() {
                if response.drag_started()
                    && let Some(origin) = ui.input(|i| i.pointer.press_origin())
                    && tool.drag_start(pointer(origin))
                {
                    self.tool_drag = Some(index);
                }
                if self.tool_drag == Some(index) {
                    if let Some(pos) = response.interact_pointer_pos()
                        && response.dragged()
                    {
                        tool.drag_to(pointer(pos));
                    }
                    if response.drag_stopped() {
                        tool.drag_end();
                        self.tool_drag = None;
                    }
                    continue;
                }
                if let Some(pos) = response.interact_pointer_pos() {
                    if response.clicked() {
                        tool.click(pointer(pos));
                    } else if response.secondary_clicked() {
                        tool.secondary_click(pointer(pos));
                    }
                }
            }
            if response.dragged() {
                let d = response.drag_delta();
                camera.center[0] -= d.x as f64 * camera.step;
                camera.center[1] -= d.y as f64 * camera.step;
            }
            if let Some(pos) = response.hover_pos() {
                let (scroll, zoom) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
                let factor = zoom as f64 * (scroll as f64 / 200.0).exp();
                if factor != 1.0 {
                    camera.zoom_at(pane.rect, pos, factor);
                }
            }
        }
        // Key presses are counted from the frame's events (a tap is one, a held key repeats),
        // so a slow frame loses none and the pan does not depend on the frame rate.
        let keys = ui.input(|i| {
            let presses = |k| i.num_presses(k) as f64;
            [
                presses(egui::Key::ArrowRight) - presses(egui::Key::ArrowLeft),
                presses(egui::Key::ArrowDown) - presses(egui::Key::ArrowUp),
                presses(egui::Key::Plus) - presses(egui::Key::Minus),
                presses(egui::Key::Num1),
            ]
        });
        let typing = ui.ctx().egui_wants_keyboard_input();
        if !typing && responses.iter().any(|r| r.hovered() || r.has_focus()) {
            // Each press pans an eighth of the view, at any zoom.
            let view = panes[0].rect.size();
            camera.center[0] += keys[0] * view.x as f64 / 8.0 * camera.step;
            camera.center[1] += keys[1] * view.y as f64 / 8.0 * camera.step;
            if keys[2] != 0.0 {
                let rect = panes[0].rect;
                camera.zoom_at(rect, rect.center(), 2f64.powf(keys[2]));
            }
            if keys[3] != 0.0 {
                camera.step = 1.0;
            }
        }
        let camera = *camera;
        self.record_frame(
            ui,
            responses.iter().any(egui::Response::dragged)
                || ui.input(|i| i.smooth_scroll_delta.y != 0.0),
        );
        let ppp = ui.ctx().pixels_per_point();
        for (slot, pane) in panes.iter().enumerate() {
            let view = camera.view_rect(pane.rect, ppp);
            let painter = ui.painter_at(pane.rect);
            match &self.gpu {
                Some((rs, complete)) => {
                    let callback = ComposeCallback {
                        scene: scene.clone(),
                        frame: Frame {
                            view,
                            composite: pane.composite,
                            overlays: pane.overlays,
                            target_origin: [pane.rect.min.x * ppp, pane.rect.min.y * ppp],
                        },
                        format: rs.target_format,
                        complete: complete.clone(),
                        slot,
                    };
                    painter.add(egui_wgpu::Callback::new_paint_callback(pane.rect, callback));
                    if !complete.load(Ordering::Relaxed) {
                        ui.ctx().request_repaint();
                    }
                }
                None => self.paint_cpu(ui, &painter, slot, pane, view, scene),
            }
            if let Some(caption) = pane.caption {
                let text_rect = egui::Rect::from_min_size(
                    pane.rect.min + egui::vec2(6.0, 6.0),
                    egui::vec2(pane.rect.width() - 12.0, 20.0),
                );
                ui.put(
                    text_rect,
                    egui::Label::new(
                        egui::RichText::new(caption)
                            .strong()
                            .background_color(ui.visuals().extreme_bg_color.gamma_multiply(0.8)),
                    )
                    .selectable(false),
                );
            }
        }
        if let Some(tool) = tool.as_deref() {
            for (index, pane) in panes.iter().enumerate() {
                let painter = ui.painter_at(pane.rect);
                tool.paint(&painter, index, &|p| camera.to_screen(pane.rect, p));
            }
        }
        let hover = responses
            .iter()
            .zip(&panes)
            .find_map(|(r, pane)| Some((r.hover_pos()?, pane.rect)));
        let hover = hover.map(|(pos, rect)| (camera.to_image(rect, pos), rect));
        if let Some((p, hovered)) = hover {
            // Mark the same point in the other pane.
            for pane in panes.iter().filter(|pane| pane.rect != hovered) {
                let at = camera.to_screen(pane.rect, p);
                let painter = ui.painter_at(pane.rect);
                let stroke = egui::Stroke::new(1.5, egui::Color32::from_rgb(255, 200, 0));
                painter.line_segment(
                    [at - egui::vec2(8.0, 0.0), at + egui::vec2(8.0, 0.0)],
                    stroke,
                );
                painter.line_segment(
                    [at - egui::vec2(0.0, 8.0), at + egui::vec2(0.0, 8.0)],
                    stroke,
                );
            }
        }
        self.last_panes = panes;
        hover.map(|(p, _)| p)
    }

    /// Collects frame intervals while the view moves; when it stops, summarises them (the
    /// debug panel shows the summary, and it goes to stderr for benchmarks).
    fn record_frame(&mut self, ui: &egui::Ui, moving: bool) {
        if moving {
            self.gesture.push(ui.input(|i| i.unstable_dt) * 1000.0);
            ui.ctx().request_repaint();
        } else if self.gesture.len() > 1 {
            let mut times = std::mem::take(&mut self.gesture);
            times.remove(0); // the interval before the gesture began
            times.sort_by(f32::total_cmp);
            let at = |q: f32| times[((times.len() - 1) as f32 * q).round() as usize];
            let summary = (times.len(), at(0.5), at(0.95));
            eprintln!(
                "alinify: view moved for {} frames: median {:.1} ms, p95 {:.1} ms per frame ({})",
                summary.0,
                summary.1,
                summary.2,
                self.backend()
            );
            self.last_gesture = Some(summary);
        } else {
            self.gesture.clear();
        }
    }

    fn paint_cpu(
        &mut self,
        ui: &egui::Ui,
        painter: &egui::Painter,
        slot: usize,
        pane: &Pane,
        view: ViewRect,
        scene: &SharedScene,
    ) {
        let ppp = ui.ctx().pixels_per_point();
        let rect = pane.rect;
        let size = [
            ((rect.width() * ppp).round() as usize).max(1),
            ((rect.height() * ppp).round() as usize).max(1),
        ];
        let key = CpuKey {
            view: [
                view.origin[0].to_bits(),
                view.origin[1].to_bits(),
                view.step.to_bits(),
            ],
            size,
            composite: pane.composite,
            layers: scene
                .pyramids()
                .iter()
                .map(|p| Arc::as_ptr(p) as usize)
                .chain([scene.warp.as_ref().map_or(0, |w| Arc::as_ptr(w) as usize)])
                .collect(),
            overlays: pane.overlays,
        };
        if self.cpu_textures.len() <= slot {
            self.cpu_textures.resize_with(slot + 1, || None);
        }
        let cached = &mut self.cpu_textures[slot];
        if cached.as_ref().is_none_or(|(_, k)| *k != key) {
            let mut overlays = scene.borrowed_overlays();
            for (overlay, settings) in overlays.iter_mut().zip(pane.overlays) {
                overlay.settings = settings;
            }
            let cpu_scene = scene.scene(&overlays);
            let levels = cpu_scene.levels(&view);
            let rgba = compose::render(cpu_scene, &pane.composite, view, size, &levels);
            let image = egui::ColorImage::from_rgba_premultiplied(size, &rgba);
            let texture = ui.ctx().load_texture(
                format!("composite {slot}"),
                image,
                egui::TextureOptions::NEAREST,
            );
            *cached = Some((texture, key));
        }
        let (texture, _) = cached.as_ref().expect("just made");
        painter.image(
            texture.id(),
            rect,
            egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
            egui::Color32::WHITE,
        );
    }
}

/// One frame of the GPU composite, drawn in egui's render pass.
struct ComposeCallback {
    scene: SharedScene,
    frame: Frame,
    format: wgpu::TextureFormat,
    complete: Arc<AtomicBool>,
    /// The compositor slot of this drawing (one per pane).
    slot: usize,
}

impl egui_wgpu::CallbackTrait for ComposeCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(compositor) = resources.get_mut::<Compositor>() else {
            return Vec::new();
        };
        compositor.set_scene(
            device,
            queue,
            &self.scene.pyramids(),
            self.scene.warp.as_ref(),
        );
        // One upload budget per frame, spent by the first pane.
        if self.slot == 0 {
            let complete = compositor
                .upload(device, queue, UPLOAD_BUDGET)
                .unwrap_or(true);
            self.complete.store(complete, Ordering::Relaxed);
        }
        compositor.ensure_pipeline(device, self.format, true);
        compositor.prepare(device, queue, &self.frame, self.format.is_srgb(), self.slot);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(compositor) = resources.get::<Compositor>() {
            compositor.draw(pass, self.format, true, self.slot);
        }
    }
}
