//! One level of a flow run: the flow brought from the coarser level, searched, solved tile by
//! tile, and its pixels without data set, from the reverse flow where a small level runs one and
//! by extension from the interior elsewhere.

use super::{
    COARSE_SMOOTHNESS_SHARE, FlowLevels, FlowParams, FlowSolver, LIGHT_SWEEPS, LIGHT_WARPS, border,
    data_residual, is_coarse_level, runs_reverse, search, tile_grid, tiles, upsample_flow,
};
use crate::Result;
use crate::job::{CancelToken, Progress, Reporter, Stage};
use crate::optimize::{LevelReport, StopReason};
use crate::raster::{GrayF32, PreparedImage};
use crate::transform::Affine;
use ndarray::Array2;
use std::time::Instant;

/// The flow between levels: the residual so far and what each level did.
#[derive(Default)]
pub(super) struct FlowState {
    residual: Option<Array2<[f32; 2]>>,
    /// The flow the other way (moving -> fixed level pixels, on top of the inverse affine), on
    /// the levels that run it ([`super::runs_reverse`]).
    reverse: Option<Array2<[f32; 2]>>,
    pub(super) reports: Vec<LevelReport>,
    pub(super) tiles: Vec<usize>,
    pub(super) last_affine: [f32; 6],
}

impl FlowState {
    /// The data residual after the last level refined.
    pub(super) fn last_metric(&self) -> f64 {
        self.reports.last().map_or(f64::INFINITY, |r| r.metric_end)
    }

    /// The residual of the last level refined.
    pub(super) fn take_residual(&mut self) -> Option<Array2<[f32; 2]>> {
        self.residual.take()
    }
}

/// What every level of one flow run shares.
#[derive(Clone, Copy)]
pub(super) struct LevelRun<'a, T> {
    pub(super) fixed: &'a PreparedImage,
    pub(super) moving: &'a PreparedImage,
    pub(super) affine: &'a Affine,
    /// The inverse of `affine`, on top of which the reverse flow runs (`None` when singular).
    pub(super) reverse_affine: Option<Affine>,
    pub(super) levels: FlowLevels,
    pub(super) solver: &'a dyn FlowSolver,
    pub(super) reporter: &'a Reporter<T>,
    pub(super) total_work: f64,
    pub(super) work_done: f64,
}

