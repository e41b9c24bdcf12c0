//! The flow solver on the CPU: the reference for `shaders/flow.wgsl`, pass for pass.
//!
//! Per linearisation: [`linearize`] computes each pixel's data-term coefficients, [`smoothness`]
//! the edge-preserving weights, then red and black sweeps alternate on the layout split by
//! colour of [`super::red_black`], where a colour's pass writes its own pixels from parallel
//! rows while reading the other colour's.

use super::red_black::{BoardRow, RedBlack};
use super::{FlowParams, FlowSolver, TileProblem};
use crate::Result;
use crate::job::CancelToken;
use ndarray::ArrayView2;
use rayon::prelude::*;

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
        let (w, h) = (problem.width(), problem.height());
        assert_eq!(flow.len(), w * h, "flow must cover the tile");
        let parity = (problem.origin[0] + problem.origin[1]) as usize % 2;
        let mut board = RedBlack::new(w, h, parity);
        let FlowParams {
            smoothness: alpha,
            relaxation: omega,
            ..
        } = problem.params;
        for _ in 0..problem.params.warps {
            cancel.check()?;
            // One pass: the data term, the weights and a copy of the flow for the sweeps.
            board.fill_rows(|y, row| {
                linearize_row(problem, flow, y, row);
                smoothness_row(problem, flow, y, row);
                for (x, &f) in flow[y * w..][..w].iter().enumerate() {
                    row.set_flow(x, f);
                }
            });
            for _ in 0..problem.params.sweeps {
                for colour in 0..2 {
                    board.sweep(colour, alpha, omega);
                }
            }
            if problem.params.median_radius > 0 {
                median(problem, &|x, y| board.flow_at(x, y), flow);
            } else {
                board.store_flow(flow);
            }
        }
        Ok(())
    }
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

/// Data-term coefficients of row `y`'s pixels: `[a11, a12, a22]` and the right-hand side, from
/// the brightness constancy linearised about the current flow, weighted by the Charbonnier
/// derivative of its residual. Pixels mapping outside the moving image get no data term.
fn linearize_row(problem: &TileProblem<'_>, flow: &[[f32; 2]], y: usize, out: &mut BoardRow<'_>) {
    let (w, h) = (problem.width(), problem.height());
    let [m00, m01, m10, m11, ox, oy] = problem.affine;
    let [x0, y0] = problem.origin;
    let [cx, cy] = problem.moving_origin.map(|v| v as f32);
    let [mw, mh] = problem.moving_size.map(|v| v as f32);
    let eps2 = problem.params.data_epsilon * problem.params.data_epsilon;
    let moving = &problem.moving;
    let fixed_row = |y: usize| {
        problem
            .fixed
            .row(y)
            .to_slice()
            .expect("a tile's rows are contiguous")
    };
    let (up, here, down) = (
        fixed_row(y.saturating_sub(1)),
        fixed_row(y),
        fixed_row((y + 1).min(h - 1)),
    );
    let row_step = (y + 1).min(h - 1) - y.saturating_sub(1);
    for (x, &r) in flow[y * w..][..w].iter().enumerate() {
        let (xa, ya) = ((x as u32 + x0) as f32, (y as u32 + y0) as f32);
        let px = m00 * xa + m01 * ya + ox + r[0];
        let py = m10 * xa + m11 * ya + oy + r[1];
        if !super::has_data_term(px, py, [mw, mh], 0.0) {
            out.set_data_term(x, [0.0; 3], [0.0; 2]);
            continue;
        }
        // Positions are rounded in level coordinates, then moved into the crop by an exact
        // subtraction of whole numbers.
        let sample = |x: f32, y: f32| bilinear(moving, x - cx, y - cy);
        let warped = sample(px, py);
        let gx2 = sample(px + 0.5, py) - sample(px - 0.5, py);
        let gy2 = sample(px, py + 0.5) - sample(px, py - 0.5);
        let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
        let gx1 = (here[xr] - here[xl]) / (xr - xl).max(1) as f32;
        let gy1 = (down[x] - up[x]) / row_step.max(1) as f32;
        let ix = 0.5 * (gx1 + gx2);
        let iy = 0.5 * (gy1 + gy2);
        let it = warped - here[x];
        let psi = 1.0 / (it * it + eps2).sqrt();
        let residual = ix * r[0] + iy * r[1] - it;
        out.set_data_term(
            x,
            [psi * ix * ix, psi * ix * iy, psi * iy * iy],
            [psi * ix * residual, psi * iy * residual],
        );
    }
}

/// Edge-preserving smoothness weights of row `y`'s pixels, in `(0, 1]`:
/// `1 / sqrt(1 + |grad r|^2 / eps^2)` with forward differences of the current flow.
fn smoothness_row(problem: &TileProblem<'_>, flow: &[[f32; 2]], y: usize, out: &mut BoardRow<'_>) {
    let (w, h) = (problem.width(), problem.height());
    let inv_eps2 = 1.0 / (problem.params.smooth_epsilon * problem.params.smooth_epsilon);
    for x in 0..w {
        let c = flow[y * w + x];
        let right = if x + 1 < w { flow[y * w + x + 1] } else { c };
        let down = if y + 1 < h { flow[(y + 1) * w + x] } else { c };
        let (ux, vx) = (right[0] - c[0], right[1] - c[1]);
        let (uy, vy) = (down[0] - c[0], down[1] - c[1]);
        let g2 = ux * ux + vx * vx + uy * uy + vy * vy;
        out.set_weight(x, 1.0 / (1.0 + g2 * inv_eps2).sqrt());
    }
}

/// Longest window of the median filter (radius 3).
pub const MAX_MEDIAN_WINDOW: usize = 49;

/// Component-wise median of the flow `flow(x, y)` over a `(2 r + 1)^2` window clipped to the tile, into `out`: the upper
/// median (element `n / 2` in sorted order) of the `n` values present. Removes the isolated
/// outliers that linearisation leaves at occlusions and depth edges; a selection, so the CPU and
/// the GPU agree exactly.
fn median(
    problem: &TileProblem<'_>,
    flow: &(impl Fn(usize, usize) -> [f32; 2] + Sync),
    out: &mut [[f32; 2]],
) {
    let (w, h) = (problem.width(), problem.height());
    let r = problem.params.median_radius as usize;
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let clipped = |x: usize| window_median(flow, w, h, r, x, y);
        if r == 1 && y > 0 && y + 1 < h && w > 2 {
            median3_row(flow, y, row);
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
    flow: &impl Fn(usize, usize) -> [f32; 2],
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
            let f = flow(xx, yy);
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
fn median3_row(flow: &impl Fn(usize, usize) -> [f32; 2], y: usize, out: &mut [[f32; 2]]) {
    let column = |x: usize| {
        let [a, b, c] = [y - 1, y, y + 1].map(|yy| flow(x, yy));
        [0, 1].map(|k| sort3(a[k], b[k], c[k]))
    };
    let mut window = [column(0), column(1), column(2)];
    let w = out.len();
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
        let flow: Vec<[f32; 2]> = (0..w * h)
            .map(|_| {
                let mut value = || (rng.next_u64() % 7) as f32 * 0.5 - 1.0;
                [value(), value()]
            })
            .collect();
        for y in 1..h - 1 {
            let mut row = vec![[f32::NAN; 2]; w];
            let at = |x: usize, y: usize| flow[y * w + x];
            median3_row(&at, y, &mut row);
            for (x, fast) in row.iter().enumerate().take(w - 1).skip(1) {
                assert_eq!(*fast, window_median(&at, w, h, 1, x, y), "({x}, {y})");
            }
        }
    }
}
