//! The live metric plot of a registration: the similarity (the negated cost, so that it rises
//! as the registration improves), x across the whole run, a series per stage (affine, then
//! B-spline or flow), level and stage boundaries marked and labelled. Stages whose measures
//! differ (the fast mode's affine metric and the flow's residual) get a plot each, on one
//! shared x axis.

use crate::job::{Progress, Stage};
use crate::metric::MetricKind;
use crate::register::Mode;
use eframe::egui;

/// One metric report.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    stage: Stage,
    level: Option<usize>,
    /// The cost as the engine minimises it.
    cost: f64,
}

/// The metric reports of the running (or last) registration, and what they measure.
#[derive(Debug, Clone, Default)]
pub struct MetricHistory {
    mode: Mode,
    metric: MetricKind,
    samples: Vec<Sample>,
}

impl MetricHistory {
    /// An empty history for a run in `mode` with `metric`.
    pub fn new(mode: Mode, metric: MetricKind) -> Self {
        Self {
            mode,
            metric,
            samples: Vec::new(),
        }
    }

    /// Keeps `progress` when it reports a metric.
    pub fn push(&mut self, progress: &Progress) {
        if let Some(cost) = progress.metric.filter(|c| c.is_finite()) {
            self.samples.push(Sample {
                stage: progress.stage,
                level: progress.level,
                cost,
            });
        }
    }

    /// Nothing reported yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The name of the stage's series.
    fn series_name(&self, stage: Stage) -> &'static str {
        match (stage, self.mode) {
            (Stage::Affine, _) => "affine",
            (_, Mode::Fast) => "flow",
            (_, Mode::Demons) => "demons",
            (_, Mode::Landmarks) => "thin-plate",
            _ => "B-spline",
        }
    }

    /// What a stage's similarity is (the y axis' title): the negated cost's name.
    fn measure(&self, stage: Stage) -> &'static str {
        match (stage, self.mode, self.metric) {
            (Stage::Register, Mode::Fast | Mode::Demons, _) => "−mean abs. difference",
            (_, _, MetricKind::Ncc) => "NCC",
            (_, _, MetricKind::Mi) => "mutual information",
            (_, _, MetricKind::Mse) => "−mean squared difference",
        }
    }

    /// The series of each measure, in run order: `(measure, [(series name, points)])`.
    #[allow(clippy::type_complexity)]
    fn plots(&self) -> Vec<(&'static str, Vec<(&'static str, Vec<[f64; 2]>)>)> {
        let mut plots: Vec<(&'static str, Vec<(&'static str, Vec<[f64; 2]>)>)> = Vec::new();
        for (x, sample) in self.samples.iter().enumerate() {
            let (measure, series) = (self.measure(sample.stage), self.series_name(sample.stage));
            let point = [x as f64, -sample.cost];
            let plot = match plots.iter_mut().position(|(m, _)| *m == measure) {
                Some(i) => &mut plots[i].1,
                None => {
                    plots.push((measure, Vec::new()));
                    &mut plots.last_mut().expect("just pushed").1
                }
            };
            match plot.iter_mut().find(|(s, _)| *s == series) {
                Some((_, points)) => points.push(point),
                None => plot.push((series, vec![point])),
            }
        }
        plots
    }

    /// Where a new stage or level starts: `(x, label)`, the label naming the stage at its
    /// start and the level (`L2`) at each level.
    fn boundaries(&self) -> Vec<(f64, String)> {
        let mut marks = Vec::new();
        for (x, pair) in self.samples.windows(2).enumerate() {
            let (before, now) = (pair[0], pair[1]);
            let level = now.level.map_or(String::new(), |l| format!("L{l}"));
            if now.stage != before.stage {
                marks.push((
                    x as f64 + 0.5,
                    format!("{} {level}", self.series_name(now.stage)),
                ));
            } else if now.level != before.level {
                marks.push((x as f64 + 0.5, level));
            }
        }
        marks
    }

    /// The plot(s), `height` points in all, under a key of the stages' colours.
    pub fn show(&self, ui: &mut egui::Ui, height: f32) {
        let plots = self.plots();
        let height = (height / plots.len().max(1) as f32).max(60.0);
        // Labels closer than this (in iterations) to the last one drawn are left out; their
        // lines stay.
        let spacing = self.samples.len() as f64 / 6.0;
        let mut marks = self.boundaries();
        let first_level = self.samples.first().and_then(|s| s.level);
        // The first level's label sits at x = 0.
        let mut last_label = if first_level.is_some() {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        for (x, label) in &mut marks {
            if *x - last_label < spacing {
                label.clear();
            } else {
                last_label = *x;
            }
        }
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = 10.0;
            let mut seen = Vec::new();
            for sample in &self.samples {
                let name = self.series_name(sample.stage);
                if !seen.contains(&name) {
                    seen.push(name);
                    ui.colored_label(series_colour(sample.stage), format!("— {name}"));
                }
            }
            ui.weak("(higher is better)")
                .on_hover_text("each level measures on its own samples: compare values within a level, not across its mark");
        });
        let link = ui.scope_id().with("metric plots");
        for (i, (measure, series)) in plots.iter().enumerate() {
            let last = i + 1 == plots.len();
            let mut plot = egui_plot::Plot::new(("metric", i))
                .height(height)
                // Tick labels at least 14 points apart and fully drawn from there: egui_plot's
                // default fades them until 30 points, which a short plot never reaches.
                .custom_y_axes(vec![
                    egui_plot::AxisHints::new_y()
                        .label(*measure)
                        .min_thickness(50.0)
                        .label_spacing(14.0..=15.0),
                ])
                .show_axes([last, true])
                .link_axis(link, [true, false])
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false);
            if last {
                plot = plot.x_axis_label("iteration (whole run)");
            }
            plot.show(ui, |plot| {
                for (name, points) in series {
                    let stage = match *name {
                        "affine" => Stage::Affine,
                        _ => Stage::Register,
                    };
                    plot.line(
                        egui_plot::Line::new(*name, points.clone()).color(series_colour(stage)),
                    );
                }
                // Level and stage boundaries: a line each, labelled at the top.
                let top = series
                    .iter()
                    .flat_map(|(_, p)| p.iter().map(|q| q[1]))
                    .fold(f64::NEG_INFINITY, f64::max);
                if let Some(level) = first_level.filter(|_| i == 0) {
                    plot.text(
                        egui_plot::Text::new(
                            "",
                            egui_plot::PlotPoint::new(0.0, top),
                            format!("L{level}"),
                        )
                        .anchor(egui::Align2::LEFT_TOP),
                    );
                }
                for (x, label) in &marks {
                    plot.vline(
                        egui_plot::VLine::new("", *x)
                            .color(egui::Color32::from_gray(110))
                            .width(0.5),
                    );
                    if !label.is_empty() {
                        plot.text(
                            egui_plot::Text::new(
                                "",
                                egui_plot::PlotPoint::new(*x, top),
                                label.clone(),
                            )
                            .anchor(egui::Align2::LEFT_TOP),
                        );
                    }
                }
            });
        }
    }
}