impl<T> LevelRun<'_, T> {
    /// Refines `state` on `level`: upsampled from the previous level, searched, solved tile by
    /// tile, then the border step.
    pub(super) fn level(
        &mut self,
        level: usize,
        params: &FlowParams,
        state: &mut FlowState,
    ) -> Result<()> {
        let (reporter, solver) = (self.reporter, self.solver);
        let cancel = reporter.cancel_token();
        let started = Instant::now();
        let (f, m) = rayon::join(
            || super::normalize::normalize_level(self.fixed, level),
            || super::normalize::normalize_level(self.moving, level),
        );
        let ((h, w), (mh, mw)) = (f.dim(), m.dim());
        let level_affine = super::affine_at_level(self.affine, level);
        let first_level = state.residual.is_none();
        let mut r = start_flow(state.residual.take(), w, h);
        if let Some(moved) = search_level(&f, &m, level_affine, params, &mut r) {
            reporter.log(format!(
                "level {level}: search moved {:.1} % of pixels",
                100.0 * moved
            ));
        }
        state.last_affine = level_affine;
        let metric_start = data_residual(&f, &m, level_affine, &r);
        let params = &self.level_params(level, w.max(h), params);
        let weight = 4f64.powi(-(level as i32));
        let (work_done, total_work) = (self.work_done, self.total_work);
        let solve_progress = |solved: usize, tiles: usize| {
            let done = work_done + weight * solved as f64 / tiles as f64;
            reporter.progress(Progress {
                stage: Stage::Register,
                level: Some(level),
                iteration: Some(solved),
                metric: None,
                fraction: (done / total_work).min(1.0) as f32,
            });
        };
        let (mut next, tiles) = solve_level(
            &f,
            &m,
            level_affine,
            &r,
            params,
            solver,
            cancel,
            solve_progress,
        )?;
        self.work_done += weight;
        // The reverse flow starts on the run's first level and goes on while levels qualify.
        let reverse_affine = self.reverse_affine.filter(|_| {
            (first_level || state.reverse.is_some())
                && runs_reverse(w.max(h).max(mw).max(mh), self.image_side())
        });
        state.reverse = match reverse_affine {
            None => None,
            Some(inverse) => {
                let back_affine = super::affine_at_level(&inverse, level);
                let mut back = start_flow(state.reverse.take(), mw, mh);
                search_level(&m, &f, back_affine, params, &mut back);
                let no_progress = |_: usize, _: usize| {};
                let (mut back, _) = solve_level(
                    &m,
                    &f,
                    back_affine,
                    &back,
                    params,
                    solver,
                    cancel,
                    no_progress,
                )?;
                let forward = next.clone();
                let filled =
                    border::fill_from_reverse(&mut next, level_affine, &back, back_affine, &f, &m);
                border::fill_from_reverse(&mut back, back_affine, &forward, level_affine, &m, &f);
                border::extend_into_border(&mut back, back_affine, [w, h]);
                if filled > 0 {
                    reporter.log(format!(
                        "level {level}: {filled} pixels without data took the reverse flow"
                    ));
                }
                Some(back)
            }
        };
        border::extend_into_border(&mut next, level_affine, [mw, mh]);
        let metric_end = data_residual(&f, &m, level_affine, &next);
        reporter.progress(Progress {
            stage: Stage::Register,
            level: Some(level),
            iteration: None,
            metric: Some(metric_end),
            fraction: (self.work_done / self.total_work).min(1.0) as f32,
        });
        state.reports.push(LevelReport {
            level,
            stage: "flow".into(),
            width: w,
            height: h,
            samples: w * h,
            iterations: (params.warps * params.sweeps) as usize,
            metric_start,
            metric_end,
            stop: StopReason::Completed,
            seconds: started.elapsed().as_secs_f64(),
        });
        state.tiles.push(tiles);
        state.residual = Some(next);
        Ok(())
    }

    /// The fixed image's longer side, which decides the coarse levels.
    fn image_side(&self) -> usize {
        self.fixed.width().max(self.fixed.height())
    }

    /// The level's settings: the light pass's level refines once; small levels are cheap and
    /// carry the large motion: they linearise twice as often; coarse levels are smoothed less
    /// ([`super::COARSE_SMOOTHNESS_SHARE`]).
    fn level_params(&self, level: usize, side: usize, params: &FlowParams) -> FlowParams {
        let finest = self.levels.finest;
        let (warps, sweeps) = if level == finest && self.levels.light_finest {
            (LIGHT_WARPS, LIGHT_SWEEPS)
        } else if level > finest && side <= search::MAX_SIDE / 2 {
            (2 * params.warps, params.sweeps)
        } else {
            (params.warps, params.sweeps)
        };
        let smoothness = if is_coarse_level(side, self.image_side()) {
            COARSE_SMOOTHNESS_SHARE * params.smoothness
        } else {
            params.smoothness
        };
        FlowParams {
            warps,
            sweeps,
            smoothness,
            ..*params
        }
    }
}

/// The coarser level's residual brought to a `width x height` level, or zero on the first.
fn start_flow(coarse: Option<Array2<[f32; 2]>>, width: usize, height: usize) -> Array2<[f32; 2]> {
    match coarse {
        None => Array2::from_elem((height, width), [0.0f32; 2]),
        Some(coarse) => upsample_flow(&coarse, width, height),
    }
}

/// The discrete search, where `params` asks for one and the level is small enough: the fraction
/// of pixels it moved.
fn search_level(
    fixed: &GrayF32,
    moving: &GrayF32,
    level_affine: [f32; 6],
    params: &FlowParams,
    residual: &mut Array2<[f32; 2]>,
) -> Option<f64> {
    let (h, w) = fixed.dim();
    (params.search > 0 && w.max(h) <= search::MAX_SIDE)
        .then(|| search::search(fixed, moving, level_affine, params.search, residual))
}

/// Refines `residual` on a whole level, tile by tile, calling `on_tile(solved, tiles)` after
/// each: the refined residual and the number of tiles.
#[allow(clippy::too_many_arguments)]
fn solve_level(
    fixed: &GrayF32,
    moving: &GrayF32,
    level_affine: [f32; 6],
    residual: &Array2<[f32; 2]>,
    params: &FlowParams,
    solver: &dyn FlowSolver,
    cancel: &CancelToken,
    on_tile: impl Fn(usize, usize),
) -> Result<(Array2<[f32; 2]>, usize)> {
    let (h, w) = fixed.dim();
    let grid = tile_grid(w, h, params.reach(), solver.max_tile_pixels())?;
    let mut next = None;
    for (index, tile) in grid.iter().enumerate() {
        cancel.check()?;
        let solved = tiles::solve_tile(
            fixed,
            moving,
            level_affine,
            residual,
            tile,
            params,
            solver,
            cancel,
        )?;
        if grid.len() == 1 {
            // The one tile is the whole level: its residual is the level's, without a copy.
            next = Some(Array2::from_shape_vec((h, w), solved).expect("the tile is the level"));
        } else {
            tile.copy_owned(&solved, next.get_or_insert_with(|| residual.clone()));
        }
        on_tile(index + 1, grid.len());
    }
    Ok((next.expect("a level has a tile"), grid.len()))
}
