//! Local contrast normalisation: each pixel minus its neighbourhood's mean, divided by the
//! neighbourhood's standard deviation (floored). Gain, offset and slow shading changes between
//! the two images cancel, which brightness constancy alone cannot survive.

use crate::raster::{GrayF32, box_mean};
use ndarray::Axis;
use rayon::prelude::*;

/// Half-width of the square neighbourhood (pixels of the level).
pub const RADIUS: usize = 5;
/// Contrast floor (intensity units 0..1): flat, noisy regions stay near zero instead of
/// amplifying their noise.
pub const CONTRAST_FLOOR: f32 = 0.02;

/// The normalised image, same size as `image`.
pub fn normalize(image: &GrayF32) -> GrayF32 {
    let mean = box_mean(image, RADIUS, |v| v);
    let mean_sq = box_mean(image, RADIUS, |v| v * v);
    let mut out = image.clone();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut row)| {
            for (x, o) in row.iter_mut().enumerate() {
                let m = mean[[y, x]];
                let var = (mean_sq[[y, x]] - m * m).max(0.0);
                *o = (*o - m) / (var + CONTRAST_FLOOR * CONTRAST_FLOOR).sqrt();
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_cancels_gain_and_offset() {
        let image = GrayF32::from_shape_fn((40, 50), |(y, x)| {
            0.5 + 0.3 * ((x as f32 * 0.7).sin() * (y as f32 * 0.4).cos())
        });
        let changed = image.mapv(|v| 0.6 * v + 0.2);
        let (a, b) = (normalize(&image), normalize(&changed));
        let worst = a
            .iter()
            .zip(b.iter())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.05, "normalised images differ by {worst}");
        assert!(a.iter().map(|v| v.abs()).fold(0.0, f32::max) > 0.5);
    }
}
