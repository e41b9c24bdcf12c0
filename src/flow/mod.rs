//! The fast mode's dense optical flow, on the CPU (rayon); the GPU path in `gpu/` runs the same
//! algorithm kernel for kernel.
//!
//! The method is coarse-to-fine variational refinement on top of an affine pre-alignment:
//!
//! - Images are locally normalised per level ([`normalize`]): zero local mean, unit local
//!   contrast, so that a design and a photograph of its print, or two stains, compare.
//! - The unknown is a residual flow `r` added to the affine displacement `b`: the moving image is
//!   sampled at `p(x) = A(x) + r(x)`, and smoothness acts on `r` only, so the affine part costs
//!   nothing.
//! - Each level runs `warps` linearisations of the robust (Charbonnier) brightness constancy
//!   `|I_m(p(x)) - I_f(x)|` with lagged weights, and after each, `sweeps` red-black
//!   successive over-relaxation sweeps of the Euler-Lagrange equations with an edge-preserving
//!   (Charbonnier) smoothness term. Red-black ordering makes every sweep a data-parallel pass,
//!   identical on the CPU and the GPU.
//! - Levels larger than a solver's limit are cut into overlapping tiles. A tile carries a margin
//!   wider than the distance information travels during one level, so its interior is exactly
//!   what the whole level would have computed: tiles stitch without seams by construction.

mod border;
pub mod cpu;
mod level;
pub mod normalize;
mod red_black;
pub mod search;
mod tiles;

pub use tiles::{Tile, tile_grid};

use crate::job::{CancelToken, Reporter};
use crate::optimize::LevelReport;
use crate::raster::GrayF32;
use crate::raster::PreparedImage;
use crate::transform::{Affine, DenseField};
use crate::{Error, Result};
use level::{FlowState, LevelRun};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Settings of the flow solver.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowParams {
    /// Linearisations (warps) per level; coarse levels (at most 400 px) run twice as many.
    pub warps: u32,
    /// Red-black SOR sweeps per linearisation.
    pub sweeps: u32,
    /// Weight of the smoothness term against the data term (normalised images).
    pub smoothness: f32,
    /// Charbonnier epsilon of the data term (normalised intensity units).
    pub data_epsilon: f32,
    /// Charbonnier epsilon of the smoothness term (flow gradient, pixels per pixel): flow
    /// gradients well above it are treated as edges and smoothed less.
    pub smooth_epsilon: f32,
    /// Over-relaxation factor of the sweeps, in `(0, 2)`.
    pub relaxation: f32,
    /// Radius of the median filter applied to the flow after each linearisation's sweeps
    /// (0: none, at most 3).
    pub median_radius: u32,
    /// Radius (level pixels) of the discrete search run on levels up to
    /// [`search::MAX_SIDE`] pixels before their refinement (0: none). For scenes where objects
    /// move independently (stereo, photo series); smooth deformations do better without it.
    /// Used as given when [`FlowParams::auto_search`] is off.
    #[serde(default)]
    pub search: u32,
    /// Choose per pair between the smooth-deformation settings (no search) and the scene
    /// settings (a search of [`AUTO_SEARCH_RADIUS`], smoothness at most
    /// [`SCENE_SMOOTHNESS`]): both run down to the first level of at most
    /// [`CHOICE_MAX_SIDE`] pixels and the one with the lower data residual there goes on.
    #[serde(default = "default_true")]
    pub auto_search: bool,
}

fn default_true() -> bool {
    true
}

/// Search radius of the scene candidate of the automatic choice.
pub const AUTO_SEARCH_RADIUS: u32 = 6;
/// Largest smoothness of the scene candidate: a scene's flow breaks at depth edges.
pub const SCENE_SMOOTHNESS: f32 = 5.0;
/// The automatic choice is made at the first level whose longer side is at most this: coarse
/// enough to cost little, fine enough that an object moving on its own has been found.
pub const CHOICE_MAX_SIDE: usize = 200;
/// The scene candidate wins only when its data residual is below this fraction of the other's:
/// on smooth deformations the search's whole-pixel moves cost accuracy, so a tie keeps them off.
pub const CHOICE_MARGIN: f64 = 0.97;

