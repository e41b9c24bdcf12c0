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
        // The feature fit reads the transposition, so the moving image is turned back first.
        assert_eq!(
            report["init"]["turned_back"], "mirrored about its diagonal (transposed)",
            "{}",
            report["init"]
        );
        let why = report["init"]["why"].as_str().unwrap();
        assert!(why.contains("features then"), "{why}");
        if init == "auto" {
            // The textured pair's fit is confident, so auto skips the orientation search.
            assert!(why.contains("orientation search skipped"), "{why}");
        }
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

/// A textured section (an ellipse and a lobe) on a white slide, 160 × 192, and the same section
/// turned by `angle` degrees after an optional mirror flip and scaled by `scale`, on a canvas
/// `scale` times as large: `q = scale R (p - c) + c_m` (centres `c`, `c_m`) is the true map from
/// fixed to moving pixels, returned as `(scale R, c_m)`.
fn turned_section(
    angle: f64,
    mirrored: bool,
    scale: f64,
) -> (GrayF32, GrayF32, [f64; 4], [f64; 2]) {
    let texture = Texture::procedural(192, 192, 8);
    let (h, w) = (160, 192);
    let c = [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0];
    let section = |x: f64, y: f64| {
        let (u, v) = ((x - 90.0) / 64.0, (y - 76.0) / 48.0);
        let d = (u * u + v * v).min(((x - 138.0).hypot(y - 112.0) / 26.0).powi(2));
        // A soft edge, so that the outline is smooth at every level.
        let inside = (1.0 - d).clamp(0.0, 0.15) / 0.15;
        (1.0 - inside * (0.8 - 0.6 * texture.value(x, y))) as f32
    };
    let fixed = GrayF32::from_shape_fn((h, w), |(y, x)| section(x as f64, y as f64));
    let (sn, cs) = angle.to_radians().sin_cos();
    let m = if mirrored { -1.0 } else { 1.0 };
    let r = [scale * cs * m, -scale * sn, scale * sn * m, scale * cs];
    let det = r[0] * r[3] - r[1] * r[2];
    let inv = [r[3] / det, -r[1] / det, -r[2] / det, r[0] / det];
    let (hm, wm) = (
        (h as f64 * scale).round() as usize,
        (w as f64 * scale).round() as usize,
    );
    let cm = [(wm as f64 - 1.0) / 2.0, (hm as f64 - 1.0) / 2.0];
    let moving = GrayF32::from_shape_fn((hm, wm), |(y, x)| {
        let (qx, qy) = (x as f64 - cm[0], y as f64 - cm[1]);
        section(
            inv[0] * qx + inv[1] * qy + c[0],
            inv[2] * qx + inv[3] * qy + c[1],
        )
    });
    (fixed, moving, r, cm)
}

