#!/usr/bin/env bash
# The model-zoo study on a lent GPU machine, one lease at a time (each call starts from a bare machine):
#   1. collect the paper-profile dataset from its seed (deterministic: same fingerprint every call);
#   2. unpack the run folders carried from the previous call (.carry/zoo/<game>/*.tar), if any
#      (without them, new runs start from the committed weights in checkpoints/<game>/);
#   3. train every model in parallel processes on the one GPU, resuming, for TRAIN_SECONDS;
#   4. evaluate all models with the same code and write the study (results/model_zoo/<game>/);
#   5. pack each run folder (checkpoint with optimiser state, metrics, config) into $OUT for the next call.
# Usage: GAME=MsPacman STEPS=128000 TRAIN_SECONDS=360 bash scripts/gpu_model_zoo.sh
set -euo pipefail
GAME=${GAME:-MsPacman}
STEPS=${STEPS:-128000}
TRAIN_SECONDS=${TRAIN_SECONDS:-360}
MODELS=${MODELS:-all}
DATA=/tmp/data/$GAME-paper
RUNS=runs/zoo/$GAME
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
[ -f "$DATA/manifest.json" ] || python3 -m ssmlib collect --profile paper --game "$GAME" --steps "$STEPS" --out "$DATA" --no-progress
echo "collected in $(( $(date +%s) - t0 )) s"
for t in .carry/zoo/$GAME/*.tar; do [ -f "$t" ] && tar -xf "$t" -C "$RUNS"; done
# a model with no carried run folder starts from the committed weights in checkpoints/$GAME, if any
python3 -m ssmlib zoo train --data "$DATA" --runs "$RUNS" --models "$MODELS" --profile paper \
  --time-limit "$TRAIN_SECONDS" --init-from "checkpoints/$GAME" || true
echo "trained until $(( $(date +%s) - t0 )) s"
python3 -m ssmlib zoo report --data "$DATA" --runs "$RUNS" --models "$MODELS" --results "results/model_zoo/$GAME" --samples 8 --max-windows 512
echo "reported at $(( $(date +%s) - t0 )) s"
for d in "$RUNS"/*/; do  # at most 8 files come back: one tar per model (log inside) and the results
  m=$(basename "$d"); cp "$RUNS/$m.log" "$RUNS/$m/train.log" 2>/dev/null || true
  tar -cf "$OUT/$m.tar" -C "$RUNS" "$m"
done
tar -cf "$OUT/results.tar" "results/model_zoo/$GAME"
ls -la "$OUT"
