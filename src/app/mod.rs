//! The desktop application (eframe/egui): load a pair, choose Fast or Accurate, watch the
//! registration, and judge it with overlays.
//!
//! State is split by lifetime (eframe_template): [`Settings`] persist between launches, while
//! jobs, textures and previews live only in the running app. Long work runs on the engine's
//! [`crate::job::JobHandle`]s, whose waker repaints the window when an event arrives; the UI
//! never blocks. One module per panel or concern, each with its logic apart from its drawing:
//!
//! - [`jobs`]: the background task and the warmup, their events and cancel;
//! - [`layers`]: opening and loading pairs and extra layers, the layers panel;
//! - [`registration`]: starting a run, its result, the registration panel;
//! - [`analysis`]: the Analysis panel (quality maps, Jacobian, heatmap layer, flags);
//! - [`landmarks`]: the landmark mode (placing and editing pairs, their errors, files, the
//!   thin-plate and guided jobs, annotations);
//! - [`parameters`]: the preset and key settings (the engine's [`crate::register::Settings`]);
//! - [`metric_plot`]: the live metric plot (similarity per stage, levels marked);
//! - [`export`]: the export job and its button;
//! - [`sample`]: the bundled sample pair and the generated pair;
//! - [`central`]: the central area (viewer, loading progress, start screen);
//! - [`viewer`]: the viewer widget (camera, panes, GPU or CPU composition);
//! - [`batch_panel`]: the Batch tab;
//! - [`shortcuts`]: the list of keyboard shortcuts, reading them from key events, the help
//!   overlay (F1);
//! - [`file_chooser`]: the in-window file chooser (and the system dialog from it);
//! - [`chrome`]: toolbar, dropped files, status bar, the error message and debug panel.

pub mod analysis;
pub mod batch_panel;
mod central;
mod chrome;
pub mod display_controls;
mod export;
pub mod file_chooser;
pub mod history;
pub mod jobs;
pub mod landmarks;
pub mod layers;
pub mod matches_view;
pub mod method_compare;
pub mod metric_plot;
pub mod network_view;
pub mod parameters;
pub mod registration;
pub mod sample;
mod scale_bar;
mod shortcuts;
#[cfg(test)]
mod tests;
pub mod viewer;

use eframe::egui;

use crate::compose::{Blend, Composite};
use crate::io::file_name;
use crate::job::Waker;
use crate::register::Mode;
use crate::{Error, Result};
use batch_panel::{BatchAction, BatchPanel};
pub use jobs::{Task, WarmupState};
pub use layers::{ExtraLayer, Layers, Opening};
use parameters::Parameters;
pub use registration::RunResult;
pub use sample::{generate_demo_pair, write_sample_pair};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use viewer::{Layout, Viewer};

/// Settings that persist between launches.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Fast or Accurate (the toggle's last position; accurate by default, as everywhere).
    pub mode: Mode,
    /// How layers are combined on screen.
    pub composite: Composite,
    /// One blended pane, or the pair side by side.
    pub layout: Layout,
    /// The registration's preset and key settings (the pair's and the batch's).
    pub parameters: Parameters,
    /// The pairs loaded last, most recent first (`[fixed, moving]`).
    pub recent_pairs: Vec<[PathBuf; 2]>,
}

/// How many recent pairs are kept.
const RECENT_PAIRS: usize = 6;

