#!/usr/bin/env bash
# The cluster path on a real Slurm: installs Slurm and munge from Debian (when missing), starts
# slurmctld and slurmd for this one machine, then
#   1. submits the README's job-array example over a 16-pair manifest in 4 shards, waits, merges
#      the shards and checks that every pair is in the merged report exactly once, done;
#   2. submits one shard again into a fresh folder, cancels it mid-run with `scancel` (SIGTERM)
#      after its first pair is done, checks that nothing half-written is left, resubmits it with
#      --resume and checks that it completes with every pair once and the first pair not redone.
# Needs root (apt, the daemons). Exit status 0 when every check holds.
#
#   scripts/slurm-test.sh [ALINIFY_BINARY]     (default: target/release/alinify, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
alinify="${1:-$root/target/release/alinify}"
[ -x "$alinify" ] || cargo build --release --no-default-features
alinify="$(realpath "$alinify")"

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
fi

work="$(mktemp -d /tmp/alinify-slurm.XXXXXX)"
conf="$work/slurm.conf"
export SLURM_CONF="$conf"
cleanup() {
  scancel --user="$(id -un)" >/dev/null 2>&1 || true
  [ -f "$work/slurmd.pid" ] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
  [ -f "$work/slurmctld.pid" ] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
  [ -n "${munge_pid:-}" ] && kill "$munge_pid" 2>/dev/null || true
}
trap cleanup EXIT

say "starting munged, slurmctld and slurmd for localhost ($work)"
mkdir -p /etc/munge /var/log/munge /run/munge "$work/spool" "$work/state"
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
chown -R munge:munge /etc/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  runuser -u munge -- munged --force
  munge_pid="$(cat /run/munge/munged.pid)"
fi
munge -n | unmunge >/dev/null || fail "munge does not authenticate"

host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))"
cat >"$conf" <<CONF
ClusterName=alinify-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=30
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
  sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' && break
  sleep 1
done
sinfo -h -o '%T' | grep -Eq '^(idle|mixed|allocated)' || { cat "$work/slurmctld.log" "$work/slurmd.log"; fail "the node did not come up"; }
sinfo

say "16 generated pairs and a manifest"
data="$work/data"
mkdir -p "$data"
echo "fixed,moving,name" >"$data/pairs.csv"
for i in $(seq -w 1 16); do
  "$alinify" --quiet synth --size 192x160 --seed "$i" --deform both --out "$data/p$i"
  echo "p$i/fixed.tif,p$i/moving.tif,pair$i" >>"$data/pairs.csv"
done

# The README's example, for 4 shards, one core each, so that the shards run side by side.
cat >"$work/array.sh" <<JOB
#!/bin/bash
#SBATCH --array=1-4 --cpus-per-task=1 --mem=2G --output=$work/out/array-%a.log
exec "$alinify" batch "$data/pairs.csv" --mode fast --backend cpu --out "$work/run/shard\$SLURM_ARRAY_TASK_ID" --shard \$SLURM_ARRAY_TASK_ID/4 --resume
JOB
mkdir -p "$work/out" "$work/run"

say "job array: 4 shards"
job="$(sbatch --parsable --wait "$work/array.sh")" || { tail -n 20 "$work"/out/*.log; fail "the job array failed"; }
echo "array job $job finished"
"$alinify" batch --merge "$work"/run/shard* --out "$work/run/all"
check_report() { # DIR EXPECTED_COUNT
  python3 - "$1" "$2" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1] + "/summary.json"))
pairs = summary["jobs"]
names = [p["name"] for p in pairs]
want = int(sys.argv[2])
done = [p["name"] for p in pairs if p.get("status") == "done"]
assert len(names) == want, f"{len(names)} pairs in the report, expected {want}"
assert len(set(names)) == len(names), f"a pair is listed twice: {sorted(names)}"
assert len(done) == want, f"only {len(done)} of {want} pairs done"
print(f"{sys.argv[1]}: {want} pairs, each once, all done")
PY
}
check_report "$work/run/all" 16 || fail "the merged report"

say "cancel a shard mid-run (scancel sends SIGTERM), then --resume"
cat >"$work/one.sh" <<JOB
#!/bin/bash
#SBATCH --cpus-per-task=1 --mem=2G --output=$work/out/one-%j.log
exec "$alinify" batch "$data/pairs.csv" --mode accurate --jobs 1 --threads 1 --out "$work/cancel" --resume
JOB
job="$(sbatch --parsable "$work/one.sh")"
for _ in $(seq 600); do
  [ -f "$work/cancel/journal.jsonl" ] && grep -q '"done"' "$work/cancel/journal.jsonl" && break
  sleep 0.5
done
grep -q '"done"' "$work/cancel/journal.jsonl" || fail "no pair finished before the cancel"
scancel "$job"
for _ in $(seq 120); do squeue -h -j "$job" 2>/dev/null | grep -q . || break; sleep 0.5; done
done_before="$(grep -c '"done"' "$work/cancel/journal.jsonl")"
echo "cancelled job $job after $done_before of 16 pairs; its log says:"
tail -n 3 "$work/out/one-$job.log"
left="$(find "$work/cancel" -name '*.partial-*' -o -name '.alinify.lock' | wc -l)"
[ "$left" -eq 0 ] || { find "$work/cancel" -name '*.partial-*' -o -name '.alinify.lock'; fail "temporary files or the lock left after the cancel"; }
[ "$done_before" -lt 16 ] || fail "the batch ended before the cancel; nothing was tested"
first_done="$(grep -m1 '"done"' "$work/cancel/journal.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["job"])')"
stamp="$(stat -c %Y "$work/cancel/$first_done/transform.json")"
job="$(sbatch --parsable --wait "$work/one.sh")" || fail "the resumed job failed"
check_report "$work/cancel" 16 || fail "the resumed report"
[ "$(stat -c %Y "$work/cancel/$first_done/transform.json")" = "$stamp" ] || fail "$first_done was run again"
echo "resumed: $first_done (done before the cancel) was not run again"
say "all Slurm checks passed"
