#!/usr/bin/env bash
# Bring up a real Slurm on this machine for tests: munged, [MariaDB, slurmdbd,] slurmctld, and one slurmd per node.
# One node (the default) runs on localhost. With I2SB_SLURM_NODES=N (N >= 2) each node is a slurmd in its own
# network and UTS namespace: hostname i2sb-n<i>, address <subnet>.<10+i> on a bridge whose host side
# (<subnet>.1) is where slurmctld listens; node names resolve through a hosts file bind-mounted over /etc/hosts
# inside each node only.
# Usage: start-local-slurm.sh [STATE_DIR]   (default /tmp/i2sb-slurm; needs root, Debian/Ubuntu apt)
# Environment:
#   I2SB_SLURM_NODES=N                number of nodes (default 1; N >= 2 needs `ip netns` and `unshare`)
#   I2SB_SLURM_SUBNET=A.B.C           the /24 of the namespaced nodes (default 10.231.7); bridge i2sb-br0, namespaces
#                                     i2sb-n<i>, veth i2sb-n<i>h/i2sb-n<i>c (all recorded in STATE_DIR/net)
#   I2SB_SLURM_MODE=accounting|lite   accounting (default): slurmdbd + private MariaDB, so `sacct` works, which is
#                                     what the Snakemake plugin polls. lite: no accounting; the plugin must then be
#                                     told `slurm-status-command: squeue` (see docs/slurm.md).
#   I2SB_SLURM_FAKE_GPUS=N            N fake GPUs per node (character-device clones of /dev/null) as gres gpu
#                                     (default 2; 0 = none)
#   I2SB_SLURM_PARTITION / I2SB_SLURM_ACCOUNT   names of the partition and account (default: local / local); a
#                                     second partition <name>-gpu spans the same nodes (the profile's GPU partition)
# Writes STATE_DIR/env.sh (source it: SLURM_CONF, partition, account) and STATE_DIR/pids (name pid, one a line),
# and STATE_DIR/net (the namespaces and links it made), which stop-local-slurm.sh uses to stop exactly these
# daemons and remove exactly those. No systemd, nothing outside STATE_DIR except apt and the network objects.
set -euo pipefail

STATE_DIR=${1:-/tmp/i2sb-slurm}
MODE=${I2SB_SLURM_MODE:-accounting}
FAKE_GPUS=${I2SB_SLURM_FAKE_GPUS:-2}
NODES=${I2SB_SLURM_NODES:-1}
SUBNET=${I2SB_SLURM_SUBNET:-10.231.7}
BRIDGE=i2sb-br0
PARTITION=${I2SB_SLURM_PARTITION:-local}
ACCOUNT=${I2SB_SLURM_ACCOUNT:-local}
CLUSTER=i2sbtest
CTLD_PORT=6817 SLURMD_PORT=6818 DBD_PORT=6819 DB_PORT=${I2SB_SLURM_DB_PORT:-33061}
HERE=$(cd "$(dirname "$0")" && pwd)
START_S=$(date +%s)

die() { echo "start-local-slurm: $*" >&2; exit 1; }
log() { echo "start-local-slurm: [$(($(date +%s) - START_S))s] $*"; }

