#!/usr/bin/env bash
# Real Slurm test: start a local single-node cluster, run workflows through profiles/slurm (with the local overlay
# tests/slurm/profile-local merged on top), check their outputs, check that a failing job fails the run, show the
# sacct job list, stop the daemons. Exits non-zero on any failure; every wait is bounded.
# Two workflows run: tests/slurm/Snakefile (job shapes: srun ranks, torchrun, fake GPUs; or the SNAKEFILE given) and
# the project's real workflow (Snakefile at the repository root) with config/tiny.yaml on CPU, whose sampling
# partitions must run as separate Slurm jobs.
# Usage: tests/slurm/run-slurm-test.sh [SNAKEFILE [SNAKEMAKE_ARGS...]]   (needs root; default tests/slurm/Snakefile)
# Environment:
#   I2SB_SLURM_STATE_DIR  cluster state folder (default: a new /tmp/i2sb-slurm.XXXXXX, removed afterwards)
#   I2SB_SLURM_WORKDIR    work folder: snakemake --directory of the test workflow, real workflow copy under real/
#                         (default: a new temporary folder, removed afterwards)
#   I2SB_SLURM_TIMEOUT    seconds allowed for each snakemake run (default 300)
#   I2SB_SLURM_REAL=0     skip the real workflow run
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
# Whether the folders are ours to remove is decided now: sourcing env.sh below sets I2SB_SLURM_STATE_DIR.
OWN_STATE=$([[ -z ${I2SB_SLURM_STATE_DIR:-} ]] && echo 1 || echo 0)
OWN_WORK=$([[ -z ${I2SB_SLURM_WORKDIR:-} ]] && echo 1 || echo 0)
STATE_DIR=${I2SB_SLURM_STATE_DIR:-$(mktemp -d /tmp/i2sb-slurm.XXXXXX)}
WORK=${I2SB_SLURM_WORKDIR:-$(mktemp -d /tmp/i2sb-slurm-work.XXXXXX)}
PROFILE=$(mktemp -d /tmp/i2sb-slurm-profile.XXXXXX)
mkdir -p "$WORK"

