//! Fast mode end to end through the CLI (CPU backend; the GPU's own tests are in `gpu.rs`).

use crate::common::{alinify, epe_mean, register_and_score, s, synth, warp_with_saved_transform};

#[test]
fn fast_mode_registers_a_generated_pair_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "384x320", 7, "both");
    let out = dir.path().join("out");
    let epe = register_and_score(&pair, &out, &["--mode", "fast", "--backend", "cpu"]);
    assert!(epe < 0.5, "fast mode mean end-point error {epe} px");
    for name in ["warped.tif", "transform.json", "report.json", "flow.flo"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["mode"], "fast");
    assert_eq!(report["backend"], "cpu");
    assert!(report["ncc_after"].as_f64().unwrap() > report["ncc_before"].as_f64().unwrap());
    let transform: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transform.json")).unwrap())
            .unwrap();
    assert_eq!(transform["transform"]["type"], "dense");

    // The saved transform warps another layer exactly like the registration did.
    let again = dir.path().join("again.tif");
    warp_with_saved_transform(&pair, &out, &again);
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(out.join("warped.tif")).unwrap()
    );
}

#[test]
fn forced_small_tiles_give_the_same_field_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "320x320", 9, "smooth");
    let run = |out: &str, tile: Option<&str>| {
        let out = dir.path().join(out);
        let field = out.join("f.flo");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_alinify"));
        command.args([
            "register",
            s(&pair.join("fixed.tif")),
            s(&pair.join("moving.tif")),
            "--mode",
            "fast",
            "--backend",
            "cpu",
            "--out",
            s(&out),
            "--field",
            s(&field),
            "-q",
        ]);
        command.env_remove("ALINIFY_BACKEND");
        if let Some(tile) = tile {
            command.env("ALINIFY_MAX_TILE_PIXELS", tile);
        }
        let result = command.output().unwrap();
        assert!(result.status.success(), "{result:?}");
        field
    };
    let whole = run("whole", None);
    let tiled = run("tiled", Some("40000"));
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&tiled).unwrap()
    );
    assert!(epe_mean(&tiled, &pair) < 0.5);
}

#[test]
fn bad_flow_settings_fail_with_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "128x128", 1, "smooth");
    let out = alinify(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&pair.join("moving.tif")),
        "--mode",
        "fast",
        "--smoothness=-1",
        "--out",
        s(&dir.path().join("o")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("smoothness"), "{stderr}");
}
