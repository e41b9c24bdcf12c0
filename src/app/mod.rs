//! The desktop application (eframe/egui): load a pair, choose Fast or Accurate, watch the
//! registration, and judge it with overlays.
//!
//! State is split by lifetime (eframe_template): [`Settings`] persist between launches, while
//! jobs, textures and previews live only in the running app. Long work runs on the engine's
//! [`JobHandle`]s; the UI polls their events every frame and never blocks.

pub mod batch_panel;
pub mod parameters;
#[cfg(test)]
mod tests;
pub mod viewer;

use eframe::egui;

use crate::compose::{
    Blend, Composite, MAX_OVERLAYS, OverlaySettings, Pyramid, SharedScene, WarpGrid,
};
use crate::job::{Event, JobHandle, Progress};
use crate::register::{Mode, RegisterOptions, RegisterRequest, RegisterSummary};
use crate::warmup::WarmupReport;
use crate::{Error, Result, io};
use batch_panel::{BatchAction, BatchPanel};
use parameters::Parameters;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use viewer::{Layout, Viewer};

/// Settings that persist between launches.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Fast or Accurate (the toggle's last position).
    pub mode: Mode,
    /// How layers are combined on screen.
    pub composite: Composite,
    /// One blended pane, or the pair side by side.
    pub layout: Layout,
    /// The registration's preset and key settings.
    pub parameters: Parameters,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Fast,
            composite: Composite::default(),
            layout: Layout::default(),
            parameters: Parameters::default(),
        }
    }
}

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
    /// The registration's transform on a grid: the viewer warps the moving layer through it
    /// on the fly (the After view).
    pub warp: Option<Arc<WarpGrid>>,
    /// Extra layers drawn over the pair, in order: further pages of multi-page TIFFs and
    /// added images.
    pub extras: Vec<ExtraLayer>,
}

/// A layer beyond the pair (e.g. a colour separation of the design).
#[derive(Debug, Clone)]
pub struct ExtraLayer {
    /// Shown in the layers panel.
    pub name: String,
    /// Its display pyramid.
    pub pyramid: Arc<Pyramid>,
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

/// Every page of each of `paths` as extra layers.
fn load_extra_files<T>(
    paths: &[PathBuf],
    follows_moving: bool,
    reporter: &crate::job::Reporter<T>,
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
    pages: Vec<crate::raster::AnyImage>,
    skip: usize,
    follows_moving: bool,
) -> Vec<ExtraLayer> {
    let name = file_name(path);
    let count = pages.len();
    pages
        .into_iter()
        .enumerate()
        .skip(skip)
        .map(|(i, page)| ExtraLayer {
            name: if count > 1 {
                format!("{name} page {}", i + 1)
            } else {
                name.clone()
            },
            pyramid: Arc::new(Pyramid::of(&page)),
            visible: true,
            opacity: 0.5,
            follows_moving,
            source: (path.to_path_buf(), i),
        })
        .collect()
}

/// What the app is doing in the background.
pub enum Task {
    /// Nothing.
    Idle,
    /// Loading a pair.
    Loading(JobHandle<Layers>, Option<Progress>),
    /// Loading extra layers.
    AddingLayers(JobHandle<Vec<ExtraLayer>>),
    /// Exporting the composite and the results.
    Exporting {
        /// The job: a summary line.
        job: JobHandle<String>,
        /// Fraction done.
        fraction: f32,
    },
    /// Registering the pair.
    Registering {
        /// The job: its summary and the warped preview.
        job: JobHandle<(RegisterSummary, WarpGrid)>,
        /// Latest progress.
        progress: Option<Progress>,
    },
}

impl Task {
    /// A short name for the status line and tests.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Idle => "idle",
            Task::Loading(..) => "loading",
            Task::AddingLayers(_) => "adding layers",
            Task::Exporting { .. } => "exporting",
            Task::Registering { .. } => "registering",
        }
    }
}

/// Where the warmup stands (DESIGN.md, "The warmup").
pub enum WarmupState {
    /// Not started (tests start it when they want it).
    NotStarted,
    /// Running: the step it is on.
    Running {
        /// The warmup thread.
        job: JobHandle<WarmupReport>,
        /// The step being run.
        step: String,
        /// When it started.
        started: Instant,
    },
    /// Finished.
    Done(WarmupReport),
    /// Failed; the app works without it (runs pay the first-use cost).
    Failed(String),
}

/// What the last registration gave.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// NCC before and after.
    pub ncc: [f64; 2],
    /// Seconds of the whole run.
    pub seconds: f64,
    /// `cpu` or `gpu`, and the adapter.
    pub backend: String,
    /// The settings the run used.
    pub options: RegisterOptions,
}

/// Which pair of layers the viewer composes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Fixed and moving as loaded.
    Before,
    /// Fixed and warped moving.
    After,
}

/// What the central area shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workspace {
    /// One pair: registration controls and the viewer.
    Pair,
    /// Many pairs: the batch panel.
    Batch,
}

/// What a list of files (command line, or dropped on the window) opens.
#[derive(Debug, Clone, PartialEq)]
pub enum Opening {
    /// A fixed and a moving image, and extra layers (in the fixed frame).
    Pair(PathBuf, PathBuf, Vec<PathBuf>),
    /// A batch manifest, shown in the batch panel.
    Manifest(PathBuf),
}

