//! Registering the loaded pair: starting the run with the chosen settings, taking its result
//! (the transform stays in memory, for the viewer and the export), and the registration panel.

use super::metric_plot::MetricHistory;
use super::{AlinifyApp, Task, WarmupState};
use crate::compose::WarpGrid;
use crate::job::{JobHandle, Progress};
use crate::register::{Backend, Mode, RegisterOptions, RegisterRequest, RegisterSummary};
use crate::transform::Transform;
use eframe::egui;
use std::sync::Arc;

/// What the last registration gave.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// NCC before and after.
    pub ncc: [f64; 2],
    /// Seconds of the whole run.
    pub seconds: f64,
    /// `cpu` or `gpu`, and the adapter.
    pub backend: String,
    /// Why the run was on the CPU, when it was.
    pub cpu_reason: Option<String>,
    /// Where the run started (report.json's `init`), in a line, and why in full; `None` for
    /// the landmarks mode.
    pub start: Option<(String, String)>,
    /// The settings the run used.
    pub options: RegisterOptions,
    /// The transform found, as the run evaluated it (the export warps layers through it).
    pub transform: Arc<dyn Transform>,
}

impl AlinifyApp {
    /// Starts a registration of the loaded pair in the chosen mode.
    pub fn run(&mut self) {
        self.start_registration(self.settings.mode, None, |_| {});
    }

    /// Starts a registration of the loaded pair in `mode` with the parameters shown, guided by
    /// (or, in the landmarks mode, fitted to) `landmarks` (fixed and moving files) when given;
    /// `adjust` sets what the parameters do not hold.
    pub(super) fn start_registration(
        &mut self,
        mode: Mode,
        landmarks: Option<[std::path::PathBuf; 2]>,
        adjust: impl FnOnce(&mut RegisterOptions),
    ) {
        let Some(layers) = &self.layers else {
            self.error = Some("load a fixed and a moving image first".into());
            return;
        };
        if !matches!(self.task, Task::Idle) {
            return;
        }
        self.error = None;
        self.notice = None;
        // The last run's figures must not read as this run's.
        self.result = None;
        self.cpu_reason = None;
        let mut options = match self.settings.parameters.options(mode) {
            Ok(options) => options,
            Err(e) => {
                self.error = Some(format!("parameters: {e}"));
                return;
            }
        };
        adjust(&mut options);
        self.metric_history = MetricHistory::new(options.mode, options.metric);
        if matches!(self.warmup, WarmupState::Running { .. })
            && matches!(options.mode, Mode::Fast | Mode::Demons)
        {
            options.backend = Backend::Cpu;
            let reason = "the warmup is still running: this run uses the CPU instead of waiting";
            self.notice = Some(reason.into());
            self.cpu_reason = Some(reason.into());
        }
        let request = RegisterRequest {
            fixed: layers.fixed_path.clone(),
            moving: layers.moving_path.clone(),
            out_dir: self.out_dir.path().to_path_buf(),
            field: None,
            export_elastix: None,
            fixed_mask: None,
            moving_mask: None,
            landmarks,
            options,
        };
        let job = JobHandle::spawn_woken("alinify-register", self.waker.clone(), move |r| {
            let summary = crate::register::register_files(&request, r)?;
            let fixed = [summary.report.fixed.width, summary.report.fixed.height];
            let grid =
                WarpGrid::of_registration(summary.mapping.as_ref(), &summary.transform, fixed);
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

    /// Takes a finished registration: its figures, and its transform for the After view.
    pub(super) fn finish_registration(&mut self, summary: RegisterSummary, grid: WarpGrid) {
        let r = &summary.report;
        self.method_runs
            .push(super::method_compare::MethodRun::of(&summary));
        self.result = Some(RunResult {
            ncc: [r.ncc_before, r.ncc_after],
            seconds: r.seconds.total,
            backend: match &r.adapter {
                Some(a) => format!("{} ({a})", r.backend),
                None => r.backend.clone(),
            },
            cpu_reason: (r.backend == "cpu").then(|| match r.options.mode {
                // The warmup, when the app chose the CPU for it; else the fast mode's own
                // reason: no adapter, a software one, a GPU failure, or --backend cpu.
                Mode::Fast | Mode::Demons => {
                    let reason = self.cpu_reason.take().or(summary.cpu_reason.clone());
                    format!("on the CPU: {}", reason.unwrap_or_default())
                }
                mode => format!("the {mode} mode runs on the CPU"),
            }),
            start: r.init.as_ref().map(|init| {
                let line = match &init.turned_back {
                    Some(turn) => format!(
                        "moving image {turn}: turned back; started from {}",
                        init.chosen
                    ),
                    None => format!("started from {}", init.chosen),
                };
                (line, init.why.clone())
            }),
            options: r.options.clone(),
            transform: summary.mapping,
        });
        if let Some(layers) = &mut self.layers {
            layers.warp = Some(Arc::new(grid));
        }
        // Maps of the previous result no longer hold: recompute them for this one.
        if self.analysis.outcome.take().is_some() {
            self.analysis.follow = true;
        }
    }

    /// The mode toggle, the preset and key settings, Run and Cancel, the progress, the live
    /// metric plot and the result.
    pub(super) fn registration_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Registration");
        let idle = matches!(self.task, Task::Idle);
        let shown = ui.add_enabled_ui(idle, |ui| {
            super::parameters::mode_toggle(ui, &mut self.settings.mode);
            self.settings.parameters.show(ui, &mut self.settings.mode)
        });
        if let Some(e) = shown.inner {
            self.error = Some(e);
        }
        if self.own_choice.is_some() {
            ui.weak("chosen for the sample pair; your own settings return with the next pair");
        }
        ui.horizontal(|ui| {
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
                Some(p) => (p.fraction, bar_text(p)),
                None => (0.0, "starting".into()),
            };
            ui.add(egui::ProgressBar::new(fraction).text(text))
                .on_hover_text(progress.as_ref().map_or(String::new(), Progress::describe));
        }
        if !self.metric_history.is_empty() {
            self.metric_history.show(ui, 130.0);
        }
        if let Some(r) = &self.result {
            ui.label(format!("NCC before {:.4}", r.ncc[0]));
            ui.label(format!("NCC after {:.4}", r.ncc[1]));
            if let Some((line, why)) = &r.start {
                ui.weak(line).on_hover_text(why);
            }
            let time = ui.label(format!("{:.2} s on {}", r.seconds, r.backend));
            if let Some(reason) = &r.cpu_reason {
                time.on_hover_text(reason);
                ui.weak(reason);
            }
        }
    }
}

/// A progress bar's text short enough for the panel: stage, level, iteration and percentage
/// (the whole line, with the metric, is the bar's hover text).
fn bar_text(p: &Progress) -> String {
    let mut text = p.stage.to_string();
    if let Some(level) = p.level {
        text += &format!(" L{level}");
    }
    if let Some(iteration) = p.iteration {
        text += &format!(" it {iteration}");
    }
    format!("{text} · {:.0} %", p.fraction.clamp(0.0, 1.0) * 100.0)
}
