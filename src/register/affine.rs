//! Multi-resolution affine registration: phase-correlation initialisation at the coarsest level,
//! then L-BFGS on the chosen metric from coarse to fine.

use super::RegisterOptions;
use super::init::{InitChoice, InitMethod};
use crate::analysis::features::MATCH_SIDE;
use crate::job::{Progress, Reporter, Stage};
use crate::metric::{self, MovingLevel, SampleSet};
use crate::optimize::LevelReport;
use crate::optimize::{LbfgsParams, lbfgs};
use crate::raster::{GrayF32, PreparedImage};
use crate::transform::{Affine, AffineParametric, Parametric};
use crate::{Error, Result};
use rayon::prelude::*;

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
    /// Which initialisation started it, and why.
    pub init: InitChoice,
}

/// The feature fit (a similarity; a mirror tried too) on the pyramid level of at most
/// [`MATCH_SIDE`] pixels, as a full-resolution affine about `centre`, with a note and whether it
/// is confident ([`crate::analysis::features::FeatureInit::is_confident`]); or why there is none.
fn feature_candidate(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    centre: [f64; 2],
    seed: u64,
) -> std::result::Result<(Affine, String, bool), String> {
    let level = super::shared_level_of_side(fixed, moving, MATCH_SIDE);
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
    // A confident fit skips the orientation search, and with it, on an unturned pair, the
    // decision fits (measured: 0.23 s of a 1024² fast run on 2 cores).
    let confident = init.is_confident();
    Ok((Affine::from_matrix(a, t, centre), note, confident))
}

/// The orientation search's turns ([`super::orientation`], on the level of at most
/// [`super::orientation::SEARCH_SIDE`] pixels) as full-resolution affines about `centre` (the
/// fixed image's), each with a note; or why there are none.
fn orientation_candidates(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    centre: [f64; 2],
) -> std::result::Result<Vec<(Affine, String)>, String> {
    use super::orientation::{SEARCH_SIDE, search};
    let level = super::shared_level_of_side(fixed, moving, SEARCH_SIDE);
    let s = (1u64 << level) as f64;
    let moving_centre = [
        (moving.width() as f64 - 1.0) / 2.0,
        (moving.height() as f64 - 1.0) / 2.0,
    ];
    let found = search(&fixed.level(level), &moving.level(level))?;
    Ok(found
        .into_iter()
        .map(|turn| {
            let affine = turn_affine(&turn, s, centre, moving_centre);
            let note = format!(
                "orientation {:.0}°{} (peak {:.3}, {:.1}× the median turn) on level {level}",
                turn.angle_deg,
                if turn.mirrored { " mirrored" } else { "" },
                turn.peak,
                turn.contrast
            );
            (affine, note)
        })
        .collect())
}

/// A turn found on a level `s` times coarser than full resolution as a full-resolution affine
/// about the fixed centre `centre`: `q = R (p - C) + C_m + s R d = R (p - C) + C + t`.
fn turn_affine(
    turn: &super::orientation::Orientation,
    s: f64,
    centre: [f64; 2],
    moving_centre: [f64; 2],
) -> Affine {
    let (r, d) = (turn.matrix(), turn.shift);
    let t = [
        moving_centre[0] - centre[0] + s * (r[0] * d[0] + r[1] * d[1]),
        moving_centre[1] - centre[1] + s * (r[2] * d[0] + r[3] * d[1]),
    ];
    Affine::from_matrix(r, t, centre)
}

/// A turned start (rotated more than [`TURNED_DEG`], mirrored, or scaled by more than
/// [`TURNED_SCALE`]) must be clearly better than the best unturned start, both fitted for
/// [`DECISION_ITERATIONS`] on the level of at most [`super::orientation::SEARCH_SIDE`] pixels:
/// under NCC its dissimilarity (1 − NCC) at most this share of the unturned one's, under MI its
/// information at least 1 / this share of it. A pattern that looks alike turned (bricks
/// through 180°, a mirror-symmetric outline) scores alike, or a little better by chance where
/// the level's deformation is more than an affine can follow (measured: bricks under a 5 %
/// deformation, NCC 0.17 unturned against 0.27–0.50 mirrored), when the unturned reading is
/// the likelier; a section turned the other way round scores near 1 against far less.
const TURNED_MARGIN: f64 = 0.5;
/// See [`TURNED_MARGIN`].
const TURNED_DEG: f64 = 10.0;
/// L-BFGS iterations each start gets on the decision level before the comparison.
const DECISION_ITERATIONS: usize = 40;
/// See [`TURNED_MARGIN`].
const TURNED_SCALE: f64 = 1.15;

