//! One layer's display controls in the layers panel: its histogram with the window's two
//! handles (drag them), the transfer curve, a gamma, a colour map for gray layers, and the
//! Auto (percentiles) and Full range buttons.

use crate::compose::{BINS, ColourMap, Display, Histogram};
use eframe::egui;
use std::sync::Arc;

/// How a loaded layer shows: its display settings and the histogram they are set on.
#[derive(Debug, Clone)]
pub struct Look {
    /// The window, gamma and colour map.
    pub display: Display,
    /// The layer's samples, counted once at load.
    pub histogram: Arc<Histogram>,
    /// RGB samples (the colour map does not apply).
    pub rgb: bool,
    /// The largest sample value (255 or 65535), for the numbers shown.
    pub max_value: f32,
}

impl Look {
    /// The look of `pyramid` as loaded: every sample shown as it is.
    pub fn of(pyramid: &crate::compose::Pyramid) -> Self {
        Self {
            display: Display::default(),
            histogram: Arc::new(Histogram::of(pyramid)),
            rgb: pyramid.is_rgb(),
            max_value: pyramid.levels[0].samples.max_value(),
        }
    }
}

/// The percentiles the Auto button sets the window to.
const AUTO_PERCENTILES: (f64, f64) = (0.001, 0.999);

/// Height of the histogram in points.
const HISTOGRAM_HEIGHT: f32 = 56.0;

/// The controls of `look`, under `id`.
pub fn display_controls(ui: &mut egui::Ui, id: egui::Id, look: &mut Look) {
    histogram_with_handles(ui, id, look);
    let d = &mut look.display;
    let m = look.max_value;
    ui.horizontal(|ui| {
        ui.weak(format!("window {:.0} – {:.0}", d.low * m, d.high * m));
        if ui
            .small_button("Auto")
            .on_hover_text("the window from the 0.1 % to the 99.9 % of the samples")
            .clicked()
        {
            *d = d.with_percentiles(&look.histogram, AUTO_PERCENTILES.0, AUTO_PERCENTILES.1);
        }
        if ui
            .small_button("Full")
            .on_hover_text("the whole sample range, gamma 1")
            .clicked()
        {
            *d = Display {
                map: d.map,
                ..Display::default()
            };
        }
    });
    ui.add(
        egui::Slider::new(&mut d.gamma, 0.2..=5.0)
            .logarithmic(true)
            .text("gamma"),
    )
    .on_hover_text("below 1 brightens the mid-tones");
    if look.rgb {
        return;
    }
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("colour map")
            .selected_text(d.map.label())
            .show_ui(ui, |ui| {
                for map in ColourMap::ALL {
                    let selected = std::mem::discriminant(&d.map) == std::mem::discriminant(&map);
                    if ui.selectable_label(selected, map.label()).clicked() && !selected {
                        d.map = map;
                    }
                }
            });
        if let ColourMap::Stain(tint) = &mut d.map {
            ui.color_edit_button_rgb(tint)
                .on_hover_text("the stain's colour");
        }
    });
}

/// Which handle a drag on the histogram moves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Handle {
    Low,
    High,
}

/// The histogram (counts on a log scale, per channel), the window shaded outside, its two
/// handles and the transfer curve; dragging moves the nearer handle.
fn histogram_with_handles(ui: &mut egui::Ui, id: egui::Id, look: &mut Look) {
    // A little short of the panel's edge, where its scroll bar lies.
    let width = (ui.available_width() - 8.0).max(120.0);
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(width, HISTOGRAM_HEIGHT),
        egui::Sense::click_and_drag(),
    );
    let h = &look.histogram;
    let d = &mut look.display;
    // The x axis spans the samples and the window, whichever is wider, with a margin so that
    // handles at the ends stay in reach.
    let span = {
        let lo = h.range[0].min(d.low);
        let hi = h.range[1].max(d.high);
        let [lo, hi] = if hi - lo < 1e-3 { [0.0, 1.0] } else { [lo, hi] };
        let margin = 0.04 * (hi - lo);
        [lo - margin, hi + margin]
    };
    let x_of = |v: f32| rect.left() + (v - span[0]) / (span[1] - span[0]) * rect.width();
    let v_of = |x: f32| span[0] + (x - rect.left()) / rect.width() * (span[1] - span[0]);
    if let Some(pos) = response.interact_pointer_pos() {
        let handle_id = id.with("handle");
        // The handle is chosen where the button went down (before any drag starts).
        let pressed = ui.input(|i| i.pointer.any_pressed());
        let handle = if pressed || response.clicked() {
            let nearer = if (pos.x - x_of(d.low)).abs() <= (pos.x - x_of(d.high)).abs() {
                Handle::Low
            } else {
                Handle::High
            };
            ui.data_mut(|m| m.insert_temp(handle_id, nearer));
            nearer
        } else {
            ui.data(|m| m.get_temp(handle_id)).unwrap_or(Handle::Low)
        };
        let v = v_of(pos.x).clamp(0.0, 1.0);
        *d = match handle {
            Handle::Low => d.with_window(v, d.high),
            Handle::High => d.with_window(d.low, v),
        };
    }
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let colours: &[egui::Color32] = if h.counts.len() == 3 {
        &[
            egui::Color32::from_rgb(230, 80, 80),
            egui::Color32::from_rgb(80, 200, 80),
            egui::Color32::from_rgb(90, 130, 240),
        ]
    } else {
        &[egui::Color32::GRAY]
    };
    let peak = h
        .counts
        .iter()
        .flat_map(|c| c.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f32;
    let height_of = |n: u64| (1.0 + n as f32).ln() / (1.0 + peak).ln();
    let bin_x = |i: f32| x_of(h.range[0] + i / BINS as f32 * (h.range[1] - h.range[0]));
    for (counts, &colour) in h.counts.iter().zip(colours) {
        let points: Vec<egui::Pos2> = counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let y = rect.bottom() - height_of(n) * (rect.height() - 4.0);
                egui::pos2(bin_x(i as f32 + 0.5), y)
            })
            .collect();
        painter.add(egui::Shape::line(points, egui::Stroke::new(1.2, colour)));
    }
    let shade = egui::Color32::from_black_alpha(110);
    let (xl, xh) = (x_of(d.low), x_of(d.high));
    painter.rect_filled(
        egui::Rect::from_x_y_ranges(rect.left()..=xl, rect.y_range()),
        0.0,
        shade,
    );
    painter.rect_filled(
        egui::Rect::from_x_y_ranges(xh..=rect.right(), rect.y_range()),
        0.0,
        shade,
    );
    // The transfer curve inside the window.
    let curve: Vec<egui::Pos2> = (0..=32)
        .map(|i| {
            let t = i as f32 / 32.0;
            let v = d.low + t * (d.high - d.low);
            egui::pos2(x_of(v), rect.bottom() - d.stretch(v) * rect.height())
        })
        .collect();
    let accent = visuals.selection.bg_fill;
    painter.add(egui::Shape::line(curve, egui::Stroke::new(1.0, accent)));
    for x in [xl, xh] {
        painter.line_segment(
            [egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())],
            egui::Stroke::new(2.0, accent),
        );
        painter.add(egui::Shape::convex_polygon(
            vec![
                egui::pos2(x - 5.0, rect.bottom()),
                egui::pos2(x + 5.0, rect.bottom()),
                egui::pos2(x, rect.bottom() - 7.0),
            ],
            accent,
            egui::Stroke::NONE,
        ));
    }
    response.on_hover_text("drag a handle to set the window");
}
