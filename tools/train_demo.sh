#!/bin/sh
# `make demo`: real training in the lab. Pretrains a base, runs two RL runs (seeds 1
# and 2) and one SFT run from it, each recorded; replays every stream under every bf16
# storage policy; compares each final checkpoint with the base; measures the
# consistency of the two RL runs; runs one RL run with pure bf16 storage in the loop
# against its open-loop replay; writes results/demo/README.md from the JSON outputs.
#
# usage: tools/train_demo.sh PRECLAB TMP_DIR OUT_DIR
# TMP_DIR holds the checkpoints and streams (about 520 MB) and is deleted by the caller.
set -eu
PRECLAB=$1
TMP=$2
OUT=$3
PYTHON=${PYTHON:-python3}

BITS=6            # (a + b) mod 64: 64 answers, chance 1/64
HIDDEN=256,256
PRETRAIN_STEPS=250
STEPS=300
RL_LR_RELATIVE=5e-5    # 1e-6 at the weight RMS 0.02 of LLM checkpoints
SFT_LR_RELATIVE=5e-4   # 1e-5 at the same scale
K=8                    # top-k subspaces for compare (the smallest matrix is 256x12)

START=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
run() { echo "\$ preclab $*" | sed "s|$TMP/||g"; "$PRECLAB" "$@"; }
keep() {  # keep a run's small outputs: log, summary, curves
  mkdir -p "$OUT/$2"
  cp "$TMP/$1/log.csv" "$TMP/$1/summary.json" "$TMP/$1/reward.svg" "$TMP/$1/loss.svg" "$TMP/$1/updates.svg" "$OUT/$2/"
}

echo "== pretrain the base: (a + b) mod 2^$BITS, MLP $HIDDEN, $PRETRAIN_STEPS steps"
run train --method pretrain --bits $BITS --hidden $HIDDEN --steps $PRETRAIN_STEPS --seed 0 --no-stream \
  -o "$TMP/pretrain" --quiet
keep pretrain pretrain
# The base as a bf16 checkpoint loaded into fp32 masters (as LLM fine-tuning starts).
BASE="$TMP/pretrain/final.bf16.safetensors"

for spec in rl-seed1:rl:1:$RL_LR_RELATIVE rl-seed2:rl:2:$RL_LR_RELATIVE sft:sft:3:$SFT_LR_RELATIVE; do
  name=${spec%%:*}; rest=${spec#*:}; method=${rest%%:*}; rest=${rest#*:}; seed=${rest%%:*}; lr=${rest#*:}
  echo; echo "== $name: $method from the base, seed $seed, lr $lr x weight RMS, $STEPS steps, recorded"
  run train --method $method --base "$BASE" --steps $STEPS --seed $seed --lr-relative $lr -o "$TMP/$name"
  keep $name $name
  echo; echo "== $name: replay the fp32 master stream under every bf16 storage policy"
  run replay "$TMP/$name/updates.bin" --dtype bf16 --null permute --seed $seed --force \
    --json "$OUT/$name/replay.json" --csv "$OUT/$name/replay.csv" --plots "$OUT/$name/replay-plots" \
    | tee "$OUT/$name/replay.txt"
  echo; echo "== $name: compare the final checkpoint with the base (bf16 codes)"
  run compare "$TMP/$name/base.safetensors" "$TMP/$name/final.safetensors" --dtype bf16 --k $K --rank $K --force \
    --json "$OUT/$name/compare.json" --csv "$OUT/$name/compare.csv" --quiet | tee "$OUT/$name/compare.txt"
done

echo; echo "== consistency of the two RL runs"
run consistency --base "$BASE" "$TMP/rl-seed1/final.safetensors" "$TMP/rl-seed2/final.safetensors" --dtype bf16 \
  --force --json "$OUT/consistency.json" --quiet | tee "$OUT/consistency.txt"

echo; echo "== closed loop: RL seed 1 with pure bf16 storage in training, against the open-loop replay"
run train --method rl --base "$BASE" --steps $STEPS --seed 1 --lr-relative $RL_LR_RELATIVE \
  --storage pure --dtype bf16 --compare-replay -o "$TMP/closed-loop" --quiet
mkdir -p "$OUT/closed-loop"
cp "$TMP/closed-loop/compare-replay.txt" "$TMP/closed-loop/compare-replay.json" "$OUT/closed-loop/"
keep closed-loop/closed closed-loop/closed
cat "$OUT/closed-loop/compare-replay.txt"

# Measured budget: seconds since the start and the scratch space used.
DEMO_SECONDS=$(( $(date +%s) - START )) DEMO_SCRATCH_MB=$(du -sm "$TMP" | cut -f1) \
  "$PYTHON" tools/demo_report.py "$OUT"
echo; echo "wrote $OUT/README.md (narrative with every number from this run), tables, CSV and SVG"
