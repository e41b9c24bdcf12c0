//! The layers: opening a pair (files, a dropped list, a batch result), loading it and extra
//! layers in the background, what the compositor draws, and the layers panel.

use super::display_controls::{Look, display_controls};
use super::file_chooser::{self, IMAGES, Request};
use super::{AlinifyApp, Task, View, file_name};
use crate::compose::{
    Blend, Composite, Display, MAX_OVERLAYS, OverlaySettings, Pyramid, SharedScene, WarpGrid,
};
use crate::job::{JobHandle, Progress, Reporter, Stage};
use crate::raster::AnyImage;
use crate::{Error, Result, io};
use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The loaded pair.
#[derive(Debug, Clone)]
pub struct Layers {
    /// Reference image path.
    pub fixed_path: PathBuf,
    /// Moving image path.
    pub moving_path: PathBuf,
    /// The reference's display pyramid.
    pub fixed: Arc<Pyramid>,
    /// The moving image's display pyramid.
    pub moving: Arc<Pyramid>,
    /// How the fixed and the moving image show (window, gamma, colour map).
    pub looks: [Look; 2],
    /// Micrometres per fixed-image pixel, from its file's resolution tags (the scale bar).
    pub pixel_size_um: Option<f64>,
    /// The registration's transform on a grid: the viewer warps the moving layer through it
    /// on the fly (the After view).
    pub warp: Option<Arc<WarpGrid>>,
    /// Extra layers drawn over the pair, in order: further pages of multi-page TIFFs and
    /// added images.
    pub extras: Vec<ExtraLayer>,
}

impl Layers {
    /// How the fixed and the moving image show.
    pub fn displays(&self) -> [Display; 2] {
        [self.looks[0].display, self.looks[1].display]
    }
}

/// A layer beyond the pair (e.g. a colour separation of the design).
#[derive(Debug, Clone)]
pub struct ExtraLayer {
    /// Shown in the layers panel.
    pub name: String,
    /// Its display pyramid.
    pub pyramid: Arc<Pyramid>,
    /// How it shows.
    pub look: Look,
    /// Drawn or not.
    pub visible: bool,
    /// `0..=1`.
    pub opacity: f32,
    /// Follows the moving image through the warp (a page of the moving image), rather than the
    /// fixed frame.
    pub follows_moving: bool,
    /// The file it came from and its page there (0-based), for the full-resolution export.
    pub source: (PathBuf, usize),
}

impl PartialEq for ExtraLayer {
    /// The same layer (the same pyramid, not an equal copy) shown the same way.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.pyramid, &other.pyramid)
            && self.name == other.name
            && self.look.display == other.look.display
            && self.visible == other.visible
            && self.opacity == other.opacity
            && self.follows_moving == other.follows_moving
            && self.source == other.source
    }
}

/// What undo and redo of layer changes restore: the extra layers (added, removed, reordered,
/// shown, their opacity and look), the pair's looks and whether the moving layer shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerState {
    extras: Vec<ExtraLayer>,
    displays: [Display; 2],
    show_top: bool,
}

/// What a list of files (command line, or dropped on the window) opens.
#[derive(Debug, Clone, PartialEq)]
pub enum Opening {
    /// A fixed and a moving image, extra layers (in the fixed frame), and landmark files (one:
    /// BigWarp's pairs or the fixed side; two: the fixed side, then the moving side).
    Pair(PathBuf, PathBuf, Vec<PathBuf>, Vec<PathBuf>),
    /// A batch manifest, shown in the batch panel.
    Manifest(PathBuf),
    /// One image: the fixed image of a pair whose moving image is chosen next.
    Fixed(PathBuf),
}

impl Opening {
    /// Classifies `files`: one `.csv` is a batch manifest, one other file a fixed image; two or
    /// more files are a pair (fixed, moving), extra layers, and up to two landmark files
    /// (`.csv`).
    pub fn of(files: Vec<PathBuf>) -> Result<Option<Self>> {
        let is_csv = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        match files.as_slice() {
            [] => Ok(None),
            [manifest] if is_csv(manifest) => Ok(Some(Opening::Manifest(manifest.clone()))),
            [fixed, moving, rest @ ..] => {
                let (landmarks, extras): (Vec<PathBuf>, Vec<PathBuf>) =
                    rest.iter().cloned().partition(|p| is_csv(p));
                if landmarks.len() > 2 {
                    return Err(Error::InvalidArgument(format!(
                        "{} landmark files (.csv): give one (BigWarp's pairs, or the fixed image's) or two (fixed, then moving)",
                        landmarks.len()
                    )));
                }
                Ok(Some(Opening::Pair(
                    fixed.clone(),
                    moving.clone(),
                    extras,
                    landmarks,
                )))
            }
            [fixed] => Ok(Some(Opening::Fixed(fixed.clone()))),
        }
    }
}