impl Opening {
    /// Classifies `files`: one `.csv` is a batch manifest; two or more files are a pair
    /// (fixed, moving) and extra layers.
    pub fn of(files: Vec<PathBuf>) -> Result<Option<Self>> {
        let is_csv = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        match files.as_slice() {
            [] => Ok(None),
            [manifest] if is_csv(manifest) => Ok(Some(Opening::Manifest(manifest.clone()))),
            [fixed, moving, extras @ ..] => Ok(Some(Opening::Pair(
                fixed.clone(),
                moving.clone(),
                extras.to_vec(),
            ))),
            [_] => Err(Error::InvalidArgument(
                "give the fixed and the moving image (and extra layers), or a batch manifest (.csv)"
                    .into(),
            )),
        }
    }
}

/// The application.
pub struct AlinifyApp {
    /// One pair or a batch.
    pub workspace: Workspace,
    /// The batch panel's state (its batch keeps running while the pair workspace shows).
    pub batch: BatchPanel,
    /// Persisted settings.
    pub settings: Settings,
    /// The pair, once loaded.
    pub layers: Option<Layers>,
    /// Background work.
    pub task: Task,
    /// Which layers are shown.
    pub view: View,
    /// The last registration's result.
    pub result: Option<RunResult>,
    /// Metric per progress event of the running (or last) registration: (event, metric).
    pub metric_history: Vec<[f64; 2]>,
    /// The last error, shown until the next action.
    pub error: Option<String>,
    /// A note about the last action that is not an error (e.g. which backend a run chose).
    pub notice: Option<String>,
    /// The warmup thread's state.
    pub warmup: WarmupState,
    /// Registration outputs (warped.tif, transform.json, report.json) of this session.
    pub out_dir: tempfile::TempDir,
    /// When the window was asked for, and the time to its first frame (milliseconds).
    launched: Option<(Instant, Option<f64>)>,
    /// The debug panel (F12) is open.
    pub show_debug: bool,
    /// The viewer (pan, zoom, GPU or CPU composition).
    pub viewer: Viewer,
    /// The fixed-image point under the cursor.
    hover: Option<[f64; 2]>,
    /// Time to build a frame's UI (moving average), milliseconds.
    frame_ms: f32,
    flicker_at: Option<Instant>,
}

impl AlinifyApp {
    /// A fresh app with `settings`.
    pub fn new(settings: Settings) -> Result<Self> {
        let out_dir = tempfile::Builder::new()
            .prefix("alinify-session-")
            .tempdir()
            .map_err(|e| Error::Internal(format!("cannot create a session folder: {e}")))?;
        Ok(Self {
            workspace: Workspace::Pair,
            batch: BatchPanel::default(),
            settings,
            layers: None,
            task: Task::Idle,
            view: View::Before,
            result: None,
            metric_history: Vec::new(),
            error: None,
            notice: None,
            warmup: WarmupState::NotStarted,
            out_dir,
            launched: None,
            show_debug: false,
            viewer: Viewer::new(None),
            hover: None,
            frame_ms: 0.0,
            flicker_at: None,
        })
    }

    /// Adds every page of each of `paths` as extra layers (in the fixed frame, or following the
    /// moving image), in the background.
    pub fn add_layers(&mut self, paths: Vec<PathBuf>, follows_moving: bool) {
        if self.layers.is_none() || !matches!(self.task, Task::Idle) {
            self.error = Some("load a pair first, then add layers".into());
            return;
        }
        let job = JobHandle::spawn("alinify-add-layers", move |reporter| {
            load_extra_files(&paths, follows_moving, reporter)
        });
        match job {
            Ok(job) => self.task = Task::AddingLayers(job),
            Err(e) => self.error = Some(format!("cannot start loading layers: {e}")),
        }
    }

    /// Starts the warmup thread; the window stays interactive.
    pub fn start_warmup(&mut self) {
        self.warmup = match crate::warmup::spawn() {
            Ok(job) => WarmupState::Running {
                job,
                step: "starting".into(),
                started: Instant::now(),
            },
            Err(e) => WarmupState::Failed(e.to_string()),
        };
    }

    fn poll_warmup(&mut self) {
        let WarmupState::Running { job, step, .. } = &mut self.warmup else {
            return;
        };
        let mut finished = None;
        for event in job.events.try_iter() {
            match event {
                Event::Log(line) => *step = line,
                Event::Progress(_) => {}
                Event::Finished(result) => finished = Some(result),
            }
        }
        match finished {
            None => {}
            Some(Ok(report)) => {
                let steps: Vec<String> = report
                    .steps
                    .iter()
                    .map(|s| format!("{} {:.3} s", s.name, s.seconds))
                    .collect();
                eprintln!(
                    "alinify: warmed up in {:.3} s ({})",
                    report.seconds,
                    steps.join(", ")
                );
                self.warmup = WarmupState::Done(report);
            }
            Some(Err(e)) => self.warmup = WarmupState::Failed(e.to_string()),
        }
    }

