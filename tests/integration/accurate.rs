//! Accurate mode: recovering a known B-spline deformation, cancellation, presets and export.

use crate::common::{alinify_ok, register_and_score, register_pair, s, synth};
use alinify::analysis::end_point_error;
use alinify::job::{CancelToken, Progress, Reporter};
use alinify::raster::{AnyImage, GrayF32, SampleDepth};
use alinify::register::{Mode, RegisterOptions, RegisterRequest, register_files};
use alinify::synth::Texture;
use alinify::transform::{BSplineTransform, Transform, displacement_field};
use std::sync::{Arc, Mutex};

/// fixed(p) = tex(T(p)) and moving(q) = tex(q), with T = p + d(p) a B-spline on the grid the
/// registration ends on: the registration must find d.
#[test]
fn known_bspline_deformation_is_recovered_to_a_tenth_of_a_pixel() {
    let (w, h) = (384usize, 320usize);
    let spacing = w as f64 / 8.0;
    let mut truth = BSplineTransform::new(w, h, [spacing, spacing]);
    let mut rng = alinify::rng::SplitMix64::new(21);
    truth.u.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
    truth.v.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
    let tex = Texture::procedural(w, h, 5);
    let fixed = GrayF32::from_shape_fn((h, w), |(y, x)| {
        let [qx, qy] = truth.map_point(x as f64, y as f64);
        tex.value(qx, qy) as f32
    });
    let moving = GrayF32::from_shape_fn((h, w), |(y, x)| tex.value(x as f64, y as f64) as f32);
    let dir = tempfile::tempdir().unwrap();
    let (fp, mp) = (dir.path().join("fixed.tif"), dir.path().join("moving.tif"));
    alinify::io::save_image(&fp, &AnyImage::from_gray_units(&fixed, SampleDepth::F32)).unwrap();
    alinify::io::save_image(&mp, &AnyImage::from_gray_units(&moving, SampleDepth::F32)).unwrap();

    let out = dir.path().join("out");
    let field = out.join("f.flo");
    alinify_ok(&[
        "register",
        s(&fp),
        s(&mp),
        "--mode",
        "accurate",
        "--metric",
        "mse",
        "--grid-spacing",
        &spacing.to_string(),
        "--grid-levels",
        "3",
        "--out",
        s(&out),
        "--field",
        s(&field),
        "-q",
    ]);
    let estimate = alinify::io::flo::read_flo(&field).unwrap();
    let gt = displacement_field(&truth, w, h);
    // Score away from the border, where the moving image has no texture to map to.
    let mask = ndarray::Array2::from_shape_fn((h, w), |(y, x)| {
        let [qx, qy] = truth.map_point(x as f64, y as f64);
        qx > 2.0 && qy > 2.0 && qx < w as f64 - 3.0 && qy < h as f64 - 3.0
    });
    let epe = end_point_error(&estimate, &gt, Some(&mask)).unwrap();
    assert!(
        epe.epe_mean < 0.1,
        "mean EPE {} px (p95 {})",
        epe.epe_mean,
        epe.epe_p95
    );
}

#[test]
fn accurate_mode_beats_affine_on_a_smooth_deformation() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "512x512", 4, "both");
    let mut epe = Vec::new();
    for mode in ["affine", "accurate"] {
        epe.push(register_and_score(
            &pair,
            &dir.path().join(mode),
            &["--mode", mode],
        ));
    }
    assert!(epe[1] < 0.25, "accurate mean EPE {} px", epe[1]);
    assert!(
        epe[1] < epe[0] / 4.0,
        "accurate {} px vs affine {} px",
        epe[1],
        epe[0]
    );
}

/// Sums over samples are split by sample count, never by thread count, so a result on a
/// 2-core laptop reproduces on a 16-core workstation bit for bit.
#[test]
fn accurate_results_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "320x288", 8, "both");
    let transforms: Vec<String> = ["1", "3"]
        .iter()
        .map(|threads| {
            let out = dir.path().join(format!("threads-{threads}"));
            let settings = [
                "--mode",
                "accurate",
                "--metric",
                "mi",
                "--final-samples",
                "30000",
            ];
            register_pair(
                &pair,
                &out,
                &[&settings[..], &["--threads", threads]].concat(),
            );
            std::fs::read_to_string(out.join("transform.json")).unwrap()
        })
        .collect();
    assert!(
        transforms[0] == transforms[1],
        "transform.json differs between 1 and 3 threads"
    );
}

