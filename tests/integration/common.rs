//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `alinify` binary with `args`.
pub fn alinify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alinify"))
        .args(args)
        .env_remove("ALINIFY_BACKEND")
        .output()
        .expect("the alinify binary runs")
}

/// Runs `alinify` and asserts success, returning stdout.
pub fn alinify_ok(args: &[&str]) -> String {
    let out = alinify(args);
    assert!(
        out.status.success(),
        "alinify {args:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A path as `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Generates a pair with `alinify synth` into `dir`.
pub fn synth(dir: &Path, size: &str, seed: u64, deform: &str) -> PathBuf {
    alinify_ok(&[
        "synth",
        "--size",
        size,
        "--seed",
        &seed.to_string(),
        "--deform",
        deform,
        "--out",
        s(dir),
        "-q",
    ]);
    dir.to_path_buf()
}

/// One IFD entry of a hand-built TIFF: tag, field type (3 = SHORT, 4 = LONG), and values.
pub struct Entry {
    pub tag: u16,
    pub kind: u16,
    pub values: Vec<u32>,
}

/// Builds a little-endian classic TIFF with one IFD (entries sorted by tag) followed by `data`.
/// Entries whose values do not fit in four bytes are stored after the IFD. Use `u32::MAX` as a
/// value to mean "offset of the data block".
pub fn build_tiff(entries: &[Entry], data: &[u8]) -> Vec<u8> {
    let ifd_len = 2 + 12 * entries.len() + 4;
    let mut extra: Vec<u8> = Vec::new();
    let extra_start = 8 + ifd_len;
    let size = |kind: u16| if kind == 3 { 2 } else { 4 };
    let arrays: usize = entries
        .iter()
        .map(|e| {
            if e.values.len() * size(e.kind) > 4 {
                e.values.len() * size(e.kind)
            } else {
                0
            }
        })
        .sum();
    let data_start = (extra_start + arrays) as u32;
    let resolve = |v: u32| if v == u32::MAX { data_start } else { v };
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.kind.to_le_bytes());
        out.extend_from_slice(&(e.values.len() as u32).to_le_bytes());
        let mut bytes = Vec::new();
        for &v in &e.values {
            let v = resolve(v);
            if e.kind == 3 {
                bytes.extend_from_slice(&(v as u16).to_le_bytes());
            } else {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        if bytes.len() <= 4 {
            bytes.resize(4, 0);
            out.extend_from_slice(&bytes);
        } else {
            out.extend_from_slice(&((extra_start + extra.len()) as u32).to_le_bytes());
            extra.extend_from_slice(&bytes);
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&extra);
    out.extend_from_slice(data);
    out
}

/// A hand-built 8-bit gray strip TIFF header claiming `width x height`, with `data` as its one
/// strip.
pub fn strip_tiff(width: u32, height: u32, data: &[u8]) -> Vec<u8> {
    let e = |tag, kind, values: Vec<u32>| Entry { tag, kind, values };
    build_tiff(
        &[
            e(256, 4, vec![width]),
            e(257, 4, vec![height]),
            e(258, 3, vec![8]),
            e(259, 3, vec![1]),
            e(262, 3, vec![1]),
            e(273, 4, vec![u32::MAX]),
            e(277, 3, vec![1]),
            e(278, 4, vec![height.max(1)]),
            e(279, 4, vec![data.len() as u32]),
        ],
        data,
    )
}

/// Mean end-point error of `field` against the pair's ground truth, through `alinify eval`
/// (checking the JSON it prints has the promised keys).
pub fn epe_mean(field: &std::path::Path, pair: &std::path::Path) -> f64 {
    let json = alinify_ok(&[
        "eval",
        "--field",
        s(field),
        "--gt",
        s(&pair.join("gt.flo")),
        "--mask",
        s(&pair.join("mask.png")),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["epe_mean", "epe_p95", "epe_max", "pixels"] {
        assert!(v.get(key).is_some(), "eval output lacks {key}: {json}");
    }
    v["epe_mean"].as_f64().unwrap()
}

/// Registers a generated pair (`pair/moving.tif` to `pair/fixed.tif`) with extra arguments
/// into `out`, writing the field to `out/f.flo`, and returns the field's path.
pub fn register_pair(pair: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let (fixed, moving, field) = (
        pair.join("fixed.tif"),
        pair.join("moving.tif"),
        out.join("f.flo"),
    );
    let mut args = vec!["register", s(&fixed), s(&moving)];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", s(out), "--field", s(&field), "-q"]);
    alinify_ok(&args);
    field
}

/// Registers a generated pair with extra arguments into `out` and returns the mean EPE.
pub fn register_and_score(pair: &Path, out: &Path, extra: &[&str]) -> f64 {
    let field = register_pair(pair, out, extra);
    epe_mean(&field, pair)
}

/// Applies `out/transform.json` to `pair/moving.tif` on `pair/fixed.tif`'s grid with
/// `alinify warp`, into `dest`.
pub fn warp_with_saved_transform(pair: &Path, out: &Path, dest: &Path) {
    alinify_ok(&[
        "warp",
        s(&pair.join("moving.tif")),
        s(&out.join("transform.json")),
        "--reference",
        s(&pair.join("fixed.tif")),
        "-o",
        s(dest),
        "-q",
    ]);
}
