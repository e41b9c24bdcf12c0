//! Interpolation of gray images at real-valued points: bilinear, and cubic B-spline (smooth value
//! and gradient, which the metrics' analytic gradients rely on).
//!
//! Points use pixel-centre coordinates: `(0, 0)` is the centre of the top-left pixel. A point is
//! inside an image of `w x h` pixels when `0 <= x <= w - 1` and `0 <= y <= h - 1`.

use super::{GrayF32, ROWS_PER_TASK};
use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

/// Bilinear interpolation over a borrowed image.
#[derive(Debug, Clone, Copy)]
pub struct BilinearSampler<'a> {
    image: ArrayView2<'a, f32>,
}

impl<'a> BilinearSampler<'a> {
    /// Samples `image`.
    pub fn new(image: ArrayView2<'a, f32>) -> Self {
        Self { image }
    }

    /// The interpolated value, or `None` outside the image.
    #[inline]
    pub fn value(&self, x: f64, y: f64) -> Option<f32> {
        let (h, w) = self.image.dim();
        if !(x >= 0.0 && y >= 0.0 && x <= (w - 1) as f64 && y <= (h - 1) as f64) {
            return None;
        }
        // Truncation is the floor here (both are at least 0), and unlike `floor` it is not a
        // library call on the baseline x86-64 target.
        let x0 = (x as usize).min(w.saturating_sub(2));
        let y0 = (y as usize).min(h.saturating_sub(2));
        let fx = (x - x0 as f64) as f32;
        let fy = (y - y0 as f64) as f32;
        let x1 = (x0 + 1).min(w - 1);
        let y1 = (y0 + 1).min(h - 1);
        let im = &self.image;
        let top = im[[y0, x0]] + fx * (im[[y0, x1]] - im[[y0, x0]]);
        let bottom = im[[y1, x0]] + fx * (im[[y1, x1]] - im[[y1, x0]]);
        Some(top + fy * (bottom - top))
    }
}

/// Cubic B-spline interpolation: holds the prefiltered coefficient image so that the spline passes
/// through every pixel value; value and gradient are continuous everywhere inside.
#[derive(Debug, Clone)]
pub struct CubicBSplineSampler {
    coeffs: GrayF32,
}

/// The cubic B-spline weights for the four taps `i-1..=i+2` at fraction `t` of `[i, i+1)`.
#[inline]
pub fn cubic_bspline_weights(t: f64) -> [f64; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    let s = 1.0 - t;
    [
        s * s * s / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ]
}

/// Derivatives of [`cubic_bspline_weights`] with respect to `t`.
#[inline]
pub fn cubic_bspline_weight_derivatives(t: f64) -> [f64; 4] {
    let s = 1.0 - t;
    [
        -0.5 * s * s,
        (3.0 * t * t - 4.0 * t) / 2.0,
        (-3.0 * t * t + 2.0 * t + 1.0) / 2.0,
        0.5 * t * t,
    ]
}

/// In-place prefilter of one line for cubic B-spline interpolation with mirror boundaries
/// (Unser, 1993): afterwards the spline through the coefficients interpolates the input.
fn prefilter_line(line: &mut [f32]) {
    let n = line.len();
    if n < 2 {
        return;
    }
    let z = 3f64.sqrt() - 2.0;
    let gain = 6.0;
    let mut c: Vec<f64> = line.iter().map(|&v| v as f64 * gain).collect();
    // Causal initialisation: truncated sum of the mirrored signal (|z|^k < 1e-8 beyond horizon).
    let horizon = ((1e-8f64).ln() / z.abs().ln()).ceil() as usize;
    let mut zk = 1.0;
    let mut sum = 0.0;
    for v in c.iter().take(horizon.min(n)) {
        sum += zk * v;
        zk *= z;
    }
    if horizon > n {
        // Short line: exact mirror-symmetric initialisation.
        let zn = z.powi(n as i32 - 1);
        let mut z2n = zn * zn / z;
        let iz = 1.0 / z;
        let mut zk = z;
        let mut s = c[0] + zn * c[n - 1];
        for v in c.iter().take(n - 1).skip(1) {
            s += (zk + z2n) * v;
            zk *= z;
            z2n *= iz;
        }
        sum = s / (1.0 - zn * zn);
    }
    c[0] = sum;
    for k in 1..n {
        c[k] += z * c[k - 1];
    }
    c[n - 1] = (z / (z * z - 1.0)) * (c[n - 1] + z * c[n - 2]);
    for k in (0..n - 1).rev() {
        c[k] = z * (c[k + 1] - c[k]);
    }
    line.iter_mut().zip(&c).for_each(|(o, &v)| *o = v as f32);
}

