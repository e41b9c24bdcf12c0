//! Bad input never crashes: each case exits with status 2 and one line naming the file and the
//! problem, and leaves no output behind.

use crate::common::{alinify, s, strip_tiff, synth};
use alinify::raster::{AnyImage, Raster};
use std::path::{Path, PathBuf};

/// A valid file of the given kind, `64 x 64`.
fn valid_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let img = AnyImage::U8(
        Raster::from_interleaved(
            64,
            64,
            1,
            (0..64 * 64).map(|i| (i * 7 % 256) as u8).collect(),
        )
        .unwrap(),
    );
    alinify::io::save_image(&path, &img).unwrap();
    path
}

fn truncated(dir: &Path, name: &str) -> PathBuf {
    let path = valid_file(dir, name);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    path
}

/// Runs `register BAD GOOD` and checks status, message and the absence of outputs.
fn assert_rejected(bad: &Path, expect_in_message: &str) {
    let dir = bad.parent().unwrap();
    let good = dir.join("good.tif");
    if !good.exists() {
        valid_file(dir, "good.tif");
    }
    let out = dir.join(format!(
        "out-{}",
        bad.file_name().unwrap().to_string_lossy()
    ));
    for args in [
        vec!["register", s(bad), s(&good), "--out", s(&out)],
        vec!["register", s(&good), s(bad), "--out", s(&out)],
    ] {
        let run = alinify(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{args:?}: status {:?}, stderr:\n{stderr}",
            run.status.code()
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: expected one line, got:\n{stderr}"
        );
        let name = bad.file_name().unwrap().to_string_lossy();
        assert!(
            lines[0].contains(name.as_ref()),
            "{args:?}: message does not name {name}: {}",
            lines[0]
        );
        assert!(
            lines[0].to_lowercase().contains(expect_in_message),
            "{args:?}: message does not say {expect_in_message:?}: {}",
            lines[0]
        );
        if out.exists() {
            let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
            assert!(left.is_empty(), "{args:?} left files behind: {left:?}");
        }
    }
}

#[test]
fn truncated_png_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    assert_rejected(&truncated(dir.path(), "cut.png"), "truncated");
}

#[test]
fn truncated_jpeg_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jpg");
    let noise =
        image::GrayImage::from_fn(64, 64, |x, y| image::Luma([((x * 37) ^ (y * 91)) as u8]));
    noise.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_rejected(&path, "truncated");
}

#[test]
fn truncated_tiff_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    assert_rejected(&truncated(dir.path(), "cut.tif"), "truncated");
}

#[test]
fn zero_byte_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.tif");
    std::fs::write(&p, b"").unwrap();
    assert_rejected(&p, "empty");
}

#[test]
fn text_file_named_tif_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.tif");
    std::fs::write(&p, "these are my notes, not an image\n").unwrap();
    assert_rejected(&p, "not a png, jpeg or tiff");
}

#[test]
fn zero_by_zero_image_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zero.tif");
    std::fs::write(&p, strip_tiff(0, 0, &[0u8; 4])).unwrap();
    assert_rejected(&p, "zero");
}

#[test]
fn header_claiming_100000_squared_is_rejected_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.tif");
    std::fs::write(&p, strip_tiff(100_000, 100_000, &[0u8; 64])).unwrap();
    assert_rejected(&p, "too large");
}

#[test]
fn nan_filled_float_tiff_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nan.tif");
    let img = AnyImage::F32(Raster::from_interleaved(32, 32, 1, vec![f32::NAN; 32 * 32]).unwrap());
    alinify::io::save_image(&p, &img).unwrap();
    assert_rejected(&p, "nan");
}

#[test]
fn missing_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    assert_rejected(&dir.path().join("does-not-exist.png"), "not found");
}

#[test]
fn unwritable_output_directory_is_rejected_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "64x64", 1, "affine");
    // A folder cannot be made under a regular file (root ignores permission bits, so this is
    // the portable way to make an output place unwritable).
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("results");
    let run = alinify(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&pair.join("moving.tif")),
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("results") && stderr.contains("output directory"),
        "{stderr}"
    );
}

#[test]
fn corrupt_inputs_of_warp_and_eval_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = valid_file(dir.path(), "good.tif");
    let bad_json = dir.path().join("t.json");
    std::fs::write(&bad_json, "{\"format\": \"alinify-transform\", ").unwrap();
    let run = alinify(&[
        "warp",
        s(&good),
        s(&bad_json),
        "-o",
        s(&dir.path().join("o.tif")),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("t.json"));
    assert!(!dir.path().join("o.tif").exists());

    let flo = dir.path().join("f.flo");
    std::fs::write(
        &flo,
        202021.25f32
            .to_le_bytes()
            .iter()
            .chain(&[10, 0, 0, 0, 10, 0, 0, 0, 1, 2])
            .copied()
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let run = alinify(&["eval", "--field", s(&flo), "--gt", s(&flo)]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("f.flo") && stderr.contains("truncated"),
        "{stderr}"
    );
}
