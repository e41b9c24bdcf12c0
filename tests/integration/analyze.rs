//! `alinify analyze` end to end, and the QC that `register` writes into report.json.

use crate::common::{alinify, alinify_ok, register_pair, s, synth};

#[test]
fn register_reports_qc_and_analyze_writes_every_map_picture_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "160x128", 2, "smooth");
    let reg = dir.path().join("reg");
    register_pair(&pair, &reg, &["--mode", "fast", "--backend", "cpu"]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reg.join("report.json")).unwrap()).unwrap();
    let qc = &report["qc"];
    assert_eq!(
        qc["flags"],
        serde_json::json!([]),
        "a good registration flagged: {qc}"
    );
    assert!(qc["quality"]["maps"]["corr"]["median"].as_f64().unwrap() > 0.9);
    // The report computes only what it reads (CORR, the flag map); analyze writes all six.
    let reported: Vec<&String> = qc["quality"]["maps"].as_object().unwrap().keys().collect();
    assert_eq!(reported, ["corr"], "{qc}");
    assert_eq!(qc["jacobian"]["folded_fraction"].as_f64(), Some(0.0));

    let maps = dir.path().join("maps");
    let (fixed, moving, transform) = (
        pair.join("fixed.tif"),
        pair.join("moving.tif"),
        reg.join("transform.json"),
    );
    alinify_ok(&[
        "analyze",
        "quality",
        s(&fixed),
        s(&moving),
        "--transform",
        s(&transform),
        "--backend",
        "cpu",
        "--out",
        s(&maps),
        "-q",
    ]);
    for name in ["mse", "corr", "mi", "dm_mse", "dm_corr", "dm_mi"] {
        for ext in ["tif", "png"] {
            assert!(
                maps.join(format!("{name}.{ext}")).is_file(),
                "{name}.{ext} missing"
            );
        }
    }
    let quality: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(maps.join("quality.json")).unwrap()).unwrap();
    for key in ["mean", "median", "p5", "p95"] {
        assert!(
            quality["maps"]["dm_mi"][key].is_number(),
            "{key}: {quality}"
        );
    }
    assert!(quality["flags"].is_array());

    let jac = dir.path().join("jac");
    alinify_ok(&["analyze", "jacobian", s(&transform), "--out", s(&jac), "-q"]);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(jac.join("jacobian.json")).unwrap()).unwrap();
    for key in ["min", "max", "folded_fraction", "std_log", "flags"] {
        assert!(j.get(key).is_some(), "jacobian.json lacks {key}");
    }
    assert!(jac.join("jacobian.tif").is_file() && jac.join("jacobian.png").is_file());
}

#[test]
fn analyze_refuses_pairs_on_different_grids_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth(&dir.path().join("a"), "64x48", 1, "affine");
    let b = synth(&dir.path().join("b"), "50x40", 1, "affine");
    let out = alinify(&[
        "analyze",
        "quality",
        s(&a.join("fixed.tif")),
        s(&b.join("fixed.tif")),
        "--out",
        s(&dir.path().join("o")),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a/fixed.tif") && err.contains("b/fixed.tif") && err.contains("grid"),
        "{err}"
    );
    let out = alinify(&[
        "analyze",
        "quality",
        s(&a.join("fixed.tif")),
        s(&a.join("moving.tif")),
        "--maps",
        "ssim",
        "--out",
        s(&dir.path().join("o")),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_pair_too_narrow_for_the_default_window_still_registers_with_its_qc() {
    use alinify::raster::{AnyImage, Raster};
    let dir = tempfile::tempdir().unwrap();
    let image = |shift: usize| {
        let v: Vec<f32> = (0..300 * 5)
            .map(|i| (((i % 300 + shift) as f32) * 0.21).sin() * 0.4 + 0.5)
            .collect();
        AnyImage::F32(Raster::from_interleaved(300, 5, 1, v).unwrap())
    };
    let (fixed, moving) = (dir.path().join("f.tif"), dir.path().join("m.tif"));
    alinify::io::save_image(&fixed, &image(0)).unwrap();
    alinify::io::save_image(&moving, &image(1)).unwrap();
    let out = dir.path().join("out");
    alinify_ok(&["register", s(&fixed), s(&moving), "--out", s(&out), "-q"]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["qc"]["quality"]["radius"], 2, "{}", report["qc"]);
}
