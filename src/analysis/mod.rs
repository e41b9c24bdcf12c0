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
use crate::raster::{BilinearSampler, GrayF32, ROWS_PER_TASK};
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
    let (h, w) = fixed.dim();
    let at_level = AtLevel::new(transform, level);
    let mapper = at_level.row_mapper(0, w);
    let mut warped = GrayF32::zeros((h, w));
    let mut inside = Array2::from_elem((h, w), false);
    warped
        .axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .zip(
            inside
                .axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
                .into_par_iter(),
        )
        .enumerate()
        .for_each_init(
            || (vec![0f64; w], vec![0f64; w]),
            |(xs, ys), (chunk, (mut band, mut ok))| {
                for r in 0..band.nrows() {
                    mapper.map_row(chunk * ROWS_PER_TASK + r, xs, ys);
                    for x in 0..w {
                        if let Some(v) = sampler.value(xs[x], ys[x]) {
                            band[[r, x]] = v;
                            ok[[r, x]] = true;
                        }
                    }
                }
            },
        );
    crate::raster::ncc(fixed, &warped, Some(&inside))
}

#[cfg(test)]
mod tests {
    use super::*;

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
