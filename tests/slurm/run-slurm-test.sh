#!/usr/bin/env bash
# Real Slurm test: start a local single-node cluster, run a workflow through profiles/slurm (with the local overlay
# tests/slurm/profile-local merged on top), check its outputs, check that a failing job fails the run, show the
# sacct job list, stop the daemons. Exits non-zero on any failure; every wait is bounded.
# Usage: tests/slurm/run-slurm-test.sh [SNAKEFILE [SNAKEMAKE_ARGS...]]   (needs root; default tests/slurm/Snakefile)
# Environment:
#   I2SB_SLURM_STATE_DIR  cluster state folder (default: a new /tmp/i2sb-slurm.XXXXXX, removed afterwards)
#   I2SB_SLURM_WORKDIR    snakemake --directory (default: a new temporary folder, removed afterwards)
#   I2SB_SLURM_TIMEOUT    seconds allowed for each snakemake run (default 300)
#   I2SB_SLURM_KEEP=1     keep the temporary folders for inspection
#   I2SB_SLURM_MODE=lite  a cluster without accounting; snakemake then polls squeue (sacct cannot answer there)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
SNAKEFILE=$(realpath "${1:-$REPO/tests/slurm/Snakefile}")
shift $(($# > 0 ? 1 : 0))
EXTRA_ARGS=("$@")
DEFAULT_SNAKEFILE=$REPO/tests/slurm/Snakefile
PY=$REPO/.venv/bin/python
TIMEOUT=${I2SB_SLURM_TIMEOUT:-300}
START_S=$(date +%s)

say() { echo "run-slurm-test: [$(($(date +%s) - START_S))s] $*"; }
fail() { echo "run-slurm-test: FAILED: $*" >&2; exit 1; }

[[ -f $SNAKEFILE ]] || fail "no Snakefile at $SNAKEFILE"
[[ -x $PY ]] || fail "no virtualenv at $REPO/.venv (run make install)"
STATE_DIR=${I2SB_SLURM_STATE_DIR:-$(mktemp -d /tmp/i2sb-slurm.XXXXXX)}
WORK=${I2SB_SLURM_WORKDIR:-$(mktemp -d /tmp/i2sb-slurm-work.XXXXXX)}
PROFILE=$(mktemp -d /tmp/i2sb-slurm-profile.XXXXXX)
mkdir -p "$WORK"

finish() {
    local rc=$?
    "$REPO/scripts/slurm/stop-local-slurm.sh" "$STATE_DIR" >/dev/null || rc=1
    if [[ ${I2SB_SLURM_KEEP:-0} != 1 ]]; then
        rm -rf "$PROFILE"
        [[ -z ${I2SB_SLURM_STATE_DIR:-} ]] && rm -rf "$STATE_DIR"
        [[ -z ${I2SB_SLURM_WORKDIR:-} ]] && rm -rf "$WORK"
    fi
    say "$([[ $rc == 0 ]] && echo PASSED || echo "FAILED (rc=$rc)") in $(($(date +%s) - START_S)) s"
    exit $rc
}
trap finish EXIT

say "starting the cluster in $STATE_DIR"
timeout --kill-after=10 600 "$REPO/scripts/slurm/start-local-slurm.sh" "$STATE_DIR"
# shellcheck disable=SC1091
source "$STATE_DIR/env.sh"
"$PY" "$REPO/scripts/slurm/merge_profile.py" "$REPO/profiles/slurm" "$REPO/tests/slurm/profile-local" "$PROFILE"

# snakemake with the merged profile; a status check that never answers would otherwise hang it (and it may ignore
# TERM, hence --kill-after).
STATUS_ARGS=()
[[ $I2SB_SLURM_MODE == lite ]] && STATUS_ARGS=(--slurm-status-command squeue)
run_snakemake() {
    local snakefile=$1 log=$2; shift 2
    timeout --kill-after=15 "$TIMEOUT" "$PY" -m snakemake --snakefile "$snakefile" --directory "$WORK" \
        --profile "$PROFILE" --config python="$PY" "${STATUS_ARGS[@]}" "$@" >"$log" 2>&1
}

say "workflow $SNAKEFILE (log: $WORK/snakemake.log)"
rc=0
run_snakemake "$SNAKEFILE" "$WORK/snakemake.log" --verbose "${EXTRA_ARGS[@]}" || rc=$?
grep -o 'sbatch call: .*--wrap' "$WORK/snakemake.log" | sed 's/ --wrap$//; s/--job-name [^ ]*/--job-name UUID/' | sort -u \
    || true
if [[ $rc != 0 ]]; then
    tail -30 "$WORK/snakemake.log" >&2
    [[ $rc == 124 || $rc == 137 ]] && fail "snakemake timed out after ${TIMEOUT}s"
    fail "snakemake exited with $rc"
fi

if [[ $SNAKEFILE == "$DEFAULT_SNAKEFILE" ]]; then
    OUT=$WORK/slurm-test
    # train: one line per srun rank (ranks 0 and 1), each seeing the allocation's GPUs.
    ranks=$(cut -d' ' -f1 "$OUT/train_ranks.txt" | sort | tr '\n' ' ')
    [[ $ranks == "0 1 " ]] || fail "train ran ranks '$ranks', expected '0 1 ' (one per GPU): $(cat "$OUT/train_ranks.txt")"
    ranks=$(cut -d' ' -f1 "$OUT/torchrun_ranks.txt" | sort | tr '\n' ' ')
    gpus=$(cut -d' ' -f2 "$OUT/torchrun_ranks.txt" | sort -u)
    [[ $ranks == "0 1 " && $gpus =~ ^[0-9]+,[0-9]+$ ]] \
        || fail "torchrun job: expected ranks 0 1 seeing 2 GPUs: $(cat "$OUT/torchrun_ranks.txt")"
    for part in 0 1; do
        gpus=$(cut -d' ' -f2 "$OUT/part$part.txt")
        [[ $gpus =~ ^[0-9]+$ ]] || fail "sample part $part saw CUDA_VISIBLE_DEVICES='$gpus', expected one GPU index"
    done
    [[ $(wc -l <"$OUT/summary.txt") == 6 ]] || fail "summary.txt should hold 2 + 2 ranks + 2 parts: $(cat "$OUT/summary.txt")"
    say "outputs checked: $(tr '\n' '|' <"$OUT/summary.txt")"
fi

say "a failing job must fail the run (no retries)"
rc=0
run_snakemake "$DEFAULT_SNAKEFILE" "$WORK/snakemake-fail.log" --retries 0 always_fails || rc=$?
[[ $rc == 124 || $rc == 137 ]] && fail "snakemake hung on the failing job (killed after ${TIMEOUT}s)"
[[ $rc != 0 ]] || fail "snakemake exited 0 although rule always_fails exits 1"
grep -q "Error in rule always_fails" "$WORK/snakemake-fail.log" || fail "the failed job is not reported as failed"
say "failing job reported, snakemake exited $rc"

if [[ $I2SB_SLURM_MODE == lite ]]; then
    say "squeue job list (no accounting in lite mode)"
    timeout 20 squeue -t all -o "%.6i %.22k %.9P %.8T %.10M %b"
else
    say "sacct job list"
    sacct_lines=$(timeout 20 sacct -a -X -S now-1days -o JobID,Comment%18,Partition,Account,AllocTRES%42,State,ExitCode,Elapsed)
    echo "$sacct_lines"
    grep -q FAILED <<<"$sacct_lines" || fail "sacct shows no FAILED job"
fi
