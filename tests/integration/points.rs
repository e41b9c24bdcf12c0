//! `alinify warp-points` and `alinify analyze landmarks` end to end.

use crate::common::{alinify, alinify_ok, s, strip_tiff};
use std::path::Path;

/// A transform file: a rotation by 0.05 rad and scale 1.03 about (60, 40), then a shift of
/// (5.5, -3.25), between a 120 x 80 fixed and a 140 x 100 moving image.
fn write_affine_transform(path: &Path) {
    let (c, s) = (1.03 * 0.05_f64.cos(), 1.03 * 0.05_f64.sin());
    let json = serde_json::json!({
        "format": "alinify-transform",
        "version": 1,
        "fixed": {"width": 120, "height": 80},
        "moving": {"width": 140, "height": 100},
        "transform": {
            "type": "affine",
            "matrix": [c, -s, s, c],
            "translation": [5.5, -3.25],
            "center": [60.0, 40.0]
        }
    });
    std::fs::write(path, json.to_string()).unwrap();
}

/// Runs `analyze landmarks` on the pair of files under `transform` into `out` and returns
/// tre.json.
fn analyze_landmarks(
    fixed: &Path,
    moving: &Path,
    transform: &Path,
    out: &Path,
) -> serde_json::Value {
    alinify_ok(&[
        "analyze",
        "landmarks",
        s(fixed),
        s(moving),
        "--transform",
        s(transform),
        "--out",
        s(out),
    ]);
    serde_json::from_str(&std::fs::read_to_string(out.join("tre.json")).unwrap()).unwrap()
}

fn read_anhir(path: &Path) -> Vec<[f64; 2]> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            [f[1], f[2]]
        })
        .collect()
}

