//! Landmark mode: corresponding points placed in the side-by-side view (a click in one pane,
//! its partner in the other; drag to move, right-click or Delete to remove, undo and redo),
//! each pair's error under the current transform, landmark files loaded and saved, the
//! thin-plate spline and the landmark-guided accurate mode run as jobs, and annotations (point
//! lists) shown on their own image and, through the transform, on the other.
//!
//! Points are kept in their own image's pixels. The left pane shows the fixed frame; the right
//! pane the moving image as loaded (Before) or warped into the fixed frame (After), so a point
//! there is `T(p)` of the view point `p`, and a moving point is drawn at `T⁻¹(m)`.

use super::file_chooser::{self, Request};
use super::viewer::{Layout, PaneTool, PointerAt};
use super::{AlinifyApp, Task};
use crate::analysis::landmarks::{LandmarkError, TreReport, landmark_errors};
use crate::compose::WarpGrid;
use crate::io::landmarks::{
    LandmarkFormat, Side, read_landmarks, write_landmarks, write_pairs_bigwarp,
};
use crate::register::Mode;
use crate::transform::invert::invert_point;
use crate::transform::{Identity, Transform};
use eframe::egui;
use std::path::{Path, PathBuf};

/// A landmark in the fixed image and its partner in the moving image; one side is missing
/// while the person has placed only one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LandmarkPair {
    /// In fixed-image pixels.
    pub fixed: Option<[f64; 2]>,
    /// In moving-image pixels.
    pub moving: Option<[f64; 2]>,
}

impl LandmarkPair {
    fn side(&self, side: Side) -> Option<[f64; 2]> {
        match side {
            Side::Fixed => self.fixed,
            Side::Moving => self.moving,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Option<[f64; 2]> {
        match side {
            Side::Fixed => &mut self.fixed,
            Side::Moving => &mut self.moving,
        }
    }
}

/// A point list loaded on one image (e.g. an outline traced in QuPath), shown on both.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// The file name, for the list.
    pub name: String,
    /// The image whose pixels the points are in.
    pub side: Side,
    /// The points.
    pub points: Vec<[f64; 2]>,
    /// Drawn or not.
    pub visible: bool,
}

/// The landmark mode's state.
#[derive(Debug, Clone)]
pub struct LandmarkEditor {
    /// Clicks in the viewer place landmarks (the view shows the pair side by side).
    pub active: bool,
    /// The pairs, numbered from 1 in the list and the panes.
    pub pairs: Vec<LandmarkPair>,
    /// The pair picked by a click (Delete removes it).
    pub selected: Option<usize>,
    /// The annotations.
    pub annotations: Vec<Annotation>,
    /// The file field of the load and save buttons.
    pub path: String,
    /// The thin-plate spline's smoothing λ.
    pub smoothing: f64,
    /// The guided accurate mode's landmark weight.
    pub weight: f64,
    pub(super) undo: Vec<Vec<LandmarkPair>>,
    pub(super) redo: Vec<Vec<LandmarkPair>>,
    /// The point being dragged.
    dragging: Option<(usize, Side)>,
}

impl Default for LandmarkEditor {
    fn default() -> Self {
        let options = crate::register::RegisterOptions::default();
        Self {
            active: false,
            pairs: Vec::new(),
            selected: None,
            annotations: Vec::new(),
            path: String::new(),
            smoothing: options.landmark_smoothing,
            weight: options.landmark_weight,
            undo: Vec::new(),
            redo: Vec::new(),
            dragging: None,
        }
    }
}

/// Newton's tolerance for drawing moving points in the warped view (pixels).
const DRAW_TOLERANCE: f64 = 0.01;

impl LandmarkEditor {
    /// Keeps the pairs as they are for undo (before a change).
    fn remember(&mut self) {
        self.undo.push(self.pairs.clone());
        self.redo.clear();
    }

