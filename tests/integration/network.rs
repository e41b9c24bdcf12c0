//! `alinify analyze network` and the batch's `--fixed auto` and `--order auto` on a shuffled
//! stack of slices of a smooth volume.

use crate::common::{alinify_ok, s};
use alinify::raster::{AnyImage, SampleDepth};
use std::path::Path;

/// Slice `z` of the series is saved under `NAMES[z]`: the name order is not the series order.
const NAMES: [&str; 12] = ["k", "c", "h", "a", "l", "e", "j", "b", "g", "d", "i", "f"];

fn shuffled_stack(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (z, slice) in alinify::synth::volume_slices(128, 12, 5).iter().enumerate() {
        let image = AnyImage::from_gray_units(slice, SampleDepth::U8);
        alinify::io::save_image(&dir.join(format!("{}.png", NAMES[z])), &image).unwrap();
    }
}

/// The series position of an image by file name.
fn slice_of(name: &str) -> usize {
    let stem = name.trim_end_matches(".png");
    NAMES.iter().position(|n| *n == stem).unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `batch` with `pairs` (how the pairs are chosen) in the affine mode into `out`; returns
/// its jobs after checking that the summary's `choice` mentions `choice`.
fn affine_batch(pairs: &[&str], out: &Path, choice: &str) -> Vec<serde_json::Value> {
    let mut args = vec!["batch"];
    args.extend_from_slice(pairs);
    args.extend_from_slice(&["--mode", "affine", "--out", s(out), "-q"]);
    alinify_ok(&args);
    let summary = json(&out.join("summary.json"));
    let said = summary["choice"].as_str().unwrap();
    assert!(said.contains(choice), "{said}");
    summary["jobs"].as_array().unwrap().clone()
}

#[test]
fn the_network_orders_a_shuffled_stack_and_the_batch_chains_neighbours_only() {
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("stack");
    shuffled_stack(&stack);

    let net = dir.path().join("net");
    alinify_ok(&["analyze", "network", s(&stack), "--out", s(&net), "-q"]);
    let network = json(&net.join("network.json"));
    let order: Vec<usize> = network["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| slice_of(n.as_str().unwrap()))
        .collect();
    let forward: Vec<usize> = (0..12).collect();
    let backward: Vec<usize> = (0..12).rev().collect();
    assert!(order == forward || order == backward, "{order:?}");
    let reference = slice_of(network["reference"].as_str().unwrap());
    assert!((5..=6).contains(&reference), "reference {reference}");
    let csv = std::fs::read_to_string(net.join("mi.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
    assert!(net.join("network.png").is_file());

    // The chain in the recovered order: every pair is two neighbours of the series.
    let chain = dir.path().join("chain");
    let jobs = affine_batch(
        &["--chain", s(&stack), "--order", "auto"],
        &chain,
        "order recovered from the MI network",
    );
    assert_eq!(jobs.len(), 11);
    for job in &jobs {
        let side = |key: &str| {
            let path = job[key].as_str().unwrap().to_string();
            slice_of(Path::new(&path).file_name().unwrap().to_str().unwrap())
        };
        assert_eq!(side("fixed").abs_diff(side("moving")), 1, "{job}");
        assert_eq!(job["status"], "done");
    }
    assert!(chain.join("network").join("network.json").is_file());

    // The reference chosen for a star batch is the network's centre.
    let star = dir.path().join("star");
    let jobs = affine_batch(
        &["--fixed", "auto", "--moving-dir", s(&stack)],
        &star,
        "closeness centre",
    );
    assert_eq!(jobs.len(), 11);
    let fixed = jobs[0]["fixed"].as_str().unwrap();
    assert_eq!(
        slice_of(Path::new(fixed).file_name().unwrap().to_str().unwrap()),
        reference
    );
}
