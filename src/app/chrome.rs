//! The window's chrome: the toolbar, files dropped on the window, the status bar, the error
//! message and the debug panel (F12).

use super::layers::loading_text;
use super::{AlinifyApp, Task, Workspace, file_name};
use crate::job::Progress;
use eframe::egui;
use std::path::PathBuf;

impl AlinifyApp {
    pub(super) fn debug_panel(&mut self, ui: &mut egui::Ui) {
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

    pub(super) fn dropped_files(&mut self, ui: &mut egui::Ui) {
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

    pub(super) fn toolbar(&mut self, ui: &mut egui::Ui) {
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
            if ui
                .button("Open pair…")
                .on_hover_text("the fixed image, then the moving one (Ctrl+O)")
                .clicked()
            {
                self.choose_pair(ui.ctx());
            }
            self.pair_choosers(ui.ctx());
            self.sample_buttons(ui);
            ui.toggle_value(&mut self.show_debug, "Debug")
                .on_hover_text("frame times, warmup steps (F12)");
            ui.toggle_value(&mut self.show_help, "Help")
                .on_hover_text("the keyboard shortcuts (F1 or ?)");
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

    /// Writes a new error to stderr (once), for logs and for whoever started the app from a
    /// terminal.
    pub(super) fn report_error(&mut self) {
        if self.error != self.reported_error {
            if let Some(error) = &self.error {
                eprintln!("alinify: error: {error}");
            }
            self.reported_error = self.error.clone();
        }
    }

    /// The error, if any, in the middle of the window until the person dismisses it.
    pub(super) fn error_window(&mut self, ctx: &egui::Context) {
        let Some(error) = &self.error else { return };
        let mut dismissed = false;
        egui::Window::new("Error")
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                ui.set_max_width(480.0);
                ui.colored_label(ui.visuals().error_fg_color, error);
                ui.add_space(6.0);
                dismissed =
                    ui.button("Dismiss").clicked() || ui.input(|i| i.key_pressed(egui::Key::Enter));
            });
        if dismissed {
            self.error = None;
        }
    }

    pub(super) fn status(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.error {
                Some(_) => {
                    ui.colored_label(ui.visuals().error_fg_color, "error (see the message)");
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
                        Task::Analyzing { fraction, .. } => {
                            format!("computing the QC maps… {:.0} %", fraction * 100.0)
                        }
                        Task::Matching(_) => "matching features…".to_string(),
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
                if let (Some(camera), Some(_)) = (&self.viewer.camera, &self.layers) {
                    ui.separator();
                    // 100 %: one image pixel per screen point (the `1` key).
                    ui.label(format!("zoom {}", zoom_percent(camera.step)));
                }
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

/// A zoom for the status bar: `step` image pixels per screen point as a percentage, with the
/// precision small zooms need.
fn zoom_percent(step: f64) -> String {
    let percent = 100.0 / step.max(1e-9);
    match percent {
        p if p >= 10.0 => format!("{p:.0} %"),
        p if p >= 1.0 => format!("{p:.1} %"),
        p => format!("{p:.2} %"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_zoom_reads_as_a_percentage_with_enough_digits() {
        assert_eq!(super::zoom_percent(1.0), "100 %");
        assert_eq!(super::zoom_percent(0.25), "400 %");
        assert_eq!(super::zoom_percent(40.0), "2.5 %");
        assert_eq!(super::zoom_percent(500.0), "0.20 %");
    }
}