    /// Places a point on `side`: it completes the oldest pair that lacks that side, or starts a
    /// new pair.
    pub fn place(&mut self, side: Side, point: [f64; 2]) {
        self.remember();
        let index = match self.pairs.iter().position(|p| p.side(side).is_none()) {
            Some(i) => i,
            None => {
                self.pairs.push(LandmarkPair::default());
                self.pairs.len() - 1
            }
        };
        *self.pairs[index].side_mut(side) = Some(point);
        self.selected = Some(index);
    }

    /// Removes pair `index`.
    pub fn delete(&mut self, index: usize) {
        if index < self.pairs.len() {
            self.remember();
            self.pairs.remove(index);
            self.selected = None;
        }
    }

    /// Takes back the last change; `false` when there is none.
    pub fn undo(&mut self) -> bool {
        let Some(before) = self.undo.pop() else {
            return false;
        };
        self.redo.push(std::mem::replace(&mut self.pairs, before));
        self.selected = None;
        true
    }

    /// Makes the last undone change again; `false` when there is none.
    pub fn redo(&mut self) -> bool {
        let Some(after) = self.redo.pop() else {
            return false;
        };
        self.undo.push(std::mem::replace(&mut self.pairs, after));
        self.selected = None;
        true
    }

    /// Replaces every pair (a loaded file), as one change.
    fn set_pairs(&mut self, pairs: Vec<LandmarkPair>) {
        self.remember();
        self.pairs = pairs;
        self.selected = None;
    }

    /// Sets one side of the pairs, in order, from `points` (a loaded file), as one change.
    fn set_side(&mut self, side: Side, points: &[[f64; 2]]) {
        let mut pairs = self.pairs.clone();
        pairs.iter_mut().for_each(|p| *p.side_mut(side) = None);
        pairs.resize(pairs.len().max(points.len()), LandmarkPair::default());
        for (pair, &q) in pairs.iter_mut().zip(points) {
            *pair.side_mut(side) = Some(q);
        }
        pairs.retain(|p| p.fixed.is_some() || p.moving.is_some());
        self.set_pairs(pairs);
    }

    /// The complete pairs' points: (fixed, moving), in the list's order.
    pub fn complete(&self) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
        self.pairs
            .iter()
            .filter_map(|p| Some((p.fixed?, p.moving?)))
            .unzip()
    }

    /// Each complete pair's error under `transform` (the identity before a registration) on a
    /// fixed image of `diagonal` pixels, with the pair's index in the list.
    pub fn errors(
        &self,
        transform: Option<&dyn Transform>,
        diagonal: f64,
    ) -> Option<(Vec<(usize, LandmarkError)>, TreReport)> {
        let indices: Vec<usize> = (0..self.pairs.len())
            .filter(|&i| self.pairs[i].fixed.is_some() && self.pairs[i].moving.is_some())
            .collect();
        let (fixed, moving) = self.complete();
        let (errors, report) =
            landmark_errors(&fixed, &moving, transform.unwrap_or(&Identity), diagonal)?;
        Some((indices.into_iter().zip(errors).collect(), report))
    }

    /// Reads `path` into the pairs: both sides from a BigWarp file, else `side`.
    pub fn load(&mut self, path: &Path, side: Side) -> crate::Result<String> {
        let read = read_landmarks(path, side)?;
        let name = super::file_name(path);
        if read.format == LandmarkFormat::BigWarp {
            let other = match side {
                Side::Fixed => Side::Moving,
                Side::Moving => Side::Fixed,
            };
            let others = read_landmarks(path, other)?.points;
            let (fixed, moving) = match side {
                Side::Fixed => (read.points, others),
                Side::Moving => (others, read.points),
            };
            let pairs = fixed
                .iter()
                .zip(&moving)
                .map(|(&f, &m)| LandmarkPair {
                    fixed: Some(f),
                    moving: Some(m),
                })
                .collect::<Vec<_>>();
            let n = pairs.len();
            self.set_pairs(pairs);
            return Ok(format!("{n} landmark pairs from {name}"));
        }
        let n = read.points.len();
        self.set_side(side, &read.points);
        Ok(format!("{n} {} landmarks from {name}", side_name(side)))
    }

