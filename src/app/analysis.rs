//! The Analysis panel: regional quality maps and the Jacobian of the current registration,
//! computed in the background; any of them shown as a heatmap layer over the pair (the
//! compositor's heatmap overlay, GPU and CPU twin alike), with a legend, the value under the
//! cursor, the summary numbers, and the flagged regions outlined and listed (a click zooms to
//! one).

use super::viewer::Camera;
use super::{AlinifyApp, Task};
use crate::analysis::flags::Flag;
use crate::analysis::jacobian::{self, JacobianResult};
use crate::analysis::quality::{
    NoSink, PairSource, QualityMap, QualityOptions, QualityResult, compute_quality,
};
use crate::compose::{Level, OverlaySettings, Pyramid, heat_colour};
use crate::job::{JobHandle, Reporter};
use crate::register::Backend;
use crate::transform::Transform;
use crate::{Result, io};
use eframe::egui;
use std::sync::Arc;

/// Which map the heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A regional quality map.
    Quality(QualityMap),
    /// The transform's Jacobian determinant.
    Jacobian,
}

impl Shown {
    fn label(self) -> String {
        match self {
            Shown::Quality(m) => m.name().to_string(),
            Shown::Jacobian => "det J".to_string(),
        }
    }
}

/// A map ready to draw: its display pyramid (bytes 1..=255 along the colour map, 0 no data)
/// and what the colours mean.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// The heatmap layer.
    pub pyramid: Arc<Pyramid>,
    /// Value at the dark and the bright end.
    pub range: [f64; 2],
    /// Log scale (the Jacobian: `range` holds ln of the ends).
    pub log: bool,
    /// Units for the legend.
    pub unit: &'static str,
}

/// What one analysis gave.
#[derive(Debug, Clone)]
pub struct AnalysisOutcome {
    /// The quality maps' statistics, previews and flags.
    pub quality: QualityResult,
    /// The Jacobian (after a registration).
    pub jacobian: Option<JacobianResult>,
    /// Heatmaps by map.
    pub heatmaps: Vec<(Shown, Heatmap)>,
}

impl AnalysisOutcome {
    /// Every flagged region: the quality maps', then the Jacobian's.
    pub fn flags(&self) -> Vec<&Flag> {
        let jacobian = self.jacobian.iter().flat_map(|j| &j.report.flags);
        self.quality.report.flags.iter().chain(jacobian).collect()
    }

    /// The heatmap of a map.
    pub fn heatmap(&self, shown: Shown) -> Option<&Heatmap> {
        self.heatmaps
            .iter()
            .find(|(s, _)| *s == shown)
            .map(|(_, h)| h)
    }

    /// The shown map's value at fixed-image point `p`, in its units.
    pub fn value_at(&self, shown: Shown, p: [f64; 2]) -> Option<f64> {
        match shown {
            Shown::Quality(m) => self.quality.preview(m)?.at(p[0], p[1]).map(f64::from),
            Shown::Jacobian => {
                let j = self.jacobian.as_ref()?;
                let (x, y) = (p[0] / j.report.step, p[1] / j.report.step);
                let (w, h) = (j.report.width, j.report.height);
                (x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h)
                    .then(|| f64::from(j.det[y as usize * w + x as usize]))
            }
        }
    }
}

/// The panel's state.
#[derive(Debug)]
pub struct Analysis {
    /// The map the heatmap shows.
    pub shown: Shown,
    /// The heatmap's opacity.
    pub opacity: f32,
    /// Whether the heatmap and the outlines are drawn.
    pub visible: bool,
    /// The last analysis, for the current registration.
    pub outcome: Option<AnalysisOutcome>,
    /// Recompute once the task is idle (a new registration replaced the one analysed).
    pub follow: bool,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            shown: Shown::Quality(QualityMap::Corr),
            opacity: 0.7,
            visible: true,
            outcome: None,
            follow: false,
        }
    }
}

/// Jacobian samples on the longer side at most (a power of two of pixels between samples).
const JACOBIAN_SIDE: usize = 1024;

