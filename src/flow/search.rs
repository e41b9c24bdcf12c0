//! Discrete displacement search on coarse levels, before the variational refinement.
//!
//! Coarse-to-fine linearisation cannot follow a small structure that moves much more than its
//! surroundings (a foreground object in a stereo pair): on the coarse levels where the motion is
//! small, the structure is blurred into its background. So each coarse level first tries, for
//! every pixel, every whole-pixel offset within a radius of the current flow, scores it by the
//! squared difference of the normalised images averaged over a `(2 PATCH + 1)^2` window, and moves
//! the pixel where an offset is clearly better; a median filter then removes isolated choices.
//! The levels are small (longer side at most [`MAX_SIDE`]), so this runs on the CPU for both
//! backends.

use crate::raster::{BilinearSampler, GrayF32, box_mean_rows_serial};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// Largest search radius accepted (level pixels).
pub const MAX_RADIUS: u32 = 16;
/// Half-width of the scoring window.
pub const PATCH: usize = 2;
/// Longest side of a level searched.
pub const MAX_SIDE: usize = 800;
/// An offset replaces the current flow when its cost is below this fraction of the current cost.
pub const IMPROVEMENT: f32 = 0.85;
/// Radius of the median filter applied to the searched flow.
const MEDIAN_RADIUS: usize = 2;

/// Adds the best whole-pixel offset within `radius` to `residual` wherever it clearly beats the
/// current flow. Returns the share of pixels moved.
pub fn search(
    fixed: &GrayF32,
    moving: &GrayF32,
    affine: [f32; 6],
    radius: u32,
    residual: &mut Array2<[f32; 2]>,
) -> f64 {
    let radius = radius.min(MAX_RADIUS) as i32;
    let (h, w) = fixed.dim();
    let sampler = BilinearSampler::new(moving.view());
    // Each pixel's point in the moving level under the current flow (row-major); an offset
    // adds to it.
    let base: Vec<[f32; 2]> = residual
        .indexed_iter()
        .map(|((y, x), r)| {
            let (xf, yf) = (x as f32, y as f32);
            [
                affine[0] * xf + affine[1] * yf + affine[4] + r[0],
                affine[2] * xf + affine[3] * yf + affine[5] + r[1],
            ]
        })
        .collect();
    let fixed_rows = fixed.as_standard_layout();
    let fixed_rows = fixed_rows.as_slice().expect("standard layout");
    // The window-averaged squared difference at one offset, into `cost`.
    let cost_at = |offset: [f32; 2], horizontal: &mut [f32], cost: &mut GrayF32| {
        box_mean_rows_serial(horizontal, cost, PATCH, |y, row| {
            let (base, fixed) = (&base[y * w..][..w], &fixed_rows[y * w..][..w]);
            for ((d, &[px, py]), &f) in row.iter_mut().zip(base).zip(fixed) {
                let (px, py) = (px + offset[0], py + offset[1]);
                // Outside the moving image: a large, constant penalty.
                *d = match sampler.value(px as f64, py as f64) {
                    Some(v) => (v - f).powi(2).min(4.0),
                    None => 4.0,
                };
            }
        })
    };
    let mut current = GrayF32::zeros((h, w));
    cost_at([0.0, 0.0], &mut vec![0f32; h * w], &mut current);
    // The rows of offsets are split into one run per thread; each run keeps, per pixel, its
    // first offset of least cost, and the runs merge in order: the choice of a sequential scan
    // from the zero offset, whatever the thread count. (One parallel step per offset instead
    // took most of the search's time on small levels in waiting for threads.) A run holds 14
    // bytes a pixel: on the largest level searched (800 px) and with a run per offset row
    // (13 at the automatic radius, on 13 or more threads), 117 MB while it lasts.
    let rows: Vec<i32> = (-radius..=radius).collect();
    let per_run = rows.len().div_ceil(rayon::current_num_threads().max(1));
    let runs: Vec<Best> = rows
        .par_chunks(per_run)
        .map(|dys| {
            let mut best = Best {
                cost: GrayF32::from_elem((h, w), f32::INFINITY),
                offset: Array2::from_elem((h, w), [0i8; 2]),
            };
            let (mut horizontal, mut cost) = (vec![0f32; h * w], GrayF32::zeros((h, w)));
            for &dy in dys {
                for dx in (-radius..=radius).filter(|&dx| dx != 0 || dy != 0) {
                    cost_at([dx as f32, dy as f32], &mut horizontal, &mut cost);
                    best.keep_lower(&cost, |_| [dx as i8, dy as i8]);
                }
            }
            best
        })
        .collect();
    let mut best = Best {
        cost: current.clone(),
        offset: Array2::from_elem((h, w), [0i8; 2]),
    };
    for run in &runs {
        best.keep_lower(&run.cost, |at| run.offset[at]);
    }
    let Best {
        cost: best_cost,
        offset: best,
    } = best;
    let mut chosen = Array2::from_elem((h, w), [0.0f32; 2]);
    let mut moved = 0usize;
    for ((j, i), o) in best.indexed_iter() {
        if best_cost[[j, i]] < IMPROVEMENT * current[[j, i]] {
            chosen[[j, i]] = [o[0] as f32, o[1] as f32];
            moved += 1;
        }
    }
    let filtered = median(&chosen, MEDIAN_RADIUS);
    ndarray::Zip::from(residual)
        .and(&filtered)
        .for_each(|r, f| *r = [r[0] + f[0], r[1] + f[1]]);
    moved as f64 / (w * h) as f64
}

