//! The command line end to end: conventions, accuracy and outputs.

use crate::common::{
    alinify, alinify_ok, register_and_score, register_pair, s, synth, warp_with_saved_transform,
};
use alinify::io;

/// Warping moving.tif by gt.flo reproduces fixed.tif: the displacement convention
/// `warped(x, y) = moving(x + u, y + v)` holds through synth, the .flo format and warp.
#[test]
fn warping_moving_by_ground_truth_reproduces_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "512x384", 5, "both");
    let transform = pair.join("gt-transform.json");
    std::fs::write(
        &transform,
        r#"{"format":"alinify-transform","version":1,
            "fixed":{"width":512,"height":384},"moving":{"width":512,"height":384},
            "transform":{"type":"dense","field":"gt.flo"}}"#,
    )
    .unwrap();
    let warped = dir.path().join("warped.tif");
    alinify_ok(&[
        "warp",
        s(&pair.join("moving.tif")),
        s(&transform),
        "--reference",
        s(&pair.join("fixed.tif")),
        "-o",
        s(&warped),
        "-q",
    ]);
    let fixed = io::load_image(&pair.join("fixed.tif")).unwrap().luminance();
    let moving = io::load_image(&pair.join("moving.tif"))
        .unwrap()
        .luminance();
    let warped = io::load_image(&warped).unwrap().luminance();
    let mask = io::load_mask(&pair.join("mask.png")).unwrap();
    let valid = mask.iter().filter(|&&m| m).count();
    assert!(valid > 512 * 384 * 3 / 4, "mask too small: {valid}");
    let after = alinify::raster::ncc(&fixed, &warped, Some(&mask));
    let before = alinify::raster::ncc(&fixed, &moving, Some(&mask));
    assert!(
        after > 0.98,
        "NCC inside the mask after warping by the ground truth: {after}"
    );
    assert!(
        before < after - 0.1,
        "the pair should differ before warping: {before} vs {after}"
    );
}

#[test]
fn affine_registration_recovers_a_generated_affine_to_a_tenth_of_a_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "1024x1024", 11, "affine");
    let out = dir.path().join("out");
    let epe = register_and_score(&pair, &out, &["--mode", "affine"]);
    assert!(epe < 0.1, "mean EPE {epe} px");

    // The outputs the contract promises.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for key in [
        "mode",
        "backend",
        "adapter",
        "seconds",
        "levels",
        "ncc_before",
        "ncc_after",
        "fixed",
    ] {
        assert!(report.get(key).is_some(), "report.json lacks {key}");
    }
    for stage in ["load", "pyramid", "register", "warp", "write", "total"] {
        assert!(
            report["seconds"][stage].as_f64().is_some(),
            "no time for {stage}"
        );
    }
    assert!(report["ncc_after"].as_f64().unwrap() > report["ncc_before"].as_f64().unwrap());
    let level = &report["levels"][0];
    assert!(level["iterations"].as_u64().unwrap() > 0 && level["metric_end"].as_f64().is_some());
    let warped = io::load_image(&out.join("warped.tif")).unwrap();
    assert_eq!((warped.width(), warped.height()), (1024, 1024));

    // `warp` with the saved transform reproduces warped.tif.
    let again = dir.path().join("again.tif");
    warp_with_saved_transform(&pair, &out, &again);
    assert_eq!(io::load_image(&again).unwrap(), warped);
}

#[test]
fn every_metric_registers_an_affine_pair_with_changed_intensities() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "384x320", 2, "affine");
    for metric in ["mse", "ncc", "mi"] {
        let out = dir.path().join(metric);
        let epe = register_and_score(&pair, &out, &["--mode", "affine", "--metric", metric]);
        assert!(epe < 0.2, "{metric}: mean EPE {epe} px");
    }
}

#[test]
fn rgb_input_registers_on_luminance_and_warps_every_channel() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "256x256", 8, "affine");
    // Make an RGB moving image from the gray one.
    let gray = io::load_image(&pair.join("moving.tif")).unwrap();
    let alinify::raster::AnyImage::U8(g) = gray else {
        panic!("8-bit synth")
    };
    let rgb: Vec<u8> = g.data.iter().flat_map(|&v| [v, v, v]).collect();
    let rgb = alinify::raster::Raster::from_interleaved(256, 256, 3, rgb).unwrap();
    let moving_rgb = dir.path().join("moving_rgb.png");
    io::save_image(&moving_rgb, &alinify::raster::AnyImage::U8(rgb)).unwrap();
    let out = dir.path().join("out");
    alinify_ok(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&moving_rgb),
        "--out",
        s(&out),
        "-q",
    ]);
    let warped = io::load_image(&out.join("warped.tif")).unwrap();
    assert_eq!(
        (warped.channels(), warped.depth()),
        (3, alinify::raster::SampleDepth::U8)
    );
}

