//! Pictures of maps: a colour map over a preview, the flagged regions outlined, and a legend
//! with the title, the units and labelled ticks, written as PNG.

use super::flags::Flag;
use crate::raster::GrayF32;
use crate::{Error, Result};
use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use std::path::Path;

/// How values become colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colormap {
    /// Dark blue through green to yellow (perceptually ordered, readable without colour
    /// vision), `lo..hi` linear.
    Sequential {
        /// Value at the dark end.
        lo: f64,
        /// Value at the bright end.
        hi: f64,
    },
    /// Blue below 1, white at 1, red above, on a log scale from `1/span` to `span`; values at or
    /// below 0 are black (folds).
    LogDiverging {
        /// The factor at either end (e.g. 4: from 1/4 to 4).
        span: f64,
    },
}

const SEQUENTIAL: [[f64; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];
const DIVERGING: [[f64; 3]; 3] = [
    [49.0, 84.0, 190.0],
    [245.0, 245.0, 245.0],
    [190.0, 30.0, 45.0],
];

fn ramp(stops: &[[f64; 3]], t: f64) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
    let i = (t as usize).min(stops.len() - 2);
    let f = t - i as f64;
    let c = |k: usize| (stops[i][k] * (1.0 - f) + stops[i + 1][k] * f).round() as u8;
    [c(0), c(1), c(2)]
}

impl Colormap {
    /// The colour of a value; `None` for NaN (not scored).
    pub fn colour(&self, v: f64) -> Option<[u8; 3]> {
        if v.is_nan() {
            return None;
        }
        Some(match *self {
            Colormap::Sequential { lo, hi } => ramp(&SEQUENTIAL, (v - lo) / (hi - lo).max(1e-12)),
            Colormap::LogDiverging { span } => {
                if v <= 0.0 {
                    [0, 0, 0]
                } else {
                    ramp(&DIVERGING, 0.5 + 0.5 * v.ln() / span.ln())
                }
            }
        })
    }

    /// Where a value sits along the legend's bar, `0..=1`.
    fn position(&self, v: f64) -> f64 {
        match *self {
            Colormap::Sequential { lo, hi } => (v - lo) / (hi - lo).max(1e-12),
            Colormap::LogDiverging { span } => 0.5 + 0.5 * v.max(1e-12).ln() / span.ln(),
        }
    }

    /// Five tick values along the bar, or the log scale's 1/span, 1/√span, 1, √span, span.
    fn ticks(&self) -> Vec<f64> {
        match *self {
            Colormap::Sequential { lo, hi } => {
                (0..5).map(|i| lo + (hi - lo) * i as f64 / 4.0).collect()
            }
            Colormap::LogDiverging { span } => {
                let r = span.sqrt();
                vec![1.0 / span, 1.0 / r, 1.0, r, span]
            }
        }
    }
}

/// An RGBA picture being drawn.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Row-major RGBA.
    pub pixels: Vec<[u8; 4]>,
}

impl Canvas {
    fn new(width: usize, height: usize, fill: [u8; 4]) -> Self {
        Self {
            width,
            height,
            pixels: vec![fill; width * height],
        }
    }

    fn blend(&mut self, x: i64, y: i64, colour: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let p = &mut self.pixels[y as usize * self.width + x as usize];
        for k in 0..3 {
            p[k] = (f32::from(p[k]) * (1.0 - alpha) + f32::from(colour[k]) * alpha).round() as u8;
        }
        p[3] = 255;
    }

    fn rect_outline(&mut self, [x0, y0, x1, y1]: [i64; 4], colour: [u8; 3], thickness: i64) {
        for t in 0..thickness {
            for x in x0..=x1 {
                self.blend(x, y0 + t, colour, 1.0);
                self.blend(x, y1 - t, colour, 1.0);
            }
            for y in y0..=y1 {
                self.blend(x0 + t, y, colour, 1.0);
                self.blend(x1 - t, y, colour, 1.0);
            }
        }
    }

