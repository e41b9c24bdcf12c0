//! Cubic B-spline free-form deformation: a displacement `d(p) = sum_ij B(p/s - i) c_ij` over a
//! regular control grid, `T(p) = p + d(p)`.
//!
//! Grid geometry: control point `(i, j)` sits at pixel `((i - 1) sx, (j - 1) sy)`, so the grid
//! starts one spacing before pixel 0 and has `floor((w - 1) / sx) + 4` points across: every pixel
//! of the `w x h` domain has its full 4 x 4 support inside the grid. Halving the spacing
//! ([`BSplineTransform::refined`]) keeps that form and reproduces the deformation exactly.

use super::{Parametric, RowMapper, Transform};
use crate::raster::interpolate::{cubic_bspline_weight_derivatives, cubic_bspline_weights};
use ndarray::Array2;

/// A cubic B-spline displacement over a control grid covering a `width x height` domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BSplineTransform {
    /// Domain size `[width, height]` (the fixed image).
    pub domain: [usize; 2],
    /// Control-point spacing `[sx, sy]` in pixels.
    pub spacing: [f64; 2],
    /// x-displacement coefficients, shape `(ny, nx)`.
    pub u: Array2<f64>,
    /// y-displacement coefficients, shape `(ny, nx)`.
    pub v: Array2<f64>,
}

/// Grid points needed along an axis of `n` pixels at spacing `s`.
fn grid_points(n: usize, s: f64) -> usize {
    (((n.saturating_sub(1)) as f64 / s).floor() as usize).saturating_add(4)
}

/// Index of the first of the four supporting control points and the fraction, for pixel
/// coordinate `x` at spacing `s` on a grid of `n` points. Points outside the domain use the
/// nearest polynomial piece.
#[inline]
fn support(x: f64, s: f64, n: usize) -> (usize, f64) {
    let t = x / s + 1.0;
    let i = t.floor().clamp(1.0, (n - 3) as f64);
    ((i as usize) - 1, t - i)
}

impl BSplineTransform {
    /// A zero deformation with control points every `spacing` pixels.
    pub fn new(width: usize, height: usize, spacing: [f64; 2]) -> Self {
        let nx = grid_points(width, spacing[0]);
        let ny = grid_points(height, spacing[1]);
        Self {
            domain: [width, height],
            spacing,
            u: Array2::zeros((ny, nx)),
            v: Array2::zeros((ny, nx)),
        }
    }

    /// The control grid `[nx, ny]` that [`BSplineTransform::new`] would allocate for a
    /// `width` x `height` domain at `spacing`, computed without allocating it.
    pub fn grid_for(width: usize, height: usize, spacing: [f64; 2]) -> [usize; 2] {
        [
            grid_points(width, spacing[0]),
            grid_points(height, spacing[1]),
        ]
    }

    /// Control grid size `[nx, ny]`.
    pub fn grid(&self) -> [usize; 2] {
        [self.u.ncols(), self.u.nrows()]
    }

    /// The control points supporting `(x, y)`: the first column and row of the 4 x 4 block and
    /// the cubic weights along x and y. The weights depend only on the point and the grid's
    /// geometry, not on the coefficients, so they can be cached for fixed sample points.
    #[inline]
    pub fn support(&self, x: f64, y: f64) -> ([usize; 2], [f64; 4], [f64; 4]) {
        let [nx, ny] = self.grid();
        let (ix, fx) = support(x, self.spacing[0], nx);
        let (iy, fy) = support(y, self.spacing[1], ny);
        (
            [ix, iy],
            cubic_bspline_weights(fx),
            cubic_bspline_weights(fy),
        )
    }

    /// The displacement at `(x, y)`.
    #[inline]
    pub fn displacement(&self, x: f64, y: f64) -> [f64; 2] {
        let [nx, ny] = self.grid();
        let (ix, fx) = support(x, self.spacing[0], nx);
        let (iy, fy) = support(y, self.spacing[1], ny);
        let wx = cubic_bspline_weights(fx);
        let wy = cubic_bspline_weights(fy);
        let (mut du, mut dv) = (0.0, 0.0);
        for (j, wyj) in wy.iter().enumerate() {
            let (mut ru, mut rv) = (0.0, 0.0);
            for (i, wxi) in wx.iter().enumerate() {
                ru += wxi * self.u[[iy + j, ix + i]];
                rv += wxi * self.v[[iy + j, ix + i]];
            }
            du += wyj * ru;
            dv += wyj * rv;
        }
        [du, dv]
    }

