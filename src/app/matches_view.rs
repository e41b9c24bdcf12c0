//! The Analysis panel's matches view: the loaded pair's feature matches (the same matching as
//! `alinify analyze features` and the registration's feature initialisation) drawn over the
//! side-by-side panes — inliers green, outliers red, deleted ones grey, and on the moving side
//! each match's residual, from where the fit puts its fixed point to where it was matched —
//! with the counts, the fit and the largest residuals. A click selects a match, a right click
//! (or Delete) deletes it, Refit fits the model again to the matches kept.

use super::viewer::{Layout, PaneTool, PointerAt};
use super::{AlinifyApp, Task, View};
use crate::analysis::features::{ImageMatches, MATCH_SIDE, Model};
use crate::compose::WarpGrid;
use crate::io;
use crate::job::JobHandle;
use crate::transform::Transform;
use eframe::egui;

/// Largest residuals listed.
const WORST_LISTED: usize = 5;

/// The matches view's state.
#[derive(Debug, Default)]
pub struct MatchesView {
    /// The last matching of the loaded pair.
    pub outcome: Option<ImageMatches>,
    /// The model fitted.
    pub model: Model,
    /// Whether the matches are drawn over the side-by-side panes.
    pub shown: bool,
    /// The match selected (a click on it).
    pub selected: Option<usize>,
    /// Matches deleted or restored since the last fit.
    pub changed: bool,
}

impl MatchesView {
    /// Deletes match `i` (or restores it, when deleted) and selects it.
    pub fn toggle_deleted(&mut self, i: usize) {
        if let Some(found) = &mut self.outcome
            && let Some(m) = found.matches.get(i)
        {
            let deleted = !m.deleted;
            found.set_deleted(i, deleted);
            self.selected = Some(i);
            self.changed = true;
        }
    }

    /// Fits again to the matches kept; why not, when too few are left.
    pub fn refit(&mut self) -> Result<(), String> {
        let Some(found) = &mut self.outcome else {
            return Ok(());
        };
        found.refit()?;
        self.changed = false;
        Ok(())
    }

    /// The inliers with the largest residuals, largest first.
    fn worst(&self) -> Vec<(usize, f64)> {
        let Some(found) = &self.outcome else {
            return Vec::new();
        };
        let mut rows: Vec<(usize, f64)> = (0..found.matches.len())
            .filter(|&i| found.matches[i].inlier)
            .map(|i| (i, found.residual(i)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows.truncate(WORST_LISTED);
        rows
    }
}

impl AlinifyApp {
    /// Starts matching the loaded pair's features in the background.
    pub fn start_matching(&mut self) {
        let Some((fixed, moving)) = self.pair_paths_when_idle() else {
            return;
        };
        let model = self.matches.model;
        let job = JobHandle::spawn_woken("alinify-matching", self.waker.clone(), move |_| {
            let (f, m) = rayon::join(|| io::load_image(&fixed), || io::load_image(&moving));
            let (f, m) = (f?, m?);
            ImageMatches::compute(&f, &m, MATCH_SIDE, model, 1).map_err(|why| {
                crate::Error::InvalidArgument(format!(
                    "{} and {}: no feature fit: {why}",
                    fixed.display(),
                    moving.display()
                ))
            })
        });
        match job {
            Ok(job) => self.task = Task::Matching(job),
            Err(e) => self.error = Some(format!("cannot start the matching: {e}")),
        }
    }

    /// A finished matching: kept, shown side by side on the pair as loaded.
    pub(super) fn finish_matching(&mut self, found: ImageMatches) {
        self.matches.outcome = Some(found);
        self.matches.selected = None;
        self.matches.changed = false;
        self.show_matches(true);
    }

    /// Shows (side by side, before the registration) or hides the matches.
    fn show_matches(&mut self, shown: bool) {
        self.matches.shown = shown;
        if shown {
            self.settings.layout = Layout::SideBySide;
            self.view = View::Before;
        }
    }

    /// The panel's section: match, the counts and the fit, the selected match, the largest
    /// residuals, refit.
    pub(super) fn matches_section(&mut self, ui: &mut egui::Ui) {
        ui.separator();
        ui.label("Feature matches");
        let idle = matches!(self.task, Task::Idle);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    idle && self.layers.is_some(),
                    egui::Button::new("Match features"),
                )
                .on_hover_text("keypoints on both images, their matches and a robust fit")
                .clicked()
            {
                self.start_matching();
            }
            let model = &mut self.matches.model;
            let label = ui.label("fit");
            egui::ComboBox::from_id_salt("matches model")
                .selected_text(model_name(*model))
                .show_ui(ui, |ui| {
                    for m in [Model::Similarity, Model::Affine] {
                        ui.selectable_value(model, m, model_name(m));
                    }
                })
                .response
                .labelled_by(label.id);
        });
        if let Task::Matching(_) = self.task {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("matching features…");
                if ui.button("Cancel").clicked() {
                    self.cancel();
                }
            });
        }
        let Some(found) = &self.matches.outcome else {
            return;
        };
        let deleted = found.matches.len() - found.kept();
        let (angle, scale, _) = found.transform().rotation_scale_mirror();
        let angle = angle.rem_euclid(360.0);
        let summary = format!(
            "{} and {} keypoints; {} matches, {} inliers{}",
            found.keypoints[0],
            found.keypoints[1],
            found.matches.len(),
            found.inliers(),
            if deleted > 0 {
                format!(", {deleted} deleted")
            } else {
                String::new()
            }
        );
        let fit = format!(
            "rms {:.2} px; rotation {angle:.1}°, scale {scale:.3}{}",
            found.rms_px(),
            if found.mirrored { ", mirrored" } else { "" }
        );
        let selected = self.matches.selected.and_then(|i| {
            let m = found.matches.get(i)?;
            let state = match (m.deleted, m.inlier) {
                (true, _) => "deleted",
                (false, true) => "inlier",
                (false, false) => "outlier",
            };
            Some((
                i,
                m.deleted,
                format!(
                    "match {}: residual {:.2} px, {state}",
                    i + 1,
                    found.residual(i)
                ),
            ))
        });
        let mut shown = self.matches.shown;
        if ui.checkbox(&mut shown, "show side by side").changed() {
            self.show_matches(shown);
        }
        ui.label(summary);
        ui.label(fit);
        let worst = self.matches.worst();
        if !worst.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.weak("largest residuals:");
                for (i, r) in worst {
                    if ui.link(format!("{} ({r:.1} px)", i + 1)).clicked() {
                        self.matches.selected = Some(i);
                    }
                }
            });
        }
        if let Some((i, is_deleted, text)) = selected {
            ui.horizontal(|ui| {
                ui.label(text);
                let label = if is_deleted { "Restore" } else { "Delete" };
                if ui.button(label).clicked() {
                    self.matches.toggle_deleted(i);
                }
            });
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(self.matches.changed, egui::Button::new("Refit"))
                .on_hover_text("fit the model again to the matches kept")
                .clicked()
                && let Err(why) = self.matches.refit()
            {
                self.error = Some(format!("cannot refit: {why}"));
            }
            if ui
                .add_enabled(deleted > 0, egui::Button::new("Restore all"))
                .clicked()
                && let Some(found) = &mut self.matches.outcome
            {
                for i in 0..found.matches.len() {
                    found.set_deleted(i, false);
                }
                self.matches.changed = true;
            }
        });
        ui.weak("click a match to select it; right click or Delete deletes it");
        if self.matches.shown
            && let Some(i) = self.matches.selected
            && ui.input(|i| i.key_pressed(egui::Key::Delete))
            && !ui.ctx().egui_wants_keyboard_input()
            && self
                .matches
                .outcome
                .as_ref()
                .is_some_and(|f| f.matches.get(i).is_some_and(|m| !m.deleted))
        {
            self.matches.toggle_deleted(i);
        }
    }
}

