//! Multi-resolution affine registration: phase-correlation initialisation at the coarsest level,
//! then L-BFGS on the chosen metric from coarse to fine.

use super::RegisterOptions;
use super::init::{InitChoice, InitMethod};
use crate::job::{Progress, Reporter, Stage};
use crate::metric::{self, MovingLevel, SampleSet};
use crate::optimize::LevelReport;
use crate::optimize::{LbfgsParams, lbfgs};
use crate::raster::PreparedImage;
use crate::transform::{Affine, AffineParametric, Parametric};
use crate::{Error, Result};

/// Shortest side of the levels the affine is optimised on: a 16 px level of a fine texture
/// (gravel at 4096 px) is nearly flat, and six parameters fitted there drift far (measured:
/// mean EPE 353 px); the phase correlation still runs on the coarsest level.
pub const AFFINE_MIN_SIDE: usize = 48;

/// The affine stage's result.
#[derive(Debug, Clone)]
pub struct AffineOutcome {
    /// The transform (full-resolution fixed -> moving pixels).
    pub affine: Affine,
    /// What happened at each level, coarsest first.
    pub levels: Vec<LevelReport>,
    /// The initial transform's translation, in full-resolution pixels.
    pub initial_translation: [f64; 2],
    /// Which initialisation started it, and why.
    pub init: InitChoice,
}

/// Longest side of the level the feature initialisation matches on.
const FEATURE_SIDE: usize = 512;

/// The feature fit (a similarity; a mirror tried too) on the pyramid level of at most
/// [`FEATURE_SIDE`] pixels, as a full-resolution affine about `centre`, with a note; or why
/// there is none.
fn feature_candidate(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    centre: [f64; 2],
    seed: u64,
) -> std::result::Result<(Affine, String), String> {
    let top = fixed.levels().min(moving.levels()) - 1;
    let level = (0..=top)
        .find(|&l| (fixed.width().max(fixed.height()) >> l) <= FEATURE_SIDE)
        .unwrap_or(top);
    let s = (1u64 << level) as f64;
    let init = crate::analysis::features::feature_init(
        &fixed.level(level),
        &moving.level(level),
        crate::analysis::features::Model::Similarity,
        seed,
    )?;
    // q = A p + b at the level; at full resolution b scales; about the centre t = A c + b - c.
    let a = init.transform.matrix;
    let b = init.transform.translation.map(|v| v * s);
    let t = [
        a[0] * centre[0] + a[1] * centre[1] + b[0] - centre[0],
        a[2] * centre[0] + a[3] * centre[1] + b[1] - centre[1],
    ];
    let note = format!(
        "features: {} inliers of {} matches on level {level}{}",
        init.inliers,
        init.matches.len(),
        if init.mirrored { ", mirrored" } else { "" }
    );
    Ok((Affine::from_matrix(a, t, centre), note))
}

