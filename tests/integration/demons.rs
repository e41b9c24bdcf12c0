//! Demons mode end to end through the CLI (CPU backend; the GPU's own tests are in `gpu.rs`).

use crate::common::{register_and_score, synth};

#[test]
fn demons_mode_registers_a_generated_pair_without_folding() {
    let dir = tempfile::tempdir().unwrap();
    let pair = synth(&dir.path().join("pair"), "256x224", 7, "both");
    let out = dir.path().join("out");
    let epe = register_and_score(&pair, &out, &["--mode", "demons", "--backend", "cpu"]);
    assert!(epe < 0.5, "demons mode mean end-point error {epe} px");
    for name in [
        "warped.tif",
        "transform.json",
        "report.json",
        "velocity.flo",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap()
    };
    let report = read("report.json");
    assert_eq!(report["mode"], "demons");
    let jacobian = &report["qc"]["jacobian"];
    assert_eq!(jacobian["folded_fraction"], 0.0, "{jacobian}");
    assert!(jacobian["min"].as_f64().unwrap() > 0.0, "{jacobian}");
    let transform = read("transform.json");
    let steps = &transform["transform"]["steps"];
    assert_eq!(steps[0]["type"], "velocity", "{transform}");
    assert_eq!(steps[0]["field"], "velocity.flo");
    assert_eq!(steps[1]["type"], "affine");
}
