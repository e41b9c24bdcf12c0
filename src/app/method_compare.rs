//! "Try another method on this pair": every registration of the loaded pair leaves a row (its
//! method and quality summary), and the Analysis panel runs another method and shows the rows
//! side by side.

use super::AlinifyApp;
use super::parameters::METHODS;
use crate::register::{Mode, RegisterSummary};
use eframe::egui;

/// One registration of the loaded pair, as the comparison shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRun {
    /// The method.
    pub mode: Mode,
    /// NCC after (the pipeline's level).
    pub ncc_after: f64,
    /// The median of the local correlation map (`None` when the QC was skipped).
    pub local_corr: Option<f64>,
    /// Smallest Jacobian determinant.
    pub det_min: f64,
    /// Share of the grid that folds (det J ≤ 0).
    pub folded_fraction: f64,
    /// Seconds of the whole run.
    pub seconds: f64,
}

impl MethodRun {
    /// The row of a finished registration.
    pub fn of(summary: &RegisterSummary) -> Self {
        let r = &summary.report;
        Self {
            mode: r.mode,
            ncc_after: r.ncc_after,
            local_corr: r.qc.quality.maps.get("corr").map(|s| s.median),
            det_min: r.qc.jacobian.min,
            folded_fraction: r.qc.jacobian.folded_fraction,
            seconds: r.seconds.total,
        }
    }
}

impl AlinifyApp {
    /// The comparison section at the end of the Analysis panel: a method to try, and the table
    /// of runs.
    pub(super) fn method_comparison(&mut self, ui: &mut egui::Ui) {
        ui.separator();
        ui.label("Methods on this pair");
        let idle = matches!(self.task, super::Task::Idle);
        ui.horizontal(|ui| {
            let mut chosen = self.compare_mode;
            let label = ui.label("Try");
            egui::ComboBox::from_id_salt("try method")
                .selected_text(method_name(chosen))
                .show_ui(ui, |ui| {
                    for (mode, name, _) in METHODS {
                        ui.selectable_value(&mut chosen, mode, name);
                    }
                })
                .response
                .labelled_by(label.id);
            self.compare_mode = chosen;
            if ui
                .add_enabled(
                    idle && self.layers.is_some(),
                    egui::Button::new("Run and compare"),
                )
                .on_hover_text(
                    "registers the pair with this method (the registration panel's settings) \
                     and adds its quality summary to the table",
                )
                .clicked()
            {
                self.settings.mode = chosen;
                self.run();
            }
        });
        if self.method_runs.is_empty() {
            ui.weak("no registration of this pair yet");
            return;
        }
        egui::Grid::new("method runs")
            .num_columns(5)
            .striped(true)
            .show(ui, |ui| {
                for title in ["method", "NCC", "local corr", "min det J", "s"] {
                    ui.strong(title);
                }
                ui.end_row();
                for run in &self.method_runs {
                    ui.label(method_name(run.mode));
                    ui.label(format!("{:.4}", run.ncc_after));
                    ui.label(run.local_corr.map_or("-".into(), |c| format!("{c:.3}")));
                    let det = format!("{:.3}", run.det_min);
                    if run.folded_fraction > 0.0 {
                        ui.colored_label(ui.visuals().warn_fg_color, det)
                            .on_hover_text(format!(
                                "{:.3} % of the grid folds",
                                100.0 * run.folded_fraction
                            ));
                    } else {
                        ui.label(det);
                    }
                    ui.label(format!("{:.2}", run.seconds));
                    ui.end_row();
                }
            });
    }
}

/// A method's name as the toggle shows it.
fn method_name(mode: Mode) -> &'static str {
    METHODS
        .iter()
        .find(|(m, _, _)| *m == mode)
        .map_or("Landmarks", |m| m.1)
}
