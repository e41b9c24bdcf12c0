//! The demons mode's diffeomorphic registration, on the CPU (rayon); the GPU path in `gpu/` runs
//! the same kernels one for one.
//!
//! The method is log-domain diffeomorphic demons (Vercauteren et al., 2008) on top of an affine
//! pre-alignment:
//!
//! - The unknown is a stationary velocity field `v` on the fixed grid; the transform is
//!   `T(x) = A(x + u(x))` with `x + u(x) = exp(v)(x)`, computed by scaling and squaring
//!   ([`velocity::exp_steps`] halvings, then as many self-compositions). Its inverse is exact:
//!   `T⁻¹ = exp(−v) ∘ A⁻¹`.
//! - Images are locally normalised per level ([`crate::flow::normalize`]), so that gain,
//!   offset and slow shading changes between the images cancel.
//! - Each iteration warps the moving image through `T`, computes the symmetric (ESM) force
//!   `δ = 2 (F − M∘T) g / (‖g‖² + (F − M∘T)² / K)` with `g = ∇F + ∇(M∘T)` and `K` the maximum
//!   step squared (so `|δ| ≤` [`DemonsParams::max_step`]), smooths it (fluid), adds it to `v` —
//!   the first-order Baker–Campbell–Hausdorff composition `exp(v) ∘ exp(δ) ≈ exp(v + δ)` — and
//!   smooths `v` (elastic). A level stops when the RMS of `δ` falls below
//!   [`DemonsParams::stop_rms`] or after [`DemonsParams::iterations`].
//! - Levels run coarse to fine on the engine's pyramid; `v` is upsampled between them.
//! - Levels larger than a solver's limit are cut into overlapping tiles, one iteration at a
//!   time: a tile's margin is wider than what one iteration reads, so the tiles' interiors stitch
//!   into exactly the untiled iteration.

pub mod cpu;

use crate::transform::velocity;

use crate::flow::{affine_at_level, normalize, tile_grid, upsample_flow};
use crate::job::{CancelToken, Progress, Reporter, Stage};
use crate::optimize::{LevelReport, StopReason};
use crate::raster::{GrayF32, PreparedImage};
use crate::transform::Affine;
use crate::{Error, Result};
use ndarray::{Array2, ArrayView2, s};
use std::time::Instant;

/// Settings of the demons solver.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DemonsParams {
    /// Most iterations at the finest level (the setting `demons_iterations`); each coarser
    /// level may run twice as many as the next finer one, up to [`MAX_COARSE_DOUBLINGS`] doublings.
    /// Coarse iterations are cheap and carry the large motion.
    #[serde(rename = "demons_iterations")]
    pub iterations: u32,
    /// Largest update per iteration, in level pixels (the force's `√K`).
    pub max_step: f32,
    /// Standard deviation (level pixels) of the Gaussian smoothing of each update (fluid
    /// regularisation; 0: none).
    pub fluid_sigma: f32,
    /// Standard deviation (level pixels) of the Gaussian smoothing of the velocity field after
    /// each update (elastic regularisation; 0: none).
    pub elastic_sigma: f32,
    /// A level stops when the RMS of the smoothed update (level pixels) falls below this.
    pub stop_rms: f32,
}

impl Default for DemonsParams {
    fn default() -> Self {
        Self {
            iterations: 10,
            max_step: 0.5,
            fluid_sigma: 1.0,
            elastic_sigma: 1.5,
            stop_rms: 0.01,
        }
    }
}

/// The coarsest levels run at most `2^MAX_COARSE_DOUBLINGS` times the finest level's
/// iterations.
pub const MAX_COARSE_DOUBLINGS: usize = 3;

/// Widest Gaussian radius the kernels take (3σ rounded up): σ at most 2.6 px.
pub const MAX_SMOOTHING_RADIUS: usize = 8;

