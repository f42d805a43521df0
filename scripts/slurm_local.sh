#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, from Debian's packages, for trying (and testing) the grid's
# cluster path:  bash scripts/slurm_local.sh start | stop | status
#
#   start   installs slurmctld, slurmd, slurm-client and munge when they are missing (only as root with
#           apt-get, non-interactively); creates a munge key if there is none and starts munged unless one
#           answers already; writes a minimal slurm.conf (this machine as the one node `debug` partition, its
#           CPUs and RealMemory from `slurmd -C`, no accounting) into $SLURM_LOCAL_DIR; starts slurmctld and
#           slurmd as daemons (pid and log files in that folder) and waits until `sinfo` shows the node idle.
#   stop    stops slurmd, slurmctld and the munged that `start` started; safe to call twice.
#   status  says whether the daemons run and prints `sinfo`.
#
# Environment: SLURM_LOCAL_DIR (default /tmp/contrasting-slurm) holds slurm.conf, state, spool, pid and log
# files; SLURM_LOCAL_TIMEOUT (default 60) is how many seconds `start` waits for the node. The daemons run as
# root (SlurmUser=root), so `start` and `stop` need root (sudo). Clients find the cluster through SLURM_CONF:
#   export SLURM_CONF=${SLURM_LOCAL_DIR:-/tmp/contrasting-slurm}/slurm.conf
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/contrasting-slurm}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
export SLURM_CONF="$DIR/slurm.conf"
MUNGE_SOCKET=/run/munge/munge.socket.2

say() { echo "[slurm_local] $*" >&2; }
die() { say "error: $*"; exit 1; }

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})"
    fi
    say "installing ${missing[*]}"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}")
    "${apt[@]}" >/dev/null 2>&1 || { apt-get update -qq && "${apt[@]}" >/dev/null; } \
        || die "apt-get install ${missing[*]} failed"
}

munge_works() {  # a credential made and decoded through the socket
    command -v munge >/dev/null 2>&1 || return 1
    munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1
}

start_munge() {  # runs inside `launch ||`, where set -e does not apply: every step checks itself
    munge_works && return 0
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none \
            || { say "error: cannot write /etc/munge/munge.key"; return 1; }
    fi
    local user=root
    id munge >/dev/null 2>&1 && user=munge
    mkdir -p /run/munge /var/lib/munge /var/log/munge \
        && chown "$user" /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge \
        && chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key && chmod 0755 /run/munge \
        || { say "error: cannot prepare munge's folders"; return 1; }
    touch "$DIR/munged.started"
    if [ "$user" = root ]; then munged; else runuser -u munge -- munged; fi || true
    for _ in $(seq 20); do munge_works && return 0; sleep 0.5; done
    say "error: munged did not start (see /var/log/munge/munged.log)"
    return 1
}

write_conf() {
    local node cpus mem
    node=$(hostname -s)
    cpus=$(slurmd -C | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' | head -1)
    mem=$(slurmd -C | sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' | head -1)
    [ -n "$cpus" ] && [ -n "$mem" ] || { say "error: no CPUs and RealMemory from 'slurmd -C'"; return 1; }
    mkdir -p "$DIR/state" "$DIR/spool" || return 1
    cat >"$SLURM_CONF" <<EOF
# written by scripts/slurm_local.sh: one node, this machine; no accounting
ClusterName=contrasting
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((mem / cpus))
ReturnToService=2
KillWait=5
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_idle() {  # `idle*` (not responding: slurmd not registered yet) does not count
    local node state
    node=$(hostname -s)
    for _ in $(seq "$TIMEOUT"); do
        state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
        case "$state" in
            idle | mixed | allocated) say "node $node is $state; export SLURM_CONF=$SLURM_CONF"; return 0 ;;
        esac
        sleep 1
    done
    say "error: the node did not become idle within ${TIMEOUT}s (state: ${state:-none}); last log lines:"
    tail -n 5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    return 1
}

start() {
    [ "$(id -u)" = 0 ] || die "start needs root (the daemons run as SlurmUser=root): sudo $0 start"
    install_packages
    mkdir -p "$DIR"
    launch || { say "start failed: stopping what it started"; stop; exit 1; }
}

launch() {  # munged, slurm.conf, slurmctld, slurmd, then wait for the node; non-zero when a step fails
    start_munge || return 1
    write_conf || return 1
    pid_alive "$DIR/slurmctld.pid" || slurmctld -i || { say "error: slurmctld failed: $DIR/slurmctld.log"; return 1; }
    pid_alive "$DIR/slurmd.pid" || slurmd || { say "error: slurmd failed: $DIR/slurmd.log"; return 1; }
    wait_idle
}

stop_pid() {  # stop_pid NAME PIDFILE: TERM, then KILL after 10 s; no error when it is not running
    pid_alive "$2" || { rm -f "$2"; return 0; }
    local pid
    pid=$(cat "$2")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { say "$1 did not stop: killing it"; kill -9 "$pid" 2>/dev/null || true; }
    rm -f "$2"
    say "stopped $1"
}

stop() {
    stop_pid slurmd "$DIR/slurmd.pid"
    stop_pid slurmctld "$DIR/slurmctld.pid"
    if [ -e "$DIR/munged.started" ]; then
        stop_pid munged /run/munge/munged.pid
        rm -f "$DIR/munged.started"
    fi
}

status() {
    local name
    for name in slurmctld slurmd; do
        if pid_alive "$DIR/$name.pid"; then say "$name runs (pid $(cat "$DIR/$name.pid"))"
        else say "$name is not running"; fi
    done
    if munge_works; then say "munged answers"; else say "munged does not answer"; fi
    [ -f "$SLURM_CONF" ] && sinfo 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status   (env SLURM_LOCAL_DIR, default /tmp/contrasting-slurm)" >&2; exit 2 ;;
esac