/// Whether `affine`'s linear part is far from the identity (see [`TURNED_MARGIN`]).
fn is_turned(affine: &Affine) -> bool {
    let (_, scale, _) = affine.rotation_scale_mirror();
    is_rotated(affine) || scale.ln().abs() > TURNED_SCALE.ln()
}

/// Whether `affine` mirrors or rotates by more than [`TURNED_DEG`] (its scale aside).
fn is_rotated(affine: &Affine) -> bool {
    let (angle, _, mirrored) = affine.rotation_scale_mirror();
    mirrored || angle.abs() > TURNED_DEG
}

/// Whether cost `turned` is clearly better than cost `plain` (see [`TURNED_MARGIN`]).
fn clearly_better(metric: metric::MetricKind, turned: f64, plain: f64) -> bool {
    match metric {
        // The cost is −MI.
        metric::MetricKind::Mi => -turned * TURNED_MARGIN > (-plain).max(0.0),
        // The cost is −NCC.
        _ => 1.0 + turned < TURNED_MARGIN * (1.0 + plain),
    }
}

/// How close to a turn's cost the unturned reading a symmetry makes of it must come for the
/// turn to count as no evidence: under NCC its dissimilarity at most 1 / this share of the
/// turn's, under MI its information at least this share of it. Measured: a mirror-tiled
/// print through 180° reads unturned at 0.99 of the turn's dissimilarity; tissue sections
/// turned through 90°, whose outlines look alike turned, at 0.5 to 0.6 of the turn's MI.
const SYMMETRY_SHARE: f64 = 0.8;

/// Whether cost `candidate` comes within [`SYMMETRY_SHARE`] of cost `reference`.
fn nearly_as_good(metric: metric::MetricKind, candidate: f64, reference: f64) -> bool {
    match metric {
        // The cost is −MI.
        metric::MetricKind::Mi => -candidate >= SYMMETRY_SHARE * (-reference).max(0.0),
        // The cost is −NCC.
        _ => SYMMETRY_SHARE * (1.0 + candidate) <= 1.0 + reference,
    }
}

/// The start to take: the unturned start with the lowest cost on the coarsest level
/// (`coarse`), unless a turned one is clearly better on the finer level (`fine`: fits a start
/// there, returns the fit's cost and the fitted start; see [`TURNED_MARGIN`]) and no unturned
/// reading that the images' symmetries make of the turn (`equivalents`; see [`symmetry`])
/// comes near it ([`SYMMETRY_SHARE`]). Returns the chosen index, the start (fitted on the
/// finer level when the decision was made there: that fit is what was judged, and from the
/// raw start the coarse levels can still slide into another minimum) and a note on the
/// decision.
fn choose_start(
    candidates: &[(&str, Affine)],
    coarse: &[f64],
    fine: impl Fn(Affine) -> (f64, Affine) + Sync,
    equivalents: impl Fn(&Affine) -> Vec<Affine>,
    metric: metric::MetricKind,
) -> (usize, Affine, Option<String>) {
    let plain = (0..candidates.len())
        .filter(|&i| !is_turned(&candidates[i].1))
        .min_by(|&a, &b| coarse[a].total_cmp(&coarse[b]))
        .expect("the identity is a candidate");
    let turned_ones: Vec<usize> = (0..candidates.len())
        .filter(|&i| is_turned(&candidates[i].1))
        .collect();
    if turned_ones.is_empty() {
        return (plain, candidates[plain].1, None);
    }
    // The fits side by side: each is deterministic, and alone leaves a core idle in its
    // serial sums.
    let mut fits: Vec<(usize, (f64, Affine))> = std::iter::once(plain)
        .chain(turned_ones)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|i| (i, fine(candidates[i].1)))
        .collect();
    let (_, plain_fit) = fits.remove(0);
    let (turned, turned_fit) = fits
        .into_iter()
        .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
        .expect("a turned candidate");
    let head = format!(
        "on the finer level: {} {:.4} against {} {:.4}",
        candidates[turned].0, turned_fit.0, candidates[plain].0, plain_fit.0,
    );
    if !clearly_better(metric, turned_fit.0, plain_fit.0) {
        let note = format!("{head} (the turn is not clearly better)");
        return (plain, plain_fit.1, Some(note));
    }
    // A pattern that looks the same turned (a mirror-tiled print through 180°) reads as well
    // unturned through its symmetry: the turn is no evidence, and the unturned start is kept
    // (not the symmetry's reading, which a periodic pattern can put a whole period away), raw:
    // its fit on this level was judged poor, and the coarse levels may do better from it.
    let equivalent = equivalents(&turned_fit.1)
        .into_par_iter()
        .filter(|a| !is_turned(a))
        .map(&fine)
        .collect::<Vec<_>>()
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match equivalent {
        Some(unturned) if nearly_as_good(metric, unturned.0, turned_fit.0) => {
            let note = format!(
                "{head} (the turn is clearly better, but an image looks the same turned: \
                 through its symmetry the turn reads unturned at {:.4}, so the unturned start \
                 is kept)",
                unturned.0
            );
            (plain, candidates[plain].1, Some(note))
        }
        _ => {
            let note = format!("{head} (the turn is clearly better)");
            (turned, turned_fit.1, Some(note))
        }
    }
}