    /// The status bar's warmup text and its tooltip (the steps and their times).
    pub fn warmup_status(&self) -> (String, String) {
        match &self.warmup {
            WarmupState::NotStarted => (String::new(), String::new()),
            WarmupState::Running { step, started, .. } => (
                format!(
                    "warming up: {step} ({:.1} s)",
                    started.elapsed().as_secs_f64()
                ),
                "The first run will pay no first-use cost once this ends.".into(),
            ),
            WarmupState::Done(report) => {
                let gpu = match &report.gpu {
                    Ok(name) => format!("GPU {name}"),
                    Err(why) => format!("no GPU ({why}): fast mode on the CPU"),
                };
                let steps = report
                    .steps
                    .iter()
                    .map(|s| format!("{}: {:.2} s", s.name, s.seconds))
                    .collect::<Vec<_>>()
                    .join("\n");
                (
                    format!("warmed up in {:.1} s · {gpu}", report.seconds),
                    steps,
                )
            }
            WarmupState::Failed(e) => (format!("warmup failed: {e}"), String::new()),
        }
    }

    /// Opens what `files` name (see [`Opening`]); a manifest shows the batch panel, with the
    /// output folder `<manifest name>-batch` beside it unless one was chosen.
    pub fn open(&mut self, files: Vec<PathBuf>) {
        match Opening::of(files) {
            Ok(None) => {}
            Ok(Some(Opening::Pair(fixed, moving, extras))) => {
                self.workspace = Workspace::Pair;
                self.start_loading(fixed, moving, None, extras);
            }
            Ok(Some(Opening::Manifest(path))) => {
                self.workspace = Workspace::Batch;
                if self.batch.out_dir.is_none() {
                    let stem = path
                        .file_stem()
                        .map_or("batch".into(), |s| s.to_string_lossy());
                    self.batch.out_dir = Some(path.with_file_name(format!("{stem}-batch")));
                }
                self.batch.source = Some(batch_panel::BatchSource::Manifest(path));
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Loads `fixed` and `moving` in the background (previews for the viewer).
    pub fn load(&mut self, fixed: PathBuf, moving: PathBuf) {
        self.load_layers(fixed, moving, None);
    }

    /// Loads a pair and, when given, an earlier result's transform (a batch job's).
    pub fn load_layers(&mut self, fixed: PathBuf, moving: PathBuf, transform: Option<PathBuf>) {
        self.start_loading(fixed, moving, transform, Vec::new());
    }

    /// Loads a pair, an earlier result's transform, and extra layer files (in the fixed frame)
    /// in one background job.
    fn start_loading(
        &mut self,
        fixed: PathBuf,
        moving: PathBuf,
        transform: Option<PathBuf>,
        extra_files: Vec<PathBuf>,
    ) {
        self.error = None;
        self.result = None;
        self.view = if transform.is_some() {
            View::After
        } else {
            View::Before
        };
        let job = JobHandle::spawn("alinify-load", move |reporter| {
            let started = Instant::now();
            let stage = |stage, fraction| reporter.progress(Progress::at(stage, fraction));
            stage(crate::job::Stage::Load, 0.0);
            // Every page: the first is the layer itself, the others become extra layers.
            let (f, m) = rayon::join(|| io::load_layers(&fixed), || io::load_layers(&moving));
            let (f, m) = (f?, m?);
            let read_seconds = started.elapsed().as_secs_f64();
            reporter.check()?;
            stage(crate::job::Stage::Pyramid, 0.7);
            let (fixed_pyramid, moving_pyramid) =
                rayon::join(|| Pyramid::of(&f[0]), || Pyramid::of(&m[0]));
            stage(crate::job::Stage::Load, 0.9);
            let mut extras = pages_as_layers(&fixed, f, 1, false);
            extras.extend(pages_as_layers(&moving, m, 1, true));
            extras.extend(load_extra_files(&extra_files, false, reporter)?);
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
                fixed: Arc::new(fixed_pyramid),
                moving: Arc::new(moving_pyramid),
                fixed_path: fixed,
                moving_path: moving,
                warp,
                extras,
            })
        });
        match job {
            Ok(job) => self.task = Task::Loading(job, None),
            Err(e) => self.error = Some(format!("cannot start loading: {e}")),
        }
    }

    /// Starts a registration of the loaded pair in the chosen mode.
    pub fn run(&mut self) {
        let Some(layers) = &self.layers else {
            self.error = Some("load a fixed and a moving image first".into());
            return;
        };
        if !matches!(self.task, Task::Idle) {
            return;
        }
        self.error = None;
        self.notice = None;
        self.metric_history.clear();
        let mut options = match self.settings.parameters.options(self.settings.mode) {
            Ok(options) => options,
            Err(e) => {
                self.error = Some(format!("parameters: {e}"));
                return;
            }
        };
        if matches!(self.warmup, WarmupState::Running { .. }) && options.mode == Mode::Fast {
            options.backend = crate::register::Backend::Cpu;
            self.notice = Some(
                "the warmup is still running: this fast run uses the CPU instead of waiting".into(),
            );
        }
        let request = RegisterRequest {
            fixed: layers.fixed_path.clone(),
            moving: layers.moving_path.clone(),
            out_dir: self.out_dir.path().to_path_buf(),
            field: None,
            export_elastix: None,
            fixed_mask: None,
            moving_mask: None,
            options,
        };
        let job = JobHandle::spawn("alinify-register", move |reporter| {
            let summary = crate::register::register_files(&request, reporter)?;
            let grid = WarpGrid::from_transform_file(&request.out_dir.join("transform.json"))?;
            Ok((summary, grid))
        });
        match job {
            Ok(job) => {
                self.task = Task::Registering {
                    job,
                    progress: None,
                }
            }
            Err(e) => self.error = Some(format!("cannot start the registration: {e}")),
        }
    }

    /// Writes the composite at full resolution (GPU when a hardware adapter exists, else CPU)
    /// and the last registration's outputs into `folder`, in the background.
    pub fn export(&mut self, folder: PathBuf) {
        let Some(layers) = &self.layers else {
            self.error = Some("load a pair first".into());
            return;
        };
        if !matches!(self.task, Task::Idle) {
            return;
        }
        self.error = None;
        let shared = self.shared_scene(layers);
        let composite = self.settings.composite;
        let reference_size = layers.fixed.size();
        // Every layer that follows the moving image is warped like it, at full resolution.
        let following: Vec<(String, (PathBuf, usize))> = layers
            .extras
            .iter()
            .filter(|e| e.follows_moving)
            .map(|e| (e.name.clone(), e.source.clone()))
            .collect();
        let session = self.out_dir.path().to_path_buf();
        let has_result = self.result.is_some();
        let job = JobHandle::spawn("alinify-export", move |reporter| {
            let started = Instant::now();
            io::ensure_output_dir(&folder)?;
            let overlays = shared.borrowed_overlays();
            let scene = shared.scene(&overlays);
            let (mut render, max_width, backend) =
                match crate::compose::gpu_renderer(&shared, composite, false) {
                    Ok(gpu) => gpu,
                    Err(why) => {
                        reporter.log(format!("exporting on the CPU: {why}"));
                        (
                            crate::compose::cpu_renderer(scene, composite),
                            usize::MAX,
                            "cpu".into(),
                        )
                    }
                };
            let progress =
                |fraction: f32| reporter.progress(Progress::at(crate::job::Stage::Write, fraction));
            let compute = crate::compose::export_composite(
                &folder.join("composite.tif"),
                scene,
                max_width,
                render.as_mut(),
                &progress,
                reporter.cancel_token(),
            )?;
            let mut copied = 0;
            if has_result {
                for name in ["warped.tif", "transform.json", "report.json", "flow.flo"] {
                    let from = session.join(name);
                    if from.is_file() {
                        std::fs::copy(&from, folder.join(name))
                            .map_err(|e| Error::write(&folder.join(name), e))?;
                        copied += 1;
                    }
                }
                copied += warp_following_layers(
                    &following,
                    &session.join("transform.json"),
                    reference_size,
                    &folder,
                    reporter.cancel_token(),
                )?;
            }
            Ok(format!(
                "exported composite.tif{} to {} in {:.1} s ({compute:.1} s composing on {backend})",
                if copied > 0 {
                    format!(" and {copied} result files")
                } else {
                    String::new()
                },
                folder.display(),
                started.elapsed().as_secs_f64()
            ))
        });
        match job {
            Ok(job) => self.task = Task::Exporting { job, fraction: 0.0 },
            Err(e) => self.error = Some(format!("cannot start the export: {e}")),
        }
    }

    /// Cancels the background task, if any.
    pub fn cancel(&mut self) {
        match &self.task {
            Task::Idle => {}
            Task::Loading(job, _) => job.cancel.cancel(),
            Task::AddingLayers(job) => job.cancel.cancel(),
            Task::Exporting { job, .. } => job.cancel.cancel(),
            Task::Registering { job, .. } => job.cancel.cancel(),
        }
    }

    /// Takes the background task's events; called every frame.
    pub fn poll(&mut self) {
        let task = std::mem::replace(&mut self.task, Task::Idle);
        self.task = match task {
            Task::Idle => Task::Idle,
            Task::Loading(job, mut progress) => match drain_progress(&job, &mut progress) {
                None => Task::Loading(job, progress),
                Some(Ok(layers)) => {
                    self.layers = Some(layers);
                    self.viewer.camera = None;
                    Task::Idle
                }
                Some(Err(e)) => {
                    self.error = Some(e.to_string());
                    Task::Idle
                }
            },
            Task::AddingLayers(job) => match drain(&job) {
                None => Task::AddingLayers(job),
                Some(Ok(extras)) => {
                    if let Some(layers) = &mut self.layers {
                        layers.extras.extend(extras);
                    }
                    Task::Idle
                }
                Some(Err(e)) => {
                    self.error = Some(e.to_string());
                    Task::Idle
                }
            },
            Task::Exporting { job, mut fraction } => {
                let mut finished = None;
                for event in job.events.try_iter() {
                    match event {
                        Event::Progress(p) => fraction = p.fraction,
                        Event::Log(line) => self.notice = Some(line),
                        Event::Finished(result) => finished = Some(result),
                    }
                }
                match finished {
                    None => Task::Exporting { job, fraction },
                    Some(Ok(message)) => {
                        self.notice = Some(message);
                        Task::Idle
                    }
                    Some(Err(e)) => {
                        self.error = Some(format!("export failed: {e}"));
                        Task::Idle
                    }
                }
            }
            Task::Registering { job, mut progress } => {
                let mut finished = None;
                for event in job.events.try_iter() {
                    match event {
                        Event::Progress(p) => {
                            if let Some(m) = p.metric {
                                let n = self.metric_history.len() as f64;
                                self.metric_history.push([n, m]);
                            }
                            progress = Some(p);
                        }
                        Event::Log(_) => {}
                        Event::Finished(result) => finished = Some(result),
                    }
                }
                match finished {
                    None => Task::Registering { job, progress },
                    Some(Ok((summary, grid))) => {
                        let r = &summary.report;
                        self.result = Some(RunResult {
                            ncc: [r.ncc_before, r.ncc_after],
                            seconds: r.seconds.total,
                            backend: match &r.adapter {
                                Some(a) => format!("{} ({a})", r.backend),
                                None => r.backend.clone(),
                            },
                            options: r.options.clone(),
                        });
                        if let Some(layers) = &mut self.layers {
                            layers.warp = Some(Arc::new(grid));
                        }
                        self.view = View::After;
                        Task::Idle
                    }
                    Some(Err(Error::Cancelled)) => {
                        self.error = Some("registration cancelled".into());
                        Task::Idle
                    }
                    Some(Err(e)) => {
                        self.error = Some(e.to_string());
                        Task::Idle
                    }
                }
            }
        };
    }

    /// The whole window's contents.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let started = Instant::now();
        if let Some((at, first @ None)) = &mut self.launched {
            let ms = at.elapsed().as_secs_f64() * 1000.0;
            *first = Some(ms);
            eprintln!("alinify: window interactive {ms:.0} ms after launch");
        }
        self.poll();
        self.poll_warmup();
        self.dropped_files(ui);
        self.shortcuts(ui);
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        if self.show_debug {
            self.debug_panel(ui);
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status(ui));
        match self.workspace {
            Workspace::Pair => {
                self.batch.poll();
                egui::Panel::left("controls")
                    .resizable(false)
                    .show(ui, |ui| self.controls(ui));
                egui::CentralPanel::default().show(ui, |ui| self.viewer(ui));
            }
            Workspace::Batch => {
                let action = egui::CentralPanel::default()
                    .show(ui, |ui| self.batch.show(ui))
                    .inner;
                if let Some(BatchAction::Open {
                    fixed,
                    moving,
                    transform,
                }) = action
                {
                    self.load_layers(fixed, moving, Some(transform));
                    self.workspace = Workspace::Pair;
                }
            }
        }
        if !matches!(self.task, Task::Idle)
            || self.batch.is_running()
            || matches!(self.warmup, WarmupState::Running { .. })
            || self.settings.composite.blend == Blend::Flicker
        {
            ui.ctx().request_repaint();
        }
        let ms = started.elapsed().as_secs_f32() * 1000.0;
        self.frame_ms = if self.frame_ms == 0.0 {
            ms
        } else {
            0.9 * self.frame_ms + 0.1 * ms
        };
    }