/// Columns per block in [`prefilter_columns`]: 64 floats are four cache lines per row, so each
/// row step of the recursion touches whole lines.
const COLUMNS_PER_BLOCK: usize = 64;

/// The prefilter of [`prefilter_line`] down every column at once, block of columns by block,
/// walking rows in memory order. (Profiled: copying each column out with strided reads made
/// prefiltering a 75-megapixel level take seconds.)
fn prefilter_columns(coeffs: &mut GrayF32) {
    let h = coeffs.nrows();
    if h < 2 {
        return;
    }
    let z = 3f64.sqrt() - 2.0;
    let horizon = ((1e-8f64).ln() / z.abs().ln()).ceil() as usize;
    if horizon > h {
        // Short columns need the exact mirror initialisation; they are cheap line by line.
        for mut col in coeffs.axis_iter_mut(Axis(1)) {
            let mut line: Vec<f32> = col.to_vec();
            prefilter_line(&mut line);
            col.iter_mut().zip(line).for_each(|(c, v)| *c = v);
        }
        return;
    }
    coeffs
        .axis_chunks_iter_mut(Axis(1), COLUMNS_PER_BLOCK)
        .into_par_iter()
        .for_each(|mut block| {
            let n = block.ncols();
            let mut c = vec![0f64; h * n];
            for y in 0..h {
                for x in 0..n {
                    c[y * n + x] = block[[y, x]] as f64 * 6.0;
                }
            }
            // Causal initialisation (truncated mirror sum), then the causal recursion.
            let mut first = vec![0f64; n];
            let mut zk = 1.0;
            for k in 0..horizon {
                for x in 0..n {
                    first[x] += zk * c[k * n + x];
                }
                zk *= z;
            }
            c[..n].copy_from_slice(&first);
            for y in 1..h {
                let (prev, cur) = c.split_at_mut(y * n);
                let prev = &prev[(y - 1) * n..];
                for x in 0..n {
                    cur[x] += z * prev[x];
                }
            }
            // Anti-causal initialisation and recursion.
            for x in 0..n {
                let last = (h - 1) * n + x;
                c[last] = (z / (z * z - 1.0)) * (c[last] + z * c[last - n]);
            }
            for y in (0..h - 1).rev() {
                let (cur, next) = c.split_at_mut((y + 1) * n);
                let cur = &mut cur[y * n..];
                for x in 0..n {
                    cur[x] = z * (next[x] - cur[x]);
                }
            }
            for y in 0..h {
                for x in 0..n {
                    block[[y, x]] = c[y * n + x] as f32;
                }
            }
        });
}

#[inline]
fn mirror(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - m;
    }
    m as usize
}

impl CubicBSplineSampler {
    /// Prefilters `image` (one `f32` copy of it), parallel over rows then columns.
    pub fn new(image: &GrayF32) -> Self {
        // Row-major, as the sampling reads it.
        let mut coeffs = image.as_standard_layout().into_owned();
        coeffs
            .axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
            .into_par_iter()
            .for_each(|mut band| {
                for mut row in band.axis_iter_mut(Axis(0)) {
                    prefilter_line(row.as_slice_mut().expect("standard layout"));
                }
            });
        prefilter_columns(&mut coeffs);
        Self { coeffs }
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.coeffs.ncols()
    }
    /// Image height.
    pub fn height(&self) -> usize {
        self.coeffs.nrows()
    }

    /// True when `(x, y)` lies inside the image.
    #[inline]
    pub fn inside(&self, x: f64, y: f64) -> bool {
        x >= 0.0 && y >= 0.0 && x <= (self.width() - 1) as f64 && y <= (self.height() - 1) as f64
    }

    /// Value at `(x, y)`, or `None` outside.
    #[inline]
    pub fn value(&self, x: f64, y: f64) -> Option<f64> {
        self.value_and_gradient(x, y).map(|(v, _, _)| v)
    }