/// Per pixel, the least cost found so far and the offset that gave it.
struct Best {
    cost: GrayF32,
    offset: Array2<[i8; 2]>,
}

impl Best {
    /// Takes `cost` and `offset_at(pixel)` wherever `cost` is strictly lower: on ties the
    /// earlier offset stays.
    fn keep_lower(&mut self, cost: &GrayF32, offset_at: impl Fn((usize, usize)) -> [i8; 2]) {
        let w = cost.ncols();
        let lanes = self.cost.iter_mut().zip(self.offset.iter_mut());
        for (i, ((b, o), &c)) in lanes.zip(cost).enumerate() {
            if c < *b {
                *b = c;
                *o = offset_at((i / w, i % w));
            }
        }
    }
}

/// Component-wise upper median over a `(2 radius + 1)^2` window clipped to the image.
fn median(flow: &Array2<[f32; 2]>, radius: usize) -> Array2<[f32; 2]> {
    let (h, w) = flow.dim();
    let mut out = flow.clone();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut row)| {
            let mut us = Vec::new();
            let mut vs = Vec::new();
            for (x, o) in row.iter_mut().enumerate() {
                us.clear();
                vs.clear();
                for yy in y.saturating_sub(radius)..(y + radius + 1).min(h) {
                    for xx in x.saturating_sub(radius)..(x + radius + 1).min(w) {
                        us.push(flow[[yy, xx]][0]);
                        vs.push(flow[[yy, xx]][1]);
                    }
                }
                *o = [
                    super::cpu::upper_median(&mut us),
                    super::cpu::upper_median(&mut vs),
                ];
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn among_equally_good_offsets_the_first_in_scan_order_wins_on_any_number_of_threads() {
        // A pattern repeating every 3 px, moved 1 px right: the offsets (1 + 3i, 3j) all fit
        // exactly; a sequential scan (rows of offsets top to bottom) keeps the first, (-2, -3).
        let pattern =
            |x: usize, y: usize| [0.0, 1.0, 0.3, 0.7, 0.1, 0.9, 0.5, 0.2, 0.6][x % 3 + 3 * (y % 3)];
        let (w, h) = (40, 33);
        let fixed = GrayF32::from_shape_fn((h, w), |(y, x)| pattern(x, y));
        let moving = GrayF32::from_shape_fn((h, w), |(y, x)| pattern(x + 2, y));
        let identity = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut residual = Array2::from_elem((h, w), [0.0f32; 2]);
            pool.install(|| search(&fixed, &moving, identity, 4, &mut residual));
            residual
        };
        let one = on(1);
        assert_eq!(one[[16, 20]], [-2.0, -3.0]);
        for threads in [2, 3, 9] {
            assert_eq!(on(threads), one, "{threads} threads");
        }
    }

    #[test]
    fn search_finds_a_block_that_moved_far_from_its_background() {
        // A textured image; the moving image shifts a central block by 5 px, the rest by 0.
        let texture =
            |x: f32, y: f32| (x * 0.9).sin() * (y * 0.7).cos() + (x * 0.23 + y * 0.31).sin();
        let (w, h) = (96, 80);
        let fixed = GrayF32::from_shape_fn((h, w), |(y, x)| texture(x as f32, y as f32));
        let in_block = |x: usize, y: usize| (30..66).contains(&x) && (25..55).contains(&y);
        let moving = GrayF32::from_shape_fn((h, w), |(y, x)| {
            // moving(x + u) = fixed(x): the block's content sits 5 px to the right.
            let src = if (35..71).contains(&x) && (25..55).contains(&y) {
                x as f32 - 5.0
            } else {
                x as f32
            };
            texture(src, y as f32)
        });
        let mut residual = Array2::from_elem((h, w), [0.0f32; 2]);
        let identity = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        search(&fixed, &moving, identity, 6, &mut residual);
        let inner = residual[[40, 48]];
        assert_eq!(inner, [5.0, 0.0], "block centre");
        assert_eq!(residual[[5, 5]], [0.0, 0.0], "background");
        assert!(in_block(48, 40));
    }
}