    /// Marks the moment the window was asked for, to report launch-to-interactive.
    pub fn mark_launch(&mut self, at: Instant) {
        self.launched = Some((at, None));
    }

    /// Milliseconds from launch to the first frame, once it was drawn.
    pub fn launch_to_interactive_ms(&self) -> Option<f64> {
        self.launched.and_then(|(_, ms)| ms)
    }

    fn debug_panel(&mut self, ui: &mut egui::Ui) {
        let dt = ui.input(|i| i.stable_dt) * 1000.0;
        let mut open = self.show_debug;
        egui::Window::new("Debug")
            .open(&mut open)
            .default_pos([900.0, 80.0])
            .show(ui.ctx(), |ui| {
                ui.label(format!("UI build {:.2} ms/frame (average)", self.frame_ms));
                ui.label(format!("frame interval {dt:.1} ms"));
                ui.label(format!("viewer composes on the {}", self.viewer.backend()));
                if let Some((n, median, p95)) = self.viewer.last_gesture {
                    ui.label(format!(
                        "last pan/zoom: {n} frames, median {median:.1} ms, p95 {p95:.1} ms"
                    ));
                }
                if let Some(ms) = self.launch_to_interactive_ms() {
                    ui.label(format!("launch to interactive {ms:.0} ms"));
                }
                let (warmup, steps) = self.warmup_status();
                ui.label(warmup);
                if !steps.is_empty() {
                    ui.label(steps);
                }
                ui.label(format!("session folder {}", self.out_dir.path().display()));
            });
        self.show_debug = open;
    }

