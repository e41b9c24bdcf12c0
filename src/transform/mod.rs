//! Transforms map a point of the FIXED image to the MOVING image: `q = T(p)`, so that
//! `warped(p) = moving(T(p))` and the displacement is `T(p) - p`.
//!
//! Each transform evaluates single points ([`Transform::map_point`]) and, much faster, whole rows
//! of pixel centres through a [`RowMapper`] prepared once for a column range, which is how images
//! of any size are warped band by band ([`warp`]).

mod affine;
mod affine_bspline;
mod bspline;
mod dense;
pub mod invert;
mod level;
mod thin_plate;
pub mod velocity;
pub mod warp;

pub use affine::{Affine, AffineParametric};
pub use affine_bspline::AffineBSpline;
pub use bspline::BSplineTransform;
pub use dense::{DenseField, ScaledField, dense_transform};
pub use level::AtLevel;
pub use thin_plate::ThinPlateSpline;

use crate::raster::GrayF32;
use ndarray::Axis;
use rayon::prelude::*;

/// A mapping from fixed-image points to moving-image points (pixel-centre coordinates).
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// Maps one point.
    fn map_point(&self, x: f64, y: f64) -> [f64; 2];

    /// The spatial Jacobian `[[dqx/dx, dqx/dy], [dqy/dx, dqy/dy]]` at a point. The default uses
    /// central differences over half a pixel; analytic where a transform knows better.
    fn jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let h = 0.5;
        let (xp, xm) = (self.map_point(x + h, y), self.map_point(x - h, y));
        let (yp, ym) = (self.map_point(x, y + h), self.map_point(x, y - h));
        [
            [(xp[0] - xm[0]) / (2.0 * h), (yp[0] - ym[0]) / (2.0 * h)],
            [(xp[1] - xm[1]) / (2.0 * h), (yp[1] - ym[1]) / (2.0 * h)],
        ]
    }

    /// The dense displacement field behind this transform and its full-resolution pixels per
    /// field pixel, when it is one (so that analyses can work on the field's own grid).
    fn as_dense(&self) -> Option<(&DenseField, f64)> {
        None
    }

    /// Prepares fast evaluation of rows of pixel centres `x0..x0 + width`.
    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(PointwiseRows {
            transform: self,
            x0,
            width,
        })
    }
}

/// Evaluates a transform along rows of pixel centres, with per-column work done once.
pub trait RowMapper: Send + Sync {
    /// Writes `T(x0 + i, y)` into `(xs[i], ys[i])` for the prepared column range.
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]);
}

struct PointwiseRows<'a, T: ?Sized> {
    transform: &'a T,
    x0: usize,
    width: usize,
}

impl<T: Transform + ?Sized> RowMapper for PointwiseRows<'_, T> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        for i in 0..self.width.min(xs.len()) {
            let [qx, qy] = self.transform.map_point((self.x0 + i) as f64, y as f64);
            xs[i] = qx;
            ys[i] = qy;
        }
    }
}

/// The identity transform.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Transform for Identity {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        [x, y]
    }
    fn jacobian(&self, _x: f64, _y: f64) -> [[f64; 2]; 2] {
        [[1.0, 0.0], [0.0, 1.0]]
    }
}

/// A shared transform is the transform it shares.
impl<T: Transform + ?Sized> Transform for std::sync::Arc<T> {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        (**self).map_point(x, y)
    }
    fn jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        (**self).jacobian(x, y)
    }
    fn as_dense(&self) -> Option<(&DenseField, f64)> {
        (**self).as_dense()
    }
    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        (**self).row_mapper(x0, width)
    }
}

/// Transforms applied in order: `T(p) = T_n(... T_2(T_1(p)))`.
#[derive(Debug)]
pub struct Composed {
    /// The transforms, first applied first.
    pub steps: Vec<Box<dyn Transform>>,
}

impl Transform for Composed {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        self.steps
            .iter()
            .fold([x, y], |p, t| t.map_point(p[0], p[1]))
    }

    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(ComposedRows {
            first: self.steps.first().map(|t| t.row_mapper(x0, width)),
            rest: self.steps.iter().skip(1).map(|t| t.as_ref()).collect(),
            x0,
        })
    }
}