#[test]
fn synth_is_deterministic_and_writes_the_four_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth(&dir.path().join("a"), "64x48", 3, "smooth");
    let b = synth(&dir.path().join("b"), "64x48", 3, "smooth");
    for f in ["fixed.tif", "moving.tif", "gt.flo", "mask.png"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn usage_errors_exit_with_status_2() {
    assert_eq!(alinify(&["register"]).status.code(), Some(2));
    assert_eq!(
        alinify(&["synth", "--size", "banana", "--out", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        alinify(&["register", "a", "b", "--mode", "sideways"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(alinify(&["--help"]).status.code(), Some(0));
    // A file given to the window that is not there fails, named, before a window opens.
    let missing = alinify(&["only-one.tif"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("only-one.tif"));
}

/// `alinify compose` warps the moving layer through a saved transform on the fly: the
/// difference composite of a registered pair equals |warped.tif - fixed.tif|, and is darker
/// than the raw pair's.
#[test]
fn compose_warps_through_the_transform_and_writes_a_full_resolution_composite() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(dir.path(), "200x160", 8, "affine");
    let out = dir.path().join("reg");
    register_pair(&pair, &out, &["--mode", "affine"]);
    let (fixed, moving) = (pair.join("fixed.tif"), pair.join("moving.tif"));
    let difference = |transform: Option<&std::path::Path>| {
        let composite = dir.path().join("composite.tif");
        let mut args = vec![
            "compose",
            s(&fixed),
            s(&moving),
            "--blend",
            "difference",
            "--backend",
            "cpu",
            "-o",
            s(&composite),
            "-q",
        ];
        if let Some(t) = transform {
            args.extend(["--transform", s(t)]);
        }
        alinify_ok(&args);
        let image = io::load_image(&composite).unwrap();
        assert_eq!(
            [image.width(), image.height(), image.channels()],
            [200, 160, 3]
        );
        image.luminance()
    };
    // The inner part: the warped layer covers it.
    let inner = ndarray::s![20..140, 20..180];
    let raw = difference(None);
    let registered = difference(Some(&out.join("transform.json")));
    let warped = io::load_image(&out.join("warped.tif")).unwrap().luminance();
    let fixed_gray = io::load_image(&fixed).unwrap().luminance();
    let expected = (&warped - &fixed_gray).mapv(f32::abs);
    let worst = (&registered.slice(inner) - &expected.slice(inner))
        .iter()
        .fold(0f32, |m, d| m.max(d.abs()));
    assert!(
        worst <= 2.0 / 255.0,
        "composite differs from warped.tif by {worst}"
    );
    let (after, before) = (
        registered.slice(inner).mean().unwrap(),
        raw.slice(inner).mean().unwrap(),
    );
    assert!(
        after < before,
        "difference after {after:.4} vs before {before:.4}"
    );
    let bad = alinify(&[
        "compose", "a.tif", "b.tif", "--blend", "sparkles", "-o", "c.tif",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// On a machine without a desktop session (no XDG_RUNTIME_DIR, no display: a Slurm node), the
/// GPU paths print no false error lines, even without `-q`, and the fast mode still shows its
/// progress, as plain lines.
#[test]
fn headless_gpu_runs_print_no_runtime_dir_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(dir.path(), "96x96", 2, "both");
    let (fixed, moving) = (pair.join("fixed.tif"), pair.join("moving.tif"));
    let out = dir.path().join("reg");
    let composite = dir.path().join("c.tif");
    let runs: [Vec<&str>; 2] = [
        vec![
            "register",
            s(&fixed),
            s(&moving),
            "--mode",
            "fast",
            "--out",
            s(&out),
        ],
        vec!["compose", s(&fixed), s(&moving), "-o", s(&composite)],
    ];
    for args in runs {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_alinify"))
            .args(&args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("NODEVICE_SELECT")
            .env_remove("ALINIFY_BACKEND")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{args:?}: {stderr}");
        // Without a terminal the progress still shows, as plain lines, through the flow.
        if args[0] == "register" {
            let flow_lines = stderr
                .lines()
                .filter(|l| l.starts_with("progress") && l.contains("register level"))
                .count();
            assert!(flow_lines >= 2, "{stderr}");
        }
    }
}

/// A registration whose input is missing fails before it makes its output folder.
#[test]
fn a_missing_input_leaves_no_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(dir.path(), "64x64", 1, "affine");
    let out = dir.path().join("never");
    let missing = dir.path().join("missing.tif");
    let run = alinify(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&missing),
        "--out",
        s(&out),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("missing.tif"));
    assert!(!out.exists(), "an empty output folder was left");
}