finish() {
    local rc=$?
    "$REPO/scripts/slurm/stop-local-slurm.sh" "$STATE_DIR" >/dev/null || rc=1
    if [[ ${I2SB_SLURM_KEEP:-0} != 1 ]]; then
        rm -rf "$PROFILE"
        [[ $OWN_STATE == 1 ]] && rm -rf "$STATE_DIR"
        [[ $OWN_WORK == 1 ]] && rm -rf "$WORK"
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
# TERM, hence --kill-after). snakemake_polling.py is snakemake with the plugin's status checks at most 2 s apart (its
# back-off, +10 s a round up to 180 s, suits jobs of hours; these last seconds).
STATUS_ARGS=()
[[ $I2SB_SLURM_MODE == lite ]] && STATUS_ARGS=(--slurm-status-command squeue)
run_snakemake() {
    local snakefile=$1 directory=$2 log=$3; shift 3
    timeout --kill-after=15 "$TIMEOUT" "$PY" "$REPO/tests/slurm/snakemake_polling.py" --snakefile "$snakefile" --directory "$directory" \
        --profile "$PROFILE" "${STATUS_ARGS[@]}" "$@" >"$log" 2>&1
}
# The sbatch lines a verbose run submitted, job names and duplicates removed.
sbatch_lines() {
    grep -o 'sbatch call: .*--wrap' "$1" | sed 's/ --wrap$//; s/--job-name [^ ]*/--job-name UUID/' | sort -u || true
}

say "workflow $SNAKEFILE (log: $WORK/snakemake.log)"
rc=0
run_snakemake "$SNAKEFILE" "$WORK" "$WORK/snakemake.log" --config python="$PY" --verbose "${EXTRA_ARGS[@]}" || rc=$?
sbatch_lines "$WORK/snakemake.log"
if [[ $rc != 0 ]]; then
    tail -30 "$WORK/snakemake.log" >&2
    [[ $rc == 124 || $rc == 137 ]] && fail "snakemake timed out after ${TIMEOUT}s"
    fail "snakemake exited with $rc"
fi

if [[ $SNAKEFILE == "$DEFAULT_SNAKEFILE" ]]; then
    OUT=$WORK/slurm-test
    # Each probe line is "rank gpus jobid i2sb", appended in one write per process (tests/slurm/rank_probe.py).
    # On a mismatch the whole file is shown, one "| line" per line, so a malformed line is visible as such.
    show() { printf '\n  %s:\n%s' "$1" "$(sed 's/^/  | /' "$1")"; }
    well_formed() { awk 'NF != 4 || $4 != "i2sb" { bad = 1 } END { exit bad || NR == 0 }' "$1"; }
    for f in train_ranks torchrun_ranks part0 part1; do
        well_formed "$OUT/$f.txt" || fail "$f.txt: expected lines 'RANK GPUS JOBID i2sb':$(show "$OUT/$f.txt")"
    done
    # train: one line per srun rank (ranks 0 and 1), each seeing the allocation's GPUs.
    ranks=$(cut -d' ' -f1 "$OUT/train_ranks.txt" | sort | tr '\n' ' ')
    [[ $ranks == "0 1 " ]] || fail "train ran ranks '$ranks', expected '0 1 ' (one per GPU):$(show "$OUT/train_ranks.txt")"
    ranks=$(cut -d' ' -f1 "$OUT/torchrun_ranks.txt" | sort | tr '\n' ' ')
    gpus=$(cut -d' ' -f2 "$OUT/torchrun_ranks.txt" | sort -u)
    [[ $ranks == "0 1 " && $gpus =~ ^[0-9]+,[0-9]+$ ]] \
        || fail "torchrun job: expected ranks 0 1 seeing 2 GPUs:$(show "$OUT/torchrun_ranks.txt")"
    for part in 0 1; do
        gpus=$(cut -d' ' -f2 "$OUT/part$part.txt")
        [[ $gpus =~ ^[0-9]+$ ]] \
            || fail "sample part $part saw CUDA_VISIBLE_DEVICES='$gpus', expected one GPU index:$(show "$OUT/part$part.txt")"
    done
    [[ $(wc -l <"$OUT/summary.txt") == 6 ]] || fail "summary.txt should hold 2 + 2 ranks + 2 parts:$(show "$OUT/summary.txt")"
    say "outputs checked: $(tr '\n' '|' <"$OUT/summary.txt")"
fi

say "a failing job must fail the run (no retries)"
rc=0
run_snakemake "$DEFAULT_SNAKEFILE" "$WORK" "$WORK/snakemake-fail.log" --config python="$PY" --retries 0 always_fails \
    || rc=$?
[[ $rc == 124 || $rc == 137 ]] && fail "snakemake hung on the failing job (killed after ${TIMEOUT}s)"
[[ $rc != 0 ]] || fail "snakemake exited 0 although rule always_fails exits 1"
grep -q "Error in rule always_fails" "$WORK/snakemake-fail.log" || fail "the failed job is not reported as failed"
say "failing job reported, snakemake exited $rc"

# Slurm job id(s) the real workflow submitted for sampling partition PART (of 2), in order, one a line.
sampling_jobs() {
    sed -n "s|.*submitted with SLURM jobid \([0-9]*\) (log: .*/rule_sample/sr4x-pool_ddpm_2_${2}_2/.*|\1|p" "$1"
}
# scancel the first job of sampling partition PART as soon as it runs, then wait for snakemake to submit its retry.
# Writes one line to $REAL/cancel.txt: what happened, with the seconds from the scancel to the retry's submission
# (fails above 60 s: a cancelled job must end in a retry or a named failure within a minute).
cancel_sampling_job() {
    local log=$1 part=$2 job="" state="" retry="" deadline=$((SECONDS + TIMEOUT)) cancelled_at
    note() { echo "$*" >"$REAL/cancel.txt"; }
    until [[ -n $job && $state == RUNNING ]]; do
        ((SECONDS < deadline)) || { note "sampling partition $part: no running job to scancel (job '$job', state '$state')"; return 1; }
        [[ -n $job ]] || job=$(sampling_jobs "$log" "$part" | head -1)
        [[ -n $job ]] && state=$(timeout 20 squeue -h -j "$job" -o %T 2>/dev/null || true)
        [[ $state =~ ^(|PENDING|CONFIGURING|RUNNING)$ ]] \
            || { note "sampling job $job was $state before it could be cancelled"; return 1; }
        sleep 0.2
    done
    timeout 20 scancel "$job" || { note "scancel $job failed"; return 1; }
    cancelled_at=$(date +%s.%N)
    until [[ -n $retry ]]; do
        if ! kill -0 "$snakemake_pid" 2>/dev/null; then
            note "snakemake ended without resubmitting the scancelled sampling job $job"; return 1
        fi
        (($(date +%s) - ${cancelled_at%.*} <= 60)) \
            || { note "sampling job $job was scancelled, but snakemake had not resubmitted it 60 s later"; return 1; }
        retry=$(sampling_jobs "$log" "$part" | sed -n 2p)
        sleep 0.2
    done
    note "running sampling job $job scancelled; snakemake reported it failed and resubmitted it as job $retry" \
        "$(awk -v a="$cancelled_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s later"
    CANCELLED_JOB=$job
}
CANCELLED_JOB=""

# The real workflow: config/tiny.yaml on CPU, in a working copy of links (its configfile paths are relative to the
# working directory), results and MLflow store inside it. The extra configfile sets the train job's geometry, which
# comes from the config (i2sb/cluster.py), never from the profile. track and report are localrules: no Slurm jobs.
REAL=$WORK/real
SAMPLE_JOBS=()
if [[ ${I2SB_SLURM_REAL:-1} == 1 ]]; then
    mkdir -p "$REAL"
    for item in Snakefile config workflow envs; do ln -sfn "$REPO/$item" "$REAL/$item"; done
    cat >"$REAL/slurm-test.yaml" <<EOF
results_dir: $REAL/results
tracking: {uri: "sqlite:///$REAL/results/mlflow.db", artifact_root: "$REAL/results/mlartifacts"}
train:
  resources: {gpus: 0, nodes: 1, cpus_per_task: 1, mem_mb: 1000, runtime_min: 10}
EOF
    say "real workflow: Snakefile with config/tiny.yaml (log: $REAL/snakemake.log)"
    real_start=$(date +%s)
    rc=0
    run_snakemake "$REAL/Snakefile" "$REAL" "$REAL/snakemake.log" --verbose \
        --configfile config/tiny.yaml "$REAL/slurm-test.yaml" &
    snakemake_pid=$!
    # Meanwhile a user scancels sampling partition 0's job: sacct then says "CANCELLED by 0", which the workflow
    # (i2sb/slurm_status.py) reads as a failed job, so the rule's retries resubmit it; without that the plugin would
    # count the job as running and snakemake would wait until the timeout.
    cancel_rc=0
    cancel_sampling_job "$REAL/snakemake.log" 0 || cancel_rc=$?
    # A failed check need not wait for snakemake's timeout: stop the timeout process run_snakemake started (it
    # passes TERM on, then KILL after 15 s).
    [[ $cancel_rc == 0 ]] || pkill -TERM -P "$snakemake_pid" || true
    wait "$snakemake_pid" || rc=$?
    sbatch_lines "$REAL/snakemake.log"
    if [[ $cancel_rc != 0 ]]; then
        tail -40 "$REAL/snakemake.log" >&2
        fail "real workflow: $(cat "$REAL/cancel.txt" 2>/dev/null || echo "the scancel check failed")"
    fi
    if [[ $rc != 0 ]]; then
        tail -40 "$REAL/snakemake.log" >&2
        [[ $rc == 124 || $rc == 137 ]] && fail "real workflow: snakemake timed out after ${TIMEOUT}s"
        fail "real workflow: snakemake exited with $rc"
    fi
    say "scancel: $(cat "$REAL/cancel.txt")"
    for out in tiny/tables/tables.json tiny/eval/sr4x-pool/ddpm/nfe2/metrics.json; do
        [[ -s $REAL/results/$out ]] || fail "real workflow: no $REAL/results/$out"
    done
    # One Slurm job per sampling partition (the plugin names each job's log after its wildcards); partition 0 once
    # more, its retry after the scancel. The last job of each partition is the one that made its samples.
    grep -q "SLURM-job '$CANCELLED_JOB' failed, SLURM status is: 'CANCELLED'" "$REAL/snakemake.log" \
        || fail "real workflow: the log does not name the scancelled job $CANCELLED_JOB as failed"
    for part in 0 1; do
        jobs=$(sampling_jobs "$REAL/snakemake.log" "$part" | tr '\n' ' ')
        expected=$([[ $part == 0 ]] && echo '^[0-9]+ [0-9]+ $' || echo '^[0-9]+ $')
        [[ $jobs =~ $expected ]] \
            || fail "real workflow: sampling partition $part ran as Slurm jobs '$jobs' (expected $expected)"
        SAMPLE_JOBS+=("${jobs% }")
    done
    SAMPLE_JOBS[0]=${SAMPLE_JOBS[0]##* }
    [[ ${SAMPLE_JOBS[0]} != "${SAMPLE_JOBS[1]}" ]] || fail "real workflow: both partitions in Slurm job ${SAMPLE_JOBS[0]}"
    say "real workflow finished in $(($(date +%s) - real_start)) s; sampling partitions in Slurm jobs ${SAMPLE_JOBS[*]}"
fi

if [[ $I2SB_SLURM_MODE == lite ]]; then
    say "squeue job list (no accounting in lite mode)"
    timeout 20 squeue -t all -o "%.6i %.40k %.9P %.8T %.10M %b"
else
    say "sacct job list"
    sacct_lines=$(timeout 20 sacct -a -X -S now-1days -o JobID,Comment%40,Partition,AllocTRES%42,State,ExitCode,Start,Elapsed)
    echo "$sacct_lines"
    grep -q FAILED <<<"$sacct_lines" || fail "sacct shows no FAILED job"
    # Each job's partition follows what it asked for (the profile's partition list, tests/slurm/profile-local): the
    # GPU jobs of tests/slurm/Snakefile in $I2SB_SLURM_GPU_PARTITION, every other job in $I2SB_SLURM_PARTITION.
    placed=$(timeout 20 sacct -a -X -n -P -S now-1days -o JobID,Comment,Partition,ReqTRES | awk -F'|' \
        -v gpu="$I2SB_SLURM_GPU_PARTITION" -v cpu="$I2SB_SLURM_PARTITION" \
        '{ want = $4 ~ /gres\/gpu/ ? gpu : cpu; n[want]++; if ($3 != want) print "  job " $1 " " $2 " in " $3 ", expected " want }
         END { if (!n[gpu] || !n[cpu]) print "  expected jobs in both partitions, got " n[gpu]+0 " GPU and " n[cpu]+0 " CPU jobs" }')
    [[ -z $placed ]] || fail "sacct: jobs in the wrong partition:"$'\n'"$placed"
    say "sacct: GPU jobs in $I2SB_SLURM_GPU_PARTITION, CPU-only jobs in $I2SB_SLURM_PARTITION"
    if [[ -n $CANCELLED_JOB ]]; then
        state=$(timeout 20 sacct -n -X -P -j "$CANCELLED_JOB" -o State)
        [[ $state == "CANCELLED by "* ]] || fail "sacct: the scancelled job $CANCELLED_JOB is '$state'"
        say "sacct: the scancelled sampling job $CANCELLED_JOB is '$state'"
    fi
    for job in "${SAMPLE_JOBS[@]}"; do
        state=$(timeout 20 sacct -n -X -P -j "$job" -o Comment,State)
        [[ $state =~ ^rule_sample_wildcards_sr4x-pool_ddpm_2_[01]_2\|COMPLETED$ ]] \
            || fail "sacct: sampling job $job is '$state', expected a COMPLETED rule_sample job"
    done
    [[ ${#SAMPLE_JOBS[@]} == 0 ]] || say "sacct: sampling partitions COMPLETED as Slurm jobs ${SAMPLE_JOBS[*]}"
fi