/// A point mapped by `warp-points` is where `warp` puts the image content: a dot drawn in the
/// moving image at `T(p)` lands at `p` in the warped image.
#[test]
fn warped_points_land_where_the_warped_image_puts_them() {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("transform.json");
    write_affine_transform(&transform);
    let fixed_points = [[30.25, 20.5], [90.0, 61.75]];
    let points = dir.path().join("points.csv");
    std::fs::write(
        &points,
        format!(
            ",X,Y\n0,{},{}\n1,{},{}\n",
            fixed_points[0][0], fixed_points[0][1], fixed_points[1][0], fixed_points[1][1]
        ),
    )
    .unwrap();
    let mapped_path = dir.path().join("mapped.csv");
    alinify_ok(&[
        "warp-points",
        s(&transform),
        s(&points),
        "-o",
        s(&mapped_path),
    ]);
    let mapped = read_anhir(&mapped_path);
    assert_eq!(mapped.len(), 2);

    // Gaussian dots (sigma 2.5 px) at the mapped points in a 140 x 100 moving image.
    let (w, h) = (140usize, 100usize);
    let mut moving = vec![0u8; w * h];
    for (i, v) in moving.iter_mut().enumerate() {
        let (x, y) = ((i % w) as f64, (i / w) as f64);
        let dot: f64 = mapped
            .iter()
            .map(|m| (-((x - m[0]).powi(2) + (y - m[1]).powi(2)) / (2.0 * 2.5 * 2.5)).exp())
            .sum();
        *v = (250.0 * dot.min(1.0)).round() as u8;
    }
    let moving_path = dir.path().join("moving.tif");
    std::fs::write(&moving_path, strip_tiff(w as u32, h as u32, &moving)).unwrap();
    let warped_path = dir.path().join("warped.tif");
    alinify_ok(&[
        "warp",
        s(&moving_path),
        s(&transform),
        "-o",
        s(&warped_path),
    ]);
    let warped = alinify::io::load_image(&warped_path).unwrap().luminance();
    for p in fixed_points {
        // The intensity-weighted centre within 8 px of the expected place.
        let (mut sum, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for ((y, x), &v) in warped.indexed_iter() {
            let (x, y) = (x as f64, y as f64);
            if (x - p[0]).hypot(y - p[1]) < 8.0 {
                let v = f64::from(v);
                (sum, sx, sy) = (sum + v, sx + v * x, sy + v * y);
            }
        }
        let centre = [sx / sum, sy / sum];
        let off = (centre[0] - p[0]).hypot(centre[1] - p[1]);
        assert!(off < 0.1, "dot for {p:?} at {centre:?}: {off:.3} px off");
    }
}

/// tre.json agrees with the errors computed here, for ANHIR files and for one BigWarp file
/// holding both sides.
#[test]
fn analyze_landmarks_scores_rtre_and_robustness_as_anhir_does() {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("transform.json");
    write_affine_transform(&transform);
    let fixed = [[10.0, 10.0], [100.0, 15.0], [50.0, 70.0], [80.0, 40.0]];
    let points = dir.path().join("fixed.csv");
    let rows: String = fixed
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{i},{},{}\n", p[0], p[1]))
        .collect();
    std::fs::write(&points, format!(",X,Y\n{rows}")).unwrap();
    let mapped_path = dir.path().join("mapped.csv");
    alinify_ok(&[
        "warp-points",
        s(&transform),
        s(&points),
        "-o",
        s(&mapped_path),
    ]);
    // The moving landmarks: the exact images of the fixed ones, except the last, 4 px off in x.
    let mut moving = read_anhir(&mapped_path);
    moving[3][0] += 4.0;
    let bigwarp = dir.path().join("pairs.csv");
    let rows: String = fixed
        .iter()
        .zip(&moving)
        .enumerate()
        .map(|(i, (f, m))| format!("\"Pt-{i}\",\"true\",{},{},{},{}\n", m[0], m[1], f[0], f[1]))
        .collect();
    std::fs::write(&bigwarp, rows).unwrap();

    let out = dir.path().join("tre");
    let report = analyze_landmarks(&bigwarp, &bigwarp, &transform, &out);
    let diagonal = 120.0_f64.hypot(80.0);
    let after = [0.0, 0.0, 0.0, 4.0];
    let before: Vec<f64> = fixed
        .iter()
        .zip(&moving)
        .map(|(f, m)| (f[0] - m[0]).hypot(f[1] - m[1]))
        .collect();
    let mut sorted_before = before.clone();
    sorted_before.sort_by(f64::total_cmp);
    let close = |key: &str, want: f64| {
        let got = report[key].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6, "{key}: {got} != {want}");
    };
    close("diagonal", diagonal);
    close("rtre_median", 0.0);
    close("rtre_mean", 1.0 / diagonal);
    close("rtre_max", 4.0 / diagonal);
    close(
        "rtre_before_median",
        (sorted_before[1] + sorted_before[2]) / 2.0 / diagonal,
    );
    let improved = before.iter().zip(after).filter(|(b, a)| a < *b).count();
    close("robustness", improved as f64 / 4.0);
    assert_eq!(report["pairs"], 4);
    let csv = std::fs::read_to_string(out.join("tre.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("index,fixed_x,fixed_y,moving_x,moving_y,mapped_x,mapped_y,"));

    // Malformed rows and clashing outputs are refused with the file named.
    std::fs::write(&points, ",X,Y\n0,1,oops\n").unwrap();
    let run = alinify(&[
        "warp-points",
        s(&transform),
        s(&points),
        "-o",
        s(&mapped_path),
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("fixed.csv") && err.contains("line 2"), "{err}");
    let run = alinify(&["warp-points", s(&transform), s(&points), "-o", s(&points)]);
    assert_eq!(run.status.code(), Some(2));
}

/// `--mode landmarks`: a thin-plate spline through landmarks placed on a generated pair's
/// ground truth passes through every landmark (λ = 0) and recovers the smooth deformation
/// between them; with too few landmarks it says so.
#[test]
fn the_landmarks_mode_fits_a_thin_plate_spline_through_the_landmarks() {
    let dir = tempfile::tempdir().unwrap();
    let pair = crate::common::synth(&dir.path().join("pair"), "128x96", 3, "both");
    let truth = alinify::io::flo::read_flo(&pair.join("gt.flo")).unwrap();
    // A 6 x 5 grid of landmarks inside the image; the moving ones follow the ground truth.
    let (mut fixed, mut moving) = (String::from(",X,Y\n"), String::from(",X,Y\n"));
    for (i, (gx, gy)) in (0..6).flat_map(|x| (0..5).map(move |y| (x, y))).enumerate() {
        let (x, y) = (8 + gx * 22, 6 + gy * 20);
        let (u, v) = (truth.u[[y, x]], truth.v[[y, x]]);
        fixed.push_str(&format!("{i},{x},{y}\n"));
        moving.push_str(&format!("{i},{},{}\n", x as f32 + u, y as f32 + v));
    }
    let (fixed_csv, moving_csv) = (dir.path().join("f.csv"), dir.path().join("m.csv"));
    std::fs::write(&fixed_csv, fixed).unwrap();
    std::fs::write(&moving_csv, moving).unwrap();
    let out = dir.path().join("reg");
    let landmarks = ["--landmarks", s(&fixed_csv), s(&moving_csv)];
    let field = crate::common::register_pair(
        &pair,
        &out,
        &[&["--mode", "landmarks"][..], &landmarks].concat(),
    );
    let transform: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transform.json")).unwrap())
            .unwrap();
    assert_eq!(transform["transform"]["type"], "thin_plate");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["landmarks"]["pairs"], 30);
    assert!(report["landmarks"]["tre_max_px"].as_f64().unwrap() < 0.01);
    let transform = out.join("transform.json");
    let report = analyze_landmarks(&fixed_csv, &moving_csv, &transform, &dir.path().join("tre"));
    let worst = report["tre_max_px"].as_f64().unwrap();
    assert!(worst < 0.01, "a landmark is missed by {worst} px");
    let epe = crate::common::epe_mean(&field, &pair);
    assert!(epe < 0.5, "between the landmarks: mean EPE {epe}");

    let two = dir.path().join("two.csv");
    std::fs::write(&two, ",X,Y\n0,1,2\n1,30,40\n").unwrap();
    let run = alinify(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&pair.join("moving.tif")),
        "--mode",
        "landmarks",
        "--landmarks",
        s(&two),
        s(&two),
        "--out",
        s(&dir.path().join("few")),
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("at least 3"), "{err}");
}

/// `invert` then `warp-points` brings fixed-frame points back through an accurate-mode
/// transform: median under 0.02 px, max under 0.1 px; a demons transform (negated velocity)
/// within 0.05 px; an affine exactly.
#[test]
fn inverted_transforms_round_trip_points() {
    let dir = tempfile::tempdir().unwrap();
    let pair = crate::common::synth(&dir.path().join("pair"), "128x96", 5, "both");
    let reg = dir.path().join("reg");
    crate::common::register_pair(&pair, &reg, &["--mode", "accurate"]);
    let demons = dir.path().join("demons");
    crate::common::register_pair(&pair, &demons, &["--mode", "demons", "--backend", "cpu"]);
    let points = dir.path().join("points.csv");
    let rows: String = (0..40)
        .map(|i| {
            format!(
                "{i},{},{}\n",
                16.0 + (i % 8) as f64 * 13.3,
                14.0 + (i / 8) as f64 * 15.1
            )
        })
        .collect();
    std::fs::write(&points, format!(",X,Y\n{rows}")).unwrap();
    let original = read_anhir(&points);
    let affine = dir.path().join("affine.json");
    write_affine_transform(&affine);
    for (transform, median_bound, max_bound) in [
        (reg.join("transform.json"), 0.02, 0.1),
        (demons.join("transform.json"), 0.05, 0.05),
        (affine.clone(), 1e-9, 1e-9),
    ] {
        let inverse = dir.path().join("inverse.json");
        let (there, back) = (dir.path().join("there.csv"), dir.path().join("back.csv"));
        alinify_ok(&["invert", s(&transform), "-o", s(&inverse)]);
        alinify_ok(&["warp-points", s(&transform), s(&points), "-o", s(&there)]);
        alinify_ok(&["warp-points", s(&inverse), s(&there), "-o", s(&back)]);
        let mut errors: Vec<f64> = original
            .iter()
            .zip(read_anhir(&back))
            .map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1]))
            .collect();
        errors.sort_by(f64::total_cmp);
        let (median, max) = (errors[errors.len() / 2], errors[errors.len() - 1]);
        assert!(
            median < median_bound && max < max_bound,
            "{}: median {median}, max {max}",
            transform.display()
        );
    }
    let inverse: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("inverse.json")).unwrap())
            .unwrap();
    assert_eq!(inverse["transform"]["type"], "affine");
    assert_eq!(inverse["fixed"]["width"], 140);
}