/// The choosers of a pair's fixed and moving images.
const FIXED_CHOOSER: &str = "pair fixed";
const MOVING_CHOOSER: &str = "pair moving";

/// Every page of each of `paths` as extra layers.
fn load_extra_files<T>(
    paths: &[PathBuf],
    follows_moving: bool,
    reporter: &Reporter<T>,
) -> Result<Vec<ExtraLayer>> {
    let mut extras = Vec::new();
    for path in paths {
        reporter.check()?;
        extras.extend(pages_as_layers(
            path,
            io::load_layers(path)?,
            0,
            follows_moving,
        ));
    }
    Ok(extras)
}

/// `pages` of the file at `path`, after the first `skip`, as extra layers.
fn pages_as_layers(
    path: &Path,
    pages: Vec<AnyImage>,
    skip: usize,
    follows_moving: bool,
) -> Vec<ExtraLayer> {
    let name = file_name(path);
    let count = pages.len();
    pages
        .into_iter()
        .enumerate()
        .skip(skip)
        .map(|(i, page)| {
            let pyramid = Arc::new(Pyramid::of(&page));
            ExtraLayer {
                name: if count > 1 {
                    format!("{name} page {}", i + 1)
                } else {
                    name.clone()
                },
                look: Look::of(&pyramid),
                pyramid,
                visible: true,
                opacity: 0.5,
                follows_moving,
                source: (path.to_path_buf(), i),
            }
        })
        .collect()
}

/// Reads a pair (every page: further pages become extra layers), builds the display pyramids,
/// loads the extra layer files and, when given, an earlier result's transform.
fn load_pair(
    fixed: PathBuf,
    moving: PathBuf,
    transform: Option<PathBuf>,
    extra_files: &[PathBuf],
    reporter: &Reporter<Layers>,
) -> Result<Layers> {
    let started = Instant::now();
    let stage = |stage, fraction| reporter.progress(Progress::at(stage, fraction));
    stage(Stage::Load, 0.0);
    let (f, m) = rayon::join(|| io::load_layers(&fixed), || io::load_layers(&moving));
    let (f, m) = (f?, m?);
    let read_seconds = started.elapsed().as_secs_f64();
    reporter.check()?;
    stage(Stage::Pyramid, 0.7);
    let (fixed_pyramid, moving_pyramid) = rayon::join(|| Pyramid::of(&f[0]), || Pyramid::of(&m[0]));
    stage(Stage::Load, 0.9);
    let mut extras = pages_as_layers(&fixed, f, 1, false);
    extras.extend(pages_as_layers(&moving, m, 1, true));
    extras.extend(load_extra_files(extra_files, false, reporter)?);
    let warp = match &transform {
        Some(path) => Some(Arc::new(WarpGrid::from_transform_file(path)?)),
        None => None,
    };
    eprintln!(
        "alinify: loaded {} and {} ({} x {}) in {:.2} s ({read_seconds:.2} s reading)",
        file_name(&fixed),
        file_name(&moving),
        fixed_pyramid.size()[0],
        fixed_pyramid.size()[1],
        started.elapsed().as_secs_f64()
    );
    Ok(Layers {
        pixel_size_um: io::pixel_size_um(&fixed),
        looks: [Look::of(&fixed_pyramid), Look::of(&moving_pyramid)],
        fixed: Arc::new(fixed_pyramid),
        moving: Arc::new(moving_pyramid),
        fixed_path: fixed,
        moving_path: moving,
        warp,
        extras,
    })
}

/// The visible extra layers the compositor draws: the first [`MAX_OVERLAYS`], in order.
pub fn drawn_overlays(extras: &[ExtraLayer]) -> Vec<(Arc<Pyramid>, OverlaySettings)> {
    extras
        .iter()
        .filter(|e| e.visible)
        .take(MAX_OVERLAYS)
        .map(|e| {
            (
                e.pyramid.clone(),
                OverlaySettings {
                    opacity: e.opacity,
                    warped: e.follows_moving,
                    heatmap: false,
                    display: e.look.display,
                },
            )
        })
        .collect()
}