impl Settings {
    /// Puts `pair` first among the recent pairs.
    pub fn remember_pair(&mut self, pair: [PathBuf; 2]) {
        self.recent_pairs.retain(|p| p != &pair);
        self.recent_pairs.insert(0, pair);
        self.recent_pairs.truncate(RECENT_PAIRS);
    }
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

/// While something runs, the window still redraws this often (elapsed times, the warmup's
/// clock) even when no event arrives; events themselves wake it at once.
const BUSY_REFRESH: Duration = Duration::from_millis(250);

/// The application.
pub struct AlinifyApp {
    /// One pair or a batch.
    pub workspace: Workspace,
    /// The batch panel's state (its batch keeps running while the pair workspace shows).
    pub batch: BatchPanel,
    /// The settings in use (persisted, except while the sample pair borrows a preset).
    pub settings: Settings,
    /// The person's own mode and parameters while the sample pair is loaded with its preset:
    /// they come back with the next pair, and they are what is saved.
    pub own_choice: Option<(Mode, Parameters)>,
    /// The pair, once loaded.
    pub layers: Option<Layers>,
    /// A fixed image chosen (or given alone) whose moving image is still to be chosen.
    pub pending_fixed: Option<PathBuf>,
    /// Open the moving image's chooser in the next frame.
    ask_moving: bool,
    /// Background work.
    pub task: Task,
    /// Which layers are shown.
    pub view: View,
    /// The last registration's result.
    pub result: Option<RunResult>,
    /// Every registration of the loaded pair, for the Analysis panel's comparison.
    pub method_runs: Vec<method_compare::MethodRun>,
    /// The method the comparison runs next.
    pub compare_mode: crate::register::Mode,
    /// The Analysis panel: maps of the current registration and how they are shown.
    pub analysis: analysis::Analysis,
    /// The Analysis panel's feature matches.
    pub matches: matches_view::MatchesView,
    /// The landmark mode's pairs and annotations.
    pub landmarks: landmarks::LandmarkEditor,
    /// Undo and redo of layer changes.
    pub layer_history: history::History<layers::LayerState>,
    /// Why the running registration is on the CPU when the app chose that (the warmup).
    cpu_reason: Option<String>,
    /// The metric reports of the running (or last) registration, for its plot.
    pub metric_history: metric_plot::MetricHistory,
    /// The last error, shown in the middle of the window until dismissed (or until the next
    /// action replaces it), and written to stderr once.
    pub error: Option<String>,
    /// The error last written to stderr, so that each is written once.
    reported_error: Option<String>,
    /// A note about the last action that is not an error (e.g. which backend a run chose).
    pub notice: Option<String>,
    /// The warmup thread's state.
    pub warmup: WarmupState,
    /// Registration outputs (warped.tif, transform.json, report.json) of this session.
    pub out_dir: crate::io::ScratchDir,
    /// Repaints the window when a job sends an event (set from the first frame's context).
    waker: Option<Waker>,
    /// When the window was asked for, and the time to its first frame (milliseconds).
    launched: Option<(Instant, Option<f64>)>,
    /// The debug panel (F12) is open.
    pub show_debug: bool,
    /// The shortcuts overlay (F1 or `?`) is open.
    pub show_help: bool,
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
        let out_dir = crate::io::ScratchDir::create("alinify-session-", "a session folder")?;
        Ok(Self {
            workspace: Workspace::Pair,
            batch: BatchPanel::default(),
            settings,
            own_choice: None,
            layers: None,
            pending_fixed: None,
            ask_moving: false,
            task: Task::Idle,
            view: View::Before,
            result: None,
            method_runs: Vec::new(),
            compare_mode: crate::register::Mode::Demons,
            analysis: analysis::Analysis::default(),
            matches: matches_view::MatchesView::default(),
            landmarks: landmarks::LandmarkEditor::default(),
            layer_history: history::History::default(),
            cpu_reason: None,
            metric_history: metric_plot::MetricHistory::default(),
            error: None,
            reported_error: None,
            notice: None,
            warmup: WarmupState::NotStarted,
            out_dir,
            waker: None,
            launched: None,
            show_debug: false,
            show_help: false,
            viewer: Viewer::new(None),
            hover: None,
            frame_ms: 0.0,
            flicker_at: None,
        })
    }

    /// The loaded pair's paths, for a background job on them: `None` when no pair is loaded
    /// (with an error saying so) or another task is running; the last error is cleared.
    fn pair_paths_when_idle(&mut self) -> Option<(PathBuf, PathBuf)> {
        let Some(layers) = &self.layers else {
            self.error = Some("load a pair first".into());
            return None;
        };
        if !matches!(self.task, Task::Idle) {
            return None;
        }
        let paths = (layers.fixed_path.clone(), layers.moving_path.clone());
        self.error = None;
        Some(paths)
    }

    /// Repaints of `ctx` become the jobs' waker.
    pub fn set_waker(&mut self, ctx: &egui::Context) {
        let ctx = ctx.clone();
        self.waker = Some(Arc::new(move || ctx.request_repaint()));
    }

    /// The settings to save: the person's own choice, not a preset the sample pair borrowed.
    pub fn persisted(&self) -> Settings {
        let mut settings = self.settings.clone();
        if let Some((mode, parameters)) = &self.own_choice {
            settings.mode = *mode;
            settings.parameters = parameters.clone();
        }
        settings
    }

