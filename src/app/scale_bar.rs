//! The scale bar in the viewer's corner: a round length in micrometres or millimetres when the
//! fixed image's file says its pixel size (TIFF resolution tags), else in pixels.

use eframe::egui;

/// The longest the bar grows, in screen points.
const MAX_POINTS: f64 = 140.0;

/// The bar for a view of `step` fixed-image pixels per screen point: its length in points and
/// its label. Lengths are 1, 2 or 5 times a power of ten, the longest within [`MAX_POINTS`].
pub fn scale_bar(step: f64, micrometres_per_pixel: Option<f64>) -> (f32, String) {
    let per_point = step * micrometres_per_pixel.unwrap_or(1.0);
    let most = MAX_POINTS * per_point;
    let power = 10f64.powf(most.log10().floor());
    let length = [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&l| l <= most)
        .unwrap_or(power);
    let label = match micrometres_per_pixel {
        None => format!("{} px", round_text(length)),
        Some(_) if length >= 1000.0 => format!("{} mm", round_text(length / 1000.0)),
        Some(_) => format!("{} µm", round_text(length)),
    };
    ((length / per_point) as f32, label)
}

/// A round length without trailing zeros (0.5, 2, 100).
fn round_text(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Draws the bar in the bottom-left corner of `rect`.
pub fn draw(ui: &egui::Ui, rect: egui::Rect, step: f64, micrometres_per_pixel: Option<f64>) {
    let (points, label) = scale_bar(step, micrometres_per_pixel);
    let painter = ui.painter_at(rect);
    let left = rect.left_bottom() + egui::vec2(14.0, -14.0);
    let right = left + egui::vec2(points, 0.0);
    let font = egui::FontId::proportional(12.0);
    let galley = painter.layout_no_wrap(label, font, egui::Color32::WHITE);
    let back = egui::Rect::from_min_max(
        left - egui::vec2(6.0, galley.size().y + 10.0),
        egui::pos2(right.x.max(left.x + galley.size().x) + 6.0, left.y + 5.0),
    );
    painter.rect_filled(back, 3.0, egui::Color32::from_black_alpha(150));
    let stroke = egui::Stroke::new(3.0, egui::Color32::WHITE);
    painter.line_segment([left, right], stroke);
    for x in [left, right] {
        painter.line_segment([x - egui::vec2(0.0, 4.0), x + egui::vec2(0.0, 2.0)], stroke);
    }
    painter.galley(
        left - egui::vec2(0.0, galley.size().y + 6.0),
        galley,
        egui::Color32::WHITE,
    );
}

#[cfg(test)]
mod tests {
    use super::scale_bar;

    #[test]
    fn the_bar_is_a_round_length_in_the_files_unit() {
        // 4 px per point at 0.5 µm per px: 140 points are 280 µm, so 200 µm on 100 points.
        let (points, label) = scale_bar(4.0, Some(0.5));
        assert_eq!(label, "200 µm");
        assert!((points - 100.0).abs() < 1e-3);
        assert_eq!(scale_bar(40.0, Some(0.5)).1, "2 mm");
        assert_eq!(scale_bar(0.01, Some(0.25)).1, "0.2 µm");
        // No pixel size: pixels (at most 420 px: 200 px).
        let (points, label) = scale_bar(3.0, None);
        assert_eq!(label, "200 px");
        assert!((points - 200.0 / 3.0).abs() < 1e-3);
    }
}
