#!/usr/bin/env bash
# Stop the daemons that start-local-slurm.sh started, and nothing else: the PIDs recorded in STATE_DIR/pids,
# newest first, each with TERM, a bounded wait, then KILL. A PID whose process is not the recorded daemon any more
# (exited, or the number was reused) is left alone. Then the network objects listed in STATE_DIR/net (namespaced
# nodes, their links and bridge): processes still inside those namespaces (job steps outliving their slurmd) are
# killed first, then the namespaces and links are deleted.
# Usage: stop-local-slurm.sh STATE_DIR
set -uo pipefail

STATE_DIR=${1:?usage: stop-local-slurm.sh STATE_DIR}
PIDS=$STATE_DIR/pids
NET=$STATE_DIR/net
if [[ ! -f $PIDS && ! -s $NET ]]; then
    echo "stop-local-slurm: no $PIDS: nothing started there" >&2
    exit 0
fi

is_ours() {  # the PID still runs the program we started under that name
    local name=$1 pid=$2 comm
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    # A zombie (exited, not yet reaped by its parent) is not running any more.
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# Cancel jobs still in this cluster first: with proctrack/linuxproc their steps would outlive slurmd.
if [[ -f $STATE_DIR/slurm.conf ]]; then
    export SLURM_CONF=$STATE_DIR/slurm.conf
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        echo "stop-local-slurm: cancelling jobs $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel --full $jobs || true
        for _ in $(seq 1 75); do [[ -z $(timeout 5 squeue -h -o %A 2>/dev/null) ]] && break; sleep 0.2; done
    fi
fi

status=0
# tac: stop in reverse start order (slurmd before slurmctld before slurmdbd before the database and munged).
while read -r name pid; do
    [[ -n $name && $pid =~ ^[0-9]+$ ]] || continue
    is_ours "$name" "$pid" || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do is_ours "$name" "$pid" || break; sleep 0.2; done
    if is_ours "$name" "$pid"; then
        echo "stop-local-slurm: $name ($pid) ignored TERM for 10 s; sending KILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
        is_ours "$name" "$pid" && { echo "stop-local-slurm: $name ($pid) still runs" >&2; status=1; }
    fi
    echo "stop-local-slurm: stopped $name ($pid)"
done < <(tac "$PIDS" 2>/dev/null)

# Namespaced nodes: what still runs inside a namespace this cluster made is this cluster's (bounded waits).
if [[ -s $NET ]]; then
    while read -r kind name; do
        [[ $kind == netns && -e /run/netns/$name ]] || continue
        for signal in TERM KILL; do
            left=$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ')
            [[ -z ${left// /} ]] && break
            echo "stop-local-slurm: $signal to processes left in namespace $name: $left"
            # shellcheck disable=SC2086
            kill -$signal $left 2>/dev/null || true
            for _ in $(seq 1 25); do [[ -z $(ip netns pids "$name" 2>/dev/null) ]] && break; sleep 0.2; done
        done
    done <"$NET"
    while read -r kind name; do
        case $kind in
            netns) ip netns del "$name" 2>/dev/null && echo "stop-local-slurm: deleted namespace $name" ;;
            link) ip link del "$name" 2>/dev/null && echo "stop-local-slurm: deleted link $name" ;;
        esac
        still=0
        case $kind in
            netns) [[ -e /run/netns/$name ]] && still=1 ;;
            link) ip link show "$name" >/dev/null 2>&1 && still=1 ;;
        esac
        [[ $still == 1 ]] && { echo "stop-local-slurm: could not delete $kind $name" >&2; status=1; }
    done < <(tac "$NET")
    [[ $status == 0 ]] && mv "$NET" "$NET.removed"
fi
# The default-path link to this cluster's slurm.conf, if the start script made it and it still points here.
if [[ -f $STATE_DIR/links ]]; then
    while read -r link; do
        [[ -L $link && $(readlink "$link") == "$STATE_DIR/slurm.conf" ]] && rm -f "$link"
    done <"$STATE_DIR/links"
    rm -f "$STATE_DIR/links"
fi
[[ $status == 0 && -f $PIDS ]] && mv "$PIDS" "$PIDS.stopped"
exit $status
