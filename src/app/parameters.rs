//! The registration panel's parameters: a preset (one of the bundled ones in
//! `assets/presets`, or a file) and the key settings, which the person can change after
//! choosing it. They persist with the other settings and become the run's
//! [`RegisterOptions`] exactly as `alinify register --preset` does.

use super::file_chooser::{self, Request};
use crate::metric::MetricKind;
use crate::register::init::InitMethod;
use crate::register::settings::BUNDLED;
use crate::register::{Mode, RegisterOptions, Settings};
use eframe::egui;

/// The name shown when no preset is chosen.
const DEFAULTS: &str = "defaults";

/// The chosen preset and the settings on top of the defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Parameters {
    /// What the values came from: a bundled preset's name, a file's name or "defaults";
    /// marked as changed once edited.
    pub preset: String,
    /// Settings over [`RegisterOptions`]' defaults (the mode is the method toggle's).
    pub values: Settings,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            preset: DEFAULTS.into(),
            values: Settings::default(),
        }
    }
}

impl Parameters {
    /// A bundled preset by name.
    pub fn bundled(name: &str) -> Option<crate::Result<Self>> {
        Some(Settings::bundled(name)?.map(|values| Self {
            preset: name.into(),
            values,
        }))
    }

    /// The options of a run in `mode`: the defaults, then these values.
    pub fn options(&self, mode: Mode) -> crate::Result<RegisterOptions> {
        Settings {
            mode: Some(mode),
            ..self.values.clone()
        }
        .options()
    }

    /// Takes `chosen` as the parameters; a mode it names moves the toggle (`mode`).
    pub fn choose(&mut self, mut chosen: Parameters, mode: &mut Mode) {
        if let Some(m) = chosen.values.mode.take()
            && METHODS.iter().any(|(method, _, _)| *method == m)
        {
            *mode = m;
        }
        *self = chosen;
    }

