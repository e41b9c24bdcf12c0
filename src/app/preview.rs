//! Display-resolution previews of the layers and their composite, computed on the CPU.
//!
//! This first version of the viewer composes decimated previews (longest side at most
//! [`PREVIEW_SIDE`], so always under the device's texture limit); the tiled full-resolution
//! texture pyramid and the GPU composition are still to come.

use crate::raster::{AnyImage, GrayF32};

/// Longest side of a layer preview, pixels.
pub const PREVIEW_SIDE: usize = 1024;

/// A layer reduced for display: luminance in `0..=1`, and the full-resolution size it shows.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Luminance, `(height, width)`.
    pub pixels: GrayF32,
    /// Full-resolution pixels per preview pixel.
    pub step: usize,
    /// Full-resolution width and height.
    pub full_size: [usize; 2],
}

impl Preview {
    /// Averages `step x step` blocks of `image` so that the longest side fits `side`.
    pub fn of(image: &AnyImage, side: usize) -> Self {
        let (w, h) = (image.width(), image.height());
        let step = w.max(h).div_ceil(side.max(1)).max(1);
        let (pw, ph) = (w.div_ceil(step), h.div_ceil(step));
        let mut pixels = GrayF32::zeros((ph, pw));
        let mut row = vec![0.0f32; w];
        let mut counts = vec![0u32; pw];
        for py in 0..ph {
            counts.iter_mut().for_each(|c| *c = 0);
            for y in (py * step)..((py + 1) * step).min(h) {
                image.luminance_row(y, &mut row);
                for (x, v) in row.iter().enumerate() {
                    pixels[[py, x / step]] += v;
                    counts[x / step] += 1;
                }
            }
            for (px, c) in counts.iter().enumerate() {
                pixels[[py, px]] /= (*c).max(1) as f32;
            }
        }
        Self {
            pixels,
            step,
            full_size: [w, h],
        }
    }

    /// Value at preview pixel `(x, y)`, or `None` outside.
    pub fn get(&self, x: usize, y: usize) -> Option<f32> {
        self.pixels.get((y, x)).copied()
    }
}

/// How two layers are combined on screen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Blend {
    /// The top layer over the bottom one with an opacity.
    Alpha,
    /// `|top - bottom|`, bright where they disagree.
    Difference,
    /// Alternating squares of each layer.
    Checkerboard,
    /// Bottom in red, top in cyan: aligned structures turn gray.
    FalseColor,
    /// The layers alternate in time.
    Flicker,
}

impl Blend {
    /// Every mode, in menu order.
    pub const ALL: [Blend; 5] = [
        Blend::Alpha,
        Blend::Difference,
        Blend::Checkerboard,
        Blend::FalseColor,
        Blend::Flicker,
    ];

    /// The name shown in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Blend::Alpha => "Alpha",
            Blend::Difference => "Difference",
            Blend::Checkerboard => "Checkerboard",
            Blend::FalseColor => "Red/cyan",
            Blend::Flicker => "Flicker",
        }
    }
}

/// Composition settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Composite {
    /// The mode.
    pub blend: Blend,
    /// Opacity of the top layer (alpha mode), `0..=1`.
    pub opacity: f32,
    /// Checkerboard square side in full-resolution pixels.
    pub square: usize,
    /// Which layer flicker shows now (the top one when true).
    pub flicker_top: bool,
}

impl Default for Composite {
    fn default() -> Self {
        Self {
            blend: Blend::Checkerboard,
            opacity: 0.5,
            square: 64,
            flicker_top: false,
        }
    }
}

/// RGBA pixels (`width * height * 4`) of `top` over `bottom` on `bottom`'s preview grid. The top
/// layer is sampled at the same full-resolution position; outside it, the bottom shows.
pub fn compose(bottom: &Preview, top: &Preview, settings: &Composite) -> (usize, usize, Vec<u8>) {
    let (h, w) = bottom.pixels.dim();
    let mut rgba = Vec::with_capacity(w * h * 4);
    let square = (settings.square / bottom.step).max(1);
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for y in 0..h {
        for x in 0..w {
            let b = bottom.pixels[[y, x]];
            let (fx, fy) = (x * bottom.step / top.step, y * bottom.step / top.step);
            let t = top.get(fx, fy);
            let [r, g, bl] = match (settings.blend, t) {
                (_, None) => [b, b, b],
                (Blend::Alpha, Some(t)) => {
                    let v = b + settings.opacity * (t - b);
                    [v, v, v]
                }
                (Blend::Difference, Some(t)) => {
                    let v = (t - b).abs();
                    [v, v, v]
                }
                (Blend::Checkerboard, Some(t)) => {
                    let v = if (x / square + y / square).is_multiple_of(2) {
                        b
                    } else {
                        t
                    };
                    [v, v, v]
                }
                (Blend::FalseColor, Some(t)) => [b, t, t],
                (Blend::Flicker, Some(t)) => {
                    let v = if settings.flicker_top { t } else { b };
                    [v, v, v]
                }
            };
            rgba.extend_from_slice(&[byte(r), byte(g), byte(bl), 255]);
        }
    }
    (w, h, rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(value: f32, size: usize) -> Preview {
        Preview {
            pixels: GrayF32::from_elem((size, size), value),
            step: 1,
            full_size: [size, size],
        }
    }

    #[test]
    fn blend_modes_combine_the_layers_as_named() {
        let (b, t) = (constant(0.2, 4), constant(0.8, 4));
        let mut settings = Composite {
            square: 2,
            ..Composite::default()
        };
        let pixel = |s: &Composite, i: usize| compose(&b, &t, s).2[i * 4..i * 4 + 3].to_vec();
        settings.blend = Blend::Difference;
        assert_eq!(pixel(&settings, 0), vec![153, 153, 153]);
        settings.blend = Blend::Checkerboard;
        assert_eq!(pixel(&settings, 0), vec![51, 51, 51]);
        assert_eq!(pixel(&settings, 2), vec![204, 204, 204]);
        settings.blend = Blend::FalseColor;
        assert_eq!(pixel(&settings, 0), vec![51, 204, 204]);
        settings.blend = Blend::Alpha;
        assert_eq!(pixel(&settings, 0), vec![128, 128, 128]);
    }

    #[test]
    fn previews_average_blocks_and_fit_the_side() {
        let image = AnyImage::from_gray_f32(GrayF32::from_shape_fn((300, 200), |(y, _)| {
            if y < 150 { 0.0 } else { 1.0 }
        }));
        let p = Preview::of(&image, 100);
        assert_eq!(p.step, 3);
        assert_eq!(p.pixels.dim(), (100, 67));
        assert_eq!(p.get(0, 0), Some(0.0));
        assert_eq!(p.get(0, 99), Some(1.0));
    }
}