    /// Writes `side`'s points of the complete pairs to `path` in ANHIR's layout, or (`side`
    /// `None`) every complete pair as BigWarp reads them.
    pub fn save(&self, path: &Path, side: Option<Side>) -> crate::Result<String> {
        let (fixed, moving) = self.complete();
        if fixed.is_empty() {
            return Err(crate::Error::InvalidArgument(
                "no complete landmark pair to save: place a point in both panes".into(),
            ));
        }
        let name = super::file_name(path);
        match side {
            None => {
                write_pairs_bigwarp(path, &fixed, &moving)?;
                Ok(format!(
                    "{} landmark pairs saved to {name} (BigWarp)",
                    fixed.len()
                ))
            }
            Some(side) => {
                let points = if side == Side::Fixed { &fixed } else { &moving };
                write_landmarks(path, points, LandmarkFormat::Anhir)?;
                Ok(format!(
                    "{} {} landmarks saved to {name} (ANHIR)",
                    points.len(),
                    side_name(side)
                ))
            }
        }
    }

    /// Loads `path` as an annotation on `side`'s image.
    pub fn load_annotation(&mut self, path: &Path, side: Side) -> crate::Result<String> {
        let points = read_landmarks(path, side)?.points;
        let name = super::file_name(path);
        let message = format!(
            "{} points on the {} image from {name}",
            points.len(),
            side_name(side)
        );
        self.annotations.push(Annotation {
            name,
            side,
            points,
            visible: true,
        });
        Ok(message)
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Fixed => "fixed",
        Side::Moving => "moving",
    }
}

/// `T⁻¹(m)` for drawing, from `start` (the identity without a transform).
pub(super) fn pull_back(
    transform: Option<&dyn Transform>,
    m: [f64; 2],
    start: [f64; 2],
) -> [f64; 2] {
    match transform {
        Some(t) => invert_point(t, m, start, DRAW_TOLERANCE).0,
        None => m,
    }
}

/// An annotation's points carried into the other image: fixed points through `T`, moving points
/// through `T⁻¹` (the identity without a transform).
pub fn carried(annotation: &Annotation, transform: Option<&dyn Transform>) -> Vec<[f64; 2]> {
    annotation
        .points
        .iter()
        .map(|&p| match (annotation.side, transform) {
            (Side::Fixed, Some(t)) => t.map_point(p[0], p[1]),
            (Side::Moving, t) => pull_back(t, p, p),
            (Side::Fixed, None) => p,
        })
        .collect()
}

/// The editor as the viewer's tool for one frame: `transform` is the current registration's
/// (what the After view warps by), `warped` whether the right pane shows the moving image
/// through it.
pub struct LandmarkTool<'a> {
    /// The points.
    pub editor: &'a mut LandmarkEditor,
    /// The current transform, if any.
    pub transform: Option<&'a WarpGrid>,
    /// The right pane shows the moving image warped into the fixed frame.
    pub warped: bool,
}