fn model_name(model: Model) -> &'static str {
    match model {
        Model::Similarity => "similarity",
        Model::Affine => "affine",
    }
}

/// The matches as the viewer's tool for one frame: `transform` is the registration the moving
/// pane warps by, when it does.
pub struct MatchesTool<'a> {
    /// The view's state.
    pub view: &'a mut MatchesView,
    /// The registration's transform, when the moving pane shows the image warped.
    pub warp: Option<&'a WarpGrid>,
}

impl MatchesTool<'_> {
    /// Match `i`'s point on `pane`'s side, in that pane's view frame.
    fn view_point(&self, found: &ImageMatches, pane: usize, i: usize) -> [f64; 2] {
        let f = found.fixed_point(i);
        if pane == 0 {
            return f;
        }
        self.in_moving_pane(found.moving_point(i), f)
    }

    /// A moving-image point in the moving pane's view frame (pulled back through the
    /// registration when the pane shows the moving image warped; `near` starts the search).
    fn in_moving_pane(&self, m: [f64; 2], near: [f64; 2]) -> [f64; 2] {
        super::landmarks::pull_back(self.warp.map(|t| t as &dyn Transform), m, near)
    }

    /// The match nearest the pointer on its pane's side, within the pick radius.
    fn picked(&self, pointer: PointerAt) -> Option<usize> {
        let found = self.view.outcome.as_ref()?;
        (0..found.matches.len())
            .map(|i| {
                let v = self.view_point(found, pointer.pane, i);
                (i, (v[0] - pointer.at[0]).hypot(v[1] - pointer.at[1]))
            })
            .filter(|&(_, d)| d <= pointer.radius)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

impl PaneTool for MatchesTool<'_> {
    fn click(&mut self, pointer: PointerAt) {
        self.view.selected = self.picked(pointer);
    }

    fn secondary_click(&mut self, pointer: PointerAt) {
        if let Some(i) = self.picked(pointer) {
            self.view.toggle_deleted(i);
        }
    }

    fn drag_start(&mut self, _pointer: PointerAt) -> bool {
        false
    }

    fn drag_to(&mut self, _pointer: PointerAt) {}

    fn drag_end(&mut self) {}

    fn paint(
        &self,
        painter: &egui::Painter,
        pane: usize,
        to_screen: &dyn Fn([f64; 2]) -> egui::Pos2,
    ) {
        let Some(found) = &self.view.outcome else {
            return;
        };
        let inlier = egui::Color32::from_rgb(60, 230, 90);
        let outlier = egui::Color32::from_rgb(255, 70, 60);
        let deleted = egui::Color32::from_gray(150);
        for (i, m) in found.matches.iter().enumerate() {
            let colour = match (m.deleted, m.inlier) {
                (true, _) => deleted,
                (false, true) => inlier,
                (false, false) => outlier,
            };
            let at = to_screen(self.view_point(found, pane, i));
            if pane == 1 && !m.deleted {
                // The residual: from where the fit puts the fixed point to the match.
                let predicted = self.in_moving_pane(found.predicted(i), found.fixed_point(i));
                painter.line_segment([to_screen(predicted), at], egui::Stroke::new(1.0, colour));
            }
            painter.circle_filled(at, 3.0, colour);
            if self.view.selected == Some(i) {
                painter.circle_stroke(
                    at,
                    7.0,
                    egui::Stroke::new(2.0, egui::Color32::from_rgb(255, 230, 0)),
                );
            }
        }
    }
}
