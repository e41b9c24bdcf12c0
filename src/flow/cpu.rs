//! The flow solver on the CPU: the reference for `shaders/flow.wgsl`, pass for pass.
//!
//! Per linearisation: [`linearize`] computes each pixel's data-term coefficients, [`smoothness`]
//! the edge-preserving weights, then red and black [`sweep`]s alternate. The flow lives in
//! relaxed atomics so that a colour's pass can update its pixels in place from parallel rows
//! while reading the other colour (a plain load and store on every target).

use super::{FlowParams, FlowSolver, TileProblem};
use crate::Result;
use crate::job::CancelToken;
use ndarray::ArrayView2;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// The CPU solver; tiles only when a test forces a small limit.
#[derive(Debug, Clone, Copy)]
pub struct CpuSolver {
    /// Largest tile in pixels (margin included).
    pub max_tile_pixels: usize,
}

impl Default for CpuSolver {
    fn default() -> Self {
        Self {
            max_tile_pixels: usize::MAX,
        }
    }
}

impl FlowSolver for CpuSolver {
    fn name(&self) -> String {
        "cpu".into()
    }
    fn max_tile_pixels(&self) -> usize {
        self.max_tile_pixels
    }
    fn refine(
        &self,
        problem: &TileProblem<'_>,
        flow: &mut [[f32; 2]],
        cancel: &CancelToken,
    ) -> Result<()> {
        let n = problem.width() * problem.height();
        assert_eq!(flow.len(), n, "flow must cover the tile");
        let cells: Vec<AtomicU64> = flow.par_iter().map(|f| AtomicU64::new(pack(*f))).collect();
        let mut coefficients = vec![[0.0f32; 3]; n];
        let mut rhs = vec![[0.0f32; 2]; n];
        let mut weights = vec![0.0f32; n];
        for _ in 0..problem.params.warps {
            cancel.check()?;
            linearize(problem, &cells, &mut coefficients, &mut rhs);
            smoothness(problem, &cells, &mut weights);
            for _ in 0..problem.params.sweeps {
                for colour in 0..2 {
                    sweep(problem, colour, &cells, &coefficients, &rhs, &weights);
                }
            }
            if problem.params.median_radius > 0 {
                // Into `rhs`'s memory: the next linearisation writes it afresh.
                let filtered = &mut rhs;
                median(problem, &cells, filtered);
                cells
                    .par_iter()
                    .zip(filtered.par_iter())
                    .for_each(|(c, f)| c.store(pack(*f), Ordering::Relaxed));
            }
        }
        flow.par_iter_mut()
            .zip(&cells)
            .for_each(|(f, c)| *f = unpack(c.load(Ordering::Relaxed)));
        Ok(())
    }
}

fn pack(f: [f32; 2]) -> u64 {
    (f[0].to_bits() as u64) | ((f[1].to_bits() as u64) << 32)
}

fn unpack(bits: u64) -> [f32; 2] {
    [
        f32::from_bits(bits as u32),
        f32::from_bits((bits >> 32) as u32),
    ]
}

fn load(cells: &[AtomicU64], i: usize) -> [f32; 2] {
    unpack(cells[i].load(Ordering::Relaxed))
}