    /// The preset chooser and the key settings of `mode`. Returns an error to show (a preset
    /// file that does not parse).
    pub fn show(&mut self, ui: &mut egui::Ui, mode: &mut Mode) -> Option<String> {
        let mut error = None;
        ui.horizontal(|ui| {
            let mut chosen = None;
            egui::ComboBox::from_label("Preset")
                .selected_text(&self.preset)
                .width(130.0)
                .show_ui(ui, |ui| {
                    if ui.selectable_label(false, DEFAULTS).clicked() {
                        chosen = Some(Ok(Parameters::default()));
                    }
                    for (name, _) in BUNDLED {
                        if ui.selectable_label(self.preset == name, name).clicked() {
                            chosen = Parameters::bundled(name);
                        }
                    }
                });
            let load = ui
                .button("Load…")
                .on_hover_text("a preset file (TOML), as for alinify register --preset")
                .clicked();
            if let Some(path) = file_chooser::choose_one(ui.ctx(), load, "preset", || {
                Request::file("Registration preset").filter("preset", &["toml"])
            }) {
                chosen = Some(Settings::load(&path).map(|values| {
                    Parameters {
                        preset: path
                            .file_name()
                            .map_or("file".into(), |n| n.to_string_lossy().into()),
                        values,
                    }
                }));
            }
            match chosen {
                Some(Ok(chosen)) => self.choose(chosen, mode),
                Some(Err(e)) => error = Some(e.to_string()),
                None => {}
            }
        });
        let defaults = RegisterOptions::default();
        let before = self.values.clone();
        let values = &mut self.values;
        egui::Grid::new("parameters")
            .num_columns(2)
            .show(ui, |ui| match mode {
                Mode::Fast => {
                    number_row(
                        ui,
                        "Smoothness",
                        "larger is smoother",
                        &mut values.smoothness,
                        defaults.flow.smoothness,
                        |d| d.range(0.5..=200.0).speed(0.1),
                    );
                    number_row(
                        ui,
                        "Search radius",
                        "a discrete search on coarse levels, for objects that move on their own \
                         (stereo, photo series); 0 for smooth deformations. Left alone, \
                         each pair chooses (report.json's flow_choice says how)",
                        &mut values.search,
                        defaults.flow.search,
                        |d| d.range(0..=32).suffix(" px"),
                    );
                }
                Mode::Demons => {
                    number_row(
                        ui,
                        "Iterations",
                        "per pyramid level, at most (a level stops earlier once its updates \
                         are small)",
                        &mut values.demons_iterations,
                        defaults.demons.iterations,
                        |d| d.range(1..=1000),
                    );
                    number_row(
                        ui,
                        "Largest step",
                        "the longest update per iteration, in pixels of each level",
                        &mut values.max_step,
                        defaults.demons.max_step,
                        |d| d.range(0.05..=4.0).speed(0.01).suffix(" px"),
                    );
                    number_row(
                        ui,
                        "Fluid σ",
                        "Gaussian smoothing of each update (pixels of each level)",
                        &mut values.fluid_sigma,
                        defaults.demons.fluid_sigma,
                        |d| d.range(0.0..=2.6).speed(0.01).suffix(" px"),
                    );
                    number_row(
                        ui,
                        "Elastic σ",
                        "Gaussian smoothing of the velocity field after each update: larger \
                         is smoother",
                        &mut values.elastic_sigma,
                        defaults.demons.elastic_sigma,
                        |d| d.range(0.0..=2.6).speed(0.01).suffix(" px"),
                    );
                }
                _ => {
                    let current = values.metric.unwrap_or(defaults.metric);
                    let mut metric = current;
                    let label = ui.label("Metric");
                    egui::ComboBox::from_id_salt("metric")
                        .selected_text(metric_label(metric))
                        .show_ui(ui, |ui| {
                            for m in [MetricKind::Ncc, MetricKind::Mse, MetricKind::Mi] {
                                ui.selectable_value(&mut metric, m, metric_label(m));
                            }
                        })
                        .response
                        .labelled_by(label.id);
                    if metric != current {
                        values.metric = Some(metric);
                    }
                    ui.end_row();
                    if *mode == Mode::Affine {
                        number_row(
                            ui,
                            "Iterations",
                            "per pyramid level, at most",
                            &mut values.iterations,
                            defaults.iterations,
                            |d| d.range(1..=5000),
                        );
                        return;
                    }
                    let mut automatic = values.grid_spacing.is_none();
                    let mut spacing = values.grid_spacing.unwrap_or(64.0);
                    ui.label("Grid spacing");
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut automatic, "auto")
                            .on_hover_text("the longer side / 20, at least 32 px");
                        ui.add_enabled(
                            !automatic,
                            egui::DragValue::new(&mut spacing)
                                .range(8.0..=4096.0)
                                .suffix(" px"),
                        );
                    });
                    values.grid_spacing = (!automatic).then_some(spacing);
                    ui.end_row();
                    number_row(
                        ui,
                        "Bending weight",
                        "penalises bent deformations, relative to the image's size: 0 (none), \
                         about 0.0003 between stains (MI), 0.07 for sections on an empty slide",
                        &mut values.bending_weight,
                        defaults.bending_weight,
                        |d| d.range(0.0..=10.0).speed(1e-4).max_decimals(5),
                    );
                    number_row(
                        ui,
                        "Iterations",
                        "per pyramid level, at most",
                        &mut values.iterations,
                        defaults.iterations,
                        |d| d.range(1..=5000),
                    );
                }
            });
        init_row(ui, &mut values.init, defaults.init);
        if self.values != before && !self.preset.ends_with(", changed") {
            self.preset += ", changed";
        }
        error
    }
}