    /// The same deformation on a grid of half the spacing (cubic B-spline two-scale relation,
    /// exact): fine coefficients `(c[i-1] + 6 c[i] + c[i+1]) / 8` at even and
    /// `(c[i] + c[i+1]) / 2` at odd positions, separably along x then y.
    #[must_use]
    pub fn refined(&self) -> Self {
        let refine_axis = |c: &Array2<f64>, along_x: bool| -> Array2<f64> {
            let (rows, cols) = c.dim();
            let n = if along_x { cols } else { rows };
            let m = 2 * n - 3;
            let mut out = if along_x {
                Array2::zeros((rows, m))
            } else {
                Array2::zeros((m, cols))
            };
            let lines = if along_x { rows } else { cols };
            for l in 0..lines {
                let get = |i: usize| if along_x { c[[l, i]] } else { c[[i, l]] };
                for k in 0..m {
                    // Fine index j = k + 1 in the full subdivision.
                    let j = k + 1;
                    let val = if j % 2 == 0 {
                        let i = j / 2;
                        (get(i - 1) + 6.0 * get(i) + get(i + 1)) / 8.0
                    } else {
                        let i = j / 2;
                        (get(i) + get(i + 1)) / 2.0
                    };
                    if along_x {
                        out[[l, k]] = val;
                    } else {
                        out[[k, l]] = val;
                    }
                }
            }
            out
        };
        let refine = |c: &Array2<f64>| refine_axis(&refine_axis(c, true), false);
        Self {
            domain: self.domain,
            spacing: [self.spacing[0] / 2.0, self.spacing[1] / 2.0],
            u: refine(&self.u),
            v: refine(&self.v),
        }
    }
}

impl Transform for BSplineTransform {
    #[inline]
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let [du, dv] = self.displacement(x, y);
        [x + du, y + dv]
    }

    fn jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let [nx, ny] = self.grid();
        let (ix, fx) = support(x, self.spacing[0], nx);
        let (iy, fy) = support(y, self.spacing[1], ny);
        let (wx, dx) = (
            cubic_bspline_weights(fx),
            cubic_bspline_weight_derivatives(fx),
        );
        let (wy, dy) = (
            cubic_bspline_weights(fy),
            cubic_bspline_weight_derivatives(fy),
        );
        let mut j = [[1.0, 0.0], [0.0, 1.0]];
        for b in 0..4 {
            for a in 0..4 {
                let (cu, cv) = (self.u[[iy + b, ix + a]], self.v[[iy + b, ix + a]]);
                let gx = dx[a] * wy[b] / self.spacing[0];
                let gy = wx[a] * dy[b] / self.spacing[1];
                j[0][0] += gx * cu;
                j[0][1] += gy * cu;
                j[1][0] += gx * cv;
                j[1][1] += gy * cv;
            }
        }
        j
    }

    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        let nx = self.grid()[0];
        let columns = (x0..x0 + width)
            .map(|x| {
                let (i, f) = support(x as f64, self.spacing[0], nx);
                (i, cubic_bspline_weights(f))
            })
            .collect();
        Box::new(BSplineRows {
            t: self,
            x0,
            columns,
        })
    }
}

/// Row evaluation: the four control rows are combined once per image row, then each pixel needs
/// only four taps per component (instead of sixteen).
struct BSplineRows<'a> {
    t: &'a BSplineTransform,
    x0: usize,
    columns: Vec<(usize, [f64; 4])>,
}

impl RowMapper for BSplineRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        let t = self.t;
        let [nx, ny] = t.grid();
        let (iy, fy) = support(y as f64, t.spacing[1], ny);
        let wy = cubic_bspline_weights(fy);
        let mut cu = vec![0.0; nx];
        let mut cv = vec![0.0; nx];
        for (j, &w) in wy.iter().enumerate() {
            let (ru, rv) = (t.u.row(iy + j), t.v.row(iy + j));
            for k in 0..nx {
                cu[k] += w * ru[k];
                cv[k] += w * rv[k];
            }
        }
        for (i, (&(ix, wx), (x, yy))) in self
            .columns
            .iter()
            .zip(xs.iter_mut().zip(ys.iter_mut()))
            .enumerate()
        {
            let du = wx[0] * cu[ix] + wx[1] * cu[ix + 1] + wx[2] * cu[ix + 2] + wx[3] * cu[ix + 3];
            let dv = wx[0] * cv[ix] + wx[1] * cv[ix + 1] + wx[2] * cv[ix + 2] + wx[3] * cv[ix + 3];
            *x = (self.x0 + i) as f64 + du;
            *yy = y as f64 + dv;
        }
    }
}