struct ComposedRows<'a> {
    first: Option<Box<dyn RowMapper + 'a>>,
    rest: Vec<&'a dyn Transform>,
    x0: usize,
}

impl RowMapper for ComposedRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        match &self.first {
            Some(first) => first.map_row(y, xs, ys),
            None => {
                for (i, (x, yy)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
                    *x = (self.x0 + i) as f64;
                    *yy = y as f64;
                }
            }
        }
        for t in &self.rest {
            for (x, yy) in xs.iter_mut().zip(ys.iter_mut()) {
                [*x, *yy] = t.map_point(*x, *yy);
            }
        }
    }
}

/// The determinant of the spatial Jacobian at every pixel of a `width x height` fixed grid.
/// Values `<= 0` mark folding (the transform is not invertible there).
#[must_use]
pub fn jacobian_determinant(t: &dyn Transform, width: usize, height: usize) -> GrayF32 {
    let mut out = GrayF32::zeros((height, width));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut row)| {
            for (x, o) in row.iter_mut().enumerate() {
                let j = t.jacobian(x as f64, y as f64);
                *o = (j[0][0] * j[1][1] - j[0][1] * j[1][0]) as f32;
            }
        });
    out
}

/// Samples a transform's displacement `T(p) - p` on a `width x height` grid.
#[must_use]
pub fn displacement_field(t: &dyn Transform, width: usize, height: usize) -> DenseField {
    let mut field = DenseField::zeros(width, height);
    let mapper = t.row_mapper(0, width);
    field
        .u
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(field.v.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each_init(
            || (vec![0f64; width], vec![0f64; width]),
            |(xs, ys), (y, (mut u, mut v))| {
                mapper.map_row(y, xs, ys);
                for x in 0..width {
                    u[x] = (xs[x] - x as f64) as f32;
                    v[x] = (ys[x] - y as f64) as f32;
                }
            },
        );
    field
}

/// A transform whose parameters an optimiser can change: the metric's gradient with respect to
/// the parameters needs `dT/dmu` at each sample point.
pub trait Parametric: Transform {
    /// Number of parameters.
    fn num_params(&self) -> usize;
    /// Current parameters.
    fn params(&self) -> Vec<f64>;
    /// Replaces the parameters (`p.len() == num_params()`).
    fn set_params(&mut self, p: &[f64]);
    /// The non-zero entries of `dT/dmu` at `(x, y)` as `(parameter, dqx, dqy)`, appended to `out`
    /// (which the caller clears).
    fn param_jacobian(&self, x: f64, y: f64, out: &mut Vec<(usize, f64, f64)>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_row_mapper_equals_pointwise_composition() {
        let a = Affine::from_matrix([1.01, 0.02, -0.01, 0.99], [3.0, -2.0], [10.0, 10.0]);
        let mut b = BSplineTransform::new(40, 30, [8.0, 8.0]);
        b.u.iter_mut()
            .enumerate()
            .for_each(|(i, c)| *c = (i as f64 * 0.37).sin());
        let c = Composed {
            steps: vec![Box::new(a), Box::new(b)],
        };
        let m = c.row_mapper(2, 20);
        let (mut xs, mut ys) = (vec![0.0; 20], vec![0.0; 20]);
        m.map_row(7, &mut xs, &mut ys);
        for i in 0..20 {
            let p = c.map_point((2 + i) as f64, 7.0);
            assert!((p[0] - xs[i]).abs() < 1e-9 && (p[1] - ys[i]).abs() < 1e-9);
        }
    }

    #[test]
    fn jacobian_determinant_of_scaling_is_its_area_factor() {
        let a = Affine::from_matrix([2.0, 0.0, 0.0, 1.5], [0.0, 0.0], [0.0, 0.0]);
        let det = jacobian_determinant(&a, 10, 5);
        assert!(det.iter().all(|&d| (d - 3.0).abs() < 1e-6));
    }
}