/// The loading job's fraction and what it is doing, for the viewer and the status bar.
pub fn loading_text(progress: Option<&Progress>) -> (f32, String) {
    let Some(p) = progress else {
        return (0.0, "loading…".into());
    };
    let doing = match p.stage {
        Stage::Pyramid => "loading: building the display pyramids",
        _ if p.fraction > 0.5 => "loading: the extra layers",
        _ => "loading: reading the images",
    };
    (p.fraction, doing.into())
}

impl AlinifyApp {
    /// Opens what `files` name (see [`Opening`]); a manifest shows the batch panel, with the
    /// output folder `<manifest name>-batch` beside it unless one was chosen.
    pub fn open(&mut self, files: Vec<PathBuf>) {
        match Opening::of(files) {
            Ok(None) => {}
            Ok(Some(Opening::Pair(fixed, moving, extras, landmarks))) => {
                self.workspace = super::Workspace::Pair;
                self.restore_own_choice();
                self.start_loading(fixed, moving, None, extras);
                if !landmarks.is_empty() {
                    self.open_landmarks(&landmarks);
                }
            }
            Ok(Some(Opening::Manifest(path))) => {
                self.workspace = super::Workspace::Batch;
                if self.batch.out_dir.is_none() {
                    let stem = path
                        .file_stem()
                        .map_or("batch".into(), |s| s.to_string_lossy());
                    self.batch.out_dir = Some(path.with_file_name(format!("{stem}-batch")));
                }
                self.batch.source = Some(super::batch_panel::BatchSource::Manifest(path));
            }
            Ok(Some(Opening::Fixed(path))) => {
                self.workspace = super::Workspace::Pair;
                match (self.pending_fixed.take(), io::check_regular(&path)) {
                    (_, Err(e)) => self.error = Some(e.to_string()),
                    // The second of two single files is the moving image.
                    (Some(fixed), Ok(())) => self.load(fixed, path),
                    (None, Ok(())) => {
                        self.pending_fixed = Some(path);
                        self.ask_moving = true;
                    }
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Opens the chooser for a pair's fixed image (the moving one follows).
    pub(super) fn choose_pair(&mut self, ctx: &egui::Context) {
        self.pending_fixed = None;
        file_chooser::open(
            ctx,
            FIXED_CHOOSER,
            Request::file("Open pair: the fixed (reference) image").filter("images", IMAGES),
        );
    }

    /// The pair's two choosers: the fixed image, then the moving one; the pair loads once both
    /// are chosen.
    pub(super) fn pair_choosers(&mut self, ctx: &egui::Context) {
        if let Some(fixed) = file_chooser::chosen_one(ctx, FIXED_CHOOSER) {
            self.pending_fixed = Some(fixed);
            self.ask_moving = true;
        }
        let ask = std::mem::take(&mut self.ask_moving);
        let fixed_name = self.pending_fixed.as_deref().map(file_name);
        let request = || {
            let title = match fixed_name {
                Some(name) => format!("Open pair: the moving image (fixed: {name})"),
                None => "Open pair: the moving image".into(),
            };
            Request::file(title).filter("images", IMAGES)
        };
        if let Some(moving) = file_chooser::choose_one(ctx, ask, MOVING_CHOOSER, request)
            && let Some(fixed) = self.pending_fixed.take()
        {
            self.load(fixed, moving);
        }
    }

    /// Loads `fixed` and `moving` in the background (previews for the viewer).
    pub fn load(&mut self, fixed: PathBuf, moving: PathBuf) {
        self.load_layers(fixed, moving, None);
    }

    /// Loads a pair and, when given, an earlier result's transform (a batch job's).
    pub fn load_layers(&mut self, fixed: PathBuf, moving: PathBuf, transform: Option<PathBuf>) {
        self.restore_own_choice();
        self.start_loading(fixed, moving, transform, Vec::new());
    }

    /// Loads a pair, an earlier result's transform, and extra layer files (in the fixed frame)
    /// in one background job.
    pub(super) fn start_loading(
        &mut self,
        fixed: PathBuf,
        moving: PathBuf,
        transform: Option<PathBuf>,
        extra_files: Vec<PathBuf>,
    ) {
        self.error = None;
        self.result = None;
        self.method_runs.clear();
        self.pending_fixed = None;
        self.view = if transform.is_some() {
            View::After
        } else {
            View::Before
        };
        let job = JobHandle::spawn_woken("alinify-load", self.waker.clone(), move |reporter| {
            load_pair(fixed, moving, transform, &extra_files, reporter)
        });
        match job {
            Ok(job) => self.task = Task::Loading(job, None),
            Err(e) => self.error = Some(format!("cannot start loading: {e}")),
        }
    }

    /// Adds every page of each of `paths` as extra layers (in the fixed frame, or following the
    /// moving image), in the background.
    pub fn add_layers(&mut self, paths: Vec<PathBuf>, follows_moving: bool) {
        if self.layers.is_none() || !matches!(self.task, Task::Idle) {
            self.error = Some("load a pair first, then add layers".into());
            return;
        }
        let job = JobHandle::spawn_woken("alinify-add-layers", self.waker.clone(), move |r| {
            load_extra_files(&paths, follows_moving, r)
        });
        match job {
            Ok(job) => self.task = Task::AddingLayers(job),
            Err(e) => self.error = Some(format!("cannot start loading layers: {e}")),
        }
    }

    /// What the viewer and the export compose: the pair (warped in the After view) and the
    /// visible extra layers.
    pub(super) fn shared_scene(&self, layers: &Layers) -> SharedScene {
        SharedScene {
            bottom: layers.fixed.clone(),
            top: layers.moving.clone(),
            warp: match self.view {
                View::After => layers.warp.clone(),
                View::Before => None,
            },
            overlays: {
                let mut overlays = drawn_overlays(&layers.extras);
                if let Some(heatmap) = self.heatmap_overlay() {
                    overlays.truncate(MAX_OVERLAYS - 1);
                    overlays.push(heatmap);
                }
                overlays
            },
        }
    }

    /// The blend settings with the loaded pair's looks: what the viewer and the export use.
    pub(super) fn composite(&self) -> Composite {
        Composite {
            displays: self
                .layers
                .as_ref()
                .map_or([Display::default(); 2], Layers::displays),
            ..self.settings.composite
        }
    }

    /// The layer state undo and redo restore, when a pair is loaded.
    fn layer_state(&self) -> Option<LayerState> {
        let layers = self.layers.as_ref()?;
        Some(LayerState {
            extras: layers.extras.clone(),
            displays: layers.displays(),
            show_top: self.settings.composite.show_top,
        })
    }

    fn restore_layer_state(&mut self, state: LayerState) {
        if let Some(layers) = &mut self.layers {
            layers.extras = state.extras;
            for (look, display) in layers.looks.iter_mut().zip(state.displays) {
                look.display = display;
            }
            self.settings.composite.show_top = state.show_top;
        }
    }

    /// Notes this frame's layer state (a change counts once no button is held) and acts on
    /// Ctrl+Z, Ctrl+Shift+Z and Ctrl+Y, which the landmark mode takes first when it is on.
    pub(super) fn layer_undo(&mut self, ctx: &egui::Context) {
        let Some(state) = self.layer_state() else {
            return;
        };
        let busy = ctx.input(|i| i.pointer.any_down());
        self.layer_history.observe(&state, busy);
        if self.landmarks.active || ctx.egui_wants_keyboard_input() {
            return;
        }
        let (redo, undo) = ctx.input_mut(|i| {
            let shift = egui::Modifiers::COMMAND | egui::Modifiers::SHIFT;
            let redo = i.consume_key(shift, egui::Key::Z)
                || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
            (redo, i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z))
        });
        if redo || undo {
            self.step_layer_history(redo);
        }
    }

    /// Undoes the last layer change, or redoes the last undone one.
    fn step_layer_history(&mut self, redo: bool) {
        let Some(state) = self.layer_state() else {
            return;
        };
        let restored = if redo {
            self.layer_history.redo(&state)
        } else {
            self.layer_history.undo(&state)
        };
        if let Some(restored) = restored {
            self.restore_layer_state(restored);
        }
    }

    /// The view and blend controls, then the layer list: the moving layer's eye, then each
    /// extra layer's eye, opacity, frame, order and removal; and Add layer….
    pub(super) fn layers_panel(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("Layers");
            let (undo, redo) = (self.layer_history.can_undo(), self.layer_history.can_redo());
            if ui
                .add_enabled(undo, egui::Button::new("Undo layer").small())
                .on_hover_text("the last layer change (Ctrl+Z)")
                .clicked()
            {
                self.step_layer_history(false);
            }
            if ui
                .add_enabled(redo, egui::Button::new("Redo layer").small())
                .on_hover_text("the last undone layer change (Ctrl+Shift+Z)")
                .clicked()
            {
                self.step_layer_history(true);
            }
        });
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.view, View::Before, "Before");
            let has_warped = self.layers.as_ref().is_some_and(|l| l.warp.is_some());
            ui.add_enabled_ui(has_warped, |ui| {
                ui.selectable_value(&mut self.view, View::After, "After");
            });
        });
        self.blend_controls(ui);
        self.layer_list(ui);
    }

    fn blend_controls(&mut self, ui: &mut egui::Ui) {
        use super::viewer::Layout;
        ui.horizontal(|ui| {
            for layout in [Layout::Overlay, Layout::SideBySide] {
                ui.selectable_value(&mut self.settings.layout, layout, layout.label());
            }
        })
        .response
        .on_hover_text("side by side: two panes, one camera (Ctrl+L switches)");
        let blended = self.settings.layout == Layout::Overlay;
        let composite = &mut self.settings.composite;
        ui.add_enabled_ui(blended, |ui| {
            egui::ComboBox::from_label("Blend")
                .selected_text(composite.blend.label())
                .show_ui(ui, |ui| {
                    for mode in Blend::ALL {
                        ui.selectable_value(&mut composite.blend, mode, mode.label());
                    }
                });
        });
        match composite.blend {
            _ if !blended => {}
            Blend::Alpha => {
                ui.add(egui::Slider::new(&mut composite.opacity, 0.0..=1.0).text("opacity"));
            }
            Blend::Checkerboard => {
                ui.add(
                    egui::Slider::new(&mut composite.square, 8..=1024)
                        .logarithmic(true)
                        .text("square px"),
                );
            }
            _ => {}
        }
        if blended {
            ui.weak(blend_legend(composite.blend));
        }
    }

    fn layer_list(&mut self, ui: &mut egui::Ui) {
        let Some(layers) = &mut self.layers else {
            return;
        };
        ui.label(format!(
            "fixed: {} (reference)",
            file_name(&layers.fixed_path)
        ));
        look_section(ui, "fixed look", &mut layers.looks[0]);
        ui.checkbox(
            &mut self.settings.composite.show_top,
            format!("moving: {}", file_name(&layers.moving_path)),
        );
        look_section(ui, "moving look", &mut layers.looks[1]);
        let mut action = None;
        let count = layers.extras.len();
        for (i, extra) in layers.extras.iter_mut().enumerate() {
            ui.push_id(i, |ui| {
                ui.checkbox(&mut extra.visible, &extra.name);
                ui.horizontal(|ui| {
                    ui.add(egui::Slider::new(&mut extra.opacity, 0.0..=1.0).text("opacity"));
                });
                ui.horizontal(|ui| {
                    ui.checkbox(&mut extra.follows_moving, "follows moving");
                    if ui
                        .add_enabled(i > 0, egui::Button::new("Up").small())
                        .clicked()
                    {
                        action = Some((i, -1));
                    }
                    if ui
                        .add_enabled(i + 1 < count, egui::Button::new("Down").small())
                        .clicked()
                    {
                        action = Some((i, 1));
                    }
                    if ui.small_button("Remove").clicked() {
                        action = Some((i, 0));
                    }
                });
                look_section(ui, "look", &mut extra.look);
            });
        }
        match action {
            Some((i, 0)) => {
                layers.extras.remove(i);
            }
            Some((i, step)) => layers.extras.swap(i, (i as isize + step) as usize),
            None => {}
        }
        if layers.extras.iter().filter(|e| e.visible).count() > MAX_OVERLAYS {
            ui.weak(format!(
                "only the first {MAX_OVERLAYS} visible extra layers are drawn"
            ));
        }
        let idle = matches!(self.task, Task::Idle);
        let clicked = ui
            .add_enabled(idle, egui::Button::new("Add layer…"))
            .on_hover_text("an image (every page of a TIFF) in the fixed frame")
            .clicked();
        if let Some(paths) = file_chooser::choose(ui.ctx(), clicked, "extra layers", || {
            Request::files("Extra layers (in the fixed frame)").filter("images", IMAGES)
        }) {
            self.add_layers(paths, false);
        }
    }
}

/// A layer's display controls under a collapsible "Display" header (closed at first).
fn look_section(ui: &mut egui::Ui, salt: &str, look: &mut Look) {
    let id = ui.make_persistent_id(salt);
    egui::CollapsingHeader::new("Display")
        .id_salt(id)
        .show(ui, |ui| display_controls(ui, id, look));
}

/// How to read a blend: the legend under its menu.
fn blend_legend(blend: Blend) -> &'static str {
    match blend {
        Blend::Alpha => "the moving layer over the fixed one at the opacity",
        Blend::Difference => "black where the layers agree, bright where they differ",
        Blend::Checkerboard => "squares alternate: fixed, moving; edges continue when aligned",
        Blend::FalseColor => "red: fixed brighter · cyan: moving brighter · grey: they agree",
        Blend::Flicker => "fixed and moving take turns every half second",
    }
}
