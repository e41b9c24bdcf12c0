//! The accurate mode's non-rigid stage: a cubic B-spline displacement added to the affine,
//! optimised from coarse to fine. Each step of the schedule pairs a pyramid level with a control
//! grid; when the grid spacing halves, the grid is refined exactly (the deformation is kept) and
//! optimisation continues on the finer level.

use super::{RegisterOptions, bending};
use crate::job::{Progress, Reporter, Stage};
use crate::metric::{self, MovingLevel, SampleSet};
use crate::optimize::LevelReport;
use crate::optimize::{LbfgsParams, lbfgs};
use crate::raster::PreparedImage;
use crate::transform::{Affine, AffineBSpline, BSplineTransform, Parametric, Transform};
use crate::{Error, Result};
use ndarray::Array2;

/// One step of the coarse-to-fine schedule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ScheduleStep {
    /// Pyramid level (0 = full resolution).
    pub level: usize,
    /// Control-point spacing in full-resolution pixels.
    pub spacing: f64,
}

/// Smallest parameter scale of the preconditioner: a control point constrained 25 times less
/// than the median one moves at most 5 times faster.
const PRECONDITION_MIN: f64 = 0.2;

/// Longest side of the level the B-spline stage starts at: coarse enough that a deformation of a
/// few percent of the image is a few pixels there.
pub const START_MAX_SIDE: usize = 512;

/// Longest side of the level the envelope steps start at: a repeating pattern (bricks, a
/// printed motif) is averaged out there, its envelope is not, so the coarse grid finds a large
/// deformation before the pattern can lock it one period off (measured: a mosaic with a brick
/// quadrant under a 5 % deformation, 1024 px: mean EPE 1.61 px from 512 px, 0.06 px from 32 px).
pub const ENVELOPE_MAX_SIDE: usize = 32;

/// The schedule for an image of `width x height`: from the level whose longest side is at most
/// [`START_MAX_SIDE`] (and at least `grid_levels - 1` above `finest`) down to `finest`. The grid
/// spacing starts at `final_spacing * 2^(grid_levels - 1)` and halves at every level until it
/// reaches `final_spacing`, which any further (finer) levels keep: the grid resolves a
/// deformation while the level it is on still has the coarse view to capture it. Before that,
/// with `envelope_steps`, the coarsest grid runs on the coarser levels up to
/// [`ENVELOPE_MAX_SIDE`] px (as far as the pyramid goes). Mutual information goes without them:
/// its joint histogram is too noisy on such small levels (measured on the real cross-stain
/// landmark pairs: median rTRE 0.0029 / 0.0082 against 0.0024 / 0.0078 without, on the rat
/// kidney and the lung Cc10 pair).
pub fn schedule(
    width: usize,
    height: usize,
    finest: usize,
    coarsest: usize,
    final_spacing: f64,
    grid_levels: usize,
    envelope_steps: bool,
) -> Vec<ScheduleStep> {
    let grid_levels = grid_levels.max(1);
    let mut start = finest + grid_levels - 1;
    while (width.max(height) >> start) > START_MAX_SIDE && start < coarsest {
        start += 1;
    }
    let start = start.min(coarsest).max(finest);
    let steps_at_final = (start - finest + 1).saturating_sub(grid_levels);
    let spacing_at = |level: usize| {
        let doublings = (level - finest).saturating_sub(steps_at_final);
        final_spacing * (1u64 << doublings.min(grid_levels - 1)) as f64
    };
    // The envelope steps: coarser levels still, at the coarsest spacing.
    let mut envelope = start;
    while envelope_steps
        && (width.max(height) >> envelope) > ENVELOPE_MAX_SIDE
        && envelope < coarsest
    {
        envelope += 1;
    }
    let coarsest_spacing = spacing_at(start);
    (start + 1..=envelope)
        .rev()
        .map(|level| ScheduleStep {
            level,
            spacing: coarsest_spacing,
        })
        .chain((finest..=start).rev().map(|level| ScheduleStep {
            level,
            spacing: spacing_at(level),
        }))
        .collect()
}

/// The B-spline stage's result.
#[derive(Debug, Clone)]
pub struct BSplineOutcome {
    /// The transform found.
    pub transform: AffineBSpline,
    /// Per step of the schedule.
    pub levels: Vec<LevelReport>,
}

/// What limits and guides the B-spline beside the images: masks of the fixed and moving
/// images (full resolution; `true` = use the pixel) and landmark pairs.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// Samples are drawn only here.
    pub fixed: Option<Array2<bool>>,
    /// Samples mapping outside this are ignored.
    pub moving: Option<Array2<bool>>,
    /// Landmark pairs the result should follow.
    pub landmarks: Option<LandmarkGuide>,
}