/// `x.floor()` without the library call it is on the baseline x86-64 target: the same value for
/// every finite `x`.
#[inline]
fn floor(x: f32) -> f32 {
    let truncated = x as i64 as f32;
    if truncated > x {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Bilinear sample with clamped neighbours; the caller keeps `(x, y)` inside the image (the
/// crop's slack covers every point a tile reaches).
#[inline]
fn bilinear(image: &ArrayView2<'_, f32>, x: f32, y: f32) -> f32 {
    let (h, w) = image.dim();
    let (x0, y0) = (floor(x), floor(y));
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = ((x0 as usize).min(w - 1), (y0 as usize).min(h - 1));
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let top = image[[y0, x0]] + fx * (image[[y0, x1]] - image[[y0, x0]]);
    let bottom = image[[y1, x0]] + fx * (image[[y1, x1]] - image[[y1, x0]]);
    top + fy * (bottom - top)
}

/// Data-term coefficients at every pixel: `[a11, a12, a22]` and the right-hand side, from the
/// brightness constancy linearised about the current flow, weighted by the Charbonnier
/// derivative of its residual. Pixels mapping outside the moving image get no data term.
pub fn linearize(
    problem: &TileProblem<'_>,
    cells: &[AtomicU64],
    coefficients: &mut [[f32; 3]],
    rhs: &mut [[f32; 2]],
) {
    let (w, h) = (problem.width(), problem.height());
    let [m00, m01, m10, m11, ox, oy] = problem.affine;
    let [x0, y0] = problem.origin;
    let [cx, cy] = problem.moving_origin.map(|v| v as f32);
    let [mw, mh] = problem.moving_size.map(|v| v as f32);
    let eps2 = problem.params.data_epsilon * problem.params.data_epsilon;
    let fixed = &problem.fixed;
    let moving = &problem.moving;
    coefficients
        .par_chunks_mut(w)
        .zip(rhs.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (coef_row, rhs_row))| {
            for x in 0..w {
                let i = y * w + x;
                let r = load(cells, i);
                let (xa, ya) = ((x as u32 + x0) as f32, (y as u32 + y0) as f32);
                let px = m00 * xa + m01 * ya + ox + r[0];
                let py = m10 * xa + m11 * ya + oy + r[1];
                if !super::has_data_term(px, py, [mw, mh], 0.0) {
                    coef_row[x] = [0.0; 3];
                    rhs_row[x] = [0.0; 2];
                    continue;
                }
                // Positions are rounded in level coordinates, then moved into the crop by an
                // exact subtraction of whole numbers.
                let sample = |x: f32, y: f32| bilinear(moving, x - cx, y - cy);
                let warped = sample(px, py);
                let gx2 = sample(px + 0.5, py) - sample(px - 0.5, py);
                let gy2 = sample(px, py + 0.5) - sample(px, py - 0.5);
                let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
                let (yu, yd) = (y.saturating_sub(1), (y + 1).min(h - 1));
                let gx1 = (fixed[[y, xr]] - fixed[[y, xl]]) / (xr - xl).max(1) as f32;
                let gy1 = (fixed[[yd, x]] - fixed[[yu, x]]) / (yd - yu).max(1) as f32;
                let ix = 0.5 * (gx1 + gx2);
                let iy = 0.5 * (gy1 + gy2);
                let it = warped - fixed[[y, x]];
                let psi = 1.0 / (it * it + eps2).sqrt();
                let residual = ix * r[0] + iy * r[1] - it;
                coef_row[x] = [psi * ix * ix, psi * ix * iy, psi * iy * iy];
                rhs_row[x] = [psi * ix * residual, psi * iy * residual];
            }
        });
}

/// Edge-preserving smoothness weight per pixel, in `(0, 1]`: `1 / sqrt(1 + |grad r|^2 / eps^2)`
/// with forward differences of the current flow.
pub fn smoothness(problem: &TileProblem<'_>, cells: &[AtomicU64], weights: &mut [f32]) {
    let (w, h) = (problem.width(), problem.height());
    let inv_eps2 = 1.0 / (problem.params.smooth_epsilon * problem.params.smooth_epsilon);
    weights.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, out) in row.iter_mut().enumerate() {
            let c = load(cells, y * w + x);
            let right = if x + 1 < w {
                load(cells, y * w + x + 1)
            } else {
                c
            };
            let down = if y + 1 < h {
                load(cells, (y + 1) * w + x)
            } else {
                c
            };
            let (ux, vx) = (right[0] - c[0], right[1] - c[1]);
            let (uy, vy) = (down[0] - c[0], down[1] - c[1]);
            let g2 = ux * ux + vx * vx + uy * uy + vy * vy;
            *out = 1.0 / (1.0 + g2 * inv_eps2).sqrt();
        }
    });
}

/// One over-relaxed Gauss-Seidel pass over the pixels of `colour` (`(x + y + parity) % 2`):
/// each solves its 2x2 Euler-Lagrange system with its neighbours' current flow.
pub fn sweep(
    problem: &TileProblem<'_>,
    colour: u32,
    cells: &[AtomicU64],
    coefficients: &[[f32; 3]],
    rhs: &[[f32; 2]],
    weights: &[f32],
) {
    let (w, h) = (problem.width(), problem.height());
    let FlowParams {
        smoothness: alpha,
        relaxation: omega,
        ..
    } = problem.params;
    let parity = (problem.origin[0] + problem.origin[1]) % 2;
    (0..h).into_par_iter().for_each(|y| {
        let first = ((colour + parity + y as u32) % 2) as usize;
        for x in (first..w).step_by(2) {
            let i = y * w + x;
            let mut sum_w = 0.0f32;
            let mut su = 0.0f32;
            let mut sv = 0.0f32;
            let mut neighbour = |n: usize| {
                let we = 0.5 * (weights[i] + weights[n]);
                let f = load(cells, n);
                sum_w += we;
                su += we * f[0];
                sv += we * f[1];
            };
            if x > 0 {
                neighbour(i - 1);
            }
            if x + 1 < w {
                neighbour(i + 1);
            }
            if y > 0 {
                neighbour(i - w);
            }
            if y + 1 < h {
                neighbour(i + w);
            }
            let [a11, a12, a22] = coefficients[i];
            let d11 = a11 + alpha * sum_w;
            let d22 = a22 + alpha * sum_w;
            let b1 = rhs[i][0] + alpha * su;
            let b2 = rhs[i][1] + alpha * sv;
            let det = d11 * d22 - a12 * a12;
            if det <= 1e-12 {
                continue;
            }
            let un = (d22 * b1 - a12 * b2) / det;
            let vn = (d11 * b2 - a12 * b1) / det;
            let c = load(cells, i);
            let next = [c[0] + omega * (un - c[0]), c[1] + omega * (vn - c[1])];
            cells[i].store(pack(next), Ordering::Relaxed);
        }
    });
}

