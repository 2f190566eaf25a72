#!/bin/bash
# Submits a sharded preclab run to Slurm: a job array of N shards and a merge job that
# depends on all of them (afterok). Prints the two job ids.
#
# usage: tools/slurm/submit.sh -n N -o OUTDIR [-p PRECLAB] [-m "MERGE ARGS"]
#                              [-s "SBATCH ARGS"] -- COMMAND ARGS...
#   -n N            number of shards (array tasks 1..N)
#   -o OUTDIR       where shard-I-of-N.json, merged.json and the job logs go
#   -p PRECLAB      the preclab binary every node can run (default: preclab on PATH)
#   -m ARGS         extra arguments of 'preclab merge' (e.g. "--csv OUT/m.csv")
#   -s ARGS         extra sbatch arguments for both jobs (partition, time, memory)
#   COMMAND ARGS    the unsharded command line without --json, e.g.
#                   replay /data/updates.bin --policy fp32,master,pure,kahan
#                   ("{I}" and "{N}" are replaced per task: updates.shard{I}of{N}.bin)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shards="" out="" preclab="preclab" merge_args="" sbatch_args=""
while getopts "n:o:p:m:s:" option; do
    case $option in
        n) shards=$OPTARG ;; o) out=$OPTARG ;; p) preclab=$OPTARG ;;
        m) merge_args=$OPTARG ;; s) sbatch_args=$OPTARG ;;
        *) sed -n '2,16p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [[ -z $shards || -z $out || $# -eq 0 ]]; then sed -n '2,16p' "$0" >&2; exit 2; fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PRECLAB=$preclab OUT=$out SHARDS=$shards
# shellcheck disable=SC2086  # sbatch_args and merge_args are word lists on purpose
array=$(sbatch --parsable $sbatch_args --array="1-$shards" --chdir="$out" --export=ALL \
        "$here/preclab-shard.sbatch" "$@")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable $sbatch_args --dependency="afterok:$array" --kill-on-invalid-dep=yes \
        --chdir="$out" --export=ALL "$here/preclab-merge.sbatch" $merge_args)
echo "array job $array ($shards shards), merge job ${merge%%;*} -> $out/merged.json"