impl LandmarkTool<'_> {
    fn transform(&self) -> Option<&dyn Transform> {
        self.transform.map(|t| t as &dyn Transform)
    }

    /// The side a pane shows, and a view point there in that image's pixels.
    fn image_point(&self, pointer: PointerAt) -> (Side, [f64; 2]) {
        match (pointer.pane, self.transform, self.warped) {
            (0, ..) => (Side::Fixed, pointer.at),
            (_, Some(t), true) => (Side::Moving, t.map(pointer.at)),
            _ => (Side::Moving, pointer.at),
        }
    }

    /// Whether `pane`'s view frame is the fixed image's (the left pane, and the right one when
    /// it shows the moving image warped), rather than the moving image's.
    fn fixed_frame(&self, pane: usize) -> bool {
        pane == 0 || self.warped
    }

    /// Where an image point of `side` is drawn in `pane` (view-frame coordinates); `near` is a
    /// start for pulling a moving point back (its fixed partner).
    fn view_point(&self, pane: usize, side: Side, point: [f64; 2], near: [f64; 2]) -> [f64; 2] {
        let t = self.transform();
        match (self.fixed_frame(pane), side) {
            (true, Side::Fixed) | (false, Side::Moving) => point,
            (true, Side::Moving) => pull_back(t, point, near),
            (false, Side::Fixed) => t.map_or(point, |t| t.map_point(point[0], point[1])),
        }
    }

    /// The pair under the pointer, on the pane's own side.
    fn picked(&self, pointer: PointerAt) -> Option<(usize, Side)> {
        let side = if pointer.pane == 0 {
            Side::Fixed
        } else {
            Side::Moving
        };
        self.editor
            .pairs
            .iter()
            .enumerate()
            .filter_map(|(i, pair)| {
                let q = pair.side(side)?;
                let v = self.view_point(pointer.pane, side, q, pair.fixed.unwrap_or(q));
                Some((i, (v[0] - pointer.at[0]).hypot(v[1] - pointer.at[1])))
            })
            .filter(|&(_, d)| d <= pointer.radius)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| (i, side))
    }
}

impl PaneTool for LandmarkTool<'_> {
    fn click(&mut self, pointer: PointerAt) {
        match self.picked(pointer) {
            Some((i, _)) => self.editor.selected = Some(i),
            None => {
                let (side, point) = self.image_point(pointer);
                self.editor.place(side, point);
            }
        }
    }

    fn secondary_click(&mut self, pointer: PointerAt) {
        if let Some((i, _)) = self.picked(pointer) {
            self.editor.delete(i);
        }
    }

    fn drag_start(&mut self, pointer: PointerAt) -> bool {
        let Some((i, side)) = self.picked(pointer) else {
            return false;
        };
        self.editor.remember();
        self.editor.dragging = Some((i, side));
        self.editor.selected = Some(i);
        true
    }

    fn drag_to(&mut self, pointer: PointerAt) {
        let (_, point) = self.image_point(pointer);
        if let Some((i, side)) = self.editor.dragging
            && let Some(pair) = self.editor.pairs.get_mut(i)
        {
            *pair.side_mut(side) = Some(point);
        }
    }

    fn drag_end(&mut self) {
        self.editor.dragging = None;
    }

    fn paint(
        &self,
        painter: &egui::Painter,
        pane: usize,
        to_screen: &dyn Fn([f64; 2]) -> egui::Pos2,
    ) {
        let t = self.transform();
        let dot = egui::Color32::from_rgb(80, 200, 255);
        for a in self.editor.annotations.iter().filter(|a| a.visible) {
            let own_frame = self.fixed_frame(pane) == (a.side == Side::Fixed);
            let points = if own_frame {
                a.points.clone()
            } else {
                carried(a, t)
            };
            for p in points {
                painter.circle_filled(to_screen(p), 2.5, dot);
            }
        }
        let side = if pane == 0 { Side::Fixed } else { Side::Moving };
        let font = egui::FontId::proportional(13.0);
        for (i, pair) in self.editor.pairs.iter().enumerate() {
            let selected = self.editor.selected == Some(i);
            let colour = match (selected, pair.fixed.is_some() && pair.moving.is_some()) {
                (true, _) => egui::Color32::from_rgb(255, 230, 0),
                (false, true) => egui::Color32::from_rgb(60, 230, 90),
                (false, false) => egui::Color32::from_rgb(255, 140, 0),
            };
            // Where the current transform puts the fixed point on this side, joined to the
            // point placed: the pair's error, drawn.
            if pane == 1
                && let (Some(f), Some(m)) = (pair.fixed, pair.moving)
            {
                let predicted = to_screen(self.view_point(1, Side::Fixed, f, f));
                let placed = to_screen(self.view_point(1, Side::Moving, m, f));
                painter.line_segment([predicted, placed], egui::Stroke::new(1.5, colour));
                painter.circle_stroke(predicted, 3.0, egui::Stroke::new(1.0, colour));
            }
            let Some(q) = pair.side(side) else { continue };
            let at = to_screen(self.view_point(pane, side, q, pair.fixed.unwrap_or(q)));
            painter.circle_filled(at, 5.0, egui::Color32::from_black_alpha(160));
            painter.circle_stroke(at, 5.0, egui::Stroke::new(2.0, colour));
            painter.text(
                at + egui::vec2(7.0, -7.0),
                egui::Align2::LEFT_BOTTOM,
                (i + 1).to_string(),
                font.clone(),
                colour,
            );
        }
    }
}