#[test]
fn cancelling_stops_within_one_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "512x512", 6, "both");
    let request = pair_request(
        &pair,
        dir.path().join("out"),
        RegisterOptions {
            mode: Mode::Accurate,
            ..RegisterOptions::default()
        },
    );
    // The observer runs on the worker's thread, so the count after cancelling is exact.
    let cancel = CancelToken::new();
    let state = Arc::new(Mutex::new((None::<usize>, 0usize)));
    let (observer_cancel, observer_state) = (cancel.clone(), state.clone());
    let reporter = Reporter::<()>::observed(
        cancel.clone(),
        Arc::new(move |p: &Progress| {
            let Some(it) = p.iteration else { return };
            let mut s = observer_state.lock().unwrap();
            match s.0 {
                None if it >= 2 => {
                    observer_cancel.cancel();
                    s.0 = Some(it);
                }
                Some(_) => s.1 += 1,
                None => {}
            }
        }),
    );
    let result = register_files(&request, &reporter);
    let (cancelled_at, iterations_after) = *state.lock().unwrap();
    assert!(cancelled_at.is_some(), "no iteration was reported");
    assert!(
        matches!(result, Err(alinify::Error::Cancelled)),
        "{result:?}"
    );
    assert!(
        iterations_after <= 1,
        "{iterations_after} iterations ran after cancelling"
    );
    assert!(
        !dir.path().join("out/warped.tif").exists(),
        "a cancelled run wrote outputs"
    );
}

#[test]
fn preset_and_elastix_export_are_used_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "256x256", 9, "both");
    let preset = dir.path().join("p.toml");
    std::fs::write(
        &preset,
        "mode = \"accurate\"\nmetric = \"mi\"\ngrid_levels = 2\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let export = dir.path().join("TransformParameters.txt");
    alinify_ok(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&pair.join("moving.tif")),
        "--preset",
        s(&preset),
        "--out",
        s(&out),
        "--export-elastix",
        s(&export),
        "-q",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["options"]["metric"], "mi");
    assert_eq!(report["mode"], "accurate");
    let ours = alinify::io::TransformFile::load(&out.join("transform.json"))
        .unwrap()
        .build(&out)
        .unwrap();
    let back = alinify::io::elastix::import(&export)
        .unwrap()
        .build(&out)
        .unwrap();
    for &(x, y) in &[(3.0, 5.0), (128.0, 77.0), (255.0, 255.0)] {
        let (a, b) = (ours.map_point(x, y), back.map_point(x, y));
        assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6);
    }
}

#[test]
fn a_bundled_preset_is_taken_by_name_flags_win_over_it_and_accurate_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "192x160", 4, "both");
    let report = |out: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
    };
    let named = dir.path().join("named");
    register_pair(
        &pair,
        &named,
        &["--preset", "cross-stain", "--bending-weight", "0.05"],
    );
    let options = &report(&named)["options"];
    assert_eq!(options["mode"], "accurate");
    assert_eq!(options["metric"], "mi");
    assert_eq!(options["grid_levels"], 3);
    assert_eq!(options["bending_weight"], 0.05);
    let plain = dir.path().join("plain");
    register_pair(&pair, &plain, &["--iterations", "5"]);
    let r = report(&plain);
    assert_eq!(r["mode"], "accurate");
    assert_eq!(r["options"]["iterations"], 5);
    assert_eq!(r["options"]["metric"], "ncc");
}

/// Each stage reports its own 0 to 1 inside its share of the job, so the bar a person (or the
/// terminal) watches only moves forward, from the load to the write, in every mode.
#[test]
fn the_progress_fraction_never_runs_back_in_any_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "160x160", 3, "both");
    for mode in [Mode::Fast, Mode::Accurate, Mode::Affine] {
        let request = pair_request(
            &pair,
            dir.path().join(mode.to_string()),
            RegisterOptions {
                mode,
                backend: alinify::register::Backend::Cpu,
                ..RegisterOptions::default()
            },
        );
        let fractions = Arc::new(Mutex::new(Vec::new()));
        let seen = fractions.clone();
        let reporter = Reporter::<()>::observed(
            CancelToken::new(),
            Arc::new(move |p: &Progress| seen.lock().unwrap().push((p.stage, p.fraction))),
        );
        register_files(&request, &reporter).unwrap();
        let fractions = fractions.lock().unwrap();
        assert!(
            fractions.len() > 5,
            "{mode}: only {} events",
            fractions.len()
        );
        for step in fractions.windows(2) {
            assert!(
                step[1].1 >= step[0].1,
                "{mode}: the bar ran back from {:?} to {:?}",
                step[0],
                step[1]
            );
        }
        let last = fractions.last().unwrap().1;
        assert!((0.9..=1.0).contains(&last), "{mode}: ended at {last}");
    }
}

/// A request to register the generated pair in `pair` into `out_dir`, with no extra outputs.
fn pair_request(
    pair: &std::path::Path,
    out_dir: std::path::PathBuf,
    options: RegisterOptions,
) -> RegisterRequest {
    RegisterRequest {
        fixed: pair.join("fixed.tif"),
        moving: pair.join("moving.tif"),
        out_dir,
        field: None,
        export_elastix: None,
        fixed_mask: None,
        moving_mask: None,
        landmarks: None,
        options,
    }
}
