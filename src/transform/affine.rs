//! 2D affine transforms about a centre: `q = M (p - c) + c + t`.

use super::{Parametric, RowMapper, Transform};

/// An affine map `q = M (p - c) + c + t` with `M = [[m0, m1], [m2, m3]]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    /// Row-major 2x2 matrix `[m00, m01, m10, m11]`.
    pub matrix: [f64; 4],
    /// Translation `t` (pixels).
    pub translation: [f64; 2],
    /// Centre of rotation/scaling `c` (pixels, fixed image).
    pub center: [f64; 2],
}

impl Affine {
    /// The identity about `center`.
    pub fn identity(center: [f64; 2]) -> Self {
        Self::from_matrix([1.0, 0.0, 0.0, 1.0], [0.0, 0.0], center)
    }

    /// An affine from its parts.
    pub fn from_matrix(matrix: [f64; 4], translation: [f64; 2], center: [f64; 2]) -> Self {
        Self {
            matrix,
            translation,
            center,
        }
    }

    /// Rotation by `angle` radians and uniform `scale` about `center`, then `translation`.
    pub fn similarity(angle: f64, scale: f64, translation: [f64; 2], center: [f64; 2]) -> Self {
        let (s, c) = angle.sin_cos();
        Self::from_matrix(
            [scale * c, -scale * s, scale * s, scale * c],
            translation,
            center,
        )
    }

    /// The linear part read as a similarity after an optional left–right mirror
    /// (`M = s R(θ) diag(±1, 1)`; for any other affine, the nearest such): the rotation θ in
    /// degrees in (−180, 180], the scale `s = √|det M|` and whether it mirrors (`det M < 0`).
    pub fn rotation_scale_mirror(&self) -> (f64, f64, bool) {
        let [a, b, c, d] = self.matrix;
        let det = a * d - b * c;
        let mirrored = det < 0.0;
        // With a mirror, the rotation is the one after flipping x: columns (−a, −c), (b, d).
        let (a, c) = if mirrored { (-a, -c) } else { (a, c) };
        (
            (c - b).atan2(a + d).to_degrees(),
            det.abs().sqrt(),
            mirrored,
        )
    }

    /// This map, then `outer`: `p -> outer(self(p))`, about this map's centre.
    pub fn then(&self, outer: &Affine) -> Self {
        let ([a, b, c, d], [e, f, g, h]) = (self.matrix, outer.matrix);
        let mul = |v: [f64; 2]| [e * v[0] + f * v[1], g * v[0] + h * v[1]];
        // M2 (M1 (p - c1) + c1 + t1 - c2) + c2 + t2 = M2 M1 (p - c1) + c1 + t.
        let moved = mul([
            self.center[0] + self.translation[0] - outer.center[0],
            self.center[1] + self.translation[1] - outer.center[1],
        ]);
        Self::from_matrix(
            [e * a + f * c, e * b + f * d, g * a + h * c, g * b + h * d],
            [
                moved[0] + outer.center[0] + outer.translation[0] - self.center[0],
                moved[1] + outer.center[1] + outer.translation[1] - self.center[1],
            ],
            self.center,
        )
    }

    /// The same map expressed in the coordinates of a pyramid level `2^level` times coarser.
    pub fn at_scale(&self, factor: f64) -> Self {
        Self {
            matrix: self.matrix,
            translation: [self.translation[0] / factor, self.translation[1] / factor],
            center: [self.center[0] / factor, self.center[1] / factor],
        }
    }

    /// The inverse map, or `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Self> {
        let [a, b, c, d] = self.matrix;
        let det = a * d - b * c;
        if det.abs() < 1e-12 {
            return None;
        }
        let inv = [d / det, -b / det, -c / det, a / det];
        // p = M^-1 (q - c - t) + c, so translation t' = -M^-1 t about the same centre.
        let t = self.translation;
        let t_inv = [
            -(inv[0] * t[0] + inv[1] * t[1]),
            -(inv[2] * t[0] + inv[3] * t[1]),
        ];
        Some(Self::from_matrix(inv, t_inv, self.center))
    }
}

impl Transform for Affine {
    #[inline]
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let [m0, m1, m2, m3] = self.matrix;
        let (dx, dy) = (x - self.center[0], y - self.center[1]);
        [
            m0 * dx + m1 * dy + self.center[0] + self.translation[0],
            m2 * dx + m3 * dy + self.center[1] + self.translation[1],
        ]
    }

    fn jacobian(&self, _x: f64, _y: f64) -> [[f64; 2]; 2] {
        let [m0, m1, m2, m3] = self.matrix;
        [[m0, m1], [m2, m3]]
    }

    fn row_mapper(&self, x0: usize, _width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(AffineRows { a: *self, x0 })
    }
}

struct AffineRows {
    a: Affine,
    x0: usize,
}

impl RowMapper for AffineRows {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        let [start_x, start_y] = self.a.map_point(self.x0 as f64, y as f64);
        let [m0, _, m2, _] = self.a.matrix;
        for (i, (x, yy)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
            *x = start_x + m0 * i as f64;
            *yy = start_y + m2 * i as f64;
        }
    }
}

