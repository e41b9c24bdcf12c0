//! The central area: the viewer over the pair, the loading progress while a pair loads, or
//! the start screen; and what the cursor points at.

use super::landmarks::LandmarkTool;
use super::layers::loading_text;
use super::matches_view::MatchesTool;
use super::viewer::{Layout, PaneTool};
use super::{AlinifyApp, Task, View};
use crate::compose::{Blend, Pyramid};
use eframe::egui;
use std::time::{Duration, Instant};

/// How long each layer shows in the flicker blend.
pub const FLICKER_PERIOD: Duration = Duration::from_millis(500);

impl AlinifyApp {
    pub(super) fn central(&mut self, ui: &mut egui::Ui) {
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
            } else if let Some(fixed) = &self.pending_fixed {
                let name = super::file_name(fixed);
                ui.vertical_centered(|ui| {
                    ui.add_space((ui.available_height() / 2.0 - 30.0).max(0.0));
                    ui.label(format!(
                        "Fixed image: {name}. Now the moving image (or drop it here):"
                    ));
                    if ui.button("Choose the moving image…").clicked() {
                        self.ask_moving = true;
                    }
                });
            } else {
                ui.vertical_centered(|ui| {
                    ui.add_space((ui.available_height() / 2.0 - 30.0).max(0.0));
                    ui.label("Open a pair (Ctrl+O, or drop two images here), or try one:");
                    ui.horizontal(|ui| {
                        // Centre the two buttons.
                        ui.add_space((ui.available_width() - 220.0).max(0.0) / 2.0);
                        self.sample_buttons(ui);
                    });
                    self.recent_pairs(ui);
                });
            }
            return;
        };
        if self.settings.composite.blend == Blend::Flicker {
            let now = Instant::now();
            let at = *self.flicker_at.get_or_insert(now);
            if now - at >= FLICKER_PERIOD {
                self.settings.composite.flicker_top = !self.settings.composite.flicker_top;
                self.flicker_at = Some(now);
            }
        }
        let scene = self.shared_scene(layers);
        let composite = self.composite();
        // The landmark mode places points side by side, where each pane shows one image; else
        // the feature matches, when shown, take the pointer there.
        let side_by_side = self.settings.layout == Layout::SideBySide;
        let mut landmark_tool = (self.landmarks.active && side_by_side).then(|| LandmarkTool {
            editor: &mut self.landmarks,
            transform: layers.warp.as_deref(),
            warped: scene.warp.is_some(),
        });
        let mut matches_tool = (landmark_tool.is_none()
            && side_by_side
            && self.matches.shown
            && self.matches.outcome.is_some())
        .then(|| MatchesTool {
            view: &mut self.matches,
            warp: layers.warp.as_deref().filter(|_| scene.warp.is_some()),
        });
        let tool: Option<&mut dyn PaneTool> = match (&mut landmark_tool, &mut matches_tool) {
            (Some(t), _) => Some(t),
            (None, Some(t)) => Some(t),
            (None, None) => None,
        };
        self.hover = self
            .viewer
            .show(ui, &scene, &composite, self.settings.layout, tool);
        self.draw_flags(ui);
        if let (Some(camera), Some(pane)) = (self.viewer.camera, self.viewer.last_panes.first()) {
            super::scale_bar::draw(ui, pane.rect, camera.step, layers.pixel_size_um);
        }
    }

    /// The recent pairs whose files are still there, a click loading one.
    fn recent_pairs(&mut self, ui: &mut egui::Ui) {
        let recent: Vec<[std::path::PathBuf; 2]> = self
            .settings
            .recent_pairs
            .iter()
            .filter(|[f, m]| f.is_file() && m.is_file())
            .cloned()
            .collect();
        if recent.is_empty() {
            return;
        }
        ui.add_space(12.0);
        ui.weak("recent pairs");
        for [fixed, moving] in recent {
            let label = format!(
                "{}  ·  {}",
                super::file_name(&fixed),
                super::file_name(&moving)
            );
            let hover = format!("fixed {}\nmoving {}", fixed.display(), moving.display());
            if ui.button(label).on_hover_text(hover).clicked() {
                self.load(fixed, moving);
            }
        }
    }

    /// Text for the cursor's position: coordinates and the layers' values there.
    pub(super) fn hover_text(&self) -> Option<String> {
        let (p, layers) = (self.hover?, self.layers.as_ref()?);
        // Samples as stored (0..255 or 0..65535), three for an RGB layer.
        let value = |pyramid: &Pyramid, q: [f64; 2]| {
            let level = &pyramid.levels[0];
            let unit = level.samples.max_value();
            crate::compose::sample(level, 1.0, q[0].round(), q[1].round()).map_or("-".into(), |v| {
                match level.is_rgb() {
                    true => format!("{:.0}/{:.0}/{:.0}", v[0] * unit, v[1] * unit, v[2] * unit),
                    false => format!("{:.0}", v[0] * unit),
                }
            })
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
}
