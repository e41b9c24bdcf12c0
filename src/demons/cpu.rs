//! The demons solver on the CPU: the reference for `shaders/demons.wgsl`, kernel for kernel.
//!
//! One iteration: [`exp_scale`] and [`exp_square`] (scaling and squaring of `v` into the
//! displacement `u`, in [`crate::transform::velocity`]), [`warp`] (the moving image through `A(x + u)`), [`force`] (the symmetric
//! update), [`smooth_rows`] and [`smooth_columns`] of the update (fluid), [`accumulate`]
//! (`v + δ`, with the RMS and the longest vector), and the same smoothing into `v` (elastic).

use super::{DemonsSolver, DemonsTile, TileOutcome, TileRun};
use crate::Result;
use crate::job::CancelToken;
use crate::transform::velocity::{self, exp_scale, exp_square};
use ndarray::ArrayView2;
use rayon::prelude::*;

/// The CPU solver; tiles only when a test forces a small limit.
#[derive(Debug, Clone, Copy)]
pub struct CpuDemonsSolver {
    /// Largest tile in pixels (margin included).
    pub max_tile_pixels: usize,
}

impl Default for CpuDemonsSolver {
    fn default() -> Self {
        Self {
            max_tile_pixels: usize::MAX,
        }
    }
}

impl DemonsSolver for CpuDemonsSolver {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn max_tile_pixels(&self) -> usize {
        self.max_tile_pixels
    }

    fn iterate(
        &self,
        tile: &DemonsTile<'_>,
        velocity: &mut [[f32; 2]],
        run: TileRun,
        cancel: &CancelToken,
    ) -> Result<TileOutcome> {
        let (w, h) = (tile.width(), tile.height());
        let n = w * h;
        assert_eq!(velocity.len(), n, "the velocity must cover the tile");
        let (fluid, elastic) = (tile.params.fluid_kernel(), tile.params.elastic_kernel());
        let mut displacement = vec![[0.0f32; 2]; n];
        let mut squared = vec![[0.0f32; 2]; n];
        let mut warped = vec![0.0f32; n];
        let mut update = vec![[0.0f32; 2]; n];
        let mut scratch = vec![[0.0f32; 2]; n];
        let mut steps = run.first_steps;
        let mut outcome = TileOutcome::default();
        for iteration in 1..=run.iterations {
            cancel.check()?;
            exp_scale(velocity, steps, &mut displacement);
            for _ in 0..steps {
                exp_square(&displacement, w, h, tile.origin, &mut squared);
                std::mem::swap(&mut displacement, &mut squared);
            }
            warp(tile, &displacement, &mut warped);
            force(tile, &warped, &mut update);
            smooth_rows(&update, w, &fluid, &mut scratch);
            smooth_columns(&scratch, w, h, &fluid, &mut update);
            let (sum_sq, max_norm) = accumulate(velocity, &mut update, w, tile.own);
            smooth_rows(&update, w, &elastic, &mut scratch);
            smooth_columns(&scratch, w, h, &elastic, velocity);
            let [x0, y0, x1, y1] = tile.own;
            outcome = TileOutcome {
                iterations: iteration,
                update_sum_sq: sum_sq,
                own_pixels: ((x1 - x0) * (y1 - y0)) as usize,
                max_norm,
            };
            steps = velocity::exp_steps(max_norm);
            if run
                .stop_rms
                .is_some_and(|stop| outcome.rms() < f64::from(stop))
            {
                break;
            }
        }
        Ok(outcome)
    }
}

/// Bilinear sample with clamped neighbours; the caller keeps `(x, y)` inside the image.
fn bilinear(image: &ArrayView2<'_, f32>, x: f32, y: f32) -> f32 {
    let (h, w) = image.dim();
    let (xf, yf) = (x.floor(), y.floor());
    let (fx, fy) = (x - xf, y - yf);
    let (x0, y0) = ((xf as usize).min(w - 1), (yf as usize).min(h - 1));
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let top = image[[y0, x0]] + fx * (image[[y0, x1]] - image[[y0, x0]]);
    let bottom = image[[y1, x0]] + fx * (image[[y1, x1]] - image[[y1, x0]]);
    top + fy * (bottom - top)
}

