//! `alinify analyze features`: a rotated, mirrored copy is matched; unrelated images fail with
//! the reason.

use crate::common::{alinify, alinify_ok, s};
use alinify::raster::{AnyImage, GrayF32, SampleDepth};
use alinify::synth::Texture;

fn save(path: &std::path::Path, image: &GrayF32) {
    alinify::io::save_image(path, &AnyImage::from_gray_units(image, SampleDepth::U8)).unwrap();
}

/// A 256² procedural texture.
fn textured(seed: u64) -> GrayF32 {
    let n = 256;
    let texture = Texture::procedural(n, n, seed);
    GrayF32::from_shape_fn((n, n), |(y, x)| texture.value(x as f64, y as f64) as f32)
}

/// A textured fixed image and its transpose (rotated 90° and mirrored: `q = (p_y, p_x)`),
/// saved as `fixed.png` and `moving.png` in `dir`.
fn transposed_pair(dir: &std::path::Path, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
    let fixed = textured(seed);
    let moving = GrayF32::from_shape_fn(fixed.dim(), |(y, x)| fixed[[x, y]]);
    let (f, m) = (dir.join("fixed.png"), dir.join("moving.png"));
    save(&f, &fixed);
    save(&m, &moving);
    (f, m)
}

#[test]
fn a_rotated_mirror_copy_is_matched_and_unrelated_images_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (f, m) = transposed_pair(dir.path(), 5);
    let out = dir.path().join("features");
    alinify_ok(&["analyze", "features", s(&f), s(&m), "--out", s(&out), "-q"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("features.json")).unwrap()).unwrap();
    assert_eq!(json["mirrored"], true, "{json}");
    assert!(json["inliers"].as_u64().unwrap() >= 20, "{json}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transform.json")).unwrap())
            .unwrap();
    let a: Vec<f64> = file["transform"]["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (got, want) in a.iter().zip([0.0, 1.0, 1.0, 0.0]) {
        assert!((got - want).abs() < 0.01, "{a:?}");
    }
    let csv = std::fs::read_to_string(out.join("matches.csv")).unwrap();
    assert!(csv.starts_with("fx,fy,mx,my,inlier\n"));
    assert!(out.join("matches.png").is_file());

    // Unrelated images: no fit, the files and the counts named, no outputs.
    let u = dir.path().join("unrelated.png");
    save(&u, &textured(77));
    let refused = alinify(&[
        "analyze",
        "features",
        s(&f),
        s(&u),
        "--out",
        s(&dir.path().join("none")),
    ]);
    assert_ne!(refused.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no feature fit") && stderr.contains("unrelated.png"),
        "{stderr}"
    );
}

#[test]
fn init_features_registers_a_rotated_mirror_copy_that_phase_correlation_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let (f, m) = transposed_pair(dir.path(), 6);
    let run = |init: &str| {
        let out = dir.path().join(init);
        alinify_ok(&[
            "register",
            s(&f),
            s(&m),
            "--mode",
            "affine",
            "--init",
            init,
            "--out",
            s(&out),
            "-q",
        ]);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        report
    };
    for init in ["features", "auto"] {
        let report = run(init);
        assert_eq!(report["init"]["chosen"], "features", "{}", report["init"]);
        assert!(
            report["ncc_after"].as_f64().unwrap() > 0.95,
            "{init}: {}",
            report["ncc_after"]
        );
    }
    let phase = run("phase");
    assert_ne!(phase["init"]["chosen"], "features");
    assert!(
        phase["ncc_after"].as_f64().unwrap() < 0.5,
        "{}",
        phase["ncc_after"]
    );
}