    fn text(&mut self, font: &FontRef<'_>, size: f32, x: f32, y: f32, text: &str, colour: [u8; 3]) {
        let scaled = font.as_scaled(PxScale::from(size));
        let mut caret = x;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            let glyph = id.with_scale_and_position(size, point(caret, y + scaled.ascent()));
            caret += scaled.h_advance(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    self.blend(
                        b.min.x as i64 + gx as i64,
                        b.min.y as i64 + gy as i64,
                        colour,
                        coverage,
                    );
                });
            }
        }
    }

    /// Writes the picture as an 8-bit RGBA PNG (atomically).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        let image = image::RgbaImage::from_raw(self.width as u32, self.height as u32, bytes)
            .ok_or_else(|| Error::Internal("canvas size".into()))?;
        crate::io::write_atomic(path, |w| {
            image
                .write_to(w, image::ImageFormat::Png)
                .map_err(|e| Error::write(path, e))
        })
    }
}

/// A map to picture: its values on a grid of `cell`-pixel blocks of the fixed image.
#[derive(Debug, Clone, Copy)]
pub struct MapPicture<'a> {
    /// Row-major values (NaN: not scored, drawn grey).
    pub values: &'a [f32],
    /// Values across.
    pub width: usize,
    /// Values down.
    pub height: usize,
    /// Fixed-image pixels per value.
    pub cell: f64,
    /// The colours.
    pub colormap: Colormap,
    /// The legend's title (what the map is).
    pub title: &'a str,
    /// The legend's units line.
    pub unit: &'a str,
    /// Regions to outline, in fixed-image pixels.
    pub flags: &'a [Flag],
}

/// The longest side of a map picture, pixels (the map is resampled, nearest, to fit).
const PICTURE_SIDE: usize = 1024;
const LEGEND_HEIGHT: usize = 86;

/// Draws a map with its flags and legend.
pub fn picture(map: &MapPicture<'_>) -> Canvas {
    let zoom = (PICTURE_SIDE as f64 / map.width.max(map.height) as f64).min(8.0);
    let (pw, ph) = (
        ((map.width as f64 * zoom).round() as usize).max(1),
        ((map.height as f64 * zoom).round() as usize).max(1),
    );
    let width = pw.max(480);
    let mut canvas = Canvas::new(width, ph + LEGEND_HEIGHT, [255, 255, 255, 255]);
    for y in 0..ph {
        let sy = ((y as f64 / zoom) as usize).min(map.height - 1);
        for x in 0..pw {
            let sx = ((x as f64 / zoom) as usize).min(map.width - 1);
            let v = f64::from(map.values[sy * map.width + sx]);
            let c = map.colormap.colour(v).unwrap_or([128, 128, 128]);
            canvas.pixels[y * width + x] = [c[0], c[1], c[2], 255];
        }
    }
    // Picture pixels per fixed-image pixel.
    let k = zoom / map.cell;
    for f in map.flags {
        let r = [
            (f.x as f64 * k) as i64,
            (f.y as f64 * k) as i64,
            ((f.x + f.width) as f64 * k) as i64 - 1,
            ((f.y + f.height) as f64 * k) as i64 - 1,
        ];
        canvas.rect_outline(r, [255, 40, 200], 2);
    }
    legend(&mut canvas, ph, map);
    canvas
}

fn legend(canvas: &mut Canvas, top: usize, map: &MapPicture<'_>) {
    let font = FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR)
        .expect("the bundled font parses");
    let (x0, bar_w) = (16usize, canvas.width.saturating_sub(32).min(440));
    let bar_y = top + 30;
    for x in 0..bar_w {
        let t = x as f64 / (bar_w - 1).max(1) as f64;
        let ticks = map.colormap.ticks();
        let (lo, hi) = (
            map.colormap.position(ticks[0]),
            map.colormap.position(ticks[4]),
        );
        let v = inverse(&map.colormap, lo + (hi - lo) * t);
        let c = map.colormap.colour(v).unwrap_or([128, 128, 128]);
        for y in bar_y..bar_y + 14 {
            canvas.pixels[y * canvas.width + x0 + x] = [c[0], c[1], c[2], 255];
        }
    }
    let dark = [20, 20, 20];
    canvas.text(
        &font,
        15.0,
        x0 as f32,
        (top + 6) as f32,
        &format!("{} ({})", map.title, map.unit),
        dark,
    );
    for (i, v) in map.colormap.ticks().into_iter().enumerate() {
        let x = x0 as f32 + bar_w as f32 * i as f32 / 4.0;
        for y in bar_y + 14..bar_y + 19 {
            canvas.blend(x.min((x0 + bar_w - 1) as f32) as i64, y as i64, dark, 1.0);
        }
        let label = tick_label(v);
        let shift = 4.0
            * label.len() as f32
            * if i == 0 {
                0.0
            } else if i == 4 {
                2.0
            } else {
                1.0
            };
        canvas.text(&font, 13.0, x - shift, (bar_y + 20) as f32, &label, dark);
    }
    if !map.flags.is_empty() {
        let note = format!("magenta: {} flagged region(s)", map.flags.len());
        canvas.text(
            &font,
            13.0,
            x0 as f32,
            (bar_y + 38) as f32,
            &note,
            [200, 0, 150],
        );
    }
}

