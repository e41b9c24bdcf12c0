//! Local contrast normalisation: each pixel minus its neighbourhood's mean, divided by the
//! neighbourhood's standard deviation (floored). Gain, offset and slow shading changes between
//! the two images cancel, which brightness constancy alone cannot survive.

use crate::raster::{GrayF32, PreparedImage, box_mean_rows};
use ndarray::Axis;
use rayon::prelude::*;

/// Half-width of the square neighbourhood (pixels of the level).
pub const RADIUS: usize = 5;
/// Contrast floor (intensity units 0..1): flat, noisy regions stay near zero instead of
/// amplifying their noise.
pub const CONTRAST_FLOOR: f32 = 0.02;

/// The normalised image, same size as `image`.
pub fn normalize(image: &GrayF32) -> GrayF32 {
    let (h, w) = image.dim();
    normalize_rows(h, w, |y, row| {
        row.copy_from_slice(image.row(y).as_slice().expect("standard layout"))
    })
}

/// The normalised level `level` of `image`, read row by row: the same values as
/// [`normalize`] of [`PreparedImage::level`], without its full-size copy of level 0.
pub fn normalize_level(image: &PreparedImage, level: usize) -> GrayF32 {
    let (h, w) = image.level_dim(level);
    normalize_rows(h, w, |y, row| image.read_level_row(level, y, row))
}

/// The normalised `h x w` image whose rows `read(y, row)` writes.
///
/// The window's mean and mean square are [`box_mean_rows`] of the image and of its square, into
/// buffers allocated once (profiled: two [`crate::raster::box_mean`] calls, which allocated per
/// row, and an indexed pass after them took 0.15 s for a 2048² pair on two cores, a fifth of
/// the level); the result takes the box means' scratch. Reading the rows from the source saves
/// the full-size converted copy of level 0 and its pass.
fn normalize_rows(h: usize, w: usize, read: impl Fn(usize, &mut [f32]) + Sync) -> GrayF32 {
    let mut scratch = vec![0f32; h * w];
    let (mut mean, mut mean_sq) = (GrayF32::zeros((h, w)), GrayF32::zeros((h, w)));
    box_mean_rows(&mut scratch, &mut mean, RADIUS, &read);
    box_mean_rows(&mut scratch, &mut mean_sq, RADIUS, |y, row| {
        read(y, row);
        for s in row.iter_mut() {
            *s = *s * *s;
        }
    });
    let floor_sq = CONTRAST_FLOOR * CONTRAST_FLOOR;
    let mut out = GrayF32::from_shape_vec((h, w), scratch).expect("h x w values");
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut row)| {
            let row = row.as_slice_mut().expect("standard layout");
            read(y, row);
            let (m, m2) = (mean.row(y), mean_sq.row(y));
            for ((o, &m), &m2) in row.iter_mut().zip(m).zip(m2) {
                let var = (m2 - m * m).max(0.0);
                *o = (*o - m) / (var + floor_sq).sqrt();
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition the buffered version must match bit for bit: two box means, then the
    /// formula.
    fn normalize_by_box_means(image: &GrayF32) -> GrayF32 {
        use crate::raster::box_mean;
        let mean = box_mean(image, RADIUS, |v| v);
        let mean_sq = box_mean(image, RADIUS, |v| v * v);
        let mut out = image.clone();
        for ((y, x), o) in out.indexed_iter_mut() {
            let m = mean[[y, x]];
            let var = (mean_sq[[y, x]] - m * m).max(0.0);
            *o = (*o - m) / (var + CONTRAST_FLOOR * CONTRAST_FLOOR).sqrt();
        }
        out
    }

    #[test]
    fn the_buffered_normalisation_equals_the_box_means_exactly() {
        // Narrower than the window in one direction, wider in the other, and a flat band.
        for (h, w) in [(37, 61), (8, 30), (30, 8)] {
            let image = GrayF32::from_shape_fn((h, w), |(y, x)| {
                if y < 3 {
                    0.25
                } else {
                    ((x * 7919 + y * 104_729) % 1000) as f32 / 1000.0
                }
            });
            let (fused, reference) = (normalize(&image), normalize_by_box_means(&image));
            for (a, b) in fused.iter().zip(reference.iter()) {
                assert_eq!(a.to_bits(), b.to_bits(), "{h} x {w}: {a} against {b}");
            }
        }
    }

    #[test]
    fn a_level_read_row_by_row_normalises_as_its_copy_does() {
        use crate::job::CancelToken;
        use crate::raster::{AnyImage, Raster};
        // Three 8-bit channels: level 0 is their luminance, converted per row.
        let (w, h) = (45, 38);
        let samples = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let image = AnyImage::U8(Raster::from_interleaved(w, h, 3, samples).unwrap());
        let prepared = PreparedImage::new(image, 3, &CancelToken::default()).unwrap();
        for level in 0..3 {
            let (read, copied) = (
                normalize_level(&prepared, level),
                normalize(&prepared.level(level)),
            );
            assert_eq!(read.dim(), copied.dim());
            for (a, b) in read.iter().zip(copied.iter()) {
                assert_eq!(a.to_bits(), b.to_bits(), "level {level}: {a} against {b}");
            }
        }
    }

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
