//! Measuring registration quality: end-point error against ground truth, similarity of the
//! fixed image with the warped moving image, regional quality maps ([`quality`]) and the
//! Jacobian of a transform ([`jacobian`]), with the regions they flag ([`flags`]).

pub mod features;
pub mod flags;
pub mod jacobian;
pub mod landmarks;
pub mod network;
pub mod quality;
pub mod render;

use crate::io::flo::UNKNOWN_THRESHOLD;
use crate::raster::{BilinearSampler, GrayF32, NccSums, ROWS_PER_TASK};
use crate::transform::{AtLevel, DenseField, Transform};
use crate::{Error, Result};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// End-point error statistics, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpeStats {
    /// Mean end-point error.
    pub epe_mean: f64,
    /// Median.
    pub epe_median: f64,
    /// 95th percentile.
    pub epe_p95: f64,
    /// Maximum.
    pub epe_max: f64,
    /// Share of pixels with error above 1 px.
    pub over_1px: f64,
    /// Share of pixels with error above 3 px.
    pub over_3px: f64,
    /// Pixels scored (valid ground truth, inside the mask, finite estimate).
    pub pixels: u64,
}

/// Compares an estimated field with ground truth: pixels where the ground truth is unknown
/// (`|value| > 1e9` or not finite) or outside `mask` are not scored. A non-finite estimate at a
/// scored pixel counts as an infinite error.
pub fn end_point_error(
    estimate: &DenseField,
    truth: &DenseField,
    mask: Option<&Array2<bool>>,
) -> Result<EpeStats> {
    let (w, h) = (truth.width(), truth.height());
    if (estimate.width(), estimate.height()) != (w, h) {
        return Err(Error::InvalidArgument(format!(
            "the estimated field is {} x {} but the ground truth is {w} x {h}",
            estimate.width(),
            estimate.height()
        )));
    }
    if let Some(m) = mask
        && m.dim() != (h, w)
    {
        return Err(Error::InvalidArgument(format!(
            "the mask is {} x {} but the ground truth is {w} x {h}",
            m.ncols(),
            m.nrows()
        )));
    }
    let mut errors: Vec<f32> = (0..h)
        .into_par_iter()
        .flat_map_iter(|y| {
            (0..w).filter_map(move |x| {
                let (gu, gv) = (truth.u[[y, x]], truth.v[[y, x]]);
                let known = gu.is_finite()
                    && gv.is_finite()
                    && gu.abs() <= UNKNOWN_THRESHOLD
                    && gv.abs() <= UNKNOWN_THRESHOLD;
                if !known || mask.is_some_and(|m| !m[[y, x]]) {
                    return None;
                }
                let (du, dv) = (estimate.u[[y, x]] - gu, estimate.v[[y, x]] - gv);
                let e = (du * du + dv * dv).sqrt();
                Some(if e.is_finite() { e } else { f32::INFINITY })
            })
        })
        .collect();
    if errors.is_empty() {
        return Err(Error::InvalidArgument(
            "no pixel has valid ground truth inside the mask".into(),
        ));
    }
    let n = errors.len();
    let mean = errors.par_iter().map(|&e| e as f64).sum::<f64>() / n as f64;
    let over = |t: f32| errors.par_iter().filter(|&&e| e > t).count() as f64 / n as f64;
    let (over_1px, over_3px) = (over(1.0), over(3.0));
    let mut quantile = |q: f64| {
        let k = ((q * (n - 1) as f64).round() as usize).min(n - 1);
        *errors.select_nth_unstable_by(k, f32::total_cmp).1 as f64
    };
    let (median, p95) = (quantile(0.5), quantile(0.95));
    let max = errors.par_iter().copied().reduce(|| 0.0, f32::max) as f64;
    Ok(EpeStats {
        epe_mean: mean,
        epe_median: median,
        epe_p95: p95,
        epe_max: max,
        over_1px,
        over_3px,
        pixels: n as u64,
    })
}