/// `--landmarks` on the accurate mode: landmark partners that disagree with the images by 4 px
/// pull the result toward them (a user's points correct the image-driven result).
#[test]
fn landmarks_guide_the_accurate_mode_where_the_images_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let pair = crate::common::synth(&dir.path().join("pair"), "128x96", 6, "smooth");
    let truth = alinify::io::flo::read_flo(&pair.join("gt.flo")).unwrap();
    let (mut fixed, mut moving) = (String::from(",X,Y\n"), String::from(",X,Y\n"));
    for (i, (x, y)) in [(20usize, 20usize), (40, 20), (20, 40), (40, 40)]
        .into_iter()
        .enumerate()
    {
        let (u, v) = (truth.u[[y, x]], truth.v[[y, x]]);
        fixed.push_str(&format!("{i},{x},{y}\n"));
        moving.push_str(&format!("{i},{},{}\n", x as f32 + u + 4.0, y as f32 + v));
    }
    let (fixed_csv, moving_csv) = (dir.path().join("f.csv"), dir.path().join("m.csv"));
    std::fs::write(&fixed_csv, fixed).unwrap();
    std::fs::write(&moving_csv, moving).unwrap();
    let mean_tre = |extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        crate::common::register_pair(&pair, &out, &[&["--mode", "accurate"][..], extra].concat());
        let transform = out.join("transform.json");
        let report = analyze_landmarks(&fixed_csv, &moving_csv, &transform, &out.join("tre"));
        report["tre_mean_px"].as_f64().unwrap()
    };
    let unguided = mean_tre(&[], "images");
    let landmarks = [
        "--landmarks",
        s(&fixed_csv),
        s(&moving_csv),
        "--landmark-weight",
        "1",
    ];
    let guided = mean_tre(&landmarks, "guided");
    assert!(
        unguided > 3.0,
        "the images alone already follow the offset: {unguided}"
    );
    assert!(
        guided < 1.5,
        "the landmarks did not pull the result: {guided} (images alone {unguided})"
    );
}
