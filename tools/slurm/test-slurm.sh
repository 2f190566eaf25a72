#!/bin/bash
# make test-slurm: a real Slurm on this machine, one node, checks that the job array of
# tools/slurm/submit.sh plus its dependent merge job writes the same merged.json as one
# unsharded 'preclab replay'. Installs Debian's slurm-wlm and munge with apt when they are
# missing (needs root). Everything else is private to a temporary directory: its own
# munge key and socket, slurm.conf (SLURM_CONF), state and spool directories. The
# daemons it starts are stopped by their process ids at the end; /etc is not changed.
#
# usage: tools/slurm/test-slurm.sh PRECLAB_BINARY [SHARDS]
set -euo pipefail
preclab=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shards=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "test-slurm: slurm-wlm is not installed and this is not root" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
fi

work=$(mktemp -d /tmp/preclab-slurm.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$work"; else echo "test-slurm: kept $work"; fi
}
trap cleanup EXIT
mkdir -p "$work"/{state,spool,log,run,out}
chmod 700 "$work"

# munge: a private key and socket (munged refuses to run as root without --force).
dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge.key"
munged --force --foreground --key-file="$work/munge.key" --socket="$work/run/munge.socket" \
    --pid-file="$work/run/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/run/munge.seed" >"$work/log/munged.out" 2>&1 &
pids+=($!)

node=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
export SLURM_CONF=$work/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=preclabtest
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/run/munge.socket
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
NodeName=$node CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

# Wait until munge answers before starting Slurm.
for _ in $(seq 50); do munge -n --socket="$work/run/munge.socket" >/dev/null 2>&1 && break; sleep 0.1; done
slurmctld -D -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
    state=$(sinfo -h -N -o "%T" 2>/dev/null | head -1 || true)
    [[ $state == idle* ]] && break
    sleep 0.5
done
[[ ${state:-} == idle* ]] || { echo "test-slurm: node state '${state:-none}' after 60 s" >&2;
                                tail -20 "$work"/log/*.log >&2; exit 1; }
echo "test-slurm: slurmctld and slurmd up on $node ($cpus CPUs)"

# A synthetic stream of six matrices, replayed unsharded and as a job array.
cd "$work/out"
"$preclab" synth -o stream.bin --shape 96x64,64x64,128x32,48x48,80x40,32x96 --steps 40 --lr 1e-3 \
    --profile rl --quiet
"$here/submit.sh" -n "$shards" -o "$work/out" -p "$preclab" -- replay "$work/out/stream.bin" --null permute
# The shards name the stream by the absolute path given; so must the reference.
"$preclab" replay "$work/out/stream.bin" --null permute --json unsharded.json --quiet
for _ in $(seq 600); do
    [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
    sleep 0.5
done
[[ -z $(squeue -h -o %i) ]] || { echo "test-slurm: jobs still queued after 300 s" >&2; squeue >&2; exit 1; }
[[ -f merged.json ]] || { echo "test-slurm: the merge job wrote no merged.json" >&2; cat ./*.out >&2; exit 1; }
cmp merged.json unsharded.json
echo "test-slurm: $shards array tasks and the afterok merge job reproduced the unsharded replay JSON byte for byte"