impl Default for FlowParams {
    fn default() -> Self {
        Self {
            warps: 3,
            sweeps: 12,
            smoothness: 8.0,
            data_epsilon: 0.05,
            smooth_epsilon: 0.2,
            relaxation: 1.8,
            median_radius: 1,
            search: 0,
            auto_search: true,
        }
    }
}

impl FlowParams {
    /// Rejects settings the solver cannot run with.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidArgument(format!("flow: {what}")));
        if self.warps == 0 || self.sweeps == 0 {
            return bad("warps and sweeps must be at least 1");
        }
        if !(self.smoothness > 0.0 && self.smoothness.is_finite()) {
            return bad("smoothness must be positive");
        }
        if !(self.data_epsilon > 0.0 && self.smooth_epsilon > 0.0) {
            return bad("epsilons must be positive");
        }
        if !(self.relaxation > 0.0 && self.relaxation < 2.0) {
            return bad("relaxation must be in (0, 2)");
        }
        if self.median_radius > 3 {
            return bad("the median radius is at most 3");
        }
        if self.search > search::MAX_RADIUS {
            return bad(&format!(
                "the search radius is at most {}",
                search::MAX_RADIUS
            ));
        }
        Ok(())
    }

    /// How far (pixels) information can travel during one level: the margin a tile needs for
    /// its interior to equal the untiled result. Each warp's smoothness weights read one
    /// neighbour, the edge weights one more, every sweep pair moves information two pixels, and
    /// the median filter its radius.
    pub fn reach(&self) -> usize {
        self.warps as usize * (2 * self.sweeps as usize + 2 + self.median_radius as usize) + 2
    }
}

/// One tile of one level, handed to a solver.
#[derive(Debug, Clone, Copy)]
pub struct TileProblem<'a> {
    /// The normalised fixed image over the tile (margin included).
    pub fixed: ArrayView2<'a, f32>,
    /// The normalised moving image over the region the tile can reach.
    pub moving: ArrayView2<'a, f32>,
    /// The affine part `A` in level coordinates: `[m00, m01, m10, m11, ox, oy]` with
    /// `A(x, y) = (m00 x + m01 y + ox, m10 x + m11 y + oy)`.
    pub affine: [f32; 6],
    /// Level coordinates of the tile's first pixel. Positions are computed in level coordinates
    /// and only then shifted into the crop (an exact subtraction), so a tile's arithmetic is the
    /// whole level's, bit for bit; red-black colours are global for the same reason.
    pub origin: [u32; 2],
    /// Level coordinates of the moving crop's first pixel.
    pub moving_origin: [u32; 2],
    /// Size of the whole moving level: points outside it have no data term.
    pub moving_size: [u32; 2],
    /// Solver settings.
    pub params: FlowParams,
}

impl TileProblem<'_> {
    /// Tile width.
    pub fn width(&self) -> usize {
        self.fixed.ncols()
    }
    /// Tile height.
    pub fn height(&self) -> usize {
        self.fixed.nrows()
    }
}

/// A backend that refines a tile's residual flow: one level's warps and sweeps.
pub trait FlowSolver: Sync {
    /// What runs the solver (`cpu`, or the adapter's name).
    fn name(&self) -> String;
    /// Largest tile (pixels, margin included) the solver accepts.
    fn max_tile_pixels(&self) -> usize;
    /// Refines `flow` (the residual `r` per tile pixel, row-major) in place.
    fn refine(
        &self,
        problem: &TileProblem<'_>,
        flow: &mut [[f32; 2]],
        cancel: &CancelToken,
    ) -> Result<()>;
}

