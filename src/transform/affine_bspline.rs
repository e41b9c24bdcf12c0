//! The accurate mode's transform: an affine plus a cubic B-spline displacement on the fixed
//! grid, `T(p) = A(p) + d(p)` (elastix calls this the "Add" combination).

use super::{Affine, BSplineTransform, Parametric, RowMapper, Transform};

/// `T(p) = A(p) + d(p)`: the affine fixed, the B-spline coefficients as parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AffineBSpline {
    /// The global part.
    pub affine: Affine,
    /// The local displacement added to it (on the fixed image's grid).
    pub bspline: BSplineTransform,
}

impl AffineBSpline {
    /// The same map as a composition `A(p + d'(p))` with `d' = M^-1 d` (what transformix's
    /// "Compose" of an initial B-spline and an affine computes). `None` for a singular affine.
    pub fn as_bspline_then_affine(&self) -> Option<BSplineTransform> {
        let inv = self.affine.inverse()?.matrix;
        let mut b = self.bspline.clone();
        for (u, v) in b.u.iter_mut().zip(b.v.iter_mut()) {
            let (du, dv) = (*u, *v);
            *u = inv[0] * du + inv[1] * dv;
            *v = inv[2] * du + inv[3] * dv;
        }
        Some(b)
    }
}

impl Transform for AffineBSpline {
    #[inline]
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let [ax, ay] = self.affine.map_point(x, y);
        let [du, dv] = self.bspline.displacement(x, y);
        [ax + du, ay + dv]
    }

    fn jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let a = self.affine.jacobian(x, y);
        let b = self.bspline.jacobian(x, y);
        // The B-spline's Jacobian includes the identity; the displacement's is b - I.
        [
            [a[0][0] + b[0][0] - 1.0, a[0][1] + b[0][1]],
            [a[1][0] + b[1][0], a[1][1] + b[1][1] - 1.0],
        ]
    }

    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(AffineBSplineRows {
            affine: self.affine.row_mapper(x0, width),
            bspline: self.bspline.row_mapper(x0, width),
            x0,
        })
    }
}

struct AffineBSplineRows<'a> {
    affine: Box<dyn RowMapper + 'a>,
    bspline: Box<dyn RowMapper + 'a>,
    x0: usize,
}

impl RowMapper for AffineBSplineRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        // The B-spline mapper returns p + d(p); the affine's map is added to d(p).
        self.bspline.map_row(y, xs, ys);
        let n = xs.len();
        let mut ax = vec![0.0; n];
        let mut ay = vec![0.0; n];
        self.affine.map_row(y, &mut ax, &mut ay);
        for i in 0..n {
            xs[i] += ax[i] - (self.x0 + i) as f64;
            ys[i] += ay[i] - y as f64;
        }
    }
}

impl Parametric for AffineBSpline {
    fn num_params(&self) -> usize {
        self.bspline.num_params()
    }
    fn params(&self) -> Vec<f64> {
        self.bspline.params()
    }
    fn set_params(&mut self, p: &[f64]) {
        self.bspline.set_params(p)
    }
    #[inline]
    fn param_jacobian(&self, x: f64, y: f64, out: &mut Vec<(usize, f64, f64)>) {
        self.bspline.param_jacobian(x, y, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> AffineBSpline {
        let mut b = BSplineTransform::new(80, 60, [20.0, 20.0]);
        let mut rng = crate::rng::SplitMix64::new(2);
        b.u.iter_mut().for_each(|c| *c = rng.uniform(-2.0, 2.0));
        b.v.iter_mut().for_each(|c| *c = rng.uniform(-2.0, 2.0));
        AffineBSpline {
            affine: Affine::similarity(0.05, 1.03, [2.0, -1.0], [40.0, 30.0]),
            bspline: b,
        }
    }

    #[test]
    fn composition_form_is_the_same_map() {
        let t = example();
        let b = t.as_bspline_then_affine().unwrap();
        for &(x, y) in &[(0.0, 0.0), (33.3, 17.9), (79.0, 59.0)] {
            let direct = t.map_point(x, y);
            let [bx, by] = b.map_point(x, y);
            let composed = t.affine.map_point(bx, by);
            assert!(
                (direct[0] - composed[0]).abs() < 1e-9 && (direct[1] - composed[1]).abs() < 1e-9
            );
        }
    }

    #[test]
    fn row_mapper_and_jacobian_match_points() {
        let t = example();
        let m = t.row_mapper(4, 30);
        let (mut xs, mut ys) = (vec![0.0; 30], vec![0.0; 30]);
        m.map_row(11, &mut xs, &mut ys);
        for i in 0..30 {
            let p = t.map_point((4 + i) as f64, 11.0);
            assert!((p[0] - xs[i]).abs() < 1e-9 && (p[1] - ys[i]).abs() < 1e-9);
        }
        let j = t.jacobian(20.5, 30.5);
        let h = 1e-5;
        let (a, b) = (t.map_point(20.5 + h, 30.5), t.map_point(20.5 - h, 30.5));
        assert!(((a[0] - b[0]) / (2.0 * h) - j[0][0]).abs() < 1e-6);
        assert!(((a[1] - b[1]) / (2.0 * h) - j[1][0]).abs() < 1e-6);
    }
}