/// NCC between `fixed` (pyramid level `level` of the fixed image) and the moving image's level
/// resampled through `transform` (full-resolution coordinates), over pixels that map inside.
pub fn ncc_after_transform(
    fixed: &GrayF32,
    moving: &GrayF32,
    transform: &dyn Transform,
    level: usize,
) -> f64 {
    let sampler = BilinearSampler::new(moving.view());
    let w = fixed.ncols();
    let at_level = AtLevel::new(transform, level);
    let mapper = at_level.row_mapper(0, w);
    // Each band's sums straight from the samples, in the order `raster::ncc` adds a band (the
    // same value as warping into an image and a mask first, without either).
    let bands = fixed
        .axis_chunks_iter(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .enumerate()
        .map_init(
            || (vec![0f64; w], vec![0f64; w]),
            |(xs, ys), (chunk, band)| {
                let mut sums = NccSums::default();
                for (r, row) in band.rows().into_iter().enumerate() {
                    mapper.map_row(chunk * ROWS_PER_TASK + r, xs, ys);
                    for ((&f, &x), &y) in row.iter().zip(&*xs).zip(&*ys) {
                        if let Some(m) = sampler.value(x, y) {
                            sums.add(f, m);
                        }
                    }
                }
                sums
            },
        )
        .collect();
    NccSums::ncc_of_bands(bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncc_after_a_transform_is_the_ncc_of_the_warped_image_over_the_pixels_inside() {
        let mut rng = crate::rng::SplitMix64::new(11);
        let (h, w) = (3 * ROWS_PER_TASK + 5, 41);
        let mut image = || GrayF32::from_shape_fn((h, w), |_| rng.next_f64() as f32);
        let (fixed, moving) = (image(), image());
        // Turned and shifted, so that a corner maps outside the moving image.
        let t = crate::transform::Affine::similarity(0.2, 1.05, [3.5, -2.25], [20.0, 26.0]);
        let sampler = BilinearSampler::new(moving.view());
        let mut warped = GrayF32::zeros((h, w));
        let mut inside = Array2::from_elem((h, w), false);
        let mapper = t.row_mapper(0, w);
        let (mut xs, mut ys) = (vec![0.0; w], vec![0.0; w]);
        for y in 0..h {
            mapper.map_row(y, &mut xs, &mut ys);
            for x in 0..w {
                if let Some(m) = sampler.value(xs[x], ys[x]) {
                    (warped[[y, x]], inside[[y, x]]) = (m, true);
                }
            }
        }
        assert!(inside.iter().any(|&i| !i), "a corner maps outside");
        let expected = crate::raster::ncc(&fixed, &warped, Some(&inside));
        let got = ncc_after_transform(&fixed, &moving, &t, 0);
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "{got} against {expected}"
        );
    }

    #[test]
    fn epe_ignores_unknown_and_masked_pixels() {
        let mut truth = DenseField::zeros(4, 2);
        let mut est = DenseField::zeros(4, 2);
        est.u[[0, 0]] = 3.0;
        est.v[[0, 0]] = 4.0; // error 5
        est.u[[0, 1]] = 1.0; // error 1
        truth.u[[1, 3]] = 1e10; // unknown
        est.u[[1, 3]] = 100.0;
        let mut mask = Array2::from_elem((2, 4), true);
        mask[[1, 0]] = false;
        est.u[[1, 0]] = 50.0;
        let s = end_point_error(&est, &truth, Some(&mask)).unwrap();
        assert_eq!(s.pixels, 6);
        assert!((s.epe_mean - 1.0).abs() < 1e-9);
        assert_eq!(s.epe_max, 5.0);
        assert!((s.over_3px - 1.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn epe_rejects_mismatched_sizes() {
        let r = end_point_error(&DenseField::zeros(3, 3), &DenseField::zeros(4, 3), None);
        assert!(r.is_err());
    }
}