    /// Value and gradient `(v, dv/dx, dv/dy)` at `(x, y)`, or `None` outside.
    #[inline]
    pub fn value_and_gradient(&self, x: f64, y: f64) -> Option<(f64, f64, f64)> {
        if !self.inside(x, y) {
            return None;
        }
        let (w, h) = (self.width(), self.height());
        // Inside means x, y >= 0, so truncation is floor (and avoids a libm call).
        let ix = (x as i64) as f64;
        let iy = (y as i64) as f64;
        let wx = cubic_bspline_weights(x - ix);
        let dx = cubic_bspline_weight_derivatives(x - ix);
        let wy = cubic_bspline_weights(y - iy);
        let dy = cubic_bspline_weight_derivatives(y - iy);
        let (ix, iy) = (ix as i64, iy as i64);
        let interior = ix >= 1 && iy >= 1 && ix + 2 < w as i64 && iy + 2 < h as i64;
        let coeffs = self.coeffs.as_slice().expect("standard layout");
        // Row `j` of the 4 x 4 taps (mirrored at the edges).
        let taps = |j: i64| -> [f32; 4] {
            if interior {
                let start = (iy + j - 1) as usize * w + (ix - 1) as usize;
                coeffs[start..start + 4]
                    .try_into()
                    .expect("four coefficients")
            } else {
                let row = mirror(iy + j - 1, h) * w;
                [0, 1, 2, 3].map(|i| coeffs[row + mirror(ix + i - 1, w)])
            }
        };
        let (mut v, mut gx, mut gy) = (0.0, 0.0, 0.0);
        for j in 0..4 {
            let row = taps(j as i64);
            let (mut rv, mut rd) = (0.0, 0.0);
            for i in 0..4 {
                let c = row[i] as f64;
                rv += wx[i] * c;
                rd += dx[i] * c;
            }
            v += wy[j] * rv;
            gx += wy[j] * rd;
            gy += dy[j] * rv;
        }
        Some((v, gx, gy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image() -> GrayF32 {
        GrayF32::from_shape_fn((23, 31), |(y, x)| {
            ((x as f32 * 0.37).sin() + (y as f32 * 0.23).cos() * 0.5) * 10.0
        })
    }

    #[test]
    fn cubic_bspline_interpolates_pixel_values() {
        let img = test_image();
        let s = CubicBSplineSampler::new(&img);
        for y in 0..23 {
            for x in 0..31 {
                let v = s.value(x as f64, y as f64).unwrap();
                assert!((v - img[[y, x]] as f64).abs() < 1e-3, "at {x},{y}: {v}");
            }
        }
        assert!(s.value(-0.1, 3.0).is_none());
        assert!(s.value(30.0, 22.0).is_some());
    }

    #[test]
    fn column_blocks_filter_exactly_like_single_lines() {
        // Tall enough for the block path (more rows than the initialisation horizon).
        let img = GrayF32::from_shape_fn((70, 130), |(y, x)| ((x * 7 + y * 13) % 31) as f32);
        let mut blocked = img.clone();
        prefilter_columns(&mut blocked);
        for x in [0, 63, 64, 129] {
            let mut line: Vec<f32> = img.column(x).to_vec();
            prefilter_line(&mut line);
            for y in 0..70 {
                assert!((blocked[[y, x]] - line[y]).abs() < 1e-4, "{x},{y}");
            }
        }
    }

    #[test]
    fn cubic_bspline_gradient_matches_finite_differences() {
        let s = CubicBSplineSampler::new(&test_image());
        for &(x, y) in &[(5.3, 7.7), (0.2, 0.4), (29.5, 21.1), (12.0, 3.0)] {
            let (_, gx, gy) = s.value_and_gradient(x, y).unwrap();
            let e = 1e-4;
            let fx = (s.value(x + e, y).unwrap() - s.value(x - e, y).unwrap()) / (2.0 * e);
            let fy = (s.value(x, y + e).unwrap() - s.value(x, y - e).unwrap()) / (2.0 * e);
            assert!(
                (gx - fx).abs() < 1e-2 && (gy - fy).abs() < 1e-2,
                "{gx} {fx} {gy} {fy}"
            );
        }
    }

    #[test]
    fn weights_sum_to_one_and_derivatives_to_zero() {
        for t in [0.0, 0.25, 0.5, 0.99] {
            assert!((cubic_bspline_weights(t).iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(
                cubic_bspline_weight_derivatives(t)
                    .iter()
                    .sum::<f64>()
                    .abs()
                    < 1e-12
            );
        }
    }

    #[test]
    fn bilinear_interpolates_linearly_and_rejects_outside() {
        let img = GrayF32::from_shape_fn((4, 5), |(y, x)| (x + 10 * y) as f32);
        let s = BilinearSampler::new(img.view());
        assert!((s.value(1.5, 2.25).unwrap() - 24.0).abs() < 1e-5);
        assert!((s.value(4.0, 3.0).unwrap() - 34.0).abs() < 1e-5);
        assert!(s.value(4.01, 0.0).is_none());
    }
}