    /// The whole window's contents.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let started = Instant::now();
        if self.waker.is_none() {
            self.set_waker(ui.ctx());
        }
        if let Some((at, first @ None)) = &mut self.launched {
            let ms = at.elapsed().as_secs_f64() * 1000.0;
            *first = Some(ms);
            eprintln!("alinify: window interactive {ms:.0} ms after launch");
        }
        self.poll();
        self.poll_warmup();
        self.report_error();
        self.dropped_files(ui);
        self.shortcuts(ui);
        self.layer_undo(ui.ctx());
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        if self.show_debug {
            self.debug_panel(ui);
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status(ui));
        self.error_window(ui.ctx());
        self.help_window(ui.ctx());
        match self.workspace {
            Workspace::Pair => {
                self.batch.poll();
                egui::Panel::left("controls")
                    .resizable(false)
                    .show(ui, |ui| self.controls(ui));
                egui::CentralPanel::default().show(ui, |ui| self.central(ui));
            }
            Workspace::Batch => {
                let waker = self.waker.clone();
                let settings = &mut self.settings;
                let action = egui::CentralPanel::default()
                    .show(ui, |ui| {
                        self.batch
                            .show(ui, &mut settings.parameters, &mut settings.mode, waker)
                    })
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
        {
            ui.ctx().request_repaint_after(BUSY_REFRESH);
        }
        if self.settings.composite.blend == Blend::Flicker {
            ui.ctx().request_repaint_after(central::FLICKER_PERIOD);
        }
        let ms = started.elapsed().as_secs_f32() * 1000.0;
        self.frame_ms = if self.frame_ms == 0.0 {
            ms
        } else {
            0.9 * self.frame_ms + 0.1 * ms
        };
    }

    /// The left panel: the registration, the analysis, the layers, then the export.
    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.set_width(240.0);
        egui::ScrollArea::vertical().show(ui, |ui| {
            self.registration_panel(ui);
            ui.separator();
            self.analysis_panel(ui);
            self.matches_section(ui);
            self.method_comparison(ui);
            ui.separator();
            self.landmark_panel(ui);
            ui.separator();
            self.layers_panel(ui);
            ui.separator();
            self.export_button(ui);
        });
    }

    /// Marks the moment the window was asked for, to report launch-to-interactive.
    pub fn mark_launch(&mut self, at: Instant) {
        self.launched = Some((at, None));
    }

    /// Milliseconds from launch to the first frame, once it was drawn.
    pub fn launch_to_interactive_ms(&self) -> Option<f64> {
        self.launched.and_then(|(_, ms)| ms)
    }
}

/// How long a closing window waits for its background work to stop after cancelling it.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

impl Drop for AlinifyApp {
    /// Cancels the background work and waits for it (at most [`CLOSE_WAIT`]) before the session
    /// folder is removed: a job still writing there would leave files or make it again, and an
    /// export cut short removes its partial file next to the person's output.
    fn drop(&mut self) {
        let deadline = Instant::now() + CLOSE_WAIT;
        let task = self.task.cancel_and_wait_until(deadline);
        let batch = self.batch.cancel_and_wait_until(deadline);
        let warmup = match &self.warmup {
            WarmupState::Running { job, .. } => job.cancel_and_wait_until(deadline),
            _ => true,
        };
        if !(task && batch && warmup) {
            eprintln!(
                "alinify: background work did not stop within {} s of closing",
                CLOSE_WAIT.as_secs()
            );
        }
    }
}

impl eframe::App for AlinifyApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.persisted());
    }
}

/// Makes SIGINT, SIGTERM and SIGHUP (Ctrl-C in the terminal, `kill`, a logout) close the window
/// as its close button does: the settings are saved and the session folder is removed. A second
/// signal, when the first could not close it, ends the process at once.
fn close_on_termination_signals(ctx: &egui::Context) {
    let ctx = ctx.clone();
    let signalled = std::sync::atomic::AtomicBool::new(false);
    // Without a handler a signal still ends the process, only without the clean-up.
    let _ = ctrlc::set_handler(move || {
        if signalled.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        ctx.request_repaint();
    });
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
            close_on_termination_signals(&cc.egui_ctx);
            app.set_waker(&cc.egui_ctx);
            app.viewer = Viewer::new(cc.wgpu_render_state.clone());
            app.mark_launch(launched);
            app.start_warmup();
            app.open(files);
            Ok(Box::new(app))
        }),
    );
    result.map_err(|e| Error::Internal(format!("the window failed: {e}")))
}