    fn dropped_files(&mut self, ui: &mut egui::Ui) {
        let dropped: Vec<PathBuf> = ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() && !self.batch.is_running() {
            self.open(dropped);
        }
    }

    fn shortcuts(&mut self, ui: &mut egui::Ui) {
        if ui.input(|i| i.key_pressed(egui::Key::F12)) {
            self.show_debug = !self.show_debug;
        }
        let (run, cancel, fit, layout) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::R) && i.modifiers.command,
                i.key_pressed(egui::Key::Escape),
                i.key_pressed(egui::Key::F) && i.modifiers.command,
                i.key_pressed(egui::Key::L) && i.modifiers.command,
            )
        });
        if layout {
            self.settings.layout = match self.settings.layout {
                Layout::Overlay => Layout::SideBySide,
                Layout::SideBySide => Layout::Overlay,
            };
        }
        if run {
            self.run();
        }
        if cancel {
            self.cancel();
        }
        if fit {
            self.viewer.camera = None;
        }
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("Alinify");
            ui.separator();
            ui.selectable_value(&mut self.workspace, Workspace::Pair, "Pair");
            let batch_label = match self.batch.counts() {
                (ended, total) if self.batch.is_running() => format!("Batch ({ended}/{total})"),
                _ => "Batch".to_string(),
            };
            ui.selectable_value(&mut self.workspace, Workspace::Batch, batch_label);
            ui.separator();
            if ui.button("Open pair…").clicked() {
                let fixed = rfd::FileDialog::new()
                    .set_title("Fixed (reference) image")
                    .add_filter("images", &["tif", "tiff", "png", "jpg", "jpeg"])
                    .pick_file();
                let moving = fixed.as_ref().and_then(|_| {
                    rfd::FileDialog::new()
                        .set_title("Moving image")
                        .add_filter("images", &["tif", "tiff", "png", "jpg", "jpeg"])
                        .pick_file()
                });
                if let (Some(f), Some(m)) = (fixed, moving) {
                    self.load(f, m);
                }
            }
            self.sample_buttons(ui);
            ui.toggle_value(&mut self.show_debug, "Debug")
                .on_hover_text("frame times, warmup steps (F12)");
            if let Some(layers) = &self.layers {
                ui.separator();
                ui.label(format!(
                    "fixed {}, moving {}",
                    file_name(&layers.fixed_path),
                    file_name(&layers.moving_path)
                ));
            }
        });
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.set_width(240.0);
        ui.heading("Registration");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.settings.mode, Mode::Fast, "Fast");
            ui.selectable_value(&mut self.settings.mode, Mode::Accurate, "Accurate");
        });
        ui.label(match self.settings.mode {
            Mode::Fast => "dense optical flow, GPU when available",
            _ => "affine + B-spline, elastix-class",
        });
        let idle = matches!(self.task, Task::Idle);
        let shown = ui.add_enabled_ui(idle, |ui| {
            self.settings.parameters.show(ui, &mut self.settings.mode)
        });
        if let Some(e) = shown.inner {
            self.error = Some(e);
        }
        ui.horizontal(|ui| {
            let idle = matches!(self.task, Task::Idle);
            if ui
                .add_enabled(idle && self.layers.is_some(), egui::Button::new("Run"))
                .clicked()
            {
                self.run();
            }
            if ui.add_enabled(!idle, egui::Button::new("Cancel")).clicked() {
                self.cancel();
            }
        });
        if let Task::Registering { progress, .. } = &self.task {
            let (fraction, text) = match progress {
                Some(p) => (p.fraction, p.describe()),
                None => (0.0, "starting".into()),
            };
            ui.add(egui::ProgressBar::new(fraction).text(text));
        }
        if !self.metric_history.is_empty() {
            let points: Vec<[f64; 2]> = self.metric_history.clone();
            egui_plot::Plot::new("metric")
                .height(120.0)
                .show_axes([false, true])
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .show(ui, |plot| plot.line(egui_plot::Line::new("metric", points)));
        }
        if let Some(r) = &self.result {
            ui.label(format!("NCC before {:.4}", r.ncc[0]));
            ui.label(format!("NCC after {:.4}", r.ncc[1]));
            ui.label(format!("{:.2} s on {}", r.seconds, r.backend));
        }
        ui.separator();
        ui.heading("Layers");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.view, View::Before, "Before");
            let has_warped = self.layers.as_ref().is_some_and(|l| l.warp.is_some());
            ui.add_enabled_ui(has_warped, |ui| {
                ui.selectable_value(&mut self.view, View::After, "After");
            });
        });
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
        self.layers_panel(ui);
        ui.separator();
        let idle = matches!(self.task, Task::Idle);
        if ui
            .add_enabled(idle && self.layers.is_some(), egui::Button::new("Export…"))
            .on_hover_text("the composite at full resolution, and the registration's outputs")
            .clicked()
            && let Some(folder) = rfd::FileDialog::new()
                .set_title("Export folder")
                .pick_folder()
        {
            self.export(folder);
        }
        if let Task::Exporting { fraction, .. } = &self.task {
            ui.add(egui::ProgressBar::new(*fraction).text("exporting"));
        }
    }

    /// The layer list: the moving layer's eye, then each extra layer's eye, opacity, frame,
    /// order and removal; and Add layer….
    fn layers_panel(&mut self, ui: &mut egui::Ui) {
        let Some(layers) = &mut self.layers else {
            return;
        };
        ui.label(format!(
            "fixed: {} (reference)",
            file_name(&layers.fixed_path)
        ));
        ui.checkbox(
            &mut self.settings.composite.show_top,
            format!("moving: {}", file_name(&layers.moving_path)),
        );
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
        if ui
            .add_enabled(idle, egui::Button::new("Add layer…"))
            .on_hover_text("an image (every page of a TIFF) in the fixed frame")
            .clicked()
            && let Some(paths) = rfd::FileDialog::new()
                .set_title("Extra layers")
                .add_filter("images", &["tif", "tiff", "png", "jpg", "jpeg"])
                .pick_files()
        {
            self.add_layers(paths, false);
        }
    }

    /// "Sample pair" (the bundled cross-stain pair, with the cross-stain preset) and
    /// "Generated pair" (a synthetic pair with a known deformation).
    fn sample_buttons(&mut self, ui: &mut egui::Ui) {
        let idle = matches!(self.task, Task::Idle);
        if ui
            .add_enabled(idle, egui::Button::new("Sample pair"))
            .on_hover_text("two stains of a rat kidney section (assets/sample), cross-stain preset")
            .clicked()
        {
            self.open_sample_pair();
        }
        if ui
            .add_enabled(idle, egui::Button::new("Generated pair"))
            .on_hover_text("a textured pair with a known smooth deformation")
            .clicked()
        {
            match generate_demo_pair(self.out_dir.path()) {
                Ok((f, m)) => self.load(f, m),
                Err(e) => self.error = Some(e.to_string()),
            }
        }
    }

    /// Loads the bundled sample pair and chooses the cross-stain preset (accurate mode).
    pub fn open_sample_pair(&mut self) {
        match write_sample_pair(self.out_dir.path()) {
            Ok((fixed, moving)) => {
                if let Some(Ok(preset)) = Parameters::bundled("cross-stain") {
                    let settings = &mut self.settings;
                    settings.parameters.choose(preset, &mut settings.mode);
                }
                self.load(fixed, moving);
            }
            Err(e) => self.error = Some(format!("cannot write the sample pair: {e}")),
        }
    }

    /// What the viewer and the export compose: the pair (warped in the After view) and the
    /// visible extra layers.
    fn shared_scene(&self, layers: &Layers) -> SharedScene {
        SharedScene {
            bottom: layers.fixed.clone(),
            top: layers.moving.clone(),
            warp: match self.view {
                View::After => layers.warp.clone(),
                View::Before => None,
            },
            overlays: drawn_overlays(&layers.extras),
        }
    }

    fn viewer(&mut self, ui: &mut egui::Ui) {
        let Some(layers) = &self.layers else {
            if let Task::Loading(_, progress) = &self.task {
                let (fraction, text) = loading_text(progress.as_ref());
                ui.centered_and_justified(|ui| {
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .text(text)
                            .desired_width(320.0),
                    );
                });
            } else {
                ui.vertical_centered(|ui| {
                    ui.add_space((ui.available_height() / 2.0 - 30.0).max(0.0));
                    ui.label("Open a pair (or drop two images here), or try one:");
                    ui.horizontal(|ui| {
                        // Centre the two buttons.
                        ui.add_space((ui.available_width() - 220.0).max(0.0) / 2.0);
                        self.sample_buttons(ui);
                    });
                });
            }
            return;
        };
        if self.settings.composite.blend == Blend::Flicker {
            let now = Instant::now();
            let at = *self.flicker_at.get_or_insert(now);
            if (now - at).as_secs_f32() > 0.5 {
                self.settings.composite.flicker_top = !self.settings.composite.flicker_top;
                self.flicker_at = Some(now);
            }
        }
        let scene = self.shared_scene(layers);
        self.hover = self
            .viewer
            .show(ui, &scene, &self.settings.composite, self.settings.layout);
    }

    /// Text for the cursor's position: coordinates and the layers' values there.
    fn hover_text(&self) -> Option<String> {
        let (p, layers) = (self.hover?, self.layers.as_ref()?);
        let value = |pyramid: &Pyramid, q: [f64; 2]| {
            crate::compose::sample(&pyramid.levels[0], 1.0, q[0].round(), q[1].round())
                .map_or("-".into(), |v| format!("{:.0}", v * 255.0))
        };
        let q = match (self.view, &layers.warp) {
            (View::After, Some(w)) => w.map(p),
            _ => p,
        };
        Some(format!(
            "x {:.0}, y {:.0}: fixed {}, moving {}",
            p[0].floor(),
            p[1].floor(),
            value(&layers.fixed, p),
            value(&layers.moving, q)
        ))
    }

    fn status(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.error {
                Some(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                None => {
                    ui.label(match &self.task {
                        Task::Idle if self.workspace == Workspace::Batch => {
                            let (ended, total) = self.batch.counts();
                            match self.batch.is_running() {
                                true => format!("batch running: {ended} of {total} pairs ended"),
                                false => format!("batch: {total} pairs"),
                            }
                        }
                        Task::Idle if self.layers.is_some() => "ready".to_string(),
                        Task::Idle => "no images".to_string(),
                        Task::Loading(_, progress) => loading_text(progress.as_ref()).1,
                        Task::AddingLayers(_) => "adding layers…".to_string(),
                        Task::Exporting { fraction, .. } => {
                            format!("exporting… {:.0} %", fraction * 100.0)
                        }
                        Task::Registering { progress, .. } => progress
                            .as_ref()
                            .map_or("registering…".into(), Progress::describe),
                    });
                }
            }
            if let (None, Some(notice)) = (&self.error, &self.notice) {
                ui.separator();
                ui.label(notice);
            }
            if let Some(text) = self.hover_text() {
                ui.separator();
                ui.label(text);
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(format!("UI {:.1} ms/frame", self.frame_ms));
                let (warmup, steps) = self.warmup_status();
                if !warmup.is_empty() {
                    ui.separator();
                    let label = ui.label(warmup);
                    if !steps.is_empty() {
                        label.on_hover_text(steps);
                    }
                }
            });
        });
    }
}

