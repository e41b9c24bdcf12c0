//! Registration pipelines: from two image files to a warped image, a transform, a dense field
//! and a report, with progress and cancellation through the [`crate::job`] handle.

pub mod affine;
pub mod bending;
pub mod bspline;
pub mod demons;
pub mod fast;
pub mod init;
pub mod orientation;
mod pipeline;
pub mod qc;
pub mod settings;
pub mod turn_back;
pub mod unconstrained;

pub use settings::Settings;

pub use pipeline::{
    ImageReport, RegisterRequest, RegisterSummary, Report, StageSeconds, register_files,
};

use crate::metric::MetricKind;
use crate::raster::{AnyImage, PyramidParams};

/// The default `--landmark-weight`. Measured on the real cross-stain pairs (every other
/// landmark guiding, the rest scored, median rTRE): 0.003 beat both the image-only accurate mode
/// and the thin-plate spline through the guiding landmarks on all four (rat kidney 0.00268,
/// lung CD31 0.00452, Cc10 0.00681, Ki67 0.00729); 0.1 and more pulled the fine grid onto the
/// guiding landmarks and distorted it between them (0.00415 to 0.01366).
pub const DEFAULT_LANDMARK_WEIGHT: f64 = 0.003;

/// What kind of registration to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Affine only (multi-resolution).
    Affine,
    /// Affine, then a multi-resolution cubic B-spline: the default everywhere (command line,
    /// presets, the GUI and its batch tab).
    #[default]
    Accurate,
    /// Dense optical flow (GPU or CPU).
    Fast,
    /// Affine, then diffeomorphic (log-domain) demons: a velocity field whose exponential is
    /// invertible by construction (GPU or CPU).
    Demons,
    /// A thin-plate spline through landmark pairs (`--landmarks FIXED.csv MOVING.csv`); no
    /// image matching.
    Landmarks,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "affine" => Ok(Self::Affine),
            "accurate" => Ok(Self::Accurate),
            "fast" => Ok(Self::Fast),
            "demons" => Ok(Self::Demons),
            "landmarks" => Ok(Self::Landmarks),
            other => Err(format!(
                "unknown mode {other:?} (affine, accurate, fast, demons or landmarks)"
            )),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Affine => "affine",
            Mode::Accurate => "accurate",
            Mode::Fast => "fast",
            Mode::Demons => "demons",
            Mode::Landmarks => "landmarks",
        })
    }
}

/// Where the work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The GPU when an adapter exists, else the CPU (with a logged reason).
    #[default]
    Auto,
    /// The CPU (rayon).
    Cpu,
    /// The GPU (wgpu); fails when there is none.
    Gpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(format!("unknown backend {other:?} (auto, cpu or gpu)")),
        }
    }
}

/// The resolved settings of a registration, as the pipelines read them: the defaults with a
/// [`Settings`] applied (see [`settings`]), and the backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegisterOptions {
    /// The pipeline.
    pub mode: Mode,
    /// The metric to minimise.
    pub metric: MetricKind,
    /// Pyramid levels (`None`: enough that the coarsest level's shorter side is about 16 px,
    /// 64 px with the MI metric).
    pub levels: Option<usize>,
    /// Samples per metric evaluation.
    pub samples: usize,
    /// Samples at the finest B-spline level (`None`: [`bspline::default_final_samples`]).
    pub final_samples: Option<usize>,
    /// Iterations per level at most.
    pub iterations: usize,
    /// Stop a level when the metric improves by less than this fraction.
    pub relative_tolerance: f64,
    /// Seed for sample selection.
    pub seed: u64,
    /// Where to run.
    pub backend: Backend,
    /// Final B-spline control-point spacing in full-resolution pixels (`None`:
    /// [`default_grid_spacing`]).
    pub grid_spacing: Option<f64>,
    /// Control-grid resolutions: the grid halves its spacing this many times minus one.
    pub grid_levels: usize,
    /// Landmarks mode: the thin-plate spline's smoothing λ (0: through every landmark).
    pub landmark_smoothing: f64,
    /// Accurate mode with landmarks: the weight of their mean squared distance (in pixels of
    /// each level) in the B-spline's cost.
    pub landmark_weight: f64,
    /// Weight of the bending-energy penalty (0: none): the mean squared second derivative of
    /// the displacement with lengths in units of the image's longer side ([`bending`]), so the
    /// same weight means the same smoothness at every image size. Useful weights: 1e-4 (MI
    /// between stains) to 0.1 (NCC, sections on an empty slide).
    pub bending_weight: f64,
    /// Finest pyramid level registered (`None`: 0, or 1 for images over 100 megapixels).
    pub finest_level: Option<usize>,
    /// Register on this channel instead of the luminance.
    pub channel: Option<usize>,
    /// The affine stage's initialisation.
    pub init: init::InitMethod,
    /// Settings of the fast mode's flow solver.
    pub flow: crate::flow::FlowParams,
    /// Settings of the demons mode's solver.
    pub demons: crate::demons::DemonsParams,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            metric: MetricKind::Ncc,
            levels: None,
            samples: 20_000,
            final_samples: None,
            iterations: 100,
            relative_tolerance: 1e-5,
            seed: 1,
            backend: Backend::Auto,
            grid_spacing: None,
            grid_levels: 4,
            bending_weight: 0.0,
            landmark_smoothing: 0.0,
            landmark_weight: DEFAULT_LANDMARK_WEIGHT,
            finest_level: None,
            channel: None,
            init: init::InitMethod::default(),
            flow: crate::flow::FlowParams::default(),
            demons: crate::demons::DemonsParams::default(),
        }
    }
}