/// The files the landmark jobs read: the complete pairs, written to the session folder.
fn write_job_files(dir: &Path, editor: &LandmarkEditor) -> crate::Result<[PathBuf; 2]> {
    let (fixed, moving) = editor.complete();
    let paths = [
        dir.join("landmarks-fixed.csv"),
        dir.join("landmarks-moving.csv"),
    ];
    write_landmarks(&paths[0], &fixed, LandmarkFormat::Anhir)?;
    write_landmarks(&paths[1], &moving, LandmarkFormat::Anhir)?;
    Ok(paths)
}

/// The most pairs listed with their errors before the list scrolls.
const LIST_HEIGHT: f32 = 150.0;

impl AlinifyApp {
    /// Turns the landmark mode on (side by side) or off.
    pub fn set_landmark_mode(&mut self, active: bool) {
        self.landmarks.active = active;
        if active {
            self.settings.layout = Layout::SideBySide;
        }
    }

    /// Loads landmark files given with the pair (one: BigWarp's pairs or the fixed side; two:
    /// fixed, then moving) and turns the landmark mode on.
    pub fn open_landmarks(&mut self, files: &[PathBuf]) {
        let mut notes = Vec::new();
        for (path, side) in files.iter().zip([Side::Fixed, Side::Moving]) {
            match self.landmarks.load(path, side) {
                Ok(note) => notes.push(note),
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            }
        }
        self.notice = Some(notes.join("; "));
        self.set_landmark_mode(true);
    }

    /// Runs the thin-plate spline (`Mode::Landmarks`) or the landmark-guided accurate mode
    /// (`Mode::Accurate`) on the complete pairs, as a registration job.
    pub fn run_with_landmarks(&mut self, mode: Mode) {
        let pairs = self.landmarks.complete().0.len();
        let (needed, what) = match mode {
            Mode::Landmarks => (3, "the thin-plate spline needs at least 3"),
            _ => (1, "the refinement needs at least one"),
        };
        if pairs < needed {
            self.error = Some(format!(
                "{pairs} complete landmark pair(s): {what} (click a point in each pane)"
            ));
            return;
        }
        let (smoothing, weight) = (self.landmarks.smoothing, self.landmarks.weight);
        match write_job_files(self.out_dir.path(), &self.landmarks) {
            Ok(files) => self.start_registration(mode, Some(files), move |o| {
                o.landmark_smoothing = smoothing;
                o.landmark_weight = weight;
            }),
            Err(e) => self.error = Some(format!("cannot write the landmarks: {e}")),
        }
    }

