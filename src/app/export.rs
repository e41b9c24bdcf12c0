//! The export: its background job (the engine's [`crate::export::export_session`]), its
//! button and folder chooser, and its progress.

use super::file_chooser::{self, Request};
use super::{AlinifyApp, Task};
use crate::export::{ExportRequest, ExportedRegistration, FollowingLayer};
use crate::job::JobHandle;
use eframe::egui;
use std::path::PathBuf;

/// The export folder's chooser.
const EXPORT_CHOOSER: &str = "export folder";

impl AlinifyApp {
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
        let registration = self.result.as_ref().map(|result| ExportedRegistration {
            files: self.out_dir.path().to_path_buf(),
            transform: result.transform.clone(),
            // Every layer that follows the moving image is warped like it.
            following: layers
                .extras
                .iter()
                .filter(|e| e.follows_moving)
                .map(|e| FollowingLayer {
                    name: e.name.clone(),
                    path: e.source.0.clone(),
                    page: e.source.1,
                })
                .collect(),
        });
        let request = ExportRequest {
            folder,
            scene: self.shared_scene(layers),
            composite: self.composite(),
            registration,
        };
        let job = JobHandle::spawn_woken("alinify-export", self.waker.clone(), move |r| {
            crate::export::export_session(&request, r)
        });
        match job {
            Ok(job) => self.task = Task::Exporting { job, fraction: 0.0 },
            Err(e) => self.error = Some(format!("cannot start the export: {e}")),
        }
    }

    /// Opens the export folder's chooser (Export… and Ctrl+E), when a pair is loaded and
    /// nothing runs.
    pub(super) fn choose_export(&mut self, ctx: &egui::Context) {
        if self.layers.is_none() || self.workspace != super::Workspace::Pair {
            self.notice = Some("load a pair first, then export".into());
        } else if matches!(self.task, Task::Idle) {
            file_chooser::open(
                ctx,
                EXPORT_CHOOSER,
                Request::folder("Export into this folder"),
            );
        }
    }

    /// Export… (a folder chooser) and the export's progress.
    pub(super) fn export_button(&mut self, ui: &mut egui::Ui) {
        let idle = matches!(self.task, Task::Idle);
        if ui
            .add_enabled(idle && self.layers.is_some(), egui::Button::new("Export…"))
            .on_hover_text(
                "the composite at full resolution, and the registration's outputs (Ctrl+E)",
            )
            .clicked()
        {
            self.choose_export(ui.ctx());
        }
        if let Some(folder) = file_chooser::chosen_one(ui.ctx(), EXPORT_CHOOSER) {
            self.export(folder);
        }
        if let Task::Exporting { fraction, .. } = &self.task {
            ui.add(egui::ProgressBar::new(*fraction).text("exporting"));
        }
    }
}
