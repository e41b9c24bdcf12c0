#!/usr/bin/env bash
# Fuzzes every parser target for SECONDS each (default 600), as many at once as there are
# cores, with libFuzzer through cargo-fuzz (stable Rust, RUSTC_BOOTSTRAP=1). New corpus
# entries are merged into fuzz/corpus/TARGET (minimised); a crash is copied to
# fuzz/regressions/TARGET/, where the normal test suite replays it. Exit status 1 if any target
# crashed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: image flo transform elastix preset manifest landmarks
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image flo transform elastix preset manifest landmarks)

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Build once and run the binaries themselves: `cargo fuzz run` would rebuild mid-run when the
# sources change.
cargo fuzz build
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
run_dir="$(mktemp -d)"
trap 'rm -rf "$run_dir"' EXIT

fuzz_one() {
  local target="$1" found="$run_dir/$1"
  mkdir -p "$found" "corpus/$target" "regressions/$target"
  # -rss_limit_mb: the harness caps images at 4 MP, so 2 GiB is an allocation bug, not data.
  if "$bin/$target" "$found" "corpus/$target" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=262144 \
      -artifact_prefix="$run_dir/$target-" -print_final_stats=1 >"$run_dir/$target.log" 2>&1; then
    status=ok
  else
    status=CRASH
    for artifact in "$run_dir/$target-"*; do
      [ -f "$artifact" ] && cp "$artifact" "regressions/$target/"
    done
  fi
  # Minimise: the smallest set of inputs that covers what the old corpus and the new finds cover.
  local merged="$run_dir/$target-merged"
  mkdir -p "$merged"
  "$bin/$target" "$merged" "corpus/$target" "$found" -set_cover_merge=1 \
    >"$run_dir/$target-merge.log" 2>&1 || true
  if [ -n "$(ls -A "$merged")" ]; then
    rm -f "corpus/$target"/*
    cp "$merged"/* "corpus/$target/"
  fi
  local runs
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$run_dir/$target.log" | grep -o '[0-9]*$' || echo '?')"
  echo "$target: $status after ${seconds}s, $runs executions, $(ls "corpus/$target" | wc -l) corpus inputs"
  [ "$status" = ok ] || { grep -m 20 -A 20 'ERROR\|panicked' "$run_dir/$target.log" || tail -n 40 "$run_dir/$target.log"; }
  [ "$status" = ok ]
}

jobs="$(nproc)"
failed=0
pids=()
for target in "${targets[@]}"; do
  fuzz_one "$target" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit "$failed"
