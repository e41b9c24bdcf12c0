//! Cutting a flow level into overlapping tiles that each fit a solver, and solving one: the
//! tile's moving crop, its refinement, and the interior it owns copied back.

use super::{FlowParams, FlowSolver, TileProblem};
use crate::job::CancelToken;
use crate::raster::GrayF32;
use crate::{Error, Result};
use ndarray::{Array2, s};
use rayon::prelude::*;

/// A tile: the region it solves (margin included) and the interior it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Solved region `[x0, y0, x1, y1)` (level pixels).
    pub solve: [usize; 4],
    /// Owned interior `[x0, y0, x1, y1)`, a partition of the level over all tiles.
    pub own: [usize; 4],
}

impl Tile {
    /// Copies the interior this tile owns from `solved` (its whole solved region, row-major)
    /// into `level`.
    pub fn copy_owned(&self, solved: &[[f32; 2]], level: &mut Array2<[f32; 2]>) {
        let [sx0, sy0, sx1, _] = self.solve;
        let [x0, y0, x1, y1] = self.own;
        let tw = sx1 - sx0;
        for y in y0..y1 {
            let src = &solved[(y - sy0) * tw + (x0 - sx0)..][..x1 - x0];
            level
                .slice_mut(s![y, x0..x1])
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = *s);
        }
    }
}

/// Cuts a `width x height` level into tiles of at most `max_pixels` (margin included), each
/// owning an interior and solving it with `margin` extra pixels on every side.
pub fn tile_grid(
    width: usize,
    height: usize,
    margin: usize,
    max_pixels: usize,
) -> Result<Vec<Tile>> {
    if width * height <= max_pixels {
        return Ok(vec![Tile {
            solve: [0, 0, width, height],
            own: [0, 0, width, height],
        }]);
    }
    // Square tiles: (interior + 2 margin)^2 <= max_pixels.
    let side = (max_pixels as f64).sqrt().floor() as usize;
    if side <= 2 * margin + 8 {
        return Err(Error::InvalidArgument(format!(
            "flow tiles of at most {max_pixels} pixels cannot hold the {margin}-pixel margin the solver needs"
        )));
    }
    let interior = side - 2 * margin;
    let mut tiles = Vec::new();
    for y0 in (0..height).step_by(interior) {
        for x0 in (0..width).step_by(interior) {
            let own = [
                x0,
                y0,
                (x0 + interior).min(width),
                (y0 + interior).min(height),
            ];
            let solve = [
                own[0].saturating_sub(margin),
                own[1].saturating_sub(margin),
                (own[2] + margin).min(width),
                (own[3] + margin).min(height),
            ];
            tiles.push(Tile { solve, own });
        }
    }
    Ok(tiles)
}

/// Pixels of slack around the moving region a tile reaches, for the residual's change during a
/// level and the interpolation's neighbours.
const MOVING_SLACK: f32 = 24.0;

/// Refines one tile of a level with `solver`: the residual over its whole solved region
/// (row-major), of which the caller keeps the interior the tile owns.
#[allow(clippy::too_many_arguments)]
pub(super) fn solve_tile(
    fixed: &GrayF32,
    moving: &GrayF32,
    level_affine: [f32; 6],
    residual: &Array2<[f32; 2]>,
    tile: &Tile,
    params: &FlowParams,
    solver: &dyn FlowSolver,
    cancel: &CancelToken,
) -> Result<Vec<[f32; 2]>> {
    let [x0, y0, x1, y1] = tile.solve;
    let region = residual.slice(s![y0..y1, x0..x1]);
    let mut flow: Vec<[f32; 2]> = region.iter().copied().collect();
    // The moving crop: every point the tile maps to, plus slack.
    let [m00, m01, m10, m11, ox, oy] = level_affine;
    let (lo, hi) = region
        .axis_iter(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(j, row)| {
            let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
            let y = (y0 + j) as f32;
            for (i, r) in row.iter().enumerate() {
                let x = (x0 + i) as f32;
                let p = [m00 * x + m01 * y + ox + r[0], m10 * x + m11 * y + oy + r[1]];
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            (lo, hi)
        })
        .reduce(
            || ([f32::MAX; 2], [f32::MIN; 2]),
            |(a_lo, a_hi), (b_lo, b_hi)| {
                (
                    [0, 1].map(|k| a_lo[k].min(b_lo[k])),
                    [0, 1].map(|k| a_hi[k].max(b_hi[k])),
                )
            },
        );
    let (mh, mw) = moving.dim();
    let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n);
    let (mx0, my0) = (
        clamp((lo[0] - MOVING_SLACK).floor(), mw),
        clamp((lo[1] - MOVING_SLACK).floor(), mh),
    );
    let (mx1, my1) = (
        clamp((hi[0] + MOVING_SLACK).ceil() + 1.0, mw).max(mx0),
        clamp((hi[1] + MOVING_SLACK).ceil() + 1.0, mh).max(my0),
    );
    let problem = TileProblem {
        fixed: fixed.slice(s![y0..y1, x0..x1]),
        moving: moving.slice(s![my0..my1, mx0..mx1]),
        affine: level_affine,
        origin: [x0 as u32, y0 as u32],
        moving_origin: [mx0 as u32, my0 as u32],
        moving_size: [mw as u32, mh as u32],
        params: *params,
    };
    solver.refine(&problem, &mut flow, cancel)?;
    Ok(flow)
}