impl Parametric for BSplineTransform {
    fn num_params(&self) -> usize {
        2 * self.u.len()
    }
    fn params(&self) -> Vec<f64> {
        self.u.iter().chain(self.v.iter()).copied().collect()
    }
    fn set_params(&mut self, p: &[f64]) {
        let n = self.u.len();
        self.u.iter_mut().zip(&p[..n]).for_each(|(c, &v)| *c = v);
        self.v.iter_mut().zip(&p[n..]).for_each(|(c, &v)| *c = v);
    }
    #[inline]
    fn param_jacobian(&self, x: f64, y: f64, out: &mut Vec<(usize, f64, f64)>) {
        let [nx, ny] = self.grid();
        let (ix, fx) = support(x, self.spacing[0], nx);
        let (iy, fy) = support(y, self.spacing[1], ny);
        let wx = cubic_bspline_weights(fx);
        let wy = cubic_bspline_weights(fy);
        let n = self.u.len();
        for (b, wyb) in wy.iter().enumerate() {
            for (a, wxa) in wx.iter().enumerate() {
                let k = (iy + b) * nx + ix + a;
                let w = wyb * wxa;
                out.push((k, w, 0.0));
                out.push((n + k, 0.0, w));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_bspline(w: usize, h: usize, s: f64) -> BSplineTransform {
        let mut t = BSplineTransform::new(w, h, [s, s * 1.3]);
        let mut rng = crate::rng::SplitMix64::new(3);
        t.u.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
        t.v.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
        t
    }

    #[test]
    fn grid_gives_every_pixel_full_support() {
        for (w, s) in [(100usize, 10.0), (101, 10.0), (7, 16.0), (1000, 33.3)] {
            let t = BSplineTransform::new(w, w, [s, s]);
            let nx = t.grid()[0];
            let (i, _) = support((w - 1) as f64, s, nx);
            assert!(i + 3 < nx);
            let t_last = (w - 1) as f64 / s + 1.0;
            assert!(t_last < (nx - 2) as f64, "{w} {s}");
        }
    }

    #[test]
    fn refinement_preserves_the_deformation_exactly() {
        let t = random_bspline(97, 61, 16.0);
        let r = t.refined();
        assert_eq!(r.spacing, [8.0, 16.0 * 1.3 / 2.0]);
        let rr = r.refined();
        for y in (0..61).step_by(3) {
            for x in (0..97).step_by(5) {
                let (a, b, c) = (
                    t.displacement(x as f64 + 0.3, y as f64),
                    r.displacement(x as f64 + 0.3, y as f64),
                    rr.displacement(x as f64 + 0.3, y as f64),
                );
                assert!((a[0] - b[0]).abs() < 1e-10 && (a[1] - b[1]).abs() < 1e-10);
                assert!((a[0] - c[0]).abs() < 1e-10 && (a[1] - c[1]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn row_mapper_and_jacobian_match_point_evaluation() {
        let t = random_bspline(64, 40, 9.0);
        let m = t.row_mapper(5, 50);
        let (mut xs, mut ys) = (vec![0.0; 50], vec![0.0; 50]);
        m.map_row(33, &mut xs, &mut ys);
        for i in 0..50 {
            let p = t.map_point((5 + i) as f64, 33.0);
            assert!((p[0] - xs[i]).abs() < 1e-10 && (p[1] - ys[i]).abs() < 1e-10);
        }
        let analytic = t.jacobian(20.3, 11.7);
        let h = 1e-5;
        let (xp, xm) = (t.map_point(20.3 + h, 11.7), t.map_point(20.3 - h, 11.7));
        let (yp, ym) = (t.map_point(20.3, 11.7 + h), t.map_point(20.3, 11.7 - h));
        let numeric = [
            [(xp[0] - xm[0]) / (2.0 * h), (yp[0] - ym[0]) / (2.0 * h)],
            [(xp[1] - xm[1]) / (2.0 * h), (yp[1] - ym[1]) / (2.0 * h)],
        ];
        for r in 0..2 {
            for c in 0..2 {
                assert!((analytic[r][c] - numeric[r][c]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn param_jacobian_is_the_derivative_of_the_map() {
        let t = random_bspline(50, 50, 12.0);
        let mut jac = Vec::new();
        t.param_jacobian(17.2, 30.9, &mut jac);
        assert_eq!(jac.len(), 32);
        let p0 = t.params();
        let base = t.map_point(17.2, 30.9);
        for &(k, jx, jy) in jac.iter().step_by(5) {
            let mut q = t.clone();
            let mut p = p0.clone();
            p[k] += 1.0;
            q.set_params(&p);
            let moved = q.map_point(17.2, 30.9);
            assert!(
                (moved[0] - base[0] - jx).abs() < 1e-9 && (moved[1] - base[1] - jy).abs() < 1e-9
            );
        }
    }
}