/// Registers the turned section with the defaults (accurate mode, `--init auto`): the mean
/// end-point error over the section (where the images have content) and over every pixel, and
/// the report.
fn register_turned_section(
    dir: &std::path::Path,
    angle: f64,
    mirrored: bool,
    scale: f64,
) -> (f64, f64, serde_json::Value) {
    let (fixed, moving, r, cm) = turned_section(angle, mirrored, scale);
    let name = format!("{angle}{}x{scale}", if mirrored { "m" } else { "" });
    let (f, m) = (
        dir.join(format!("{name}-fixed.png")),
        dir.join(format!("{name}-moving.png")),
    );
    save(&f, &fixed);
    save(&m, &moving);
    let out = dir.join(&name);
    let field = out.join("field.flo");
    alinify_ok(&[
        "register",
        s(&f),
        s(&m),
        "--out",
        s(&out),
        "--field",
        s(&field),
        "-q",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let found = alinify::io::flo::read_flo(&field).unwrap();
    let (h, w) = fixed.dim();
    let c = [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0];
    let truth_at = |y: usize, x: usize, axis: usize| {
        let (px, py) = (x as f64 - c[0], y as f64 - c[1]);
        let q = r[2 * axis] * px + r[2 * axis + 1] * py + cm[axis];
        (q - [x, y][axis] as f64) as f32
    };
    let truth = alinify::transform::DenseField {
        u: GrayF32::from_shape_fn((h, w), |(y, x)| truth_at(y, x, 0)),
        v: GrayF32::from_shape_fn((h, w), |(y, x)| truth_at(y, x, 1)),
    };
    let section = fixed.mapv(|v| v <= 0.95);
    let epe = |mask| {
        alinify::analysis::end_point_error(&found, &truth, mask)
            .unwrap()
            .epe_mean
    };
    (epe(Some(&section)), epe(None), report)
}

#[test]
fn the_default_initialisation_registers_sections_turned_and_mirrored() {
    let dir = tempfile::tempdir().unwrap();
    for (angle, mirrored) in [(180.0, false), (90.0, true), (240.0, true)] {
        let (epe, _, report) = register_turned_section(dir.path(), angle, mirrored, 1.0);
        assert_eq!(report["init"]["method"], "auto");
        assert!(
            epe < 0.3,
            "{angle} {mirrored}: EPE {epe:.3} px; {}",
            report["init"]
        );
    }
}

#[test]
fn a_section_scanned_at_twice_the_resolution_and_turned_registers() {
    // Measured: 0.072 px on the section, 0.244 px everywhere. Nothing in the images constrains
    // the field over the empty slide around the section: before the control points there were
    // filled from their neighbours (`register::unconstrained`) it held 0.335 px everywhere.
    let dir = tempfile::tempdir().unwrap();
    let (content, everywhere, report) = register_turned_section(dir.path(), 37.0, false, 2.0);
    assert_eq!(report["init"]["chosen"], "features", "{}", report["init"]);
    assert!(
        content < 0.2 && everywhere < 0.3,
        "EPE {content:.3} px on the section, {everywhere:.3} px everywhere; {}",
        report["init"]
    );
}

/// `image` as a scanner turned through 90° anticlockwise would store it (numpy's `rot90`), and
/// where that sends a point `(x, y)`.
fn quarter_turned(image: &GrayF32) -> (GrayF32, impl Fn([f64; 2]) -> [f64; 2]) {
    let (h, w) = image.dim();
    let turned = GrayF32::from_shape_fn((w, h), |(y, x)| image[[x, w - 1 - y]]);
    (turned, move |[x, y]: [f64; 2]| [y, (w - 1) as f64 - x])
}

/// `image` transposed (turned 90° and mirrored), and where that sends a point.
fn transposed(image: &GrayF32) -> (GrayF32, impl Fn([f64; 2]) -> [f64; 2]) {
    let turned = GrayF32::from_shape_fn((image.ncols(), image.nrows()), |(y, x)| image[[x, y]]);
    (turned, |[x, y]: [f64; 2]| [y, x])
}

#[test]
fn a_moving_image_turned_through_90_degrees_or_mirrored_registers_as_it_does_unturned() {
    // A section turned 7° is registered as stored, turned 90° and mirrored: each turn of whole
    // pixels is undone before the registration, so the warped images are the same to the bit
    // and the transforms differ by the turn alone.
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving, _, _) = turned_section(7.0, false, 1.0);
    let f = dir.path().join("fixed.png");
    save(&f, &fixed);
    let register = |name: &str, moving: &GrayF32, mode: &str| {
        let m = dir.path().join(format!("{name}.png"));
        save(&m, moving);
        let out = dir.path().join(format!("{name}-{mode}"));
        let field = out.join("field.flo");
        let (f, m, o, fl) = (s(&f), s(&m), s(&out), s(&field));
        alinify_ok(&[
            "register", f, m, "--mode", mode, "--out", o, "--field", fl, "-q",
        ]);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        let warped = std::fs::read(out.join("warped.tif")).unwrap();
        (alinify::io::flo::read_flo(&field).unwrap(), warped, report)
    };
    for mode in ["accurate", "fast"] {
        let (plain, plain_warped, plain_report) = register("plain", &moving, mode);
        assert!(plain_report["init"].get("turned_back").is_none());
        let (turned, turn) = if mode == "fast" {
            let (image, turn) = quarter_turned(&moving);
            (image, Box::new(turn) as Box<dyn Fn([f64; 2]) -> [f64; 2]>)
        } else {
            let (image, turn) = transposed(&moving);
            (image, Box::new(turn) as Box<dyn Fn([f64; 2]) -> [f64; 2]>)
        };
        let (field, warped, report) = register("turned", &turned, mode);
        assert!(
            report["init"]["turned_back"].is_string(),
            "{}",
            report["init"]
        );
        assert!(warped == plain_warped, "{mode}: the warped images differ");
        let mut largest = 0.0f64;
        for ((y, x), &u) in plain.u.indexed_iter() {
            let (xf, yf) = (x as f64, y as f64);
            let expected = turn([xf + u as f64, yf + plain.v[[y, x]] as f64]);
            let found = [xf + field.u[[y, x]] as f64, yf + field.v[[y, x]] as f64];
            largest = largest.max((expected[0] - found[0]).hypot(expected[1] - found[1]));
        }
        assert!(
            largest < 1e-3,
            "{mode}: the fields differ by up to {largest} px"
        );
    }
}
