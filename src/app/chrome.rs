//! The window's chrome: the toolbar, keyboard shortcuts, files dropped on the window, the
//! status bar and the debug panel (F12).

use super::layers::loading_text;
use super::viewer::Layout;
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

    pub(super) fn shortcuts(&mut self, ui: &mut egui::Ui) {
        self.landmark_shortcuts(ui);
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

    pub(super) fn status(&mut self, ui: &mut egui::Ui) {
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
                        Task::Analyzing { fraction, .. } => {
                            format!("computing the QC maps… {:.0} %", fraction * 100.0)
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