/// An affine transform with well-conditioned parameters for optimisation:
/// `mu = [(m00 - 1) r, m01 r, m10 r, (m11 - 1) r, tx, ty]`, where `r` is about the image's
/// radius, so that a unit step in any parameter moves the image's far pixels by about a pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineParametric {
    /// The transform.
    pub affine: Affine,
    /// The parameter scale `r` (pixels).
    pub radius: f64,
}

impl Transform for AffineParametric {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        self.affine.map_point(x, y)
    }
    fn jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        self.affine.jacobian(x, y)
    }
    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        self.affine.row_mapper(x0, width)
    }
}

impl Parametric for AffineParametric {
    fn num_params(&self) -> usize {
        6
    }
    fn params(&self) -> Vec<f64> {
        let [m0, m1, m2, m3] = self.affine.matrix;
        let r = self.radius;
        vec![
            (m0 - 1.0) * r,
            m1 * r,
            m2 * r,
            (m3 - 1.0) * r,
            self.affine.translation[0],
            self.affine.translation[1],
        ]
    }
    fn set_params(&mut self, p: &[f64]) {
        let r = self.radius;
        self.affine.matrix = [1.0 + p[0] / r, p[1] / r, p[2] / r, 1.0 + p[3] / r];
        self.affine.translation = [p[4], p[5]];
    }
    #[inline]
    fn param_jacobian(&self, x: f64, y: f64, out: &mut Vec<(usize, f64, f64)>) {
        let dx = (x - self.affine.center[0]) / self.radius;
        let dy = (y - self.affine.center[1]) / self.radius;
        out.extend_from_slice(&[
            (0, dx, 0.0),
            (1, dy, 0.0),
            (2, 0.0, dx),
            (3, 0.0, dy),
            (4, 1.0, 0.0),
            (5, 0.0, 1.0),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_scale_mirror_reads_a_mirror_as_the_turn_after_the_flip() {
        let (s, c) = 30f64.to_radians().sin_cos();
        let m = Affine::from_matrix([2.0 * c, -2.0 * s, 2.0 * s, 2.0 * c], [0.0; 2], [0.0; 2]);
        let (angle, scale, mirrored) = m.rotation_scale_mirror();
        assert!((angle - 30.0).abs() < 1e-9 && (scale - 2.0).abs() < 1e-9 && !mirrored);
        // The transposition: the flip x -> -x, then a turn through 270°.
        let t = Affine::from_matrix([0.0, 1.0, 1.0, 0.0], [0.0; 2], [0.0; 2]);
        let (angle, scale, mirrored) = t.rotation_scale_mirror();
        assert!(
            (angle.rem_euclid(360.0) - 270.0).abs() < 1e-9 && (scale - 1.0).abs() < 1e-9,
            "{angle}"
        );
        assert!(mirrored);
    }

    #[test]
    fn then_applies_this_map_first_and_the_other_second() {
        let inner = Affine::similarity(0.3, 1.1, [4.0, -2.0], [10.0, 20.0]);
        let outer = Affine::from_matrix([-1.0, 0.1, 0.2, -0.9], [7.0, 1.0], [50.0, 40.0]);
        let both = inner.then(&outer);
        let [x, y] = inner.map_point(13.0, -8.0);
        let [ox, oy] = outer.map_point(x, y);
        let [bx, by] = both.map_point(13.0, -8.0);
        assert!((bx - ox).abs() < 1e-9 && (by - oy).abs() < 1e-9);
    }

    #[test]
    fn inverse_undoes_the_map() {
        let a = Affine::similarity(0.03, 1.02, [5.0, -3.0], [100.0, 50.0]);
        let inv = a.inverse().unwrap();
        let [x, y] = a.map_point(17.0, 33.0);
        let [bx, by] = inv.map_point(x, y);
        assert!((bx - 17.0).abs() < 1e-9 && (by - 33.0).abs() < 1e-9);
    }

    #[test]
    fn parameters_round_trip_and_jacobian_matches_finite_differences() {
        let mut p = AffineParametric {
            affine: Affine::similarity(0.02, 0.98, [1.0, 2.0], [30.0, 20.0]),
            radius: 40.0,
        };
        let mu = p.params();
        p.set_params(&mu);
        assert_eq!(p.params().len(), 6);
        let mut jac = Vec::new();
        p.param_jacobian(12.0, 7.0, &mut jac);
        for &(i, jx, jy) in &jac {
            let mut q = p;
            let mut m = mu.clone();
            m[i] += 1e-6;
            q.set_params(&m);
            let [x1, y1] = q.map_point(12.0, 7.0);
            let [x0, y0] = p.map_point(12.0, 7.0);
            assert!(((x1 - x0) / 1e-6 - jx).abs() < 1e-4);
            assert!(((y1 - y0) / 1e-6 - jy).abs() < 1e-4);
        }
    }

    #[test]
    fn row_mapper_equals_map_point() {
        let a = Affine::similarity(-0.1, 1.1, [2.0, 3.0], [5.0, 5.0]);
        let m = a.row_mapper(3, 8);
        let (mut xs, mut ys) = (vec![0.0; 8], vec![0.0; 8]);
        m.map_row(4, &mut xs, &mut ys);
        for i in 0..8 {
            let [x, y] = a.map_point((3 + i) as f64, 4.0);
            assert!((x - xs[i]).abs() < 1e-9 && (y - ys[i]).abs() < 1e-9);
        }
    }
}