/// Computes the maps of a pair from its files: the moving image through `transform` when a
/// registration gave one, else as loaded (then both must share one grid).
pub fn analyse(
    fixed: &std::path::Path,
    moving: &std::path::Path,
    transform: Option<Arc<dyn Transform>>,
    options: &QualityOptions,
    backend: Backend,
    reporter: &Reporter<AnalysisOutcome>,
) -> Result<AnalysisOutcome> {
    let (f, m) = rayon::join(|| io::load_image(fixed), || io::load_image(moving));
    let (f, m) = (f?, m?);
    let source = PairSource {
        fixed: &f,
        moving: &m,
        transform: transform.as_deref(),
        mask: None,
    };
    let kernel = crate::register::qc::box_map_kernel(backend, &|l| reporter.log(l))?;
    let quality = compute_quality(&source, options, kernel.as_ref(), &mut NoSink, reporter)?;
    let (w, h) = source.size();
    let step = w.max(h).div_ceil(JACOBIAN_SIDE).next_power_of_two();
    let jacobian = transform
        .as_deref()
        .map(|t| jacobian::jacobian_qc(t, w, h, Some(step), reporter.cancel_token()))
        .transpose()?;
    let mut heatmaps = Vec::new();
    for (map, preview) in &quality.previews {
        let stats = &quality.report.maps[map.name()];
        let range = match map {
            QualityMap::Corr | QualityMap::DmCorr => [0.0, 1.0],
            _ if stats.p95.is_finite() && stats.p95 > 0.0 => [0.0, stats.p95],
            _ => [0.0, 1.0],
        };
        let bytes = heat_bytes(preview.values.iter().map(|&v| f64::from(v)), range);
        heatmaps.push((
            Shown::Quality(*map),
            Heatmap {
                pyramid: Arc::new(level_pyramid(
                    preview.width,
                    preview.height,
                    bytes,
                    preview.cell,
                )),
                range,
                log: false,
                unit: map.unit(),
            },
        ));
    }
    if let Some(j) = &jacobian {
        let step = j.report.step as usize;
        if step.is_power_of_two() {
            let range = [-(4f64.ln()), 4f64.ln()];
            let logs = j
                .det
                .iter()
                .map(|&d| if d > 0.0 { f64::from(d).ln() } else { range[0] });
            let bytes = heat_bytes(logs, range);
            heatmaps.push((
                Shown::Jacobian,
                Heatmap {
                    pyramid: Arc::new(level_pyramid(j.report.width, j.report.height, bytes, step)),
                    range,
                    log: true,
                    unit: "area ratio, log scale; darkest: folded",
                },
            ));
        }
    }
    Ok(AnalysisOutcome {
        quality,
        jacobian,
        heatmaps,
    })
}

/// Values to heatmap bytes: NaN is 0 (no data), `range` runs over 1..=255.
fn heat_bytes(values: impl Iterator<Item = f64>, range: [f64; 2]) -> Vec<u8> {
    let span = (range[1] - range[0]).max(1e-12);
    values
        .map(|v| {
            if v.is_nan() {
                0
            } else {
                (1.0 + 254.0 * ((v - range[0]) / span).clamp(0.0, 1.0)).round() as u8
            }
        })
        .collect()
}

fn level_pyramid(width: usize, height: usize, pixels: Vec<u8>, cell: usize) -> Pyramid {
    Pyramid::from_level(
        Level::gray(width, height, pixels),
        cell.trailing_zeros() as usize,
    )
}

impl AlinifyApp {
    /// Starts computing the maps of the loaded pair (through the registration's transform when
    /// there is one).
    pub fn start_analysis(&mut self) {
        let Some((fixed, moving)) = self.pair_paths_when_idle() else {
            return;
        };
        let transform = self.result.as_ref().map(|r| r.transform.clone());
        // Flags on MI for a pair registered with MI (different stains), else on CORR.
        let metric = match &self.result {
            Some(r) => r.options.metric,
            None => self
                .settings
                .parameters
                .options(self.settings.mode)
                .map_or(crate::metric::MetricKind::Ncc, |o| o.metric),
        };
        let options = crate::register::qc::qc_options(metric);
        let job = JobHandle::spawn_woken("alinify-analysis", self.waker.clone(), move |r| {
            analyse(&fixed, &moving, transform, &options, Backend::Auto, r)
        });
        match job {
            Ok(job) => self.task = Task::Analyzing { job, fraction: 0.0 },
            Err(e) => self.error = Some(format!("cannot start the analysis: {e}")),
        }
    }

    /// The heatmap layer the compositor draws over the pair, when one is shown.
    pub(super) fn heatmap_overlay(&self) -> Option<(Arc<Pyramid>, OverlaySettings)> {
        let a = &self.analysis;
        let heatmap = a.outcome.as_ref()?.heatmap(a.shown)?;
        a.visible.then(|| {
            (
                heatmap.pyramid.clone(),
                OverlaySettings {
                    opacity: a.opacity,
                    warped: false,
                    heatmap: true,
                    ..OverlaySettings::default()
                },
            )
        })
    }

    /// Zooms the viewer onto a region (with a margin of half its size).
    pub fn zoom_to(&mut self, flag: &Flag) {
        let viewport = self
            .viewer
            .last_panes
            .first()
            .map_or(egui::vec2(800.0, 600.0), |p| p.rect.size());
        let step = (2.0 * flag.width as f64 / viewport.x.max(1.0) as f64)
            .max(2.0 * flag.height as f64 / viewport.y.max(1.0) as f64)
            .max(0.05);
        self.viewer.camera = Some(Camera {
            center: [
                flag.x as f64 + flag.width as f64 / 2.0,
                flag.y as f64 + flag.height as f64 / 2.0,
            ],
            step,
        });
    }

