use super::*;
use crate::flow::tests::prepared_pair as smooth_pair;
use crate::job::CancelToken;

fn run(fixed: &PreparedImage, moving: &PreparedImage, solver: &dyn DemonsSolver) -> DemonsOutcome {
    let reporter = Reporter::<()>::silent(CancelToken::new());
    let identity = Affine::identity([0.0, 0.0]);
    let levels = DemonsLevels::for_size(fixed.width(), fixed.height(), 3, 0);
    estimate_demons(
        fixed,
        moving,
        &identity,
        levels,
        &DemonsParams::default(),
        solver,
        &reporter,
    )
    .unwrap()
}

/// The total displacement `exp(v)` of an outcome (identity affine) as a field.
fn displacement(outcome: &DemonsOutcome) -> crate::transform::DenseField {
    velocity::to_dense(&velocity::exp(&outcome.velocity))
}

#[test]
fn demons_recover_a_smooth_deformation_without_folding() {
    let (fixed, moving, pair) = smooth_pair(192, 3);
    let outcome = run(&fixed, &moving, &cpu::CpuDemonsSolver::default());
    assert_eq!(outcome.level, 0);
    let field = displacement(&outcome);
    let before = crate::analysis::end_point_error(
        &crate::transform::DenseField::zeros(192, 192),
        &pair.ground_truth,
        Some(&pair.mask),
    )
    .unwrap();
    let error =
        crate::analysis::end_point_error(&field, &pair.ground_truth, Some(&pair.mask)).unwrap();
    assert!(
        error.epe_mean < 0.5 && error.epe_mean < 0.2 * before.epe_mean,
        "mean end-point error {} px (identity {} px)",
        error.epe_mean,
        before.epe_mean
    );
    let jacobian =
        crate::analysis::jacobian::jacobian_qc(&field, 192, 192, None, &CancelToken::new())
            .unwrap();
    assert_eq!(
        jacobian.report.folded_fraction, 0.0,
        "{:?}",
        jacobian.report
    );
    for level in &outcome.levels {
        assert!(level.metric_end < level.metric_start, "{level:?}");
    }
}

#[test]
fn tiled_levels_stitch_into_the_untiled_result() {
    let (fixed, moving, _) = smooth_pair(128, 5);
    let whole = run(&fixed, &moving, &cpu::CpuDemonsSolver::default());
    let tiled = run(
        &fixed,
        &moving,
        &cpu::CpuDemonsSolver {
            max_tile_pixels: 90 * 90,
        },
    );
    assert!(tiled.tiles.iter().any(|&t| t > 1), "{:?}", tiled.tiles);
    // The whole level stops inside one call, the tiled one after each iteration: the same
    // test on the same RMS, so both run the same iterations.
    let iterations = |o: &DemonsOutcome| o.levels.iter().map(|l| l.iterations).collect::<Vec<_>>();
    assert_eq!(iterations(&whole), iterations(&tiled));
    let worst = whole
        .velocity
        .iter()
        .zip(tiled.velocity.iter())
        .map(|(a, b)| (a[0] - b[0]).abs().max((a[1] - b[1]).abs()))
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-4,
        "tiles differ from the whole level by {worst} px"
    );
}

#[test]
fn the_update_never_exceeds_the_maximum_step() {
    let (fixed, moving, _) = smooth_pair(64, 2);
    let (f, m) = (
        normalize::normalize_level(&fixed, 0),
        normalize::normalize_level(&moving, 0),
    );
    let params = DemonsParams {
        fluid_sigma: 0.0,
        ..Default::default()
    };
    let tile = DemonsTile {
        fixed: f.view(),
        moving: m.view(),
        affine: [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        origin: [0, 0],
        moving_origin: [0, 0],
        moving_size: [64, 64],
        own: [0, 0, 64, 64],
        params,
    };
    let warped: Vec<f32> = m.iter().copied().collect();
    let mut update = vec![[0.0f32; 2]; 64 * 64];
    cpu::force(&tile, &warped, &mut update);
    let longest = velocity::max_norm(&update);
    assert!(
        longest > 0.1 && longest <= params.max_step + 1e-5,
        "{longest}"
    );
}

#[test]
fn bad_settings_are_refused_by_name() {
    let wide = DemonsParams {
        elastic_sigma: 5.0,
        ..Default::default()
    };
    assert!(wide.validate().unwrap_err().to_string().contains("elastic"));
    let none = DemonsParams {
        iterations: 0,
        ..Default::default()
    };
    assert!(none.validate().is_err());
}
