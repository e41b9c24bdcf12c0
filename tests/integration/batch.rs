//! `alinify batch`: isolation of bad pairs, reports, kill -9 and resume, shards and merge, chains.

use crate::common::{alinify, alinify_ok, s, synth};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `count` generated pairs under `dir/pN` and a manifest listing them (plus `extra` rows).
fn pairs_and_manifest(dir: &Path, count: usize, size: &str, extra: &str) -> PathBuf {
    let mut rows = String::from("fixed,moving,name\n");
    for i in 1..=count {
        synth(&dir.join(format!("p{i}")), size, i as u64, "both");
        rows += &format!("p{i}/fixed.tif,p{i}/moving.tif,pair{i}\n");
    }
    rows += extra;
    let manifest = dir.join("manifest.csv");
    std::fs::write(&manifest, rows).unwrap();
    manifest
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn bad_pairs_fail_alone_and_every_pair_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("corrupt.tif"), b"II*\0 not really a tiff").unwrap();
    let manifest = pairs_and_manifest(
        dir.path(),
        2,
        "160x128",
        "p1/fixed.tif,corrupt.tif,corrupt\np2/fixed.tif,nowhere.tif,missing\n",
    );
    let out = dir.path().join("out");
    let result = alinify(&["batch", s(&manifest), "--out", s(&out), "--mode", "affine"]);
    assert_eq!(result.status.code(), Some(1), "{result:?}");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("2 of 4 pairs failed"), "{stderr}");

    let jobs = summary(&out)["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 4);
    let by_name = |name: &str| jobs.iter().find(|j| j["name"] == name).unwrap().clone();
    for good in ["pair1", "pair2"] {
        assert_eq!(by_name(good)["status"], "done");
        for file in [
            "warped.tif",
            "transform.json",
            "report.json",
            "before.png",
            "after.png",
            "qc.png",
        ] {
            assert!(out.join(good).join(file).is_file(), "{good}/{file}");
        }
        assert_eq!(
            by_name(good)["folded_fraction"].as_f64(),
            Some(0.0),
            "{good}"
        );
        assert!(
            by_name(good)["qc_corr_median"].as_f64().unwrap() > 0.8,
            "{good}"
        );
    }
    let corrupt = by_name("corrupt");
    assert_eq!(corrupt["status"], "failed");
    assert!(corrupt["error"].as_str().unwrap().contains("corrupt.tif"));
    let missing = by_name("missing");
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("nowhere.tif: file not found")
    );

    // The failed pairs wrote nothing, and leave no empty folder.
    assert!(out.join("pair1").join("warped.tif").is_file());
    assert!(!out.join("corrupt").exists() && !out.join("missing").exists());

    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("qc_corr_median,qc_corr_p5,folded_fraction,qc_regions")
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for name in [
        "pair1",
        "pair2",
        "corrupt",
        "missing",
        "pair1/after.png",
        "pair1/qc.png",
    ] {
        assert!(html.contains(name), "report.html lacks {name}");
    }
}