/// The visible extra layers the compositor draws: the first [`MAX_OVERLAYS`], in order.
fn drawn_overlays(extras: &[ExtraLayer]) -> Vec<(Arc<Pyramid>, OverlaySettings)> {
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
                },
            )
        })
        .collect()
}

/// The events received so far, and the result when the job ended.
fn drain<T: Send + 'static>(job: &JobHandle<T>) -> Option<Result<T>> {
    drain_progress(job, &mut None)
}

/// As [`drain`], keeping the latest progress report in `progress`.
fn drain_progress<T: Send + 'static>(
    job: &JobHandle<T>,
    progress: &mut Option<Progress>,
) -> Option<Result<T>> {
    for event in job.events.try_iter() {
        match event {
            Event::Finished(result) => return Some(result),
            Event::Progress(p) => *progress = Some(p),
            Event::Log(_) => {}
        }
    }
    None
}

/// The loading job's fraction and what it is doing, for the viewer and the status bar.
fn loading_text(progress: Option<&Progress>) -> (f32, String) {
    let Some(p) = progress else {
        return (0.0, "loading…".into());
    };
    let doing = match p.stage {
        crate::job::Stage::Pyramid => "loading: building the display pyramids",
        _ if p.fraction > 0.5 => "loading: the extra layers",
        _ => "loading: reading the images",
    };
    (p.fraction, doing.into())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// Warps each extra layer that follows the moving image (`(name, (file, page))`) through the
/// registration's `transform` onto the `[width, height]` reference grid, at full resolution
/// and every channel, as `warped-<name>.tif` in `folder`; returns how many were written.
fn warp_following_layers(
    layers: &[(String, (PathBuf, usize))],
    transform: &Path,
    [width, height]: [usize; 2],
    folder: &Path,
    cancel: &crate::job::CancelToken,
) -> Result<usize> {
    if layers.is_empty() {
        return Ok(0);
    }
    let file = crate::transform::TransformFile::load(transform)?;
    let t = file.build(transform.parent().unwrap_or(Path::new(".")))?;
    // Consecutive layers from one file (its pages, in load order) share one read.
    let mut loaded: Option<(&Path, Vec<crate::raster::AnyImage>)> = None;
    for (name, (path, page)) in layers {
        if loaded.as_ref().is_none_or(|(p, _)| *p != path.as_path()) {
            loaded = Some((path, io::load_layers(path)?));
        }
        let (_, pages) = loaded.as_ref().expect("just loaded");
        let Some(image) = pages.get(*page) else {
            return Err(Error::InvalidArgument(format!(
                "{} has no page {} any more",
                path.display(),
                page + 1
            )));
        };
        let stem: String = name
            .trim_end_matches(".tif")
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        crate::transform::warp::warp_to_tiff(
            &folder.join(format!("warped-{stem}.tif")),
            image,
            t.as_ref(),
            width,
            height,
            crate::transform::warp::Interpolation::Linear,
            cancel,
        )?;
    }
    Ok(layers.len())
}

/// The bundled sample pair (assets/sample, BSD-3-Clause): the reference and the moving image.
const SAMPLE_PAIR: [(&str, &[u8]); 2] = [
    (
        "rat-kidney-he.jpg",
        include_bytes!("../../assets/sample/rat-kidney-he.jpg"),
    ),
    (
        "rat-kidney-pancytokeratin.jpg",
        include_bytes!("../../assets/sample/rat-kidney-pancytokeratin.jpg"),
    ),
];

/// Writes the bundled sample pair into `dir/sample` and returns its paths.
pub fn write_sample_pair(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    let dir = dir.join("sample");
    io::ensure_output_dir(&dir)?;
    let mut paths = Vec::new();
    for (name, bytes) in SAMPLE_PAIR {
        let path = dir.join(name);
        io::write_atomic(&path, |w| {
            w.write_all(bytes).map_err(|e| Error::write(&path, e))
        })?;
        paths.push(path);
    }
    let moving = paths.pop().expect("two files");
    let fixed = paths.pop().expect("two files");
    Ok((fixed, moving))
}

/// Writes a 512 x 512 generated pair into `dir/generated` and returns its paths.
pub fn generate_demo_pair(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    crate::synth::write_generated_pair(&dir.join("generated"), 512, 1)
}

impl eframe::App for AlinifyApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

/// Opens the window, with `files` (fixed, moving) loaded if given.
pub fn run(files: Vec<PathBuf>) -> Result<()> {
    let launched = Instant::now();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Alinify")
            .with_inner_size([1280.0, 800.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "alinify",
        options,
        Box::new(move |cc| {
            let settings: Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                .unwrap_or_default();
            let mut app = AlinifyApp::new(settings)?;
            app.viewer = Viewer::new(cc.wgpu_render_state.clone());
            app.mark_launch(launched);
            app.start_warmup();
            app.open(files);
            Ok(Box::new(app))
        }),
    );
    result.map_err(|e| Error::Internal(format!("the window failed: {e}")))
}