/// The colour of a stage's series: the affine stage warm, the deformable one cool.
fn series_colour(stage: Stage) -> egui::Color32 {
    match stage {
        Stage::Affine => egui::Color32::from_rgb(230, 120, 60),
        _ => egui::Color32::from_rgb(80, 160, 230),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stage: Stage, level: usize, cost: f64) -> Progress {
        Progress {
            level: Some(level),
            metric: Some(cost),
            ..Progress::at(stage, 0.5)
        }
    }

    #[test]
    fn the_similarity_rises_as_the_cost_falls_and_stages_are_apart() {
        let mut history = MetricHistory::new(Mode::Fast, MetricKind::Ncc);
        for p in [
            report(Stage::Affine, 2, -0.5),
            report(Stage::Affine, 2, -0.7),
            report(Stage::Affine, 1, -0.8),
            report(Stage::Register, 3, 0.2),
            report(Stage::Register, 2, 0.1),
        ] {
            history.push(&p);
        }
        history.push(&Progress::at(Stage::Warp, 0.9)); // no metric: not kept
        let plots = history.plots();
        // The fast mode's affine NCC and its flow residual are two measures: two plots.
        assert_eq!(plots.len(), 2);
        assert_eq!(plots[0].0, "NCC");
        assert_eq!(
            plots[0].1,
            [("affine", vec![[0.0, 0.5], [1.0, 0.7], [2.0, 0.8]])]
        );
        assert_eq!(plots[1].1, [("flow", vec![[3.0, -0.2], [4.0, -0.1]])]);
        let marks = history.boundaries();
        assert_eq!(
            marks,
            [
                (1.5, "L1".to_string()),
                (2.5, "flow L3".to_string()),
                (3.5, "L2".to_string())
            ]
        );
    }

    #[test]
    fn the_accurate_mode_plots_both_stages_on_one_measure() {
        let mut history = MetricHistory::new(Mode::Accurate, MetricKind::Mi);
        history.push(&report(Stage::Affine, 3, -0.2));
        history.push(&report(Stage::Register, 3, -0.3));
        let plots = history.plots();
        assert_eq!(plots.len(), 1);
        assert_eq!(plots[0].0, "mutual information");
        let names: Vec<_> = plots[0].1.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["affine", "B-spline"]);
    }
}