    /// The Landmarks section: the mode, the files, the jobs, the pairs and their errors, the
    /// annotations.
    pub(super) fn landmark_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Landmarks");
        let mut active = self.landmarks.active;
        if ui
            .toggle_value(&mut active, "Landmark mode")
            .on_hover_text(
                "click a point in one pane and its partner in the other; drag to move, \
                 right-click or Delete to remove, Ctrl+Z undo, Ctrl+Shift+Z redo",
            )
            .changed()
        {
            self.set_landmark_mode(active);
        }
        if !self.landmarks.active && self.landmarks.pairs.is_empty() {
            return;
        }
        self.landmark_files(ui);
        let idle = matches!(self.task, Task::Idle);
        let has_pair = self.layers.is_some();
        egui::Grid::new("landmark jobs")
            .num_columns(2)
            .show(ui, |ui| {
                ui.label("λ");
                ui.add(
                    egui::DragValue::new(&mut self.landmarks.smoothing)
                        .range(0.0..=1e3)
                        .speed(0.01),
                )
                .on_hover_text("thin-plate smoothing: 0 passes through every landmark");
                ui.end_row();
                ui.label("weight");
                ui.add(
                    egui::DragValue::new(&mut self.landmarks.weight)
                        .range(0.0..=10.0)
                        .speed(0.001),
                )
                .on_hover_text("how strongly the landmarks pull the accurate mode");
                ui.end_row();
            });
        if ui
            .add_enabled(
                idle && has_pair,
                egui::Button::new("Thin-plate from landmarks"),
            )
            .on_hover_text("a thin-plate spline through the pairs (affine alone under 4)")
            .clicked()
        {
            self.run_with_landmarks(Mode::Landmarks);
        }
        if ui
            .add_enabled(idle && has_pair, egui::Button::new("Refine with landmarks"))
            .on_hover_text("the accurate mode with the landmarks added to its cost")
            .clicked()
        {
            self.run_with_landmarks(Mode::Accurate);
        }
        self.landmark_list(ui);
        self.annotation_list(ui);
    }

    fn landmark_files(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.landmarks.path)
                    .hint_text("landmark file (.csv)")
                    .desired_width(170.0),
            );
            let clicked = ui.button("…").on_hover_text("choose a file").clicked();
            if let Some(path) = file_chooser::choose_one(ui.ctx(), clicked, "landmarks", || {
                Request::file("Landmark file").filter("landmarks", &["csv", "txt"])
            }) {
                self.landmarks.path = path.display().to_string();
            }
        });
        let path = PathBuf::from(self.landmarks.path.trim());
        let named = !path.as_os_str().is_empty();
        let mut outcome = None;
        egui::Grid::new("landmark files")
            .num_columns(3)
            .show(ui, |ui| {
                ui.label("load");
                if ui.add_enabled(named, egui::Button::new("fixed")).clicked() {
                    outcome = Some(self.landmarks.load(&path, Side::Fixed));
                }
                if ui
                    .add_enabled(named, egui::Button::new("moving"))
                    .on_hover_text("a BigWarp file loads both sides")
                    .clicked()
                {
                    outcome = Some(self.landmarks.load(&path, Side::Moving));
                }
                ui.end_row();
                ui.label("save");
                if ui.add_enabled(named, egui::Button::new("fixed")).clicked() {
                    outcome = Some(self.landmarks.save(&path, Some(Side::Fixed)));
                }
                if ui.add_enabled(named, egui::Button::new("moving")).clicked() {
                    outcome = Some(self.landmarks.save(&path, Some(Side::Moving)));
                }
                if ui
                    .add_enabled(named, egui::Button::new("pairs"))
                    .on_hover_text("both sides in one BigWarp CSV")
                    .clicked()
                {
                    outcome = Some(self.landmarks.save(&path, None));
                }
                ui.end_row();
                ui.label("annotate");
                if ui
                    .add_enabled(named, egui::Button::new("on fixed"))
                    .clicked()
                {
                    outcome = Some(self.landmarks.load_annotation(&path, Side::Fixed));
                }
                if ui
                    .add_enabled(named, egui::Button::new("on moving"))
                    .clicked()
                {
                    outcome = Some(self.landmarks.load_annotation(&path, Side::Moving));
                }
                ui.end_row();
            });
        match outcome {
            Some(Ok(message)) => {
                self.error = None;
                self.notice = Some(message);
            }
            Some(Err(e)) => self.error = Some(e.to_string()),
            None => {}
        }
    }

    /// The pairs with their errors; a click on one selects it and centres the view on it.
    fn landmark_list(&mut self, ui: &mut egui::Ui) {
        let diagonal = self.layers.as_ref().map_or(1.0, |l| {
            let [w, h] = l.fixed.size();
            (w as f64).hypot(h as f64)
        });
        let warp = self.layers.as_ref().and_then(|l| l.warp.clone());
        let transform = warp.as_deref().map(|w| w as &dyn Transform);
        let errors = self.landmarks.errors(transform, diagonal);
        let under = if transform.is_some() {
            "under the current transform"
        } else {
            "before registration"
        };
        match &errors {
            Some((_, report)) => {
                ui.label(format!(
                    "{} pairs {under}: median {:.2} px, max {:.2} px",
                    report.pairs, report.tre_median_px, report.tre_max_px
                ));
            }
            None => {
                ui.weak("no complete pair yet");
            }
        }
        let by_index: std::collections::HashMap<usize, f64> = errors
            .iter()
            .flat_map(|(e, _)| e.iter().map(|(i, e)| (*i, e.after_px)))
            .collect();
        let mut clicked = None;
        egui::ScrollArea::vertical()
            .id_salt("landmark list")
            .max_height(LIST_HEIGHT)
            .show(ui, |ui| {
                for (i, pair) in self.landmarks.pairs.iter().enumerate() {
                    let text = match by_index.get(&i) {
                        Some(e) => format!("{}. error {e:.2} px", i + 1),
                        None if pair.fixed.is_none() => format!("{}. needs its fixed point", i + 1),
                        None => format!("{}. needs its moving point", i + 1),
                    };
                    let selected = self.landmarks.selected == Some(i);
                    if ui.selectable_label(selected, text).clicked() {
                        clicked = Some(i);
                    }
                }
            });
        if let Some(i) = clicked {
            self.landmarks.selected = Some(i);
            if let (Some(camera), Some(p)) =
                (&mut self.viewer.camera, self.landmarks.pairs[i].fixed)
            {
                camera.center = p;
            }
        }
        ui.horizontal(|ui| {
            let selected = self.landmarks.selected;
            if ui
                .add_enabled(selected.is_some(), egui::Button::new("Delete"))
                .clicked()
                && let Some(i) = selected
            {
                self.landmarks.delete(i);
            }
            if ui
                .add_enabled(!self.landmarks.undo.is_empty(), egui::Button::new("Undo"))
                .clicked()
            {
                self.landmarks.undo();
            }
            if ui
                .add_enabled(!self.landmarks.redo.is_empty(), egui::Button::new("Redo"))
                .clicked()
            {
                self.landmarks.redo();
            }
        });
    }

    fn annotation_list(&mut self, ui: &mut egui::Ui) {
        let mut remove = None;
        for (i, a) in self.landmarks.annotations.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                ui.checkbox(&mut a.visible, "");
                ui.label(format!(
                    "{} ({} on {})",
                    a.name,
                    a.points.len(),
                    side_name(a.side)
                ));
                if ui.small_button("✖").on_hover_text("remove").clicked() {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = remove {
            self.landmarks.annotations.remove(i);
        }
    }

    /// The landmark mode's keys: Delete or Backspace removes the selected pair, Ctrl+Z undoes,
    /// Ctrl+Shift+Z or Ctrl+Y redoes. Read from the key events with their own modifiers.
    pub(super) fn landmark_shortcuts(&mut self, ui: &mut egui::Ui) {
        if !self.landmarks.active || ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        let (delete, redo, undo) = ui.input_mut(|i| {
            let delete = i.consume_key(egui::Modifiers::NONE, egui::Key::Delete)
                || i.consume_key(egui::Modifiers::NONE, egui::Key::Backspace);
            let redo = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            ) || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            (delete, redo, undo)
        });
        if delete && let Some(i) = self.landmarks.selected {
            self.landmarks.delete(i);
        }
        if redo {
            self.landmarks.redo();
        }
        if undo {
            self.landmarks.undo();
        }
    }
}

#[cfg(test)]
mod tests;
