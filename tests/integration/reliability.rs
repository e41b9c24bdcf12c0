//! Nothing is lost and nothing is left behind: outputs never replace inputs, temporary files go
//! on every failure and signal, absurd requests are refused before any work, a batch folder is
//! locked, and the exit status says whether the input or the system failed.

use crate::common::{alinify, alinify_ok, s, synth};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Every file under `dir` whose name marks it as a temporary (`.NAME.partial-...`).
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temporaries(&path));
        } else if entry.file_name().to_string_lossy().contains(".partial-") {
            found.push(path);
        }
    }
    found
}

/// Asserts a refusal: status 2, one line, every `needle` in it.
fn assert_refused(run: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} not in: {}", lines[0]);
    }
}

/// A registered 64 x 64 pair: `(pair folder, registration folder with transform.json)`.
fn registered(dir: &Path) -> (PathBuf, PathBuf) {
    let pair = synth(&dir.join("pair"), "64x64", 3, "affine");
    let out = dir.join("reg");
    alinify_ok(&[
        "register",
        s(&pair.join("fixed.tif")),
        s(&pair.join("moving.tif")),
        "--mode",
        "affine",
        "--out",
        s(&out),
        "-q",
    ]);
    (pair, out)
}

#[test]
fn an_output_that_would_replace_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, reg) = registered(dir.path());
    let (fixed, moving) = (pair.join("fixed.tif"), pair.join("moving.tif"));
    let transform = reg.join("transform.json");
    let before = std::fs::read(&moving).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["warp", s(&moving), s(&transform), "-o", s(&moving)],
            "would replace the image",
        ),
        (
            vec![
                "register",
                s(&fixed),
                s(&moving),
                "--field",
                s(&moving),
                "--out",
                s(&reg),
            ],
            "would replace the moving image",
        ),
        (
            vec![
                "register",
                s(&fixed),
                s(&moving),
                "--export-elastix",
                s(&moving),
                "--out",
                s(&reg),
            ],
            "would replace the moving image",
        ),
        (
            vec!["compose", s(&fixed), s(&moving), "-o", s(&moving)],
            "would replace the moving image",
        ),
    ];
    for (args, message) in cases {
        assert_refused(&alinify(&args), &[message]);
        assert_eq!(
            std::fs::read(&moving).unwrap(),
            before,
            "{args:?} changed it"
        );
    }
    // An output folder that holds the moving image under the name of an output.
    let warped_as_input = pair.join("warped.tif");
    std::fs::copy(&moving, &warped_as_input).unwrap();
    let run = alinify(&[
        "register",
        s(&fixed),
        s(&warped_as_input),
        "--out",
        s(&pair),
    ]);
    assert_refused(&run, &["would replace the moving image", "warped.tif"]);
    assert_eq!(std::fs::read(&warped_as_input).unwrap(), before);
    // The analysis folders: an input named like a map or report in the folder written to.
    let corr_as_input = pair.join("corr.tif");
    std::fs::copy(&moving, &corr_as_input).unwrap();
    let quality = ["analyze", "quality", s(&fixed), s(&corr_as_input)];
    let run = alinify(&[&quality[..], &["--maps", "corr", "--out", s(&pair)]].concat());
    assert_refused(&run, &["would replace the moving", "corr.tif"]);
    assert_eq!(std::fs::read(&corr_as_input).unwrap(), before);
    let report_as_input = reg.join("jacobian.json");
    std::fs::copy(&transform, &report_as_input).unwrap();
    let run = alinify(&["analyze", "jacobian", s(&report_as_input), "--out", s(&reg)]);
    assert_refused(&run, &["would replace the transform", "jacobian.json"]);
    // An existing folder as the output file: refused before anything is written.
    let run = alinify(&["warp", s(&moving), s(&transform), "-o", s(&reg)]);
    assert_refused(&run, &["is a directory"]);
    assert!(temporaries(dir.path()).is_empty());
}

#[test]
fn a_batch_whose_outputs_would_replace_its_inputs_runs_no_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let job = out.join("x");
    synth(&job, "64x64", 1, "affine");
    // The pair lives in its job's own output folder, its moving image named warped.tif: the
    // job would write over it.
    std::fs::rename(job.join("moving.tif"), job.join("warped.tif")).unwrap();
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "out/x/fixed.tif,out/x/warped.tif,x\n").unwrap();
    let run = alinify(&["batch", s(&manifest), "--out", s(&out), "-q"]);
    assert_refused(&run, &["would replace the moving image"]);
    assert!(!out.join("journal.jsonl").exists(), "a pair ran");
}

#[test]
fn sigterm_stops_a_batch_cleanly_and_resume_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    for i in 1..=6 {
        synth(&dir.path().join(format!("p{i}")), "160x160", i, "both");
        rows += &format!("p{i}/fixed.tif,p{i}/moving.tif,pair{i}\n");
    }
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, rows).unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_alinify"))
        .args(["batch", s(&manifest), "--out", s(&out), "--jobs", "1", "-q"])
        .env_remove("ALINIFY_BACKEND")
        .spawn()
        .unwrap();
    let journal = out.join("journal.jsonl");
    while !std::fs::read_to_string(&journal)
        .unwrap_or_default()
        .contains("\"finished\"")
    {
        assert!(child.try_wait().unwrap().is_none(), "the batch ended first");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "SIGTERM did not cancel: {status:?}"
    );
    assert_eq!(temporaries(&out), Vec::<PathBuf>::new());
    assert!(!out.join(".alinify.lock").exists());
    alinify_ok(&["batch", s(&manifest), "--out", s(&out), "--resume", "-q"]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["done"], 6, "{summary}");
}

