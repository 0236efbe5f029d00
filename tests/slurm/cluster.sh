#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the workflow's Slurm tests.
#
#   tests/slurm/cluster.sh up     install the Debian packages if missing, write slurm.conf and
#                                 gres.conf (CPUs and memory of this machine, two fake a100
#                                 GPUs), start munge, slurmctld and slurmd, wait for the node
#   tests/slurm/cluster.sh down   cancel jobs, stop the daemons it started, remove its state
#   tests/slurm/cluster.sh env    print the exports a client needs (SLURM_CONF)
#
# Everything lives in $GEXNET_SLURM_DIR (default /tmp/gexnet-slurm). Where /etc/slurm has no
# slurm.conf, `up` links ours there (srun inside batch jobs reads the default path, not the
# submitter's SLURM_CONF) and `down` removes the link. Needs root (the daemons), not systemd.
# No accounting database: job status comes from squeue. Memory is enforced: a job step over its
# --mem is killed.
# The GPUs are character devices with no CUDA behind them: Slurm schedules them and sets
# CUDA_VISIBLE_DEVICES, which is what the tests check.
set -euo pipefail

STATE="${GEXNET_SLURM_DIR:-/tmp/gexnet-slurm}"
CONF="$STATE/etc/slurm.conf"
HOST="$(hostname -s)"
PARTITION="${GEXNET_SLURM_PARTITION:-ci}"

log() { echo "cluster.sh: $*" >&2; }

install_packages() {
    local missing=()
    for tool in slurmctld slurmd sbatch munged; do
        command -v "$tool" > /dev/null || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            slurmctld slurmd slurm-client munge; } > "$STATE/apt.log" 2>&1 \
            || { cat "$STATE/apt.log" >&2; exit 1; }
    fi
}

write_config() {
    local cpus mem
    cpus="$(nproc)"
    # Leave the OS some memory: Slurm refuses a node reporting less than RealMemory.
    mem="$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)"
    mkdir -p "$STATE"/{etc,ctld,spool,dev,munge,log}
    for i in 0 1; do
        [ -e "$STATE/dev/nvidia$i" ] || mknod "$STATE/dev/nvidia$i" c 1 3  # like /dev/null
    done
    cat > "$CONF" << EOF
ClusterName=gexnet-ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
# Memory is enforced the way sites without cgroups do it: a step over its --mem is killed (the
# retry-with-more-memory test relies on it).
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
JobCompType=jobcomp/none
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmdSpoolDir=$STATE/spool
StateSaveLocation=$STATE/ctld
SlurmctldPort=16817
SlurmdPort=16818
# Finished jobs stay in squeue for an hour: the tests read their records after the run.
MinJobAge=3600
KillWait=10
NodeName=$HOST CPUs=$cpus RealMemory=$mem Gres=gpu:a100:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    cat > "$STATE/etc/gres.conf" << EOF
NodeName=$HOST Name=gpu Type=a100 File=$STATE/dev/nvidia[0-1]
EOF
}

start_munge() {
    if [ ! -f "$STATE/munge/munge.key" ]; then
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$STATE/munge/munge.key"
    fi
    chmod 700 "$STATE/munge"
    munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/log/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
}

wait_for_node() {
    local state=""
    for _ in $(seq 1 60); do
        state="$(SLURM_CONF="$CONF" sinfo -h -N -o '%T' 2> /dev/null | head -1 || true)"
        case "$state" in
            idle | mixed | allocated) log "node $HOST is $state"; return 0 ;;
        esac
        sleep 1
    done
    log "node $HOST did not come up (state: ${state:-none}); logs in $STATE/log"
    tail -n 20 "$STATE"/log/*.log >&2 || true
    return 1
}

link_default_config() {
    mkdir -p /etc/slurm
    for name in slurm.conf gres.conf; do
        if [ -L "/etc/slurm/$name" ] && [ ! -e "/etc/slurm/$name" ]; then
            rm "/etc/slurm/$name"  # left by a cluster that was never taken down
        fi
        if [ ! -e "/etc/slurm/$name" ]; then
            ln -s "$STATE/etc/$name" "/etc/slurm/$name"
        elif [ "$(readlink "/etc/slurm/$name")" != "$STATE/etc/$name" ]; then
            log "/etc/slurm/$name exists and is not ours: jobs' srun will read it, not $CONF"
        fi
    done
}

unlink_default_config() {
    for name in slurm.conf gres.conf; do
        if [ "$(readlink "/etc/slurm/$name" 2> /dev/null)" = "$STATE/etc/$name" ]; then
            rm -f "/etc/slurm/$name"
        fi
    done
}

up() {
    [ "$(id -u)" -eq 0 ] || { log "needs root (to start slurmctld and slurmd)"; exit 1; }
    if pgrep -x slurmctld > /dev/null || pgrep -x slurmd > /dev/null; then
        log "a slurmctld or slurmd is already running (pgrep -a slurm); take that cluster down first"
        exit 1
    fi
    mkdir -p "$STATE"
    install_packages
    write_config
    link_default_config
    start_munge
    SLURM_CONF="$CONF" slurmctld -f "$CONF"
    SLURM_CONF="$CONF" slurmd -f "$CONF"
    wait_for_node
}

stop_pid() {  # stop_pid NAME PIDFILE: SIGTERM, then SIGKILL after 10 s
    local name="$1" file="$2" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    if kill -0 "$pid" 2> /dev/null; then
        kill "$pid"
        for _ in $(seq 1 20); do kill -0 "$pid" 2> /dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2> /dev/null && { log "$name did not stop: SIGKILL"; kill -9 "$pid"; }
    fi
    rm -f "$file"
}

down() {
    if [ -f "$CONF" ]; then
        SLURM_CONF="$CONF" scancel --quiet --full -u "$(id -un)" 2> /dev/null || true
    fi
    stop_pid slurmd "$STATE/slurmd.pid"
    stop_pid slurmctld "$STATE/slurmctld.pid"
    stop_pid munged "$STATE/munge/munged.pid"
    unlink_default_config
    rm -rf "$STATE"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