/// The flow a run found: the total displacement at `level`, to be scaled by `2^level` to full
/// resolution.
#[derive(Debug, Clone)]
pub struct FlowOutcome {
    /// Total displacement (affine plus residual) on the level's grid, in level pixels.
    pub field: DenseField,
    /// Pyramid level of `field`.
    pub level: usize,
    /// What happened at each level, coarsest first.
    pub levels: Vec<LevelReport>,
    /// Tiles solved per level, coarsest first.
    pub tiles: Vec<usize>,
    /// The automatic search choice, when it was made.
    pub search_choice: Option<SearchChoice>,
}

/// The level range of a fast registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLevels {
    /// Coarsest level refined.
    pub start: usize,
    /// Finest level refined (the field's level).
    pub finest: usize,
    /// Whether the finest level gets only a light pass ([`LIGHT_WARPS`] × [`LIGHT_SWEEPS`])
    /// on top of the full schedule one level coarser.
    pub light_finest: bool,
}

/// Longest side of the level the flow starts at (after the affine pre-alignment).
pub const START_MAX_SIDE: usize = 24;
/// Longest side of the finest level given the full schedule by default: finer levels cost time
/// for detail that the bilinear upsampling of a smooth field rarely misses.
pub const FINEST_MAX_SIDE: usize = 1280;

/// Levels at least this many times narrower than the fixed image are coarse: a deformation of a
/// given share of the width is a few of their pixels, and a region it moves far locks there
/// ([`is_coarse_level`]).
pub const COARSE_LEVEL_RATIO: usize = 16;

/// The smoothness on coarse levels, as a share of [`FlowParams::smoothness`].
///
/// A coarse level has few pixels per region, each averaging many image pixels: with the full
/// smoothness a corner whose deformation differs from the interior's is held near the
/// interior's, and the finer levels lock it a period of the pattern off. Brick at 5 % at 4096
/// was 0.69 level px off in its top-left 512 px on the 32 px level, 50–58 px off in the end
/// (1.453 px mean against DIS MEDIUM's 0.612); with half the smoothness on levels up to 256 px it
/// is 0.209. Measured on the generalisation matrix (`docs/benchmarks.md`).
pub const COARSE_SMOOTHNESS_SHARE: f32 = 0.5;

/// Whether a level `level_side` px wide of a fixed image `image_side` px wide is coarse
/// ([`COARSE_LEVEL_RATIO`]).
pub fn is_coarse_level(level_side: usize, image_side: usize) -> bool {
    level_side * COARSE_LEVEL_RATIO <= image_side
}

/// Coarse levels ([`is_coarse_level`]) at most this wide, fixed and moving, also run the flow
/// the other way, moving to fixed; each direction's pixels without data then take the other's
/// inverted flow where it has some (`border::fill_from_reverse`) before the rest are extended
/// from the interior.
///
/// Content that moves partly out of the frame leaves a wedge of fixed pixels whose estimate maps
/// outside the moving image although their true match is inside: with no data term they stay
/// there, level after level. The reverse flow has data on those moving pixels and finds where
/// they come from. On the 4096 row of the generalisation matrix that took grass and gravel at
/// 5 % from 0.134 and 0.122 to 0.106 and 0.090 px (DIS MEDIUM 0.118 and 0.111), for about 0.1 s
/// of a 2.2 s command; the levels are chosen and measured in `docs/benchmarks.md`.
pub const REVERSE_MAX_SIDE: usize = 512;

/// Whether a level `level_side` px wide of a fixed image `image_side` px wide runs the reverse
/// flow ([`REVERSE_MAX_SIDE`]).
pub fn runs_reverse(level_side: usize, image_side: usize) -> bool {
    level_side <= REVERSE_MAX_SIDE && is_coarse_level(level_side, image_side)
}

/// Linearisations of the light pass.
pub const LIGHT_WARPS: u32 = 1;
/// Sweeps of the light pass.
pub const LIGHT_SWEEPS: u32 = 10;
/// Images of at most [`FINEST_MAX_SIDE`] px with more pixels than this get the full schedule at
/// half resolution and a light pass on the image itself; smaller ones keep the full schedule on
/// the image, where it costs little.
pub const LIGHT_MIN_PIXELS: usize = 1 << 19;