/// Registers `moving` to `fixed` with an affine transform over levels `coarsest..=finest`.
pub fn register_affine<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    options: &RegisterOptions,
    finest: usize,
    reporter: &Reporter<T>,
) -> Result<AffineOutcome> {
    let coarsest = fixed.levels().min(moving.levels()) - 1;
    let finest = finest.min(coarsest);
    let centre = [
        (fixed.width() as f64 - 1.0) / 2.0,
        (fixed.height() as f64 - 1.0) / 2.0,
    ];
    let radius = 0.5 * (fixed.width().max(fixed.height()) as f64);

    // Initialise: phase correlation at the coarsest level, kept only if it beats the identity.
    reporter.progress(Progress {
        stage: Stage::Initialize,
        level: Some(coarsest),
        iteration: None,
        metric: None,
        fraction: 0.0,
    });
    let scale = (1u64 << coarsest) as f64;
    let (fixed_c, moving_c) = (fixed.level(coarsest), moving.level(coarsest));
    let identity = Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [0.0, 0.0], centre);
    let mut candidates: Vec<(&str, Affine)> = vec![("identity", identity)];
    let mut notes = Vec::new();
    let init = options.init;
    let phase = |notes: &mut Vec<String>| {
        let (shift, peak) = super::init::phase_correlation(&fixed_c, &moving_c);
        notes.push(format!("phase correlation peak {peak:.3}"));
        Affine::from_matrix(
            [1.0, 0.0, 0.0, 1.0],
            [shift[0] * scale, shift[1] * scale],
            centre,
        )
    };
    if matches!(init, InitMethod::Phase | InitMethod::Auto) {
        candidates.push(("phase correlation", phase(&mut notes)));
    }
    if matches!(init, InitMethod::Features | InitMethod::Auto) {
        match feature_candidate(fixed, moving, centre, options.seed) {
            Ok((affine, note)) => {
                notes.push(note);
                candidates.push(("features", affine));
            }
            Err(why) => {
                notes.push(format!("features: {why}"));
                if init == InitMethod::Features {
                    candidates.push(("phase correlation", phase(&mut notes)));
                }
            }
        }
    }
    let samples = SampleSet::random(&fixed_c, None, options.samples, options.seed);
    let moving_level = MovingLevel::new(&moving_c);
    let init_metric = match options.metric {
        // MSE is not robust to the intensity changes the initialisation must survive.
        metric::MetricKind::Mse => metric::MetricKind::Ncc,
        other => other,
    };
    let score = |affine: Affine| {
        let p = AffineParametric { affine, radius };
        metric::evaluate(init_metric, &samples, &moving_level, &p, scale, None)
            .map(|v| v.value)
            .unwrap_or(f64::INFINITY)
    };
    let scores: Vec<f64> = candidates.iter().map(|(_, a)| score(*a)).collect();
    let best = (0..candidates.len())
        .min_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .expect("the identity is a candidate");
    let (chosen, start) = candidates[best];
    let why = candidates
        .iter()
        .zip(&scores)
        .map(|((name, _), s)| format!("{name} {s:.4}"))
        .chain(notes)
        .collect::<Vec<_>>()
        .join("; ");
    reporter.log(format!("initialisation: {chosen} ({why})"));
    let initial_translation = start.translation;
    let init_choice = InitChoice {
        method: init,
        chosen: chosen.to_string(),
        why,
    };
    let mut transform = AffineParametric {
        affine: start,
        radius,
    };
    let mut levels = Vec::new();
    // The translation comes from the coarsest level; the six parameters are fitted only on
    // levels with enough pixels to constrain them (and always on the finest).
    let optimised = (finest..=coarsest)
        .rev()
        .filter(|&l| l == finest || (fixed.width().min(fixed.height()) >> l) >= AFFINE_MIN_SIDE)
        .collect::<Vec<_>>();
    let total_levels = optimised.len();
    for (done, level) in optimised.into_iter().enumerate() {
        reporter.check()?;
        let level_started = std::time::Instant::now();
        let scale = (1u64 << level) as f64;
        let fixed_l = fixed.level(level);
        let moving_l = MovingLevel::new(&moving.level(level));
        let samples =
            SampleSet::random(&fixed_l, None, options.samples, options.seed + level as u64);
        let params = LbfgsParams {
            iterations: options.iterations,
            // Parameters are in full-resolution pixels: limit a step to ~2 level pixels.
            max_step: 2.0 * scale,
            relative_tolerance: options.relative_tolerance,
            ..LbfgsParams::default()
        };
        let points = metric::PointSet::new(&samples, scale);
        let mut scratch = metric::Scratch::default();
        let mut probe = transform;
        let objective = |x: &[f64], g: &mut [f64]| {
            probe.set_params(x);
            metric::evaluate_sampled(
                options.metric,
                &samples,
                &moving_l,
                &points.bind(&probe),
                scale,
                Some(g),
                &mut scratch,
            )
            .map(|v| v.value)
        };
        let fraction = |it: usize| {
            (done as f32 + (it as f32 / options.iterations as f32).min(1.0)) / total_levels as f32
        };
        let minimum = lbfgs(objective, &transform.params(), &params, |it, value| {
            reporter.check()?;
            reporter.progress(Progress {
                stage: Stage::Affine,
                level: Some(level),
                iteration: Some(it),
                metric: Some(value),
                fraction: fraction(it),
            });
            Ok(())
        })?;
        if !minimum.value.is_finite() {
            return Err(Error::Internal(format!(
                "the metric diverged at level {level}"
            )));
        }
        transform.set_params(&minimum.x);
        levels.push(LevelReport::new(
            level,
            "affine",
            [fixed_l.ncols(), fixed_l.nrows()],
            samples.points.len(),
            &minimum,
            level_started.elapsed().as_secs_f64(),
        ));
        reporter.log(format!(
            "level {level}: {} iterations, metric {:.6} -> {:.6} ({:?})",
            minimum.iterations, minimum.start_value, minimum.value, minimum.stop
        ));
    }
    Ok(AffineOutcome {
        affine: transform.affine,
        levels,
        initial_translation,
        init: init_choice,
    })
}