/// The moving image through `A(x + u(x))`; where that point leaves the moving level, the fixed
/// image's own value (so the force there is zero).
pub fn warp(tile: &DemonsTile<'_>, displacement: &[[f32; 2]], warped: &mut [f32]) {
    let w = tile.width();
    let [m00, m01, m10, m11, ox, oy] = tile.affine;
    let [x0, y0] = tile.origin;
    let [cx, cy] = tile.moving_origin.map(|v| v as f32);
    let [mw, mh] = tile.moving_size.map(|v| (v - 1) as f32);
    warped.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let u = displacement[y * w + x];
            let xa = (x as u32 + x0) as f32 + u[0];
            let ya = (y as u32 + y0) as f32 + u[1];
            let px = m00 * xa + m01 * ya + ox;
            let py = m10 * xa + m11 * ya + oy;
            *o = if px >= 0.0 && py >= 0.0 && px <= mw && py <= mh {
                bilinear(&tile.moving, px - cx, py - cy)
            } else {
                tile.fixed[[y, x]]
            };
        }
    });
}

/// Central difference of `value` along one axis at `i` of `n`, one-sided at the ends.
fn derivative(value: impl Fn(usize) -> f32, i: usize, n: usize) -> f32 {
    if n < 2 {
        return 0.0;
    }
    let (lo, hi) = (i.saturating_sub(1), (i + 1).min(n - 1));
    (value(hi) - value(lo)) / (hi - lo) as f32
}

/// The symmetric (ESM) demons force per pixel:
/// `2 (F − W) g / (‖g‖² + (F − W)² / K)` with `g = ∇F + ∇W`, `K = max_step²`.
pub fn force(tile: &DemonsTile<'_>, warped: &[f32], update: &mut [[f32; 2]]) {
    let (w, h) = (tile.width(), tile.height());
    let inv_k = 1.0 / (tile.params.max_step * tile.params.max_step);
    let fixed = &tile.fixed;
    update.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let diff = fixed[[y, x]] - warped[y * w + x];
            let gx = derivative(|i| fixed[[y, i]], x, w) + derivative(|i| warped[y * w + i], x, w);
            let gy = derivative(|j| fixed[[j, x]], y, h) + derivative(|j| warped[j * w + x], y, h);
            let denominator = gx * gx + gy * gy + diff * diff * inv_k;
            *o = if denominator > 1e-9 {
                let scale = 2.0 * diff / denominator;
                [scale * gx, scale * gy]
            } else {
                [0.0, 0.0]
            };
        }
    });
}

/// Gaussian along rows with the half kernel `kernel` (offsets `0..=r`), edges clamped.
pub fn smooth_rows(source: &[[f32; 2]], width: usize, kernel: &[f32], out: &mut [[f32; 2]]) {
    let r = kernel.len() as i64 - 1;
    out.par_chunks_mut(width)
        .zip(source.par_chunks(width))
        .for_each(|(row, src)| {
            for (x, o) in row.iter_mut().enumerate() {
                let mut sum = [0.0f32; 2];
                for k in -r..=r {
                    let i = (x as i64 + k).clamp(0, width as i64 - 1) as usize;
                    let weight = kernel[k.unsigned_abs() as usize];
                    sum[0] += weight * src[i][0];
                    sum[1] += weight * src[i][1];
                }
                *o = sum;
            }
        });
}

/// Gaussian along columns, as [`smooth_rows`].
pub fn smooth_columns(
    source: &[[f32; 2]],
    width: usize,
    height: usize,
    kernel: &[f32],
    out: &mut [[f32; 2]],
) {
    let r = kernel.len() as i64 - 1;
    out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let mut sum = [0.0f32; 2];
            for k in -r..=r {
                let j = (y as i64 + k).clamp(0, height as i64 - 1) as usize;
                let weight = kernel[k.unsigned_abs() as usize];
                let s = source[j * width + x];
                sum[0] += weight * s[0];
                sum[1] += weight * s[1];
            }
            *o = sum;
        }
    });
}

/// `update ← v + update` (the first-order composition); returns the sum of the update's
/// squared lengths and the longest `v + update`, both over `own`.
pub fn accumulate(
    velocity: &[[f32; 2]],
    update: &mut [[f32; 2]],
    width: usize,
    own: [u32; 4],
) -> (f64, f32) {
    let [x0, y0, x1, y1] = own.map(|v| v as usize);
    update
        .par_chunks_mut(width)
        .zip(velocity.par_chunks(width))
        .enumerate()
        .map(|(y, (row, v))| {
            let mut sum = 0.0f64;
            let mut longest = 0.0f32;
            for (x, (d, v)) in row.iter_mut().zip(v).enumerate() {
                let inside = (y0..y1).contains(&y) && (x0..x1).contains(&x);
                if inside {
                    sum += f64::from(d[0] * d[0] + d[1] * d[1]);
                }
                *d = [v[0] + d[0], v[1] + d[1]];
                if inside {
                    longest = longest.max((d[0] * d[0] + d[1] * d[1]).sqrt());
                }
            }
            (sum, longest)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1.max(b.1)))
}