#[test]
fn a_killed_batch_resumes_without_touching_finished_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = pairs_and_manifest(dir.path(), 10, "192x192", "");
    let out = dir.path().join("out");
    let journal = out.join("journal.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_alinify"))
        .args([
            "batch",
            s(&manifest),
            "--out",
            s(&out),
            "--jobs",
            "1",
            "--threads",
            "1",
            "-q",
        ])
        .env_remove("ALINIFY_BACKEND")
        .spawn()
        .unwrap();
    let finished_lines = || {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"event\":\"finished\""))
            .count()
    };
    while finished_lines() < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch ended before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What a write cut short by the kill leaves: a temporary file owned by the dead process
    // (planted, so that the sweep is tested whether or not the kill hit a write).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let stale = out.join("pair10").join(format!(
        ".warped.tif.partial-{}-{}-0",
        host.trim(),
        child.id()
    ));
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"half a tiff").unwrap();

    let text = std::fs::read_to_string(&journal).unwrap();
    let finished: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "finished")
        .map(|v| v["job"].as_str().unwrap().to_owned())
        .collect();
    assert!(finished.len() >= 2 && finished.len() < 10, "{finished:?}");
    let snapshot: Vec<(PathBuf, Vec<u8>)> = finished
        .iter()
        .flat_map(|job| {
            ["warped.tif", "transform.json", "report.json", "after.png"]
                .map(|f| out.join(job).join(f))
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();

    alinify_ok(&["batch", s(&manifest), "--out", s(&out), "--resume", "-q"]);
    for (path, bytes) in &snapshot {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
    }
    let after_resume = std::fs::read_to_string(&journal).unwrap();
    let restarted = after_resume[text.len()..]
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "started" && finished.iter().any(|f| v["job"] == f.as_str()))
        .count();
    assert_eq!(restarted, 0, "finished pairs were run again");
    assert!(
        !stale.exists(),
        "the killed run's temporary file was not swept"
    );
    assert!(
        !out.join(".alinify.lock").exists(),
        "the lock outlived the batch"
    );
    let jobs = summary(&out)["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 10);
    assert!(jobs.iter().all(|j| j["status"] == "done"));
}

#[test]
fn shards_cover_the_batch_and_merge_into_one_report() {
    let dir = tempfile::tempdir().unwrap();
    // The fourth pair (shard 2's second) fails: its shard and the merge exit 1.
    let manifest = pairs_and_manifest(
        dir.path(),
        3,
        "128x128",
        "p1/fixed.tif,nowhere.tif,missing\n",
    );
    for i in 1..=2 {
        let out = dir.path().join(format!("shard{i}"));
        let run = alinify(&[
            "batch",
            s(&manifest),
            "--out",
            s(&out),
            "--mode",
            "affine",
            "--shard",
            &format!("{i}/2"),
            "-q",
        ]);
        assert_eq!(run.status.code(), Some(i32::from(i == 2)), "shard {i}");
    }
    assert_eq!(
        summary(&dir.path().join("shard1"))["jobs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        summary(&dir.path().join("shard2"))["jobs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let merged = dir.path().join("merged");
    let merge = alinify(&[
        "batch",
        "--merge",
        s(&dir.path().join("shard1")),
        s(&dir.path().join("shard2")),
        "--out",
        s(&merged),
        "-q",
    ]);
    assert_eq!(merge.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&merge.stderr);
    assert!(stderr.contains("1 of 4 merged pairs failed"), "{stderr}");
    let jobs = summary(&merged)["jobs"].as_array().unwrap().clone();
    let names: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pair1", "pair2", "pair3", "missing"]);
    assert_eq!(jobs[1]["folder"], "../shard2/pair2");
    // The same shard twice is refused.
    let twice = alinify(&[
        "batch",
        "--merge",
        s(&dir.path().join("shard1")),
        s(&dir.path().join("shard1")),
        "--out",
        s(&merged),
    ]);
    assert_ne!(twice.status.code(), Some(0));
}

#[test]
fn a_chain_composes_every_transform_back_to_the_first_image() {
    let dir = tempfile::tempdir().unwrap();
    // A series: image k is the moving image of generated pair k (all share one texture seed).
    let series = dir.path().join("series");
    std::fs::create_dir_all(&series).unwrap();
    let pair = synth(&dir.path().join("pair"), "160x160", 4, "affine");
    std::fs::copy(pair.join("fixed.tif"), series.join("a.tif")).unwrap();
    std::fs::copy(pair.join("moving.tif"), series.join("b.tif")).unwrap();
    std::fs::copy(pair.join("fixed.tif"), series.join("c.tif")).unwrap();
    let out = dir.path().join("out");
    alinify_ok(&[
        "batch",
        "--chain",
        s(&series),
        "--out",
        s(&out),
        "--mode",
        "fast",
        "-q",
    ]);
    // c is a copy of a: b -> a -> c composes to (almost) the identity from a's grid.
    let to_first = out.join("c").join("to_first.json");
    assert!(out.join("b").join("to_first.json").is_file());
    let warped = dir.path().join("c-on-a.tif");
    alinify_ok(&[
        "warp",
        s(&series.join("c.tif")),
        s(&to_first),
        "-o",
        s(&warped),
    ]);
    assert!(warped.is_file());
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&to_first).unwrap()).unwrap();
    assert_eq!(file["transform"]["type"], "composed");
    assert_eq!(file["transform"]["steps"].as_array().unwrap().len(), 2);
}
