//! Inverse transforms: `T⁻¹` maps moving-image points back to the fixed image. Exact for an
//! affine; for any other transform a dense field on the moving image's grid, each sample solved
//! by Newton's method on `T(p) = m` to a stated tolerance.

use super::{Affine, DenseField, Transform};
use rayon::prelude::*;

/// The inverse of an affine (`None` when it is singular): with `q = M(p - c) + c + t`,
/// `p = M⁻¹(q - c') + c' - t` about the image of the centre, `c' = c + t`.
pub fn invert_affine(a: &Affine) -> Option<Affine> {
    let [m0, m1, m2, m3] = a.matrix;
    let det = m0 * m3 - m1 * m2;
    if !(det.abs() > 1e-12 && det.is_finite()) {
        return None;
    }
    let center = [
        a.center[0] + a.translation[0],
        a.center[1] + a.translation[1],
    ];
    Some(Affine {
        matrix: [m3 / det, -m1 / det, -m2 / det, m0 / det],
        translation: [-a.translation[0], -a.translation[1]],
        center,
    })
}

/// A dense inverse and how well it was solved.
#[derive(Debug, Clone)]
pub struct DenseInverse {
    /// Displacements `p - m` on the grid, in units of the grid (full-resolution pixels divided
    /// by `scale`), as `TransformSpec::Dense` stores them.
    pub field: DenseField,
    /// Moving-image pixels per grid sample (a power of two).
    pub scale: f64,
    /// Samples where `|T(p) - m|` stayed above the tolerance (a fold, or a point that no
    /// fixed point maps to); they keep the best estimate.
    pub unconverged: usize,
    /// The largest `|T(p) - m|` left, in pixels.
    pub max_residual: f64,
}

/// Newton iterations per sample before it counts as unconverged.
const MAX_ITERATIONS: usize = 50;

/// Inverts `transform` on a `width x height` moving image, sampling it every `scale` pixels
/// (the smallest power of two that keeps the grid within `max_samples`), each sample solved
/// to `tolerance` pixels. Each row starts from its previous sample's solution.
pub fn invert_dense(
    transform: &dyn Transform,
    [width, height]: [usize; 2],
    max_samples: u64,
    tolerance: f64,
) -> DenseInverse {
    let mut scale = 1usize;
    while (width.div_ceil(scale) as u64) * (height.div_ceil(scale) as u64) > max_samples {
        scale *= 2;
    }
    let (gw, gh) = (width.div_ceil(scale), height.div_ceil(scale));
    let s = scale as f64;
    let rows: Vec<(Vec<f32>, Vec<f32>, usize, f64)> = (0..gh)
        .into_par_iter()
        .map(|j| {
            let (mut us, mut vs) = (vec![0.0f32; gw], vec![0.0f32; gw]);
            let (mut unconverged, mut worst) = (0, 0.0f64);
            let mut guess: Option<[f64; 2]> = None;
            for i in 0..gw {
                let m = [i as f64 * s, j as f64 * s];
                let (p, residual) = invert_point(transform, m, guess.unwrap_or(m), tolerance);
                // A failed sample does not seed the next one.
                guess = (residual <= tolerance).then_some(p);
                if residual > tolerance {
                    unconverged += 1;
                }
                worst = worst.max(residual);
                us[i] = ((p[0] - m[0]) / s) as f32;
                vs[i] = ((p[1] - m[1]) / s) as f32;
            }
            (us, vs, unconverged, worst)
        })
        .collect();
    let mut field = DenseField::zeros(gw, gh);
    let (mut unconverged, mut max_residual) = (0, 0.0f64);
    for (j, (us, vs, bad, worst)) in rows.into_iter().enumerate() {
        field.u.row_mut(j).assign(&ndarray::ArrayView1::from(&us));
        field.v.row_mut(j).assign(&ndarray::ArrayView1::from(&vs));
        unconverged += bad;
        max_residual = max_residual.max(worst);
    }
    DenseInverse {
        field,
        scale: s,
        unconverged,
        max_residual,
    }
}

/// `T⁻¹(m)` for one point: Newton's method on `T(p) = m` from `start` (a guess near the answer
/// helps where `T` turns far), to `tolerance` pixels; returns the best `p` and its residual
/// `|T(p) - m|`.
pub fn invert_point(
    t: &dyn Transform,
    m: [f64; 2],
    start: [f64; 2],
    tolerance: f64,
) -> ([f64; 2], f64) {
    let mut p = start;
    let residual_at = |p: [f64; 2]| {
        let q = t.map_point(p[0], p[1]);
        [q[0] - m[0], q[1] - m[1]]
    };
    let mut r = residual_at(p);
    let mut best = (p, r[0].hypot(r[1]));
    for _ in 0..MAX_ITERATIONS {
        if best.1 <= tolerance {
            break;
        }
        let [[a, b], [c, d]] = t.jacobian(p[0], p[1]);
        let det = a * d - b * c;
        // A singular Jacobian (a fold): fall back to the fixed-point step p -= r.
        let step = if det.abs() > 1e-9 {
            [(d * r[0] - b * r[1]) / det, (a * r[1] - c * r[0]) / det]
        } else {
            r
        };
        p = [p[0] - step[0], p[1] - step[1]];
        r = residual_at(p);
        let norm = r[0].hypot(r[1]);
        if !norm.is_finite() {
            break;
        }
        if norm < best.1 {
            best = (p, norm);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{AffineBSpline, BSplineTransform, ScaledField};

    #[test]
    fn an_affine_inverse_is_exact() {
        let a = Affine::similarity(0.3, 1.2, [14.0, -6.0], [50.0, 40.0]);
        let inv = invert_affine(&a).unwrap();
        for p in [[0.0, 0.0], [123.0, -45.5], [1e4, 3e3]] {
            let q = a.map_point(p[0], p[1]);
            let back = inv.map_point(q[0], q[1]);
            assert!(
                (back[0] - p[0]).hypot(back[1] - p[1]) < 1e-9,
                "{p:?} -> {back:?}"
            );
        }
        let singular = Affine::from_matrix([1.0, 2.0, 2.0, 4.0], [0.0, 0.0], [0.0, 0.0]);
        assert!(invert_affine(&singular).is_none());
    }

    #[test]
    fn a_dense_inverse_round_trips_a_smooth_deformation() {
        let mut b = BSplineTransform::new(200, 160, [40.0, 40.0]);
        let mut rng = crate::rng::SplitMix64::new(9);
        b.u.iter_mut().for_each(|c| *c = rng.uniform(-6.0, 6.0));
        b.v.iter_mut().for_each(|c| *c = rng.uniform(-6.0, 6.0));
        let t = AffineBSpline {
            affine: Affine::similarity(0.1, 1.05, [5.0, -3.0], [100.0, 80.0]),
            bspline: b,
        };
        for max_samples in [u64::MAX, 3000] {
            let inv = invert_dense(&t, [220, 180], max_samples, 1e-4);
            assert_eq!(inv.unconverged, 0);
            let inverse = ScaledField {
                field: inv.field,
                scale: inv.scale,
            };
            let mut worst = 0.0f64;
            for p in [[30.0, 30.0], [100.0, 80.0], [150.5, 120.25], [60.0, 130.0]] {
                let q = t.map_point(p[0], p[1]);
                let back = inverse.map_point(q[0], q[1]);
                worst = worst.max((back[0] - p[0]).hypot(back[1] - p[1]));
            }
            let bound = if inv.scale == 1.0 { 0.02 } else { 0.3 };
            assert!(worst < bound, "scale {}: {worst} px", inv.scale);
        }
    }
}