#[test]
fn a_second_batch_on_a_locked_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    synth(&dir.path().join("p"), "64x64", 1, "affine");
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "p/fixed.tif,p/moving.tif\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The lock of a running batch: this test process is alive on this host.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let lock = out.join(".alinify.lock");
    std::fs::write(&lock, format!("{} {}\n", host.trim(), std::process::id())).unwrap();
    let run = alinify(&["batch", s(&manifest), "--out", s(&out), "-q"]);
    assert_refused(
        &run,
        &["another alinify batch", &std::process::id().to_string()],
    );
    assert!(lock.exists(), "a live lock was removed");
}

/// Runs `alinify` and fails the test if it has not ended within `limit`.
fn alinify_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alinify"))
        .args(args)
        .env_remove("ALINIFY_BACKEND")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("alinify {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn absurd_requests_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, reg) = registered(dir.path());
    let (fixed, moving) = (pair.join("fixed.tif"), pair.join("moving.tif"));
    let o = dir.path().join("o.tif");
    let minute = Duration::from_secs(60);

    let fifo = dir.path().join("fifo.tif");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let run = alinify_within(
        &["register", s(&fifo), s(&moving), "--out", s(&reg)],
        minute,
    );
    assert_refused(&run, &["fifo.tif", "is not a regular file"]);

    for size in ["100000", "1000000"] {
        let run = alinify_within(&["bench", "warp", "--size", size], minute);
        assert_refused(&run, &["--size", "too large"]);
    }

    let text = std::fs::read_to_string(reg.join("transform.json")).unwrap();
    let mut huge: serde_json::Value = serde_json::from_str(&text).unwrap();
    huge["fixed"] = serde_json::json!({"width": 100000, "height": 100000});
    let huge_path = dir.path().join("huge.json");
    std::fs::write(&huge_path, huge.to_string()).unwrap();
    let run = alinify_within(&["warp", s(&moving), s(&huge_path), "-o", s(&o)], minute);
    assert_refused(&run, &["huge.json", "over the limit"]);
    let mut future: serde_json::Value = serde_json::from_str(&text).unwrap();
    future["version"] = 99.into();
    let future_path = dir.path().join("future.json");
    std::fs::write(&future_path, future.to_string()).unwrap();
    let run = alinify(&["warp", s(&moving), s(&future_path), "-o", s(&o)]);
    assert_refused(&run, &["future.json", "version 99"]);

    // A field of NaN: refused by warp (through a transform) and by eval.
    let nan_field = dir.path().join("nan.flo");
    let mut bytes = 202021.25f32.to_le_bytes().to_vec();
    bytes.extend(4i32.to_le_bytes());
    bytes.extend(4i32.to_le_bytes());
    bytes.extend((0..32).flat_map(|_| f32::NAN.to_le_bytes()));
    std::fs::write(&nan_field, bytes).unwrap();
    let dense = dir.path().join("dense.json");
    std::fs::write(
        &dense,
        r#"{"format":"alinify-transform","version":1,"fixed":{"width":64,"height":64},
            "moving":{"width":64,"height":64},"transform":{"type":"dense","field":"nan.flo","scale":16}}"#,
    )
    .unwrap();
    let run = alinify(&["warp", s(&moving), s(&dense), "-o", s(&o)]);
    assert_refused(&run, &["nan.flo", "NaN"]);
    let run = alinify(&["eval", "--field", s(&nan_field), "--gt", s(&nan_field)]);
    assert_refused(&run, &["nan.flo", "NaN"]);

    for (flag, value) in [("--opacity", "NaN"), ("--opacity", "7"), ("--square", "0")] {
        let run = alinify(&["compose", s(&fixed), s(&moving), flag, value, "-o", s(&o)]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
    let run = alinify(&[
        "register",
        s(&fixed),
        s(&moving),
        "--grid-spacing",
        "-5",
        "--out",
        s(&reg),
    ]);
    assert_refused(&run, &["grid_spacing", "--grid-spacing", "-5"]);
    let preset = dir.path().join("bad-preset.toml");
    std::fs::write(&preset, "grid_spacing = -5.0\n").unwrap();
    let run = alinify(&[
        "register",
        s(&fixed),
        s(&moving),
        "--preset",
        s(&preset),
        "--out",
        s(&reg),
    ]);
    assert_refused(&run, &["bad-preset.toml", "grid_spacing"]);
    assert!(!o.exists());

    // Far too many threads: capped with a message, and the command still works.
    let run = alinify_within(
        &[
            "warp",
            s(&moving),
            s(&reg.join("transform.json")),
            "-o",
            s(&o),
            "--threads",
            "100000",
        ],
        minute,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("--threads 100000 is more than"), "{stderr}");
}

#[test]
fn a_write_that_fails_on_the_system_side_exits_1_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pair");
    // The file-size limit stands in for a full disk: writes fail with an I/O error (EFBIG)
    // once a file passes 8 blocks; SIGXFSZ is ignored so that the write itself fails.
    let run = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_alinify"),
            "synth",
            "--size",
            "256x256",
            "--out",
            s(&out),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert_eq!(temporaries(&out), Vec::<PathBuf>::new());
}