impl FlowLevels {
    /// Default levels for a `width x height` fixed image with `coarsest` the last level built;
    /// `finest` overrides the default finest level (which then gets the full schedule).
    ///
    /// By default the full schedule stops at the first level at most [`FINEST_MAX_SIDE`] wide,
    /// and a light pass (one linearisation, [`LIGHT_SWEEPS`] sweeps) runs one level finer:
    ///
    /// - When that level is a quarter of the image or less (images over 2560 px), the next finer
    ///   level gets the light pass. On the 4096 row of the generalisation matrix that took the
    ///   fast mode's mean EPE from 0.108–0.225 to 0.062–0.158 px on the fine textures, for about
    ///   half a second (a 2048² level); more sweeps or a second linearisation gained under 3 %
    ///   more (`docs/benchmarks.md`).
    /// - When it is the image itself and the image has more than [`LIGHT_MIN_PIXELS`], the full
    ///   schedule runs at half resolution instead and the image gets the light pass. On the
    ///   1024 matrix that cut the whole command by a fifth (0.85 → 0.66 s on a 1024² pair) for
    ///   a median 2 % more EPE (at most 11 %; every family still at most DIS MEDIUM's). With 6
    ///   sweeps one family went 0.05 % above DIS MEDIUM, hence 10; at 4096 the two are within
    ///   ±6 % per family. The Middlebury motorcycle (741 × 250) is below the pixel bound: the
    ///   light pass on it went 2.942 → 2.982 px against DIS MEDIUM's 2.945.
    /// - Images of 1281–2560 px keep the full schedule at half resolution and nothing finer.
    pub fn for_size(width: usize, height: usize, coarsest: usize, finest: Option<usize>) -> Self {
        let side = width.max(height);
        let first_at_most = |max: usize| (0..=coarsest).find(|&l| side >> l <= max);
        let full = first_at_most(FINEST_MAX_SIDE).unwrap_or(coarsest);
        let large_at_full_resolution =
            full == 0 && coarsest >= 1 && width * height > LIGHT_MIN_PIXELS;
        let light_finest = finest.is_none() && (full >= 2 || large_at_full_resolution);
        let finest = finest
            .unwrap_or(if light_finest {
                full.saturating_sub(1)
            } else {
                full
            })
            .min(coarsest);
        let start = first_at_most(START_MAX_SIDE)
            .unwrap_or(coarsest)
            .max(finest);
        Self {
            start,
            finest,
            light_finest,
        }
    }
}

/// How the automatic search choice went ([`FlowParams::auto_search`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchChoice {
    /// Whether the scene settings (search on) won.
    pub searched: bool,
    /// The level the candidates were compared at.
    pub level: usize,
    /// Data residual of the smooth-deformation candidate there.
    pub residual_smooth: f64,
    /// Data residual of the scene candidate there.
    pub residual_scene: f64,
}

