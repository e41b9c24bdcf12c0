//! The bodies of the fuzz targets: each writes the fuzzer's bytes to a file and reads it through
//! the same public entry point the CLI uses. Any error is fine; a panic, an abort, a hang or an
//! allocation past libFuzzer's limit is a bug. The regression tests in
//! `tests/integration/fuzz_regressions.rs` run these same functions over the kept corpus and
//! crash inputs, so this file is compiled into the normal test suite too.

use std::path::{Path, PathBuf};

/// The pixel limit the fuzz targets and regression tests run under (4 megapixels): a decoded
/// image stays far below libFuzzer's 2 GiB memory limit.
pub const FUZZ_MAX_PIXELS: u64 = 1 << 22;

/// A target's body: reads `data` through a scratch folder `dir`.
pub type Target = fn(dir: &Path, data: &[u8]);

/// The targets, by name: the name is the fuzz binary, the corpus folder and the regression
/// folder.
pub const TARGETS: [(&str, Target); 7] = [
    ("image", image),
    ("flo", flo),
    ("transform", transform),
    ("elastix", elastix),
    ("preset", preset),
    ("manifest", manifest),
    ("landmarks", landmarks),
];

/// A 2 x 1 `.flo`: the magic, width, height, then (u, v) per pixel.
const FIELD_FLO: &[u8] = &[
    b'P', b'I', b'E', b'H', 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0xc0,
];

/// A B-spline over a 16 x 12 image at spacing 8 (a 5 x 4 grid), as `elastix::export` writes it.
const INITIAL_BSPLINE: &str = "(Transform \"BSplineTransform\")
(TransformParameters 0 0.5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1)
(GridSize 5 4)
(GridSpacing 8 8)
(GridOrigin -8 -8)
(Size 16 12)
";

fn write_input(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("the scratch folder is writable");
    path
}

/// The image loader: format sniffing, the header probe, every TIFF page, PNG and JPEG.
pub fn image(dir: &Path, data: &[u8]) {
    let path = write_input(dir, "input.img", data);
    let probed = alinify::io::probe(&path);
    if let Ok(layers) = alinify::io::load_layers(&path) {
        let info = probed.expect("a file that loads has a readable header");
        let first = &layers[0];
        assert_eq!(
            [info.width, info.height],
            [first.width(), first.height()],
            "the header and the decoded image agree on the size"
        );
    }
}

/// Middlebury `.flo` dense fields.
pub fn flo(dir: &Path, data: &[u8]) {
    let path = write_input(dir, "input.flo", data);
    if let Ok(field) = alinify::io::flo::read_flo(&path) {
        assert!(field.u.iter().chain(field.v.iter()).all(|v| v.is_finite()));
    }
}

/// `transform.json`, then building the transform (dense fields resolve next to it) and mapping
/// a few points through it.
pub fn transform(dir: &Path, data: &[u8]) {
    // A valid field for `{"type": "dense", "field": "field.flo"}` to find.
    write_input(dir, "field.flo", FIELD_FLO);
    let path = write_input(dir, "transform.json", data);
    let Ok(file) = alinify::io::TransformFile::load(&path) else {
        return;
    };
    if let Ok(t) = file.build(dir) {
        let (w, h) = (file.fixed.width as f64, file.fixed.height as f64);
        for [x, y] in [[0.0, 0.0], [w - 1.0, h - 1.0], [w * 0.5, h * 0.5]] {
            let _ = t.map_point(x, y);
        }
    }
}

/// elastix `TransformParameters.txt` import (an initial transform it names may be this same
/// file: that must not recurse).
pub fn elastix(dir: &Path, data: &[u8]) {
    // A valid B-spline for an affine's `(InitialTransformParametersFileName "initial.txt")`.
    write_input(dir, "initial.txt", INITIAL_BSPLINE.as_bytes());
    let path = write_input(dir, "TransformParameters.0.txt", data);
    let _ = alinify::io::elastix::import(&path);
}

/// Registration presets (TOML), with their ranges.
pub fn preset(dir: &Path, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = alinify::register::Settings::parse(text, &dir.join("preset.toml")) {
        settings
            .options()
            .expect("a preset that parses applies to the default options");
    }
}

/// Batch manifests (CSV), with the unique names a batch derives from them.
pub fn manifest(dir: &Path, data: &[u8]) {
    let path = write_input(dir, "manifest.csv", data);
    if let Ok(jobs) = alinify::batch::manifest::read_manifest(&path) {
        let mut names = std::collections::HashSet::new();
        for job in &jobs {
            assert!(
                names.insert(job.name.clone()),
                "duplicate name {}",
                job.name
            );
        }
    }
}

/// Landmark files (ANHIR, BigWarp, `x,y`), both sides of a BigWarp file.
pub fn landmarks(dir: &Path, data: &[u8]) {
    use alinify::io::landmarks::{Side, read_landmarks};
    let path = write_input(dir, "landmarks.csv", data);
    for side in [Side::Fixed, Side::Moving] {
        if let Ok(read) = read_landmarks(&path, side) {
            assert!(!read.points.is_empty());
            assert!(read.points.iter().flatten().all(|v| v.is_finite()));
        }
    }
}