    /// The panel: compute (or cancel), the map, opacity, legend, the value under the cursor,
    /// the summary and the flagged regions.
    pub(super) fn analysis_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Analysis");
        let idle = matches!(self.task, Task::Idle);
        ui.horizontal(|ui| {
            let label = if self.analysis.outcome.is_some() {
                "Recompute QC"
            } else {
                "Compute QC maps"
            };
            if ui
                .add_enabled(idle && self.layers.is_some(), egui::Button::new(label))
                .on_hover_text("regional quality maps and, after a registration, the Jacobian")
                .clicked()
            {
                self.start_analysis();
            }
            if let Task::Analyzing { .. } = self.task
                && ui.button("Cancel").clicked()
            {
                self.cancel();
            }
        });
        if let Task::Analyzing { fraction, .. } = &self.task {
            ui.add(egui::ProgressBar::new(*fraction).text("computing the maps"));
        }
        let Some(outcome) = &self.analysis.outcome else {
            ui.weak("no maps yet");
            return;
        };
        let mut shown = self.analysis.shown;
        egui::ComboBox::from_id_salt("analysis map")
            .selected_text(shown.label())
            .show_ui(ui, |ui| {
                for (s, _) in &outcome.heatmaps {
                    ui.selectable_value(&mut shown, *s, s.label());
                }
            });
        self.analysis.shown = shown;
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.analysis.visible, "show");
            ui.add(egui::Slider::new(&mut self.analysis.opacity, 0.0..=1.0).text("opacity"));
        });
        if let Some(heatmap) = outcome.heatmap(shown) {
            legend(ui, heatmap);
        }
        let under = self
            .hover
            .and_then(|p| outcome.value_at(shown, p))
            .map_or("-".into(), |v| format!("{v:.4}"));
        ui.label(format!("under the cursor: {under}"));
        let report = &outcome.quality.report;
        if let Some(s) = report.maps.get("corr") {
            ui.label(format!("local corr median {:.3}, p5 {:.3}", s.median, s.p5));
        }
        if let Some(j) = &outcome.jacobian {
            ui.label(format!(
                "det J {:.3} .. {:.3}, folded {:.3} %",
                j.report.min,
                j.report.max,
                100.0 * j.report.folded_fraction
            ));
        }
        let flags: Vec<Flag> = outcome.flags().into_iter().cloned().collect();
        if flags.is_empty() {
            ui.label("no region flagged");
        } else {
            ui.label(format!("{} flagged region(s):", flags.len()));
            let mut zoom = None;
            egui::ScrollArea::vertical()
                .id_salt("flags")
                .max_height(140.0)
                .show(ui, |ui| {
                    for (i, f) in flags.iter().enumerate() {
                        let kind = f.reason.split(':').next().unwrap_or("flag");
                        let text = format!(
                            "{}. {kind} {}×{} at {}, {}",
                            i + 1,
                            f.width,
                            f.height,
                            f.x,
                            f.y
                        );
                        if ui.link(text).on_hover_text(&f.reason).clicked() {
                            zoom = Some(f.clone());
                        }
                    }
                });
            if let Some(f) = zoom {
                self.zoom_to(&f);
            }
        }
    }

    /// Outlines the flagged regions over the viewer's panes.
    pub(super) fn draw_flags(&self, ui: &egui::Ui) {
        let (Some(outcome), Some(camera)) = (&self.analysis.outcome, self.viewer.camera) else {
            return;
        };
        if !self.analysis.visible {
            return;
        }
        let stroke = egui::Stroke::new(2.0, egui::Color32::from_rgb(255, 40, 200));
        for pane in &self.viewer.last_panes {
            let painter = ui.painter_at(pane.rect);
            for f in outcome.flags() {
                let a = camera.to_screen(pane.rect, [f.x as f64, f.y as f64]);
                let b =
                    camera.to_screen(pane.rect, [(f.x + f.width) as f64, (f.y + f.height) as f64]);
                painter.rect_stroke(
                    egui::Rect::from_two_pos(a, b),
                    0.0,
                    stroke,
                    egui::StrokeKind::Outside,
                );
            }
        }
    }
}

/// A colour bar with its ends, middle and units.
fn legend(ui: &mut egui::Ui, heatmap: &Heatmap) {
    let (rect, _) =
        ui.allocate_exact_size(egui::vec2(ui.available_width(), 12.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let n = 48;
    for i in 0..n {
        let t = i as f32 / (n - 1) as f32;
        let c = heat_colour(t);
        let x0 = rect.left() + rect.width() * i as f32 / n as f32;
        let x1 = rect.left() + rect.width() * (i + 1) as f32 / n as f32;
        painter.rect_filled(
            egui::Rect::from_x_y_ranges(x0..=x1, rect.y_range()),
            0.0,
            egui::Color32::from_rgb(
                (c[0] * 255.0) as u8,
                (c[1] * 255.0) as u8,
                (c[2] * 255.0) as u8,
            ),
        );
    }
    let value = |t: f64| {
        let v = heatmap.range[0] + t * (heatmap.range[1] - heatmap.range[0]);
        if heatmap.log { v.exp() } else { v }
    };
    ui.horizontal(|ui| {
        ui.small(format!("{:.3}", value(0.0)));
        ui.add_space((ui.available_width() - 90.0).max(0.0) / 2.0);
        ui.small(format!("{:.3}", value(0.5)));
        ui.add_space((ui.available_width() - 40.0).max(0.0));
        ui.small(format!("{:.3}", value(1.0)));
    });
    ui.small(heatmap.unit);
}
