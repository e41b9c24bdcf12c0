//! Thin-plate splines from landmark pairs: `q = a0 + a1 x + a2 y + Σ w_i U(|p - c_i|)` with
//! `U(r) = r² ln r`, fitted so that each fixed landmark `c_i` maps onto its moving partner
//! (exactly with smoothing λ = 0; with λ > 0 the bending energy is traded against the fit,
//! `(K + λI) w + P a = v`). Positions are normalised (centred, divided by their spread) before
//! the kernel, so the system is well conditioned at any image size and λ is dimensionless.

use super::{RowMapper, Transform};

/// Rows are evaluated exactly every this many pixels and interpolated linearly between (the
/// spline is smooth: a test bounds the difference from exact evaluation at 0.05 px), which
/// makes a warp this many times cheaper than evaluating O(landmarks) terms at every pixel.
const ROW_KNOT_STEP: usize = 4;

/// The most landmark pairs a spline is fitted to: the dense solve is O(n³) (2000 pairs take
/// about a second).
pub const MAX_LANDMARKS: usize = 2000;

/// A fitted thin-plate spline (or, from fewer than 4 pairs, its affine part alone).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThinPlateSpline {
    /// The normalisation: `p' = (p - origin) / scale`.
    pub origin: [f64; 2],
    /// See `origin`.
    pub scale: f64,
    /// The kernel centres (the fixed landmarks, normalised).
    pub centers: Vec<[f64; 2]>,
    /// Kernel weights `[wx, wy]` per centre.
    pub weights: Vec<[f64; 2]>,
    /// The affine part per output coordinate: `[a0, a1, a2]` for `q_x`, then for `q_y`.
    pub affine: [[f64; 3]; 2],
}

/// `U(r) = r² ln r`, from `r²` (`0.5 r² ln r²`; 0 at 0).
#[inline]
fn kernel(r2: f64) -> f64 {
    if r2 > 0.0 { 0.5 * r2 * r2.ln() } else { 0.0 }
}

impl ThinPlateSpline {
    /// Fits the spline mapping `fixed[i]` to `moving[i]` with smoothing `smoothing` (λ ≥ 0).
    /// Fewer than 4 pairs give the affine alone (exact through 3); under 3, or landmarks that
    /// coincide or lie on one line, are errors.
    pub fn fit(
        fixed: &[[f64; 2]],
        moving: &[[f64; 2]],
        smoothing: f64,
    ) -> std::result::Result<Self, String> {
        let n = fixed.len().min(moving.len());
        if n < 3 {
            return Err(format!(
                "{n} landmark pair(s): a thin-plate spline needs at least 3 (an affine needs 3)"
            ));
        }
        if n > MAX_LANDMARKS {
            return Err(format!(
                "{n} landmark pairs: at most {MAX_LANDMARKS} are fitted"
            ));
        }
        if !(smoothing.is_finite() && smoothing >= 0.0) {
            return Err(format!("smoothing {smoothing} must be at least 0"));
        }
        let (fixed, moving) = (&fixed[..n], &moving[..n]);
        let origin = [
            fixed.iter().map(|p| p[0]).sum::<f64>() / n as f64,
            fixed.iter().map(|p| p[1]).sum::<f64>() / n as f64,
        ];
        let spread = fixed
            .iter()
            .map(|p| (p[0] - origin[0]).powi(2) + (p[1] - origin[1]).powi(2))
            .sum::<f64>()
            / n as f64;
        let scale = spread.sqrt().max(1e-12);
        let centers: Vec<[f64; 2]> = fixed
            .iter()
            .map(|p| [(p[0] - origin[0]) / scale, (p[1] - origin[1]) / scale])
            .collect();
        // Fewer than 4 pairs: the kernel part has no freedom left; fit the affine alone.
        let kernels = if n >= 4 { n } else { 0 };
        let size = kernels + 3;
        let mut a = vec![0.0; size * size];
        let mut b = vec![[0.0; 2]; size];
        let poly = |c: &[f64; 2]| [1.0, c[0], c[1]];
        if kernels > 0 {
            for i in 0..n {
                for j in 0..n {
                    let d = [centers[i][0] - centers[j][0], centers[i][1] - centers[j][1]];
                    a[i * size + j] = kernel(d[0] * d[0] + d[1] * d[1]);
                }
                a[i * size + i] += smoothing;
                for (k, v) in poly(&centers[i]).into_iter().enumerate() {
                    a[i * size + n + k] = v;
                    a[(n + k) * size + i] = v;
                }
                b[i] = moving[i];
            }
        } else {
            // The normal equations of the least-squares affine (exact through 3 points).
            for (c, m) in centers.iter().zip(moving) {
                let p = poly(c);
                for r in 0..3 {
                    for s in 0..3 {
                        a[r * size + s] += p[r] * p[s];
                    }
                    b[r][0] += p[r] * m[0];
                    b[r][1] += p[r] * m[1];
                }
            }
        }
        let x = solve(&mut a, &mut b, size).ok_or_else(|| {
            "the landmarks are degenerate (some coincide, or all lie on one line)".to_string()
        })?;
        let weights = x[..kernels].to_vec();
        let tail = &x[kernels..];
        let affine = [
            [tail[0][0], tail[1][0], tail[2][0]],
            [tail[0][1], tail[1][1], tail[2][1]],
        ];
        Ok(Self {
            origin,
            scale,
            centers: if kernels > 0 { centers } else { Vec::new() },
            weights,
            affine,
        })
    }