/// The symmetry of `image` (a pyramid level `level` of either image) nearest the rotation and
/// mirror of the inverse of `turned` (its scale left out): the best of the turns within 5° by
/// phase correlation, with its shift, fitted under NCC for [`DECISION_ITERATIONS`], as a
/// full-resolution affine of the image onto itself; `None` when the fit fails. The image need
/// not be symmetric: the caller judges what the symmetry makes of the turn.
fn symmetry(
    image: &GrayF32,
    level: usize,
    turned: &Affine,
    options: &RegisterOptions,
) -> Option<Affine> {
    // The pair's turn includes its own small rotation, an image's symmetry is exact: the best
    // of the turns within 5° of the pair's.
    let (angle, _, mirrored) = turned.inverse()?.rotation_scale_mirror();
    let fixed = super::init::PhaseCorrelator::new(image, image.ncols(), image.nrows());
    let found = (-4..=4)
        .into_par_iter()
        .map(|k| super::orientation::try_turn(&fixed, image, angle + 1.25 * k as f64, mirrored))
        .reduce_with(|a, b| if b.peak > a.peak { b } else { a })?;
    let s = (1u64 << level) as f64;
    let (h, w) = image.dim();
    // The full-resolution centre of this level's grid.
    let centre = [s * (w as f64 - 1.0) / 2.0, s * (h as f64 - 1.0) / 2.0];
    let start = AffineParametric {
        affine: turn_affine(&found, s, centre, centre),
        radius: centre[0].max(centre[1]),
    };
    let samples = SampleSet::random(image, None, options.samples, options.seed);
    let moving = MovingLevel::new(image);
    let check = |_: usize, _: f64| Ok(());
    let (fit, _) = optimise_level(
        metric::MetricKind::Ncc,
        &samples,
        &moving,
        s,
        DECISION_ITERATIONS,
        options.relative_tolerance,
        start,
        check,
    )
    .ok()?;
    Some(fit.affine)
}

/// One pyramid level's L-BFGS fit of the affine from `start` under `metric` (`scale`: the
/// level's full-resolution pixels per pixel); `on_iteration` sees every iteration's value
/// (progress, cancellation).
#[allow(clippy::too_many_arguments)]
fn optimise_level(
    metric: metric::MetricKind,
    samples: &SampleSet,
    moving: &MovingLevel,
    scale: f64,
    iterations: usize,
    relative_tolerance: f64,
    start: AffineParametric,
    on_iteration: impl FnMut(usize, f64) -> Result<()>,
) -> Result<(AffineParametric, crate::optimize::Minimum)> {
    let params = LbfgsParams {
        iterations,
        // Parameters are in full-resolution pixels: limit a step to ~2 level pixels.
        max_step: 2.0 * scale,
        relative_tolerance,
        ..LbfgsParams::default()
    };
    let points = metric::PointSet::new(samples, scale);
    let mut scratch = metric::Scratch::default();
    let mut probe = start;
    let objective = |x: &[f64], g: &mut [f64]| {
        probe.set_params(x);
        metric::evaluate_sampled(
            metric,
            samples,
            moving,
            &points.bind(&probe),
            scale,
            Some(g),
            &mut scratch,
        )
        .map(|v| v.value)
    };
    let minimum = lbfgs(objective, &start.params(), &params, on_iteration)?;
    let mut fitted = start;
    fitted.set_params(&minimum.x);
    Ok((fitted, minimum))
}