/// Landmark pairs that guide the B-spline: the cost gains `weight` times the mean squared
/// distance, in pixels of the level being registered, between `T(fixed[i])` and `moving[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkGuide {
    /// Fixed-image landmarks (full-resolution pixels).
    pub fixed: Vec<[f64; 2]>,
    /// Their partners in the moving image.
    pub moving: Vec<[f64; 2]>,
    /// The weight (`--landmark-weight`).
    pub weight: f64,
}

impl LandmarkGuide {
    /// The landmark term at `transform` for a level of `scale` full-resolution pixels per
    /// pixel; adds its gradient to `grad`.
    pub fn cost(&self, transform: &AffineBSpline, scale: f64, grad: Option<&mut [f64]>) -> f64 {
        let n = self.fixed.len().min(self.moving.len());
        if n == 0 || self.weight == 0.0 {
            return 0.0;
        }
        let k = self.weight / (n as f64 * scale * scale);
        let mut value = 0.0;
        let mut jacobian = Vec::new();
        let mut grad = grad;
        for (f, m) in self.fixed.iter().zip(&self.moving) {
            let q = transform.map_point(f[0], f[1]);
            let r = [q[0] - m[0], q[1] - m[1]];
            value += k * (r[0] * r[0] + r[1] * r[1]);
            if let Some(g) = grad.as_deref_mut() {
                jacobian.clear();
                transform.param_jacobian(f[0], f[1], &mut jacobian);
                for &(i, dx, dy) in &jacobian {
                    g[i] += 2.0 * k * (r[0] * dx + r[1] * dy);
                }
            }
        }
        value
    }
}

/// A mask at pyramid level `level` (every `2^level`-th pixel, matching the pyramid's grid).
pub fn mask_at_level(
    mask: &Array2<bool>,
    level: usize,
    width: usize,
    height: usize,
) -> Array2<bool> {
    let step = 1usize << level;
    Array2::from_shape_fn((height, width), |(y, x)| {
        let (sy, sx) = (
            (y * step).min(mask.nrows() - 1),
            (x * step).min(mask.ncols() - 1),
        );
        mask[[sy, sx]]
    })
}

/// Samples at the finest level unless set: a fifth of its pixels, between 20 000 and 300 000.
/// (Measured on a 1024 px generated pair: 20 000 samples gave 0.074 px mean error, 200 000 gave
/// 0.039 px; the noise of the fixed sample set, not the optimiser, limited the accuracy.)
pub fn default_final_samples(level_pixels: usize) -> usize {
    (level_pixels / 5).clamp(20_000, 300_000)
}

/// How many pyramid levels the moving image's level is ahead of the fixed one's, so that both
/// show the same detail: `round(log2 s)` for the affine's scale `s` (moving pixels per fixed
/// pixel). A moving image scanned at twice the resolution has, on its level `l`, the detail of
/// the fixed image's level `l - 1`; compared level by level, the sharper side's edges pull the
/// grid, and where there is no content (a slide's background) nothing pulls it back (measured:
/// a section against itself at scale 2, mean end-point error 0.38 px level by level, 0.004 px
/// with one level, all of it in the background).
fn moving_level_offset(affine: &Affine) -> isize {
    let (_, scale, _) = affine.rotation_scale_mirror();
    if scale > 0.0 && scale.is_finite() {
        scale.log2().round() as isize
    } else {
        0
    }
}