    /// Checks a spline read from a file: matching lengths, finite values, a positive scale.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.centers.len() != self.weights.len() {
            return Err(format!(
                "{} centres but {} weights",
                self.centers.len(),
                self.weights.len()
            ));
        }
        if self.centers.len() > MAX_LANDMARKS {
            return Err(format!("more than {MAX_LANDMARKS} centres"));
        }
        let values = self
            .centers
            .iter()
            .chain(&self.weights)
            .flatten()
            .chain(self.affine.iter().flatten())
            .chain(&self.origin);
        if !(self.scale.is_finite() && self.scale > 0.0)
            || values.into_iter().any(|v| !v.is_finite())
        {
            return Err(
                "thin-plate parameters are not finite (or the scale is not positive)".into(),
            );
        }
        Ok(())
    }
}

impl Transform for ThinPlateSpline {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let (u, v) = (
            (x - self.origin[0]) / self.scale,
            (y - self.origin[1]) / self.scale,
        );
        let [ax, ay] = self.affine;
        let mut q = [ax[0] + ax[1] * u + ax[2] * v, ay[0] + ay[1] * u + ay[2] * v];
        for (c, w) in self.centers.iter().zip(&self.weights) {
            let (du, dv) = (u - c[0], v - c[1]);
            let k = kernel(du * du + dv * dv);
            q[0] += w[0] * k;
            q[1] += w[1] * k;
        }
        q
    }

    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(ThinPlateRows {
            spline: self,
            x0,
            width,
        })
    }
}

struct ThinPlateRows<'a> {
    spline: &'a ThinPlateSpline,
    x0: usize,
    width: usize,
}

impl RowMapper for ThinPlateRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        let n = self.width.min(xs.len());
        if n == 0 {
            return;
        }
        let y = y as f64;
        let at = |i: usize| self.spline.map_point((self.x0 + i) as f64, y);
        let mut start = 0;
        let mut left = at(0);
        while start < n - 1 {
            let end = (start + ROW_KNOT_STEP).min(n - 1);
            let right = at(end);
            let span = (end - start) as f64;
            for i in start..end {
                let f = (i - start) as f64 / span;
                xs[i] = left[0] + f * (right[0] - left[0]);
                ys[i] = left[1] + f * (right[1] - left[1]);
            }
            (start, left) = (end, right);
        }
        xs[n - 1] = left[0];
        ys[n - 1] = left[1];
    }
}