impl DemonsParams {
    /// Rejects settings the solver cannot run with.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("demons: {what}")));
        if self.iterations == 0 {
            return bad("iterations must be at least 1".into());
        }
        if !(self.max_step > 0.0 && self.max_step <= 4.0) {
            return bad(format!(
                "the maximum step {} must be in (0, 4] px",
                self.max_step
            ));
        }
        for (name, sigma) in [("fluid", self.fluid_sigma), ("elastic", self.elastic_sigma)] {
            if !(0.0..=2.6).contains(&sigma) {
                return bad(format!("the {name} sigma {sigma} must be in [0, 2.6] px"));
            }
        }
        if !(self.stop_rms >= 0.0 && self.stop_rms.is_finite()) {
            return bad("the stopping RMS must be a non-negative number".into());
        }
        Ok(())
    }

    /// Most iterations on a level `above` levels coarser than the finest.
    pub fn iterations_at(&self, above: usize) -> u32 {
        self.iterations
            .saturating_mul(1 << above.min(MAX_COARSE_DOUBLINGS))
    }

    /// The fluid smoothing's half kernel: weights for offsets `0..=r`.
    pub fn fluid_kernel(&self) -> Vec<f32> {
        half_kernel(self.fluid_sigma)
    }

    /// The elastic smoothing's half kernel.
    pub fn elastic_kernel(&self) -> Vec<f32> {
        half_kernel(self.elastic_sigma)
    }

    /// How far (pixels) one iteration reads around a pixel when the velocity is at most
    /// `max_norm` long and its exponential takes `steps` squarings: the squarings reach about
    /// the displacement plus a neighbour per step, the gradients one pixel, each smoothing its
    /// radius.
    pub fn reach(&self, max_norm: f32, steps: u32) -> usize {
        let radii = self.fluid_kernel().len() + self.elastic_kernel().len() - 2;
        (1.25 * max_norm).ceil() as usize + steps as usize + radii + 4
    }
}

/// The normalised half kernel of a Gaussian of `sigma` (`[1.0]` for 0): weights for offsets
/// `0..=r`, `r = ⌈3σ⌉`.
fn half_kernel(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let full = crate::raster::pyramid::gaussian_kernel(sigma);
    full[full.len() / 2..].to_vec()
}

/// One tile of one level, handed to a solver.
#[derive(Debug, Clone, Copy)]
pub struct DemonsTile<'a> {
    /// The normalised fixed image over the tile (margin included).
    pub fixed: ArrayView2<'a, f32>,
    /// The normalised moving image over the region the tile can reach.
    pub moving: ArrayView2<'a, f32>,
    /// The affine part in level coordinates, as [`crate::flow::TileProblem::affine`].
    pub affine: [f32; 6],
    /// Level coordinates of the tile's first pixel: positions are computed in level
    /// coordinates and only then moved into the tile or the crop, so tiles compute what the
    /// whole level does.
    pub origin: [u32; 2],
    /// Level coordinates of the moving crop's first pixel.
    pub moving_origin: [u32; 2],
    /// Size of the whole moving level: points outside it get no force.
    pub moving_size: [u32; 2],
    /// The interior whose updates count towards the RMS, `[x0, y0, x1, y1)` in tile pixels.
    pub own: [u32; 4],
    /// Solver settings.
    pub params: DemonsParams,
}

impl DemonsTile<'_> {
    /// Tile width.
    pub fn width(&self) -> usize {
        self.fixed.ncols()
    }
    /// Tile height.
    pub fn height(&self) -> usize {
        self.fixed.nrows()
    }
}

/// How many iterations a solver runs on a tile, and when it may stop early.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileRun {
    /// Most iterations.
    pub iterations: u32,
    /// Squarings of the first iteration's exponential; later iterations take
    /// [`velocity::exp_steps`] of the previous iteration's longest `v + δ` in the interior.
    pub first_steps: u32,
    /// Stop after the first iteration whose RMS update over the interior is below this.
    pub stop_rms: Option<f32>,
}

