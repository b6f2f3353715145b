#!/usr/bin/env bash
# The training engine on one lent H200 (issue "Training at the GPU's speed"), one call:
#   1. collect the paper-profile MsPacman dataset from its seed (the model zoo's: same fingerprint);
#   2. `bench train`: the old engine (batch 32, NCHW) against the new (batch 128/256, channels_last), sSSM
#      and dSSM-DET: frames/s, GPU-busy share (profiler), TFLOP/s and share of the measured bf16 peak;
#   3. the learning-rate rule checked at equal wall-clock: sSSM at batch 32 / lr 5e-4 (the old paper
#      profile) and at batch 256 / lr 1.4e-3 (the new), each for TRAIN_SECONDS, scored on the same test
#      windows at the stop (test excess over the exact floor, nats/frame);
#   4. $OUT: train-engine-h200.json (the bench) and engine-runs.tar (each run's config, metrics, summary).
# SPECS="b256:256:1.4e-3" runs only the named runs of step 3. CHECK=0 skips check_step.py, BENCH=0 the bench (train's own guard still checks the compiled step).
# Usage: TRAIN_SECONDS=150 bash scripts/gpu_engine.sh   (CPU check: PROFILE=quick STEPS=4000 TRAIN_SECONDS=10)
set -euo pipefail
GAME=${GAME:-MsPacman}
PROFILE=${PROFILE:-paper}
STEPS=${STEPS:-128000}
TRAIN_SECONDS=${TRAIN_SECONDS:-150}
BENCH_SECONDS=${BENCH_SECONDS:-8}
DATA=${DATA:-/tmp/data/$GAME-$PROFILE}
RUNS=runs/engine/$GAME
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
[ -f "$DATA/manifest.json" ] || python3 -m ssmlib collect --profile "$PROFILE" --game "$GAME" --steps "$STEPS" --out "$DATA" --no-progress
echo "collected in $(( $(date +%s) - t0 )) s"
[ "${CHECK:-1}" = 0 ] || python3 scripts/check_step.py --data "$DATA" --model sSSM --batch 32 2>&1 | grep '^{' || true
echo "checked at $(( $(date +%s) - t0 )) s"
[ "${BENCH:-1}" = 0 ] || python3 -m ssmlib bench train --profile "$PROFILE" --models sSSM,dSSM-DET --variants ${VARIANTS:-b32-eager,b256-eager-cl,b32-compile,b256-compile-cl} \
  --seconds "$BENCH_SECONDS" --out "$OUT/train-engine-h200.json" --overwrite || echo "bench train FAILED"
echo "benched at $(( $(date +%s) - t0 )) s"
for spec in ${SPECS:-b32:32:5e-4 b256:256:1.4e-3}; do  # name:batch:lr (the paper profile warms lr up over 1000 steps)
  IFS=: read -r name batch lr <<<"$spec"
  python3 -m ssmlib train --model sSSM --data "$DATA" --profile "$PROFILE" --out "$RUNS/sSSM-$name" --overwrite \
    --time-limit "$TRAIN_SECONDS" --no-progress --set batch_size="$batch" --set lr="$lr" --set eval_every=100000 \
    > "$RUNS/sSSM-$name.log" 2>&1 || true
  grep -v Warning "$RUNS/sSSM-$name.log" | tail -3
  grep -o '"compile_fallback": [^,}]*' "$RUNS/sSSM-$name/config.json" || echo "compile kept (no fallback recorded)"
  cp "$RUNS/sSSM-$name.log" "$RUNS/sSSM-$name/train.log"
  echo "sSSM-$name done at $(( $(date +%s) - t0 )) s"
done
tar -cf "$OUT/engine-runs.tar" --exclude='*.safetensors' -C "$RUNS" .
ls -la "$OUT"