/// Registers with `T(p) = A(p) + d(p)` from `affine`, following `steps`.
pub fn register_bspline<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    affine: Affine,
    steps: &[ScheduleStep],
    options: &RegisterOptions,
    constraints: &Constraints,
    reporter: &Reporter<T>,
) -> Result<BSplineOutcome> {
    let (w, h) = (fixed.width(), fixed.height());
    let first = steps
        .first()
        .ok_or_else(|| Error::Internal("empty B-spline schedule".into()))?;
    let mut transform = AffineBSpline {
        affine,
        bspline: BSplineTransform::new(w, h, [first.spacing, first.spacing]),
    };
    let mut levels = Vec::new();
    let offset = moving_level_offset(&affine);
    let bending_weight = bending::weight_per_px(options.bending_weight, w, h);
    let finest = steps.last().map_or(0, |s| s.level);
    let energy = {
        let image = fixed.level(finest);
        let mask = constraints
            .fixed
            .as_ref()
            .map(|m| mask_at_level(m, finest, image.ncols(), image.nrows()));
        super::unconstrained::GradientEnergy::new(&image, mask.as_ref(), finest, first.level)
    };
    for (done, step) in steps.iter().enumerate() {
        reporter.check()?;
        let level_started = std::time::Instant::now();
        while transform.bspline.spacing[0] > step.spacing * 1.5 {
            transform.bspline = transform.bspline.refined();
        }
        let scale = (1u64 << step.level) as f64;
        let moving_index =
            (step.level as isize + offset).clamp(0, moving.levels() as isize - 1) as usize;
        let moving_scale = (1u64 << moving_index) as f64;
        let fixed_l = fixed.level(step.level);
        let moving_l = moving.level(moving_index);
        let fixed_mask = constraints
            .fixed
            .as_ref()
            .map(|m| mask_at_level(m, step.level, fixed_l.ncols(), fixed_l.nrows()));
        let mut moving_level = MovingLevel::new(&moving_l);
        if let Some(m) = &constraints.moving {
            moving_level = moving_level.with_mask(mask_at_level(
                m,
                moving_index,
                moving_l.ncols(),
                moving_l.nrows(),
            ));
        }
        drop(moving_l);
        let n_params = transform.num_params();
        let mut count = options.samples.max(20 * n_params).min(400_000);
        if done + 1 == steps.len() {
            // The finest level decides the final accuracy: it gets the most samples.
            let pixels = fixed_l.len();
            count = count.max(
                options
                    .final_samples
                    .unwrap_or_else(|| default_final_samples(pixels)),
            );
        }
        let samples = SampleSet::random(
            &fixed_l,
            fixed_mask.as_ref(),
            count,
            options.seed + 100 + step.level as u64,
        );
        // Points that nothing in the fixed image constrains (a clean, empty slide) are filled
        // from their neighbours after the level, instead of keeping what noise made of them.
        let constrained = super::unconstrained::constrained(
            &energy.control_point_information(&transform.bspline, step.level),
            super::unconstrained::SHARE,
        );
        drop(fixed_l);
        let params = LbfgsParams {
            iterations: options.iterations,
            max_step: 2.0 * scale,
            relative_tolerance: options.relative_tolerance,
            ..LbfgsParams::default()
        };
        let cache = metric::BSplineSampleCache::new(&transform, &samples, scale);
        let mut scratch = metric::Scratch::default();
        // Precondition: parameters are optimised in units scaled by how strongly the samples
        // constrain each control point, so weakly constrained border points are not left behind.
        let density = cache.support_density();
        let mut sorted: Vec<f64> = density.iter().copied().filter(|&d| d > 0.0).collect();
        sorted.sort_by(f64::total_cmp);
        let reference = sorted
            .get(sorted.len() / 2)
            .copied()
            .unwrap_or(1.0)
            .max(1e-300);
        let unit: Vec<f64> = density
            .iter()
            .map(|&d| (d / reference).sqrt().clamp(PRECONDITION_MIN, 1.0))
            .collect();
        let unit: Vec<f64> = unit.iter().chain(unit.iter()).copied().collect();
        let mut probe = transform.clone();
        let mut x = vec![0.0; unit.len()];
        let objective = |y: &[f64], g: &mut [f64]| {
            x.iter_mut()
                .zip(y)
                .zip(&unit)
                .for_each(|((x, y), s)| *x = y / s);
            probe.set_params(&x);
            let bound = cache.bind(&probe);
            let value = metric::evaluate_sampled(
                options.metric,
                &samples,
                &moving_level,
                &bound,
                moving_scale,
                Some(g),
                &mut scratch,
            )?
            .value;
            let mut penalty = bending::bending_energy(&probe.bspline, bending_weight, Some(g));
            if let Some(guide) = &constraints.landmarks {
                penalty += guide.cost(&probe, scale, Some(g));
            }
            g.iter_mut().zip(&unit).for_each(|(g, s)| *g /= s);
            Ok(value + penalty)
        };
        let total = steps.len() as f32;
        let start: Vec<f64> = transform
            .params()
            .iter()
            .zip(&unit)
            .map(|(p, s)| p * s)
            .collect();
        let minimum = lbfgs(objective, &start, &params, |it, value| {
            reporter.check()?;
            reporter.progress(Progress {
                stage: Stage::Register,
                level: Some(step.level),
                iteration: Some(it),
                metric: Some(value),
                fraction: (done as f32 + (it as f32 / options.iterations as f32).min(1.0)) / total,
            });
            Ok(())
        })?;
        if !minimum.value.is_finite() {
            return Err(Error::Internal(format!(
                "the metric diverged at level {}",
                step.level
            )));
        }
        let found: Vec<f64> = minimum.x.iter().zip(&unit).map(|(y, s)| y / s).collect();
        transform.set_params(&found);
        let filled = constrained.as_ref().map_or(0, |c| {
            super::unconstrained::fill_unconstrained(&mut transform.bspline, c);
            c.iter().filter(|&&constrained| !constrained).count()
        });
        let [gx, gy] = transform.bspline.grid();
        reporter.log(format!(
            "B-spline level {} (grid {gx} x {gy}, spacing {:.1} px, {} samples): {} iterations, metric {:.6} -> {:.6} ({:?}){}",
            step.level, step.spacing, samples.points.len(), minimum.iterations, minimum.start_value, minimum.value, minimum.stop,
            if filled > 0 { format!("; {filled} control points that nothing constrains filled from their neighbours") } else { String::new() }
        ));
        levels.push(LevelReport::new(
            step.level,
            "bspline",
            [w >> step.level, h >> step.level],
            samples.points.len(),
            &minimum,
            level_started.elapsed().as_secs_f64(),
        ));
    }
    Ok(BSplineOutcome { transform, levels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_halves_the_grid_over_the_last_levels_after_envelope_steps() {
        let s = schedule(4096, 4096, 0, 6, 200.0, 4, true);
        let levels: Vec<usize> = s.iter().map(|s| s.level).collect();
        assert_eq!(levels, vec![6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(
            s.iter().map(|s| s.spacing).collect::<Vec<_>>(),
            vec![1600.0, 1600.0, 1600.0, 1600.0, 800.0, 400.0, 200.0],
            "the envelope steps keep the coarsest grid"
        );
        assert_eq!(
            schedule(4096, 4096, 0, 9, 200.0, 4, true)[0].level,
            7,
            "32 px at most"
        );
        assert_eq!(
            schedule(4096, 4096, 0, 6, 200.0, 4, false)[0].level,
            3,
            "without envelope steps the grid starts at 512 px"
        );
        let big = schedule(17320, 17320, 1, 8, 866.0, 4, true);
        assert_eq!(big.first().unwrap().level, 8);
        assert_eq!(
            big.last().unwrap(),
            &ScheduleStep {
                level: 1,
                spacing: 866.0
            }
        );
        assert_eq!(
            big.iter().map(|s| s.spacing / 866.0).collect::<Vec<_>>(),
            vec![8.0, 8.0, 8.0, 4.0, 2.0, 1.0, 1.0, 1.0],
            "the grid halves from the start level and stays at the final spacing below"
        );
    }

    #[test]
    fn the_landmark_term_is_zero_on_target_and_its_gradient_is_exact() {
        let mut t = AffineBSpline {
            affine: Affine::similarity(0.05, 1.02, [3.0, -1.0], [50.0, 40.0]),
            bspline: BSplineTransform::new(100, 80, [20.0, 20.0]),
        };
        let fixed = vec![[10.0, 12.0], [55.5, 41.0], [90.0, 70.0]];
        let moving: Vec<[f64; 2]> = fixed.iter().map(|p| t.map_point(p[0], p[1])).collect();
        let guide = LandmarkGuide {
            fixed,
            moving,
            weight: 0.5,
        };
        assert!(guide.cost(&t, 2.0, None).abs() < 1e-20);
        let mut rng = crate::rng::SplitMix64::new(8);
        let mut params: Vec<f64> = (0..t.num_params())
            .map(|_| rng.uniform(-2.0, 2.0))
            .collect();
        t.set_params(&params);
        let mut g = vec![0.0; params.len()];
        let value = guide.cost(&t, 2.0, Some(&mut g));
        assert!(value > 0.0);
        for i in (0..params.len()).step_by(7) {
            let h = 1e-6;
            params[i] += h;
            t.set_params(&params);
            let up = guide.cost(&t, 2.0, None);
            params[i] -= 2.0 * h;
            t.set_params(&params);
            let down = guide.cost(&t, 2.0, None);
            params[i] += h;
            let numeric = (up - down) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()),
                "{i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn the_moving_pyramid_is_read_ahead_by_the_affines_scale() {
        let affine = |m: [f64; 4]| Affine::from_matrix(m, [0.0, 0.0], [0.0, 0.0]);
        let turned = |s: f64, deg: f64| {
            let (sn, cs) = deg.to_radians().sin_cos();
            affine([-s * cs, -s * sn, -s * sn, s * cs])
        };
        assert_eq!(moving_level_offset(&affine([1.0, 0.0, 0.0, 1.0])), 0);
        assert_eq!(moving_level_offset(&turned(1.4, 37.0)), 0);
        assert_eq!(
            moving_level_offset(&turned(2.0, 37.0)),
            1,
            "mirrored, scale 2"
        );
        assert_eq!(moving_level_offset(&turned(0.5, 200.0)), -1);
        assert_eq!(moving_level_offset(&turned(4.3, 0.0)), 2);
        assert_eq!(moving_level_offset(&affine([0.0; 4])), 0, "degenerate");
    }
}