/// What a solver's iterations on a tile did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TileOutcome {
    /// Iterations run.
    pub iterations: u32,
    /// The last iteration's sum of squared updates over the interior (level pixels²).
    pub update_sum_sq: f64,
    /// Pixels in the interior.
    pub own_pixels: usize,
    /// The last iteration's longest `v + δ` over the interior (before the elastic smoothing).
    pub max_norm: f32,
}

impl TileOutcome {
    /// The RMS of the last iteration's update over the interior.
    pub fn rms(&self) -> f64 {
        (self.update_sum_sq / self.own_pixels.max(1) as f64).sqrt()
    }
}

/// A backend that runs demons iterations on a tile's velocity field.
pub trait DemonsSolver: Sync {
    /// What runs the solver (`cpu`, or the adapter's name).
    fn name(&self) -> String;
    /// Largest tile (pixels, margin included) the solver accepts.
    fn max_tile_pixels(&self) -> usize;
    /// Runs up to `run.iterations` iterations on `velocity` (per tile pixel, row-major), in
    /// place.
    fn iterate(
        &self,
        tile: &DemonsTile<'_>,
        velocity: &mut [[f32; 2]],
        run: TileRun,
        cancel: &CancelToken,
    ) -> Result<TileOutcome>;
}

/// The levels a demons registration refines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemonsLevels {
    /// Coarsest level refined.
    pub start: usize,
    /// Finest level refined (the velocity field's level).
    pub finest: usize,
}

/// Longest side of the level the demons start at (after the affine pre-alignment).
pub const START_MAX_SIDE: usize = 64;

impl DemonsLevels {
    /// Levels for a `width x height` fixed image with `coarsest` the last level built, down to
    /// `finest`.
    pub fn for_size(width: usize, height: usize, coarsest: usize, finest: usize) -> Self {
        let side = width.max(height);
        let finest = finest.min(coarsest);
        let start = (0..=coarsest)
            .find(|&l| side >> l <= START_MAX_SIDE)
            .unwrap_or(coarsest)
            .max(finest);
        Self { start, finest }
    }
}

/// What a demons run found.
#[derive(Debug, Clone)]
pub struct DemonsOutcome {
    /// The velocity field on the finest level's grid, in level pixels.
    pub velocity: Array2<[f32; 2]>,
    /// Its pyramid level.
    pub level: usize,
    /// Per level, coarsest first: the mean absolute difference of the normalised images at the
    /// start and the end, and the iterations.
    pub levels: Vec<LevelReport>,
    /// Tiles per level, coarsest first.
    pub tiles: Vec<usize>,
}