/// Runs the flow from `levels.start` down to `levels.finest`, on top of `affine` (full-resolution
/// fixed -> moving pixels), reporting a progress event per tile and a level report per level.
/// With [`FlowParams::auto_search`], the smooth and the scene settings both run down to the
/// choice level and the better one goes on (see [`SearchChoice`]).
pub fn estimate_flow<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    affine: &Affine,
    levels: FlowLevels,
    params: &FlowParams,
    solver: &dyn FlowSolver,
    reporter: &Reporter<T>,
) -> Result<FlowOutcome> {
    params.validate()?;
    let total_work: f64 = (levels.finest..=levels.start)
        .map(|l| 4f64.powi(-(l as i32)))
        .sum();
    let mut run = LevelRun {
        fixed,
        moving,
        affine,
        reverse_affine: affine.inverse(),
        levels,
        solver,
        reporter,
        total_work,
        work_done: 0.0,
    };
    let side = fixed.width().max(fixed.height());
    let choice_level = (levels.finest..=levels.start)
        .find(|&l| side >> l <= CHOICE_MAX_SIDE)
        .filter(|_| params.auto_search);
    let mut state = FlowState::default();
    let mut chosen = *params;
    let mut choice = None;
    if let Some(at) = choice_level {
        let smooth = FlowParams {
            search: 0,
            ..*params
        };
        let scene = FlowParams {
            search: AUTO_SEARCH_RADIUS,
            smoothness: params.smoothness.min(SCENE_SMOOTHNESS),
            ..*params
        };
        let quiet = Reporter::<T>::silent(reporter.cancel_token().clone());
        // The scene candidate runs no reverse flow: with its search in both directions the
        // reverse cost four times the smooth candidate's on the small levels (0.04 s of a 1024²
        // registration), where the 1024 matrix gained nothing from it.
        let mut scene_run = LevelRun {
            reporter: &quiet,
            reverse_affine: None,
            ..run
        };
        let mut scene_state = FlowState::default();
        let mut smooth_state = FlowState::default();
        for level in (at..=levels.start).rev() {
            run.level(level, &smooth, &mut smooth_state)?;
            scene_run.level(level, &scene, &mut scene_state)?;
        }
        let residual_smooth = smooth_state.last_metric();
        let residual_scene = scene_state.last_metric();
        let searched = residual_scene < CHOICE_MARGIN * residual_smooth;
        reporter.log(format!(
            "level {at}: data residual {residual_smooth:.4} without the search, {residual_scene:.4} with it: {}",
            if searched {
                "the scene settings (search on) go on"
            } else {
                "the smooth-deformation settings go on"
            }
        ));
        choice = Some(SearchChoice {
            searched,
            level: at,
            residual_smooth,
            residual_scene,
        });
        (state, chosen) = if searched {
            (scene_state, scene)
        } else {
            (smooth_state, smooth)
        };
    }
    // The levels below the choice (all of them when none was made).
    let remaining = match state.reports.last() {
        None => levels.finest..levels.start + 1,
        Some(done) => levels.finest..done.level,
    };
    for level in remaining.rev() {
        run.level(level, &chosen, &mut state)?;
    }
    let residual = state.take_residual().expect("at least one level");
    let field = total_displacement(&residual, state.last_affine);
    Ok(FlowOutcome {
        field,
        level: levels.finest,
        levels: state.reports,
        tiles: state.tiles,
        search_choice: choice,
    })
}

/// Whether the level point `(px, py)` is where the solver gives a pixel a data term (its
/// half-pixel gradient taps inside the `[mw, mh]` moving level), at least `margin` further in.
/// `shaders/flow.wgsl` spells the same test (its `inside`) for the GPU solver.
#[inline]
pub(crate) fn has_data_term(px: f32, py: f32, [mw, mh]: [f32; 2], margin: f32) -> bool {
    px >= 0.5 + margin && py >= 0.5 + margin && px <= mw - 1.5 - margin && py <= mh - 1.5 - margin
}

/// The affine `A` at pyramid level `level` as `[m00, m01, m10, m11, ox, oy]`: level pixel `x`
/// maps to level pixel `M x + o` of the moving image.
pub fn affine_at_level(affine: &Affine, level: usize) -> [f32; 6] {
    let s = (1u64 << level) as f64;
    let [m00, m01, m10, m11] = affine.matrix;
    let [cx, cy] = affine.center;
    let [tx, ty] = affine.translation;
    let ox = (cx + tx - (m00 * cx + m01 * cy)) / s;
    let oy = (cy + ty - (m10 * cx + m11 * cy)) / s;
    [
        m00 as f32, m01 as f32, m10 as f32, m11 as f32, ox as f32, oy as f32,
    ]
}