fn inverse(colormap: &Colormap, position: f64) -> f64 {
    match *colormap {
        Colormap::Sequential { lo, hi } => lo + (hi - lo) * position,
        Colormap::LogDiverging { span } => ((position - 0.5) * 2.0 * span.ln()).exp(),
    }
}

fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Canvas {
    /// A line from `a` to `b`, `width` pixels wide, blended with `alpha`.
    fn line(&mut self, a: [f32; 2], b: [f32; 2], width: f32, colour: [u8; 3], alpha: f32) {
        let r = width / 2.0;
        let (x0, x1) = (a[0].min(b[0]) - r, a[0].max(b[0]) + r);
        let (y0, y1) = (a[1].min(b[1]) - r, a[1].max(b[1]) + r);
        let d = [b[0] - a[0], b[1] - a[1]];
        let length2 = (d[0] * d[0] + d[1] * d[1]).max(1e-6);
        for y in y0.floor() as i64..=y1.ceil() as i64 {
            for x in x0.floor() as i64..=x1.ceil() as i64 {
                let p = [x as f32 + 0.5 - a[0], y as f32 + 0.5 - a[1]];
                let t = ((p[0] * d[0] + p[1] * d[1]) / length2).clamp(0.0, 1.0);
                let q = [p[0] - t * d[0], p[1] - t * d[1]];
                if q[0] * q[0] + q[1] * q[1] <= r * r {
                    self.blend(x, y, colour, alpha);
                }
            }
        }
    }

    /// `image` scaled (nearest) into the square of side `side` at `(x, y)`, stretched between
    /// its own darkest and brightest values.
    fn thumbnail(&mut self, image: &GrayF32, [x, y]: [i64; 2], side: usize) {
        let (h, w) = image.dim();
        let gray = stretched_gray(image);
        let scale = w.max(h) as f32 / side as f32;
        let (tw, th) = ((w as f32 / scale) as usize, (h as f32 / scale) as usize);
        for j in 0..th {
            for i in 0..tw {
                let (sy, sx) = (
                    ((j as f32 * scale) as usize).min(h - 1),
                    ((i as f32 * scale) as usize).min(w - 1),
                );
                let g = gray[sy * w + sx];
                self.blend(x + i as i64, y + j as i64, [g, g, g], 1.0);
            }
        }
    }
}

/// `image` as bytes (row-major) stretched between its own darkest and brightest values: how a
/// thumbnail of a registration-units image is shown.
pub fn stretched_gray(image: &GrayF32) -> Vec<u8> {
    let (lo, hi) = image
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = (hi - lo).max(1e-6);
    image
        .iter()
        .map(|&v| (((v - lo) / span) * 255.0).round() as u8)
        .collect()
}