/// Runs the demons from `levels.start` down to `levels.finest` on top of `affine`
/// (full-resolution fixed → moving pixels), reporting progress per iteration.
pub fn estimate_demons<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    affine: &Affine,
    levels: DemonsLevels,
    params: &DemonsParams,
    solver: &dyn DemonsSolver,
    reporter: &Reporter<T>,
) -> Result<DemonsOutcome> {
    params.validate()?;
    let cancel = reporter.cancel_token();
    let total_work: f64 = (levels.finest..=levels.start)
        .map(|l| 4f64.powi(-(l as i32)))
        .sum();
    let mut work_done = 0.0;
    let mut velocity: Option<Array2<[f32; 2]>> = None;
    let mut reports = Vec::new();
    let mut tiles_per_level = Vec::new();
    for level in (levels.finest..=levels.start).rev() {
        let started = Instant::now();
        let (f, m) = rayon::join(
            || normalize::normalize_level(fixed, level),
            || normalize::normalize_level(moving, level),
        );
        let (h, w) = f.dim();
        let mut v = match velocity.take() {
            None => Array2::from_elem((h, w), [0.0f32; 2]),
            Some(coarse) => upsample_flow(&coarse, w, h),
        };
        let a = affine_at_level(affine, level);
        let params = &DemonsParams {
            iterations: params.iterations_at(level - levels.finest),
            ..*params
        };
        let metric_start = mean_difference(&f, &m, a, &v);
        let weight = 4f64.powi(-(level as i32));
        let progress = |iteration: u32, fraction_of_level: f64, metric: Option<f64>| {
            reporter.progress(Progress {
                stage: Stage::Register,
                level: Some(level),
                iteration: Some(iteration as usize),
                metric,
                fraction: ((work_done + weight * fraction_of_level) / total_work).min(1.0) as f32,
            });
        };
        let (iterations, tiles, rms) =
            run_level(&f, &m, a, &mut v, params, solver, cancel, &|iteration| {
                progress(
                    iteration,
                    f64::from(iteration) / f64::from(params.iterations),
                    None,
                )
            })?;
        let metric_end = mean_difference(&f, &m, a, &v);
        progress(iterations, 1.0, Some(metric_end));
        work_done += weight;
        reports.push(LevelReport {
            level,
            stage: "demons".into(),
            width: w,
            height: h,
            samples: w * h,
            iterations: iterations as usize,
            metric_start,
            metric_end,
            stop: if rms < f64::from(params.stop_rms) {
                StopReason::Converged
            } else {
                StopReason::MaxIterations
            },
            seconds: started.elapsed().as_secs_f64(),
        });
        tiles_per_level.push(tiles);
        velocity = Some(v);
    }
    Ok(DemonsOutcome {
        velocity: velocity.expect("at least one level"),
        level: levels.finest,
        levels: reports,
        tiles: tiles_per_level,
    })
}

/// One level's iterations: the whole level in one call when it fits the solver, else one
/// iteration at a time over tiles. Returns the iterations, the tiles and the last RMS update.
#[allow(clippy::too_many_arguments)]
fn run_level(
    fixed: &GrayF32,
    moving: &GrayF32,
    affine: [f32; 6],
    velocity: &mut Array2<[f32; 2]>,
    params: &DemonsParams,
    solver: &dyn DemonsSolver,
    cancel: &CancelToken,
    on_iteration: &dyn Fn(u32),
) -> Result<(u32, usize, f64)> {
    let (h, w) = fixed.dim();
    let mut max_norm = velocity::max_norm(velocity.as_slice().expect("standard layout"));
    let whole = [0, 0, w, h];
    if w * h <= solver.max_tile_pixels() {
        let run = TileRun {
            iterations: params.iterations,
            first_steps: velocity::exp_steps(max_norm),
            stop_rms: Some(params.stop_rms),
        };
        let (region, outcome) = solve_tile(
            fixed, moving, affine, velocity, whole, whole, params, solver, run, max_norm, cancel,
        )?;
        *velocity = Array2::from_shape_vec((h, w), region).expect("the tile is the level");
        on_iteration(outcome.iterations);
        return Ok((outcome.iterations, 1, outcome.rms()));
    }
    let mut tiles = 0;
    let mut rms = f64::INFINITY;
    for iteration in 1..=params.iterations {
        cancel.check()?;
        let steps = velocity::exp_steps(max_norm);
        let grid = tile_grid(
            w,
            h,
            params.reach(max_norm, steps),
            solver.max_tile_pixels(),
        )?;
        tiles = grid.len();
        let run = TileRun {
            iterations: 1,
            first_steps: steps,
            stop_rms: None,
        };
        let mut next = velocity.clone();
        let (mut sum_sq, mut own_pixels, mut longest) = (0.0, 0, 0.0f32);
        for tile in &grid {
            let (region, outcome) = solve_tile(
                fixed, moving, affine, velocity, tile.solve, tile.own, params, solver, run,
                max_norm, cancel,
            )?;
            tile.copy_owned(&region, &mut next);
            sum_sq += outcome.update_sum_sq;
            own_pixels += outcome.own_pixels;
            longest = longest.max(outcome.max_norm);
        }
        *velocity = next;
        max_norm = longest;
        rms = (sum_sq / own_pixels.max(1) as f64).sqrt();
        on_iteration(iteration);
        if rms < f64::from(params.stop_rms) {
            return Ok((iteration, tiles, rms));
        }
    }
    Ok((params.iterations, tiles, rms))
}

