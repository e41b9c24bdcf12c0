//! The fuzz targets' kept inputs as regression tests: the minimised corpus
//! (`fuzz/corpus/TARGET/`) and every input that once crashed a target
//! (`fuzz/regressions/TARGET/`, named after the bug), run through the same harness functions
//! the fuzzer runs.

#[path = "../../fuzz/src/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

const REPLAY_TEST: &str = "fuzz_regressions::replay_kept_fuzz_inputs";

fn kept_inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|entry| entry.expect("a readable fuzz folder").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Replays the inputs in a child process, because the harness lowers the pixel limit through
/// `ALINIFY_MAX_PIXELS`, which must not change under the tests running beside it.
#[test]
fn every_kept_fuzz_input_is_read_without_a_panic() {
    for (target, _) in harness::TARGETS {
        assert!(
            !kept_inputs(target).is_empty(),
            "fuzz/corpus/{target} holds no inputs"
        );
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([REPLAY_TEST, "--exact", "--ignored", "--nocapture"])
        .env("ALINIFY_MAX_PIXELS", harness::FUZZ_MAX_PIXELS.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "replaying the fuzz inputs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "run in a child process by every_kept_fuzz_input_is_read_without_a_panic"]
fn replay_kept_fuzz_inputs() {
    assert_eq!(
        std::env::var("ALINIFY_MAX_PIXELS").ok(),
        Some(harness::FUZZ_MAX_PIXELS.to_string()),
        "run under the fuzzers' pixel limit"
    );
    let scratch = tempfile::tempdir().unwrap();
    for (target, run) in harness::TARGETS {
        for input in kept_inputs(target) {
            eprintln!("{target}: {}", input.display());
            run(scratch.path(), &std::fs::read(&input).unwrap());
        }
    }
}