/// The picture of an MI network: each image's thumbnail around a circle in the series
/// `order`, the kept `edges` as lines whose width grows with the MI, the reference framed in
/// orange, the names under the thumbnails.
pub fn network_picture(
    names: &[String],
    thumbnails: &[GrayF32],
    edges: &[crate::analysis::network::Edge],
    order: &[usize],
    reference: usize,
) -> Canvas {
    let n = names.len().max(1);
    let size = 1000usize;
    let centre = size as f32 / 2.0;
    let radius = size as f32 * 0.36;
    let side = ((std::f32::consts::TAU * radius / n as f32) * 0.6).clamp(24.0, 110.0) as usize;
    let mut canvas = Canvas::new(size, size, [255, 255, 255, 255]);
    let mut at = vec![[centre, centre]; n];
    for (k, &i) in order.iter().enumerate() {
        let angle = std::f32::consts::TAU * k as f32 / n as f32 - std::f32::consts::FRAC_PI_2;
        at[i] = [centre + radius * angle.cos(), centre + radius * angle.sin()];
    }
    let strongest = edges.iter().map(|e| e.mi).fold(1e-9, f64::max);
    for e in edges {
        let width = 1.0 + 9.0 * (e.mi / strongest) as f32;
        canvas.line(at[e.a], at[e.b], width, [40, 110, 200], 0.8);
    }
    let font = FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR)
        .expect("the bundled font parses");
    for (i, name) in names.iter().enumerate() {
        let half = side as f32 / 2.0;
        let corner = [(at[i][0] - half) as i64, (at[i][1] - half) as i64];
        canvas.thumbnail(&thumbnails[i], corner, side);
        let frame = if i == reference {
            ([230, 120, 30], 4)
        } else {
            ([60, 60, 60], 1)
        };
        let s = side as i64;
        canvas.rect_outline(
            [corner[0], corner[1], corner[0] + s, corner[1] + s],
            frame.0,
            frame.1,
        );
        // Long names keep their end, where series number and stain usually are.
        let chars: Vec<char> = name.chars().collect();
        let label: String = match chars.len() {
            n if n > 18 => std::iter::once('…')
                .chain(chars[n - 17..].iter().copied())
                .collect(),
            _ => name.clone(),
        };
        canvas.text(
            &font,
            12.0,
            corner[0] as f32,
            (corner[1] + s + 2) as f32,
            &label,
            [20, 20, 20],
        );
    }
    canvas
}

/// Two images side by side (each stretched between its extremes) with `matches` (a point in
/// each, in the images' own pixels) drawn as lines: inliers green, outliers red.
pub fn matches_picture(
    fixed: &GrayF32,
    moving: &GrayF32,
    matches: &[([f64; 2], [f64; 2], bool)],
) -> Canvas {
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    let gap = 8;
    let mut canvas = Canvas::new(fw + gap + mw, fh.max(mh), [255, 255, 255, 255]);
    canvas.thumbnail(fixed, [0, 0], fw.max(fh));
    canvas.thumbnail(moving, [(fw + gap) as i64, 0], mw.max(mh));
    let shift = (fw + gap) as f32;
    // Outliers first, so that inliers stay on top.
    for pass in [false, true] {
        for (f, m, inlier) in matches.iter().filter(|m| m.2 == pass) {
            let colour = if *inlier {
                [20, 200, 60]
            } else {
                [230, 40, 40]
            };
            let a = [f[0] as f32 + 0.5, f[1] as f32 + 0.5];
            let b = [m[0] as f32 + 0.5 + shift, m[1] as f32 + 0.5];
            canvas.line(a, b, 1.2, colour, if *inlier { 0.9 } else { 0.5 });
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_picture_has_the_map_the_flag_outline_and_a_legend() {
        let values: Vec<f32> = (0..64 * 48).map(|i| (i % 64) as f32 / 63.0).collect();
        let flags = [Flag {
            x: 16,
            y: 16,
            width: 16,
            height: 16,
            score: 0.1,
            reason: String::new(),
        }];
        let canvas = picture(&MapPicture {
            values: &values,
            width: 64,
            height: 48,
            cell: 1.0,
            colormap: Colormap::Sequential { lo: 0.0, hi: 1.0 },
            title: "corr",
            unit: "Pearson r",
            flags: &flags,
        });
        assert_eq!((canvas.width, canvas.height), (512, 384 + LEGEND_HEIGHT));
        let at = |x: usize, y: usize| canvas.pixels[y * canvas.width + x];
        assert_eq!(at(0, 0), [68, 1, 84, 255]);
        assert_eq!(at(511, 100)[..3], ramp(&SEQUENTIAL, 1.0)[..]);
        assert_eq!(at(128, 140), [255, 40, 200, 255]);
        let legend_ink = (384..canvas.height)
            .flat_map(|y| (0..canvas.width).map(move |x| (x, y)))
            .filter(|&(x, y)| at(x, y)[0] < 60 && at(x, y)[1] < 60)
            .count();
        assert!(
            legend_ink > 200,
            "legend text missing ({legend_ink} dark pixels)"
        );
    }
}