/// The residual of a coarser level brought to a `width x height` level: bilinear, doubled.
pub fn upsample_flow(coarse: &Array2<[f32; 2]>, width: usize, height: usize) -> Array2<[f32; 2]> {
    let (ch, cw) = coarse.dim();
    let mut out = Array2::from_elem((height, width), [0.0f32; 2]);
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut row)| {
            let cy = (y as f32 * 0.5).min((ch - 1) as f32);
            let y0 = cy.floor() as usize;
            let y1 = (y0 + 1).min(ch - 1);
            let fy = cy - y0 as f32;
            for (x, o) in row.iter_mut().enumerate() {
                let cx = (x as f32 * 0.5).min((cw - 1) as f32);
                let x0 = cx.floor() as usize;
                let x1 = (x0 + 1).min(cw - 1);
                let fx = cx - x0 as f32;
                for k in 0..2 {
                    let top = coarse[[y0, x0]][k] * (1.0 - fx) + coarse[[y0, x1]][k] * fx;
                    let bottom = coarse[[y1, x0]][k] * (1.0 - fx) + coarse[[y1, x1]][k] * fx;
                    o[k] = 2.0 * (top * (1.0 - fy) + bottom * fy);
                }
            }
        });
    out
}

/// Affine plus residual as a displacement field on the level's grid.
fn total_displacement(residual: &Array2<[f32; 2]>, a: [f32; 6]) -> DenseField {
    let (h, w) = residual.dim();
    let mut field = DenseField::zeros(w, h);
    ndarray::Zip::indexed(&mut field.u)
        .and(&mut field.v)
        .and(residual)
        .par_for_each(|(j, i), u, v, r| {
            let (x, y) = (i as f32, j as f32);
            let [px, py] = map_level(a, x, y, *r);
            (*u, *v) = (px - x, py - y);
        });
    field
}

/// The level affine `a` plus residual `r` at level point `(x, y)`: where the flow maps it in
/// the moving level.
pub(crate) fn map_level(a: [f32; 6], x: f32, y: f32, r: [f32; 2]) -> [f32; 2] {
    [
        a[0] * x + a[1] * y + a[4] + r[0],
        a[2] * x + a[3] * y + a[5] + r[1],
    ]
}

/// `|I_m(A(x) + r) - I_f(x)|` at fixed level pixel `(x, y)`, or `None` where it maps outside the
/// moving level (`sampler`'s image).
pub(crate) fn pixel_difference(
    fixed: &GrayF32,
    sampler: &crate::raster::BilinearSampler<'_>,
    a: [f32; 6],
    x: usize,
    y: usize,
    r: [f32; 2],
) -> Option<f32> {
    let [px, py] = map_level(a, x as f32, y as f32, r);
    sampler
        .value(px as f64, py as f64)
        .map(|value| (value - fixed[[y, x]]).abs())
}