/// Most pyramid levels chosen automatically.
pub const MAX_LEVELS: usize = 10;
/// The affine stage stops at the first level whose longer side is at most this: finer levels
/// cost full-resolution copies and add no accuracy an affine can use.
pub const AFFINE_MAX_SIDE: usize = 2048;

/// Levels for a pair: the coarsest level of both images at least `min_side` pixels.
pub fn auto_levels_down_to(fixed: &AnyImage, moving: &AnyImage, min_side: usize) -> usize {
    let f = PyramidParams::levels_for(fixed.width(), fixed.height(), min_side, MAX_LEVELS);
    let m = PyramidParams::levels_for(moving.width(), moving.height(), min_side, MAX_LEVELS);
    f.min(m)
}

/// The accurate mode's affine stage fits down to the level whose longest side is at most this
/// many pixels before the B-spline starts.
pub const ACCURATE_AFFINE_SIDE: usize = 256;

/// The finest pyramid level whose longest side is at most `side` pixels.
pub fn level_of_side(width: usize, height: usize, side: usize) -> usize {
    let mut level = 0;
    while (width.max(height) >> level) > side {
        level += 1;
    }
    level
}

/// The finest pyramid level both images have whose longest side (the fixed image's) is at
/// most `side` pixels; the coarsest shared level when none is that small.
pub fn shared_level_of_side(
    fixed: &crate::raster::PreparedImage,
    moving: &crate::raster::PreparedImage,
    side: usize,
) -> usize {
    let top = fixed.levels().min(moving.levels()) - 1;
    level_of_side(fixed.width(), fixed.height(), side).min(top)
}

/// The finest level the affine stage uses for an image of this size.
pub fn affine_finest_level(width: usize, height: usize) -> usize {
    level_of_side(width, height, AFFINE_MAX_SIDE)
}

/// Images above this many pixels register down to pyramid level 1 by default: the last factor
/// of two costs full-resolution float copies (about 2.4 GB at 300 megapixels) for a gain in
/// accuracy that a transform this smooth rarely needs.
pub const FULL_RESOLUTION_MAX_PIXELS: usize = 100_000_000;

/// The finest level registered by default.
pub fn default_finest_level(width: usize, height: usize) -> usize {
    usize::from(width * height > FULL_RESOLUTION_MAX_PIXELS)
}

/// The smallest default final control-point spacing, in pixels: finer grids mostly fit noise
/// (measured: on a 384 x 320 affine pair the accurate mode's error fell from 0.12 px at 19 px
/// spacing to 0.09 px at 32 px).
pub const MIN_DEFAULT_GRID_SPACING: f64 = 32.0;

/// Default final control-point spacing: the longer side over 20 (elastix's usual choice),
/// at least [`MIN_DEFAULT_GRID_SPACING`].
pub fn default_grid_spacing(width: usize, height: usize) -> f64 {
    (width.max(height) as f64 / 20.0).max(MIN_DEFAULT_GRID_SPACING)
}