/// Longest window of the median filter (radius 3).
pub const MAX_MEDIAN_WINDOW: usize = 49;

/// Component-wise median of the flow over a `(2 r + 1)^2` window clipped to the tile: the upper
/// median (element `n / 2` in sorted order) of the `n` values present. Removes the isolated
/// outliers that linearisation leaves at occlusions and depth edges; a selection, so the CPU and
/// the GPU agree exactly.
pub fn median(problem: &TileProblem<'_>, cells: &[AtomicU64], out: &mut [[f32; 2]]) {
    let (w, h) = (problem.width(), problem.height());
    let r = problem.params.median_radius as usize;
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let clipped = |x: usize| window_median(cells, w, h, r, x, y);
        if r == 1 && y > 0 && y + 1 < h && w > 2 {
            median3_row(cells, w, y, row);
            row[0] = clipped(0);
            row[w - 1] = clipped(w - 1);
        } else {
            for (x, o) in row.iter_mut().enumerate() {
                *o = clipped(x);
            }
        }
    });
}

/// The median of the window of radius `r` about `(x, y)`, clipped to the `w x h` tile.
fn window_median(
    cells: &[AtomicU64],
    w: usize,
    h: usize,
    r: usize,
    x: usize,
    y: usize,
) -> [f32; 2] {
    let mut us = [0.0f32; MAX_MEDIAN_WINDOW];
    let mut vs = [0.0f32; MAX_MEDIAN_WINDOW];
    let mut n = 0;
    for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
        for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
            let f = load(cells, yy * w + xx);
            us[n] = f[0];
            vs[n] = f[1];
            n += 1;
        }
    }
    [upper_median(&mut us[..n]), upper_median(&mut vs[..n])]
}

/// The full 3 x 3 medians of an interior row (`0 < y < h - 1`) at `1 <= x < w - 1`, without
/// sorting nine values per pixel: each column of three is sorted once, and the median of the nine
/// is the median of (the largest of the columns' minima, the median of their medians, the
/// smallest of their maxima). The same value as [`upper_median`] of the nine.
fn median3_row(cells: &[AtomicU64], w: usize, y: usize, out: &mut [[f32; 2]]) {
    let column = |x: usize| {
        let [a, b, c] = [y - 1, y, y + 1].map(|yy| load(cells, yy * w + x));
        [0, 1].map(|k| sort3(a[k], b[k], c[k]))
    };
    let mut window = [column(0), column(1), column(2)];
    for (x, median) in out.iter_mut().enumerate().take(w - 1).skip(1) {
        if x > 1 {
            window = [window[1], window[2], column(x + 1)];
        }
        *median = [0, 1].map(|k| {
            let [l, m, r] = [window[0][k], window[1][k], window[2][k]];
            let low = l[0].max(m[0]).max(r[0]);
            let high = l[2].min(m[2]).min(r[2]);
            median3(low, median3(l[1], m[1], r[1]), high)
        });
    }
}

/// `[min, median, max]` of three values.
fn sort3(a: f32, b: f32, c: f32) -> [f32; 3] {
    [a.min(b).min(c), median3(a, b, c), a.max(b).max(c)]
}

/// The median of three values.
fn median3(a: f32, b: f32, c: f32) -> f32 {
    a.min(b).max(a.max(b).min(c))
}

/// Insertion sort then the middle element: for windows of at most 49 values this beats a
/// general selection, and it is the same procedure as the shader's.
pub(crate) fn upper_median(values: &mut [f32]) -> f32 {
    for i in 1..values.len() {
        let key = values[i];
        let mut j = i;
        while j > 0 && values[j - 1] > key {
            values[j] = values[j - 1];
            j -= 1;
        }
        values[j] = key;
    }
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn floor_matches_the_library_floor() {
        for x in [
            -3.5f32,
            -1.0,
            -0.25,
            0.0,
            0.75,
            1.0,
            2.999_999,
            1e7 + 0.5,
            -8_388_607.5,
        ] {
            assert_eq!(floor(x), x.floor(), "{x}");
        }
    }

    #[test]
    fn interior_3x3_median_equals_the_sorted_window_median() {
        // Few distinct values, so that windows hold ties.
        let (w, h) = (23, 9);
        let mut rng = SplitMix64::new(7);
        let cells: Vec<AtomicU64> = (0..w * h)
            .map(|_| {
                let mut value = || (rng.next_u64() % 7) as f32 * 0.5 - 1.0;
                AtomicU64::new(pack([value(), value()]))
            })
            .collect();
        for y in 1..h - 1 {
            let mut row = vec![[f32::NAN; 2]; w];
            median3_row(&cells, w, y, &mut row);
            for (x, fast) in row.iter().enumerate().take(w - 1).skip(1) {
                assert_eq!(*fast, window_median(&cells, w, h, 1, x, y), "({x}, {y})");
            }
        }
    }
}