/// The affine stage's initialisation, for every mode: set once the person picks one.
fn init_row(ui: &mut egui::Ui, value: &mut Option<InitMethod>, default: InitMethod) {
    let current = value.unwrap_or(default);
    let mut chosen = current;
    ui.horizontal(|ui| {
        let label = ui.label("Initialisation");
        egui::ComboBox::from_id_salt("init")
            .selected_text(init_label(current))
            .show_ui(ui, |ui| {
                for m in [
                    InitMethod::Auto,
                    InitMethod::Phase,
                    InitMethod::Features,
                    InitMethod::None,
                ] {
                    ui.selectable_value(&mut chosen, m, init_label(m));
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text(
                "how the affine stage starts: auto (the default) takes the best of a shift, \
                 matched keypoints (any rotation, scale or a mirror) and a search of every turn \
                 and mirror (across stains); report.json's init says which won. Phase finds a \
                 shift only; features use the keypoints only; none starts from the identity",
            );
    });
    if chosen != current {
        *value = Some(chosen);
    }
}

fn init_label(method: InitMethod) -> &'static str {
    match method {
        InitMethod::Phase => "phase (shift)",
        InitMethod::Auto => "auto (any angle)",
        InitMethod::Features => "features",
        InitMethod::None => "none",
    }
}

/// The methods the registration panel offers: the mode, its button and what it does. The
/// landmarks mode (a thin-plate spline) runs from the landmark panel.
pub const METHODS: [(Mode, &str, &str); 4] = [
    (Mode::Fast, "Fast", "dense optical flow, GPU when available"),
    (
        Mode::Accurate,
        "Accurate",
        "affine + B-spline, elastix-class",
    ),
    (
        Mode::Demons,
        "Demons",
        "affine + diffeomorphic demons: never folds, exact inverse; GPU when available",
    ),
    (
        Mode::Affine,
        "Affine",
        "an affine only (rotation, scale, shear, shift)",
    ),
];

/// The method toggle and what the chosen method does.
pub fn mode_toggle(ui: &mut egui::Ui, mode: &mut Mode) {
    ui.horizontal(|ui| {
        for (method, name, _) in METHODS {
            ui.selectable_value(mode, method, name);
        }
    });
    ui.label(
        METHODS
            .iter()
            .find(|(method, _, _)| method == mode)
            .map_or("a thin-plate spline through the landmark pairs", |m| m.2),
    );
}

/// One grid row: `label`, then a drag value showing `value` (or `default` when unset) that
/// sets `value` once the person changes it; `style` sets its range, speed and suffix.
fn number_row<T: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    label: &str,
    hover: &str,
    value: &mut Option<T>,
    default: T,
    style: impl FnOnce(egui::DragValue<'_>) -> egui::DragValue<'_>,
) {
    let mut shown = value.unwrap_or(default);
    ui.label(label);
    if ui
        .add(style(egui::DragValue::new(&mut shown)))
        .on_hover_text(hover)
        .changed()
    {
        *value = Some(shown);
    }
    ui.end_row();
}

/// The metric's name in the interface.
fn metric_label(metric: MetricKind) -> &'static str {
    match metric {
        MetricKind::Ncc => "NCC (same modality)",
        MetricKind::Mse => "MSE (same intensities)",
        MetricKind::Mi => "MI (stains, modalities)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_preset_parses_and_becomes_options() {
        for (name, _) in BUNDLED {
            let parameters = Parameters::bundled(name).unwrap().unwrap();
            parameters.options(Mode::Accurate).unwrap();
        }
        let cross = Parameters::bundled("cross-stain").unwrap().unwrap();
        let options = cross.options(Mode::Accurate).unwrap();
        assert_eq!(options.metric, MetricKind::Mi);
        assert_eq!(options.grid_levels, 3);
        assert!(Parameters::bundled("no such preset").is_none());
    }

    #[test]
    fn choosing_a_preset_moves_the_mode_toggle_to_its_mode() {
        let mut parameters = Parameters::default();
        let mut mode = Mode::Accurate;
        parameters.choose(
            Parameters::bundled("photo-scene").unwrap().unwrap(),
            &mut mode,
        );
        assert_eq!(mode, Mode::Fast);
        assert_eq!(parameters.preset, "photo-scene");
        assert_eq!(parameters.values.mode, None);
        assert_eq!(
            parameters.options(Mode::Fast).unwrap().flow.search,
            parameters.values.search.unwrap()
        );
    }
}