/// Where the affine stage starts (full-resolution fixed -> moving pixels), and why.
#[derive(Debug, Clone)]
pub struct Start {
    /// The initial transform.
    pub affine: Affine,
    /// Which initialisation it is, and why.
    pub init: InitChoice,
}

/// The affine stage's start: the candidates of `options.init` scored on the coarsest level,
/// a turned one taken only when clearly better on a finer level (see [`choose_start`]).
pub fn initialise<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    options: &RegisterOptions,
    reporter: &Reporter<T>,
) -> Result<Start> {
    let coarsest = fixed.levels().min(moving.levels()) - 1;
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
    let mut features_confident = false;
    if matches!(init, InitMethod::Features | InitMethod::Auto) {
        match feature_candidate(fixed, moving, centre, options.seed) {
            Ok((affine, note, confident)) => {
                notes.push(note);
                candidates.push(("features", affine));
                features_confident = confident;
            }
            Err(why) => {
                notes.push(format!("features: {why}"));
                if init == InitMethod::Features {
                    candidates.push(("phase correlation", phase(&mut notes)));
                }
            }
        }
    }
    if init == InitMethod::Auto && features_confident {
        notes.push("orientation search skipped: the feature fit is confident".into());
    } else if init == InitMethod::Auto {
        match orientation_candidates(fixed, moving, centre) {
            Ok(turns) => {
                // An unturned turn is what the phase correlation finds, but on a level where
                // a repeating pattern can lock a period off: the coarsest level's is kept.
                for (affine, note) in turns {
                    if is_turned(&affine) {
                        notes.push(note);
                        candidates.push(("orientation search", affine));
                    } else {
                        notes.push(format!("{note}: unturned, left to the phase correlation"));
                    }
                }
            }
            Err(why) => notes.push(format!("orientation: {why}")),
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
    let decision_level =
        super::shared_level_of_side(fixed, moving, super::orientation::SEARCH_SIDE);
    let fine_samples = SampleSet::random(
        &fixed.level(decision_level),
        None,
        options.samples,
        options.seed,
    );
    let fine_moving_image = moving.level(decision_level);
    let fine_moving = MovingLevel::new(&fine_moving_image);
    let cancel = reporter.cancel_token();
    let fine_score = |affine: Affine| {
        // Each start fitted briefly on this level first, so that an unturned start found on
        // 16 px, or without the scale, is not judged by what the optimisation mends anyway.
        let start = AffineParametric { affine, radius };
        let level_scale = (1u64 << decision_level) as f64;
        optimise_level(
            init_metric,
            &fine_samples,
            &fine_moving,
            level_scale,
            DECISION_ITERATIONS,
            options.relative_tolerance,
            start,
            |_, _| cancel.check(),
        )
        .map_or((f64::INFINITY, affine), |(fitted, m)| {
            (m.value, fitted.affine)
        })
    };
    // `S_m ∘ T` and `T ∘ S_f` for the moving and the fixed image's symmetries `S`. Only where the
    // turn rotates: a start turned by its scale alone has no turn to be symmetric under.
    let equivalents = |turned: &Affine| {
        if !is_rotated(turned) {
            return Vec::new();
        }
        let fine_fixed_image = fixed.level(decision_level);
        let (of_fixed, of_moving) = rayon::join(
            || symmetry(&fine_fixed_image, decision_level, turned, options),
            || symmetry(&fine_moving_image, decision_level, turned, options),
        );
        let through_fixed = of_fixed.map(|s| s.then(turned));
        let through_moving = of_moving.map(|s| turned.then(&s));
        through_fixed.into_iter().chain(through_moving).collect()
    };
    let (best, start, decision) =
        choose_start(&candidates, &scores, fine_score, equivalents, init_metric);
    let chosen = candidates[best].0;
    let why = candidates
        .iter()
        .zip(&scores)
        .map(|((name, _), s)| format!("{name} {s:.4}"))
        .chain(decision)
        .chain(notes)
        .collect::<Vec<_>>()
        .join("; ");
    reporter.log(format!("initialisation: {chosen} ({why})"));
    reporter.check()?;
    Ok(Start {
        affine: start,
        init: InitChoice {
            method: init,
            chosen: chosen.to_string(),
            why,
            turned_back: None,
        },
    })
}

/// Registers `moving` to `fixed` with an affine transform over levels `coarsest..=finest`,
/// from `start` (see [`initialise`]).
pub fn register_affine<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    options: &RegisterOptions,
    start: Start,
    finest: usize,
    reporter: &Reporter<T>,
) -> Result<AffineOutcome> {
    let coarsest = fixed.levels().min(moving.levels()) - 1;
    let finest = finest.min(coarsest);
    let radius = 0.5 * (fixed.width().max(fixed.height()) as f64);
    let mut transform = AffineParametric {
        affine: start.affine,
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
        let fraction = |it: usize| {
            (done as f32 + (it as f32 / options.iterations as f32).min(1.0)) / total_levels as f32
        };
        let (fitted, minimum) = optimise_level(
            options.metric,
            &samples,
            &moving_l,
            scale,
            options.iterations,
            options.relative_tolerance,
            transform,
            |it, value| {
                reporter.check()?;
                reporter.progress(Progress {
                    stage: Stage::Affine,
                    level: Some(level),
                    iteration: Some(it),
                    metric: Some(value),
                    fraction: fraction(it),
                });
                Ok(())
            },
        )?;
        if !minimum.value.is_finite() {
            return Err(Error::Internal(format!(
                "the metric diverged at level {level}"
            )));
        }
        transform = fitted;
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
        init: start.init,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENTRE: [f64; 2] = [50.0, 50.0];

    /// The identity and a start turned through 180°.
    fn identity_and_half_turn() -> Vec<(&'static str, Affine)> {
        vec![
            ("identity", Affine::identity(CENTRE)),
            (
                "features",
                Affine::from_matrix([-1.0, 0.0, 0.0, -1.0], [0.0, 0.0], CENTRE),
            ),
        ]
    }

    /// On the finer level the turn fits at NCC 0.91 and the identity at 0.79 (the turn is
    /// clearly better); an unturned start shifted by 3 px, at 0.905.
    fn fine(affine: Affine) -> (f64, Affine) {
        let cost = if affine.matrix[0] < 0.0 {
            -0.91
        } else if affine.translation == [3.0, 0.0] {
            -0.905
        } else {
            -0.79
        };
        (cost, affine)
    }

    fn shifted(dx: f64) -> Affine {
        Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [dx, 0.0], CENTRE)
    }

    #[test]
    fn a_clearly_better_turn_is_taken_unless_a_symmetry_reads_it_as_well_unturned() {
        let candidates = identity_and_half_turn();
        let coarse = [-0.8, -0.9];
        let ncc = metric::MetricKind::Ncc;
        let (taken, start, note) = choose_start(&candidates, &coarse, fine, |_| vec![], ncc);
        assert_eq!((taken, start), (1, candidates[1].1), "{note:?}");
        // A symmetry that makes a poor unturned start of the turn leaves the turn.
        let poor = |_: &Affine| vec![shifted(5.0)];
        let (_, start, _) = choose_start(&candidates, &coarse, fine, poor, ncc);
        assert_eq!(start, candidates[1].1);
        // A mirror-tiled print: through its symmetry the turn reads unturned nearly as well,
        // and the unturned start is kept.
        let symmetric = |_: &Affine| vec![shifted(3.0)];
        let (taken, start, note) = choose_start(&candidates, &coarse, fine, symmetric, ncc);
        assert_eq!((taken, start), (0, candidates[0].1), "{note:?}");
        assert!(note.unwrap().contains("looks the same turned"));
    }

    /// A 128 px procedural texture; mirror-tiled 2 × 2 from its 64 px corner when `tiled` (the
    /// whole image is then its own turn through 180° about the centre).
    fn texture(tiled: bool) -> GrayF32 {
        let t = crate::synth::Texture::procedural(128, 128, 11);
        let fold = |v: usize| if tiled && v >= 64 { 127 - v } else { v };
        GrayF32::from_shape_fn((128, 128), |(y, x)| {
            t.value(fold(x) as f64, fold(y) as f64) as f32
        })
    }

    #[test]
    fn the_symmetry_of_a_mirror_tiled_texture_maps_it_onto_itself() {
        let half_turn = Affine::from_matrix([-1.0, 0.0, 0.0, -1.0], [4.0, 0.0], [63.5, 63.5]);
        let options = RegisterOptions::default();
        let self_ncc = |image: &GrayF32| {
            let s = symmetry(image, 0, &half_turn, &options).expect("a fit");
            crate::analysis::ncc_after_transform(image, image, &s, 0)
        };
        let (tiled, plain) = (self_ncc(&texture(true)), self_ncc(&texture(false)));
        assert!(tiled > 0.95, "mirror-tiled: NCC {tiled}");
        assert!(plain < 0.5, "not tiled: NCC {plain}");
    }
}