[[ $MODE == accounting || $MODE == lite ]] || die "I2SB_SLURM_MODE must be 'accounting' or 'lite', got '$MODE'"
[[ $FAKE_GPUS =~ ^[0-9]+$ ]] || die "I2SB_SLURM_FAKE_GPUS must be a whole number, got '$FAKE_GPUS'"
[[ $NODES =~ ^[1-9]$ ]] || die "I2SB_SLURM_NODES must be a number of nodes from 1 to 9, got '$NODES'"
[[ $SUBNET =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "I2SB_SLURM_SUBNET must be the first three parts of an IPv4 /24 (A.B.C), got '$SUBNET'"
[[ $(id -u) == 0 ]] || die "must run as root (the daemons run as root; packages may need installing)"
if [[ -f $STATE_DIR/pids ]]; then
    die "$STATE_DIR/pids exists: a cluster may still run there; stop it first: stop-local-slurm.sh $STATE_DIR"
fi

install_packages() {
    local pkgs=(munge slurmctld slurmd slurm-client)
    [[ $MODE == accounting ]] && pkgs+=(slurmdbd mariadb-server)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and apt-get is not available"
    log "installing ${missing[*]} with apt-get"
    # Package postinst scripts try to start the services; a policy-rc.d that answers 101 stops that.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    # Another apt run (a shared CI machine) holds the dpkg lock for a while: wait for it, bounded.
    local lock=(-o DPkg::Lock::Timeout=300)
    { DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$STATE_DIR/log/apt.log" 2>&1 || rc=$?
    [[ $own_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ $rc == 0 ]] || { tail -20 "$STATE_DIR/log/apt.log" >&2; die "apt-get failed (full log: $STATE_DIR/log/apt.log)"; }
}

# Start a daemon in the foreground of its own session and record its PID (setsid execs: $! is the daemon).
start_daemon() {
    local name=$1; shift
    setsid "$@" >>"$STATE_DIR/log/$name.out" 2>&1 </dev/null &
    LAST_NAME=$name LAST_PID=$!
    echo "$name $LAST_PID" >>"$STATE_DIR/pids"
}

wait_for() {
    local what=$1 seconds=$2; shift 2
    local deadline=$(($(date +%s) + seconds))
    until "$@" >/dev/null 2>&1; do
        # The daemon started last exited (a busy port, a bad config): say so now instead of at the deadline.
        if ! kill -0 "$LAST_PID" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$LAST_PID/stat" 2>/dev/null) == Z ]]; then
            die "$LAST_NAME exited while waiting for $what; see $STATE_DIR/log/$LAST_NAME.* and the logs beside it"
        fi
        if (($(date +%s) >= deadline)); then
            die "$what not ready after ${seconds}s; logs in $STATE_DIR/log/"
        fi
        sleep 0.2
    done
}

fill() {  # fill TEMPLATE with the @NAME@ values given as NAME=value arguments
    local text
    text=$(<"$1"); shift
    for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
    printf '%s\n' "$text"
}

mkdir -p "$STATE_DIR"/{run,log,state,spool,dev}
chmod 700 "$STATE_DIR"
install_packages
: >"$STATE_DIR/pids"
READY=0
cleanup_on_failure() {
    [[ $READY == 1 ]] && return 0
    echo "start-local-slurm: failed; stopping what was started" >&2
    "$HERE/stop-local-slurm.sh" "$STATE_DIR" >&2 || true
}
trap cleanup_on_failure EXIT

HOST=$(hostname -s)
# CPUs, sockets, cores and threads as slurmd sees them; keep 512 MB of memory back for the daemons.
NODE_HW=$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
MEM_MB=$(($(slurmd -C | head -1 | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') - 512))

GRES_TYPES="" NODE_GRES=""
: >"$STATE_DIR/gres.conf"
if ((FAKE_GPUS > 0)); then
    # gres File= entries must be character devices; clones of /dev/null (c 1 3) are enough for CUDA_VISIBLE_DEVICES.
    for ((i = 0; i < FAKE_GPUS; i++)); do
        [[ -c $STATE_DIR/dev/nvidia-fake$i ]] || mknod "$STATE_DIR/dev/nvidia-fake$i" c 1 3
    done
    # No NodeName: the line holds for every node (each node has its own FAKE_GPUS devices).
    echo "Name=gpu File=$STATE_DIR/dev/nvidia-fake[0-$((FAKE_GPUS - 1))]" >"$STATE_DIR/gres.conf"
    GRES_TYPES="GresTypes=gpu" NODE_GRES="Gres=gpu:$FAKE_GPUS"
fi

if [[ $MODE == accounting ]]; then
    ACCOUNTING_STORAGE=accounting_storage/slurmdbd
    # AccountingStoragePass=<socket>: without it the slurmdbd connection looks for /run/munge and blocks.
    ACCOUNTING_EXTRA="AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$STATE_DIR/run/munge.sock
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment"
    MIN_JOB_AGE=300
else
    ACCOUNTING_STORAGE=accounting_storage/none ACCOUNTING_EXTRA="" MIN_JOB_AGE=300
fi
node_name() { if ((NODES == 1)); then echo "$HOST"; else echo "i2sb-n$1"; fi; }
node_addr() { if ((NODES == 1)); then echo 127.0.0.1; else echo "$SUBNET.$((10 + $1))"; fi; }
CTLD_ADDR=$( ((NODES == 1)) && echo 127.0.0.1 || echo "$SUBNET.1")
NODE_LINES=""
for ((i = 1; i <= NODES; i++)); do
    NODE_LINES+="NodeName=$(node_name $i) NodeAddr=$(node_addr $i) $NODE_HW RealMemory=$MEM_MB $NODE_GRES State=UNKNOWN"$'\n'
    mkdir -p "$STATE_DIR/spool/$(node_name $i)"
done
fill "$HERE/slurm.conf.in" CLUSTER="$CLUSTER" CTLD_HOST="$HOST" CTLD_ADDR="$CTLD_ADDR" DIR="$STATE_DIR" ACCOUNTING_STORAGE="$ACCOUNTING_STORAGE" \
    ACCOUNTING_EXTRA="$ACCOUNTING_EXTRA" MIN_JOB_AGE="$MIN_JOB_AGE" CTLD_PORT="$CTLD_PORT" SLURMD_PORT="$SLURMD_PORT" \
    GRES_TYPES="$GRES_TYPES" NODE_LINES="${NODE_LINES%$'\n'}" PARTITION="$PARTITION" \
    >"$STATE_DIR/slurm.conf"
export SLURM_CONF=$STATE_DIR/slurm.conf
# The Slurm plugin's job step drops SLURM_CONF from the environment of the rule's shell (it keeps only SLURM_JOB_ID
# and a few others), so an `srun` inside a rule finds the cluster only at the default path, as on a real cluster.
# Link it there if nothing is there yet; stop-local-slurm.sh removes the link only while it still points here.
if [[ ! -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    mkdir -p /etc/slurm && ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
    echo /etc/slurm/slurm.conf >"$STATE_DIR/links"
elif [[ $(readlink /etc/slurm/slurm.conf) != "$SLURM_CONF" ]]; then
    echo "start-local-slurm: warning: /etc/slurm/slurm.conf belongs to another cluster; srun inside a rule uses it" >&2
fi

# The namespaced nodes' network: a bridge (host side: slurmctld's address) and one veth pair per node.
# Each object is recorded in STATE_DIR/net as it is made, so stop-local-slurm.sh removes exactly these.
setup_network() {
    command -v ip >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null \
        || die "I2SB_SLURM_NODES=$NODES needs ip (iproute2), unshare and nsenter (util-linux)"
    ip link show "$BRIDGE" >/dev/null 2>&1 && die "$BRIDGE exists already (another test cluster?); not touching it"
    for ((i = 1; i <= NODES; i++)); do
        [[ -e /run/netns/$(node_name $i) ]] && die "network namespace $(node_name $i) exists already; not touching it"
    done
    ip link add "$BRIDGE" type bridge && echo "link $BRIDGE" >>"$STATE_DIR/net"
    ip addr add "$CTLD_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local hosts=$STATE_DIR/hosts ns
    { printf '127.0.0.1 localhost\n%s %s\n' "$CTLD_ADDR" "$HOST"; } >"$hosts"
    for ((i = 1; i <= NODES; i++)); do
        ns=$(node_name $i)
        ip netns add "$ns" && echo "netns $ns" >>"$STATE_DIR/net"
        # Deleting the host end later deletes its peer too.
        ip link add "${ns}h" type veth peer name "${ns}c" && echo "link ${ns}h" >>"$STATE_DIR/net"
        ip link set "${ns}c" netns "$ns"
        ip link set "${ns}h" master "$BRIDGE" up
        ip -n "$ns" addr add "$(node_addr $i)/24" dev "${ns}c"
        ip -n "$ns" link set "${ns}c" up
        ip -n "$ns" link set lo up
        echo "$(node_addr $i) $ns" >>"$hosts"
    done
    # Whether each node reaches the controller shows below: a node that cannot stays out of the idle count.
}
: >"$STATE_DIR/net"
if ((NODES > 1)); then
    log "network: bridge $BRIDGE ($CTLD_ADDR), nodes $(for ((i = 1; i <= NODES; i++)); do printf '%s=%s ' "$(node_name $i)" "$(node_addr $i)"; done)"
    setup_network
fi

log "munged"
dd if=/dev/urandom of="$STATE_DIR/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE_DIR/munge.key"
start_daemon munged munged --foreground --force --key-file="$STATE_DIR/munge.key" \
    --socket="$STATE_DIR/run/munge.sock" --pid-file="$STATE_DIR/run/munged.pid" \
    --log-file="$STATE_DIR/log/munged.log" --seed-file="$STATE_DIR/run/munge.seed"
wait_for munged 20 munge -S "$STATE_DIR/run/munge.sock" -n

if [[ $MODE == accounting ]]; then
    log "MariaDB (private datadir, 127.0.0.1:$DB_PORT)"
    DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mariadb-install-db --no-defaults --user=root --datadir="$STATE_DIR/mysql" --auth-root-authentication-method=socket \
        --skip-test-db >"$STATE_DIR/log/mariadb-install.log" 2>&1
    start_daemon mariadbd mariadbd --no-defaults --user=root --datadir="$STATE_DIR/mysql" \
        --socket="$STATE_DIR/run/mysqld.sock" --pid-file="$STATE_DIR/run/mysqld.pid" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$STATE_DIR/log/mariadb.log"
    wait_for mariadbd 60 mariadb --no-defaults --socket="$STATE_DIR/run/mysqld.sock" -e "SELECT 1"
    mariadb --no-defaults --socket="$STATE_DIR/run/mysqld.sock" -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    # slurmdbd reads slurmdbd.conf beside SLURM_CONF and insists on mode 600.
    fill "$HERE/slurmdbd.conf.in" DIR="$STATE_DIR" DBD_PORT="$DBD_PORT" DB_PORT="$DB_PORT" DB_PASS="$DB_PASS" \
        >"$STATE_DIR/slurmdbd.conf"
    chmod 600 "$STATE_DIR/slurmdbd.conf"
    log "slurmdbd"
    start_daemon slurmdbd slurmdbd -D
    wait_for slurmdbd 60 timeout 5 sacctmgr -n list cluster
    timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null
    timeout 20 sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description=local-tests organization=i2sb >/dev/null
    timeout 20 sacctmgr -i add user root account="$ACCOUNT" defaultaccount="$ACCOUNT" cluster="$CLUSTER" >/dev/null
fi

log "slurmctld, $NODES slurmd"
start_daemon slurmctld slurmctld -D -i
if ((NODES == 1)); then
    start_daemon slurmd slurmd -D -N "$HOST"
else
    for ((i = 1; i <= NODES; i++)); do
        # nsenter: the node's network namespace (not `ip netns exec`, which remounts /sys and so hides the cgroup
        # mount slurmd needs); unshare: its own hostname, and a private mount namespace so the hosts file bind
        # stays inside. Each execs the next, so the recorded PID is slurmd's.
        start_daemon slurmd nsenter --net="/run/netns/$(node_name $i)" unshare --uts --mount sh -c \
            'hostname "$1" && mount --bind "$2" /etc/hosts && exec slurmd -D -N "$1"' sh "$(node_name $i)" "$STATE_DIR/hosts"
    done
fi
# Bounded wait for every node to be usable (idle); a node stuck in INVAL/DRAIN fails here with its reason.
nodes_idle() { [[ $(timeout 5 sinfo -h -N -p "$PARTITION" -o %T 2>/dev/null | grep -c '^idle$') == "$NODES" ]]; }
wait_for "$NODES node(s) idle (sinfo: $STATE_DIR/log/slurmctld.log)" 90 nodes_idle

cat >"$STATE_DIR/env.sh" <<EOF
# Written by start-local-slurm.sh: source this to talk to the local test cluster.
export SLURM_CONF=$STATE_DIR/slurm.conf
export I2SB_SLURM_STATE_DIR=$STATE_DIR
export I2SB_SLURM_MODE=$MODE
export I2SB_SLURM_PARTITION=$PARTITION
export I2SB_SLURM_GPU_PARTITION=$PARTITION-gpu
export I2SB_SLURM_ACCOUNT=$ACCOUNT
export I2SB_SLURM_FAKE_GPUS=$FAKE_GPUS
export I2SB_SLURM_NODES=$NODES
EOF
READY=1
log "ready: $(sinfo -h -N -o '%N %P %T cpus=%c mem=%m gres=%G' | tr '\n' ';')"
log "source $STATE_DIR/env.sh; stop with: $HERE/stop-local-slurm.sh $STATE_DIR"