/// Solves `a x = b` (`a` is `size x size`, row-major; two right-hand sides) by Gaussian
/// elimination with partial pivoting. `None` when `a` is singular.
fn solve(a: &mut [f64], b: &mut [[f64; 2]], size: usize) -> Option<Vec<[f64; 2]>> {
    let norm = a.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-300);
    for col in 0..size {
        let pivot = (col..size)
            .max_by(|&i, &j| a[i * size + col].abs().total_cmp(&a[j * size + col].abs()))?;
        if a[pivot * size + col].abs() <= 1e-12 * norm {
            return None;
        }
        if pivot != col {
            for k in 0..size {
                a.swap(pivot * size + k, col * size + k);
            }
            b.swap(pivot, col);
        }
        let diag = a[col * size + col];
        for row in col + 1..size {
            let f = a[row * size + col] / diag;
            if f == 0.0 {
                continue;
            }
            for k in col..size {
                a[row * size + k] -= f * a[col * size + k];
            }
            b[row][0] -= f * b[col][0];
            b[row][1] -= f * b[col][1];
        }
    }
    let mut x = vec![[0.0; 2]; size];
    for row in (0..size).rev() {
        let mut acc = b[row];
        for k in row + 1..size {
            acc[0] -= a[row * size + k] * x[k][0];
            acc[1] -= a[row * size + k] * x[k][1];
        }
        let d = a[row * size + row];
        x[row] = [acc[0] / d, acc[1] / d];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scattered(n: usize, seed: u64) -> Vec<[f64; 2]> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        (0..n)
            .map(|_| [rng.uniform(0.0, 4000.0), rng.uniform(0.0, 3000.0)])
            .collect()
    }

    #[test]
    fn without_smoothing_every_landmark_lands_on_its_partner() {
        let fixed = scattered(60, 3);
        let mut rng = crate::rng::SplitMix64::new(4);
        let moving: Vec<[f64; 2]> = fixed
            .iter()
            .map(|p| {
                [
                    1.02 * p[0] + 0.01 * p[1] + 12.0 + rng.uniform(-8.0, 8.0),
                    -0.01 * p[0] + 0.98 * p[1] - 7.0 + rng.uniform(-8.0, 8.0),
                ]
            })
            .collect();
        let tps = ThinPlateSpline::fit(&fixed, &moving, 0.0).unwrap();
        for (p, m) in fixed.iter().zip(&moving) {
            let q = tps.map_point(p[0], p[1]);
            assert!(
                (q[0] - m[0]).hypot(q[1] - m[1]) < 0.01,
                "{p:?} -> {q:?}, not {m:?}"
            );
        }
        // Smoothing trades the fit for less bending: landmarks miss, but by less than the noise.
        let smooth = ThinPlateSpline::fit(&fixed, &moving, 1.0).unwrap();
        let worst = fixed
            .iter()
            .zip(&moving)
            .map(|(p, m)| {
                let q = smooth.map_point(p[0], p[1]);
                (q[0] - m[0]).hypot(q[1] - m[1])
            })
            .fold(0.0, f64::max);
        assert!(worst > 0.01 && worst < 16.0, "{worst}");
    }

    #[test]
    fn rows_agree_with_points() {
        let fixed = scattered(80, 11);
        let mut rng = crate::rng::SplitMix64::new(12);
        let moving: Vec<[f64; 2]> = fixed
            .iter()
            .map(|p| {
                [
                    p[0] + rng.uniform(-20.0, 20.0),
                    p[1] + rng.uniform(-20.0, 20.0),
                ]
            })
            .collect();
        let tps = ThinPlateSpline::fit(&fixed, &moving, 0.0).unwrap();
        let (x0, width) = (1000, 203);
        let rows = tps.row_mapper(x0, width);
        let (mut xs, mut ys) = (vec![0.0; width], vec![0.0; width]);
        let mut worst = 0.0f64;
        for y in (0..3000).step_by(37) {
            rows.map_row(y, &mut xs, &mut ys);
            for i in 0..width {
                let q = tps.map_point((x0 + i) as f64, y as f64);
                worst = worst.max((q[0] - xs[i]).hypot(q[1] - ys[i]));
            }
        }
        assert!(worst < 0.05, "rows differ from points by {worst} px");
    }

    #[test]
    fn an_affine_is_reproduced_and_three_pairs_give_the_affine_alone() {
        let affine = |p: &[f64; 2]| {
            [
                0.9 * p[0] - 0.2 * p[1] + 30.0,
                0.15 * p[0] + 1.1 * p[1] - 4.0,
            ]
        };
        let fixed = scattered(12, 5);
        let moving: Vec<[f64; 2]> = fixed.iter().map(affine).collect();
        for pairs in [3, 12] {
            let tps = ThinPlateSpline::fit(&fixed[..pairs], &moving[..pairs], 0.0).unwrap();
            assert_eq!(tps.centers.is_empty(), pairs < 4);
            for p in [[0.0, 0.0], [5000.0, -300.0], [1234.5, 2222.0]] {
                let (q, want) = (tps.map_point(p[0], p[1]), affine(&p));
                assert!(
                    (q[0] - want[0]).hypot(q[1] - want[1]) < 1e-6,
                    "{pairs}: {q:?}"
                );
            }
        }
    }

    #[test]
    fn too_few_coincident_or_collinear_landmarks_are_errors() {
        let two = [[0.0, 0.0], [10.0, 0.0]];
        assert!(
            ThinPlateSpline::fit(&two, &two, 0.0)
                .unwrap_err()
                .contains("at least 3")
        );
        let line = [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]];
        assert!(
            ThinPlateSpline::fit(&line, &line, 0.0)
                .unwrap_err()
                .contains("degenerate")
        );
        let repeated = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 0.0]];
        let moved = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [12.0, 1.0]];
        assert!(
            ThinPlateSpline::fit(&repeated, &moved, 0.0)
                .unwrap_err()
                .contains("degenerate")
        );
        assert!(ThinPlateSpline::fit(&line, &line, -1.0).is_err());
    }
}