/// Mean absolute difference `|I_m(A(x) + r(x)) - I_f(x)|` over the pixels that map inside the
/// moving image: the level's data residual before and after refinement. The rows' sums are
/// added in order, so it is the same bit for bit on any number of threads (the automatic
/// search choice compares two of these).
pub fn data_residual(
    fixed: &GrayF32,
    moving: &GrayF32,
    a: [f32; 6],
    residual: &Array2<[f32; 2]>,
) -> f64 {
    let sampler = crate::raster::BilinearSampler::new(moving.view());
    let (sum, count) = residual
        .axis_iter(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(j, row)| {
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for (i, r) in row.iter().enumerate() {
                if let Some(d) = pixel_difference(fixed, &sampler, a, i, j, *r) {
                    sum += d as f64;
                    count += 1;
                }
            }
            (sum, count)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::job::CancelToken;
    use crate::raster::SampleDepth;
    use crate::synth::{Deform, SynthParams, Texture, generate};

    /// A generated pair prepared for registration, with its ground truth.
    pub(crate) fn prepared_pair(
        size: usize,
        seed: u64,
    ) -> (PreparedImage, PreparedImage, crate::synth::SynthPair) {
        let cancel = CancelToken::new();
        let params = SynthParams {
            width: size,
            height: size,
            seed,
            deform: Deform::Smooth,
            depth: SampleDepth::F32,
            noise: 0.01,
        };
        let pair = generate(&Texture::procedural(size, size, seed), &params, &cancel).unwrap();
        let fixed = PreparedImage::new(pair.fixed.clone(), 4, &cancel).unwrap();
        let moving = PreparedImage::new(pair.moving.clone(), 4, &cancel).unwrap();
        (fixed, moving, pair)
    }

    fn run(fixed: &PreparedImage, moving: &PreparedImage, solver: &dyn FlowSolver) -> FlowOutcome {
        let reporter = Reporter::<()>::silent(CancelToken::new());
        let identity = Affine::identity([0.0, 0.0]);
        let levels = FlowLevels::for_size(fixed.width(), fixed.height(), 3, Some(0));
        estimate_flow(
            fixed,
            moving,
            &identity,
            levels,
            &FlowParams::default(),
            solver,
            &reporter,
        )
        .unwrap()
    }

    #[test]
    fn flow_recovers_a_smooth_deformation() {
        let (fixed, moving, pair) = prepared_pair(256, 3);
        let outcome = run(&fixed, &moving, &cpu::CpuSolver::default());
        assert_eq!(outcome.level, 0);
        let error =
            crate::analysis::end_point_error(&outcome.field, &pair.ground_truth, Some(&pair.mask))
                .unwrap();
        assert!(
            error.epe_mean < 0.3,
            "mean end-point error {} px",
            error.epe_mean
        );
        let last = outcome.levels.last().unwrap();
        assert!(last.metric_end < last.metric_start, "{last:?}");
    }

    #[test]
    fn a_flow_run_is_the_same_bit_for_bit_on_one_thread_and_on_several() {
        let (fixed, moving, _) = prepared_pair(128, 5);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let outcome = pool.install(|| run(&fixed, &moving, &cpu::CpuSolver::default()));
            let field: Vec<u64> = [&outcome.field.u, &outcome.field.v]
                .iter()
                .flat_map(|c| c.iter().map(|v| v.to_bits() as u64))
                .collect();
            let metrics: Vec<[u64; 2]> = outcome
                .levels
                .iter()
                .map(|l| [l.metric_start.to_bits(), l.metric_end.to_bits()])
                .collect();
            (field, metrics)
        };
        let one = on(1);
        for threads in [2, 3] {
            assert!(on(threads) == one, "{threads} threads");
        }
    }

    #[test]
    fn the_automatic_choice_keeps_a_smooth_deformation_smooth_and_searches_for_a_moving_object() {
        let (fixed, moving, _) = prepared_pair(256, 3);
        let smooth = run(&fixed, &moving, &cpu::CpuSolver::default());
        let choice = smooth.search_choice.expect("a choice is made by default");
        assert!(!choice.searched, "{choice:?}");
        assert_eq!(choice.level, 1, "the finest level of at most 200 px");
        // Inside a square window the texture slides 24 px; the rest of the scene stands still.
        let cancel = CancelToken::new();
        let texture = Texture::procedural(256, 256, 11);
        let scene = |shift: f64| {
            let image = GrayF32::from_shape_fn((256, 256), |(y, x)| {
                let inside = (96..160).contains(&x) && (96..160).contains(&y);
                let dx = if inside { shift } else { 0.0 };
                texture.value(x as f64 + dx + if inside { 300.0 } else { 0.0 }, y as f64) as f32
            });
            PreparedImage::new(crate::raster::AnyImage::from_gray_f32(image), 4, &cancel).unwrap()
        };
        let (still, moved) = (scene(0.0), scene(-24.0));
        let outcome = run(&still, &moved, &cpu::CpuSolver::default());
        let choice = outcome.search_choice.unwrap();
        assert!(choice.searched, "{choice:?}");
        assert!(choice.residual_scene < choice.residual_smooth);
    }

    #[test]
    fn tiled_levels_equal_the_untiled_level_exactly() {
        let (fixed, moving, _) = prepared_pair(256, 5);
        let whole = run(&fixed, &moving, &cpu::CpuSolver::default());
        let margin = FlowParams::default().reach();
        let side = 2 * margin + 40;
        let tiled = run(
            &fixed,
            &moving,
            &cpu::CpuSolver {
                max_tile_pixels: side * side,
            },
        );
        assert!(*tiled.tiles.last().unwrap() >= 4, "tiles {:?}", tiled.tiles);
        assert_eq!(whole.field, tiled.field, "tiles must stitch without seams");
    }

    #[test]
    fn tile_grid_partitions_the_level_and_keeps_margins_inside() {
        let tiles = tile_grid(300, 170, 10, 60 * 60).unwrap();
        let mut owned = vec![0u8; 300 * 170];
        for t in &tiles {
            let [x0, y0, x1, y1] = t.own;
            let [sx0, sy0, sx1, sy1] = t.solve;
            assert!(sx0 <= x0 && sy0 <= y0 && x1 <= sx1 && y1 <= sy1);
            assert!((sx1 - sx0) * (sy1 - sy0) <= 60 * 60);
            for y in y0..y1 {
                for x in x0..x1 {
                    owned[y * 300 + x] += 1;
                }
            }
        }
        assert!(owned.iter().all(|&n| n == 1));
        assert!(tile_grid(300, 170, 40, 60 * 60).is_err());
    }

    #[test]
    fn upsampling_doubles_a_constant_flow() {
        let coarse = Array2::from_elem((5, 6), [1.5f32, -0.25]);
        let fine = upsample_flow(&coarse, 11, 9);
        assert!(fine.iter().all(|f| *f == [3.0, -0.5]));
    }

    #[test]
    fn the_reverse_flow_runs_on_coarse_levels_a_sixteenth_of_the_image_and_at_most_512_px() {
        // 4096 px: the 256 px level and coarser.
        assert!(runs_reverse(256, 4096));
        assert!(!runs_reverse(512, 4096));
        // 1024 px: 64 px and coarser.
        assert!(runs_reverse(64, 1024));
        assert!(!runs_reverse(128, 1024));
        // 17320 px: capped at 512 px although 1082 px is a sixteenth.
        assert!(!runs_reverse(541, 17320));
        assert!(!runs_reverse(1082, 17320));
        assert!(runs_reverse(270, 17320));
    }

    #[test]
    fn the_light_pass_goes_to_large_images_and_to_the_level_above_a_quarter() {
        let levels = |w: usize, h: usize, finest| {
            let l = FlowLevels::for_size(w, h, 8, finest);
            (l.finest, l.light_finest)
        };
        // Small images keep the full schedule on the image itself.
        assert_eq!(levels(741, 250, None), (0, false));
        assert_eq!(levels(1024, 512, None), (0, false));
        // A 1024² image: full schedule at 512 px, the light pass on the image.
        assert_eq!(levels(1024, 1024, None), (0, true));
        // 2048 px: the full schedule ends at 1024 px, nothing finer.
        assert_eq!(levels(2048, 1024, None), (1, false));
        // 4096 px: the full schedule ends at 1024 px, the light pass runs on 2048 px.
        assert_eq!(levels(4096, 2048, None), (1, true));
        assert_eq!(levels(17_320, 8660, None).0, 3);
        // A finest level asked for gets the full schedule.
        assert_eq!(levels(4096, 2048, Some(1)), (1, false));
        assert_eq!(levels(1024, 1024, Some(0)), (0, false));
        let start = |finest| FlowLevels::for_size(4096, 2048, 8, finest).start;
        assert_eq!(start(None), start(Some(1)));
    }

    #[test]
    fn level_affine_maps_like_the_full_resolution_affine() {
        let a = Affine::similarity(0.05, 1.02, [3.0, -5.0], [100.0, 80.0]);
        let m = affine_at_level(&a, 2);
        use crate::transform::Transform;
        let (x, y) = (17.0f32, 9.0f32);
        let full = a.map_point(4.0 * x as f64, 4.0 * y as f64);
        let level = [m[0] * x + m[1] * y + m[4], m[2] * x + m[3] * y + m[5]];
        assert!((level[0] as f64 * 4.0 - full[0]).abs() < 1e-3);
        assert!((level[1] as f64 * 4.0 - full[1]).abs() < 1e-3);
    }
}