/// Runs `run` on the `solve` region of `velocity` (level-sized) and returns the region's new
/// velocity (row-major), counting the RMS over `own` (level pixels).
#[allow(clippy::too_many_arguments)]
fn solve_tile(
    fixed: &GrayF32,
    moving: &GrayF32,
    affine: [f32; 6],
    velocity: &Array2<[f32; 2]>,
    solve: [usize; 4],
    own: [usize; 4],
    params: &DemonsParams,
    solver: &dyn DemonsSolver,
    run: TileRun,
    max_norm: f32,
    cancel: &CancelToken,
) -> Result<(Vec<[f32; 2]>, TileOutcome)> {
    let [x0, y0, x1, y1] = solve;
    let (mh, mw) = moving.dim();
    // The moving region the tile can reach: the affine image of the tile's corners, widened by
    // the displacement (which may grow during the run) and the interpolation's neighbours.
    let slack = 1.5 * max_norm + params.max_step * run.iterations as f32 + 4.0;
    let [m00, m01, m10, m11, ox, oy] = affine;
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for (x, y) in [(x0, y0), (x1, y0), (x0, y1), (x1, y1)] {
        let (x, y) = (x as f32, y as f32);
        let p = [m00 * x + m01 * y + ox, m10 * x + m11 * y + oy];
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let reach = slack * (m00.abs() + m01.abs()).max(m10.abs() + m11.abs()).max(1.0);
    let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n);
    let (mx0, my0) = (
        clamp((lo[0] - reach).floor(), mw.saturating_sub(1)),
        clamp((lo[1] - reach).floor(), mh.saturating_sub(1)),
    );
    let (mx1, my1) = (
        clamp((hi[0] + reach).ceil() + 2.0, mw).max(mx0 + 1),
        clamp((hi[1] + reach).ceil() + 2.0, mh).max(my0 + 1),
    );
    let tile = DemonsTile {
        fixed: fixed.slice(s![y0..y1, x0..x1]),
        moving: moving.slice(s![my0..my1, mx0..mx1]),
        affine,
        origin: [x0 as u32, y0 as u32],
        moving_origin: [mx0 as u32, my0 as u32],
        moving_size: [mw as u32, mh as u32],
        own: [
            (own[0] - x0) as u32,
            (own[1] - y0) as u32,
            (own[2] - x0) as u32,
            (own[3] - y0) as u32,
        ],
        params: *params,
    };
    let mut region: Vec<[f32; 2]> = velocity.slice(s![y0..y1, x0..x1]).iter().copied().collect();
    let outcome = solver.iterate(&tile, &mut region, run, cancel)?;
    Ok((region, outcome))
}

/// Mean absolute difference of the normalised images under `A(x + u(x))`, `u = exp(v)`, over
/// the pixels that map inside the moving level: the level report's metric.
pub fn mean_difference(
    fixed: &GrayF32,
    moving: &GrayF32,
    affine: [f32; 6],
    velocity: &Array2<[f32; 2]>,
) -> f64 {
    let displacement = velocity::exp(velocity);
    let (h, w) = fixed.dim();
    let sampler = crate::raster::BilinearSampler::new(moving.view());
    let [m00, m01, m10, m11, ox, oy] = affine;
    let (mut sum, mut count) = (0.0f64, 0usize);
    for j in 0..h {
        for i in 0..w {
            let u = displacement[[j, i]];
            let (x, y) = (i as f32 + u[0], j as f32 + u[1]);
            let (px, py) = (m00 * x + m01 * y + ox, m10 * x + m11 * y + oy);
            if let Some(value) = sampler.value(px as f64, py as f64) {
                sum += f64::from((value - fixed[[j, i]]).abs());
                count += 1;
            }
        }
    }
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

#[cfg(test)]
mod tests;
