#!/usr/bin/env bash
# One lease of the model-zoo campaign (ssmlib/campaign.py) on a lent GPU machine:
#   1. collect the campaign's dataset from its config (agent + random envs, same fingerprint every lease);
#   2. `campaign lease`: the unfinished runs with the fewest frames, MAX_RUNS at once on the one GPU, each
#      for SECONDS of training (compilation not counted), continuing from the committed bf16 weights (a
#      bare machine) or exactly from runs/campaign (a machine still warm from the previous call);
#   3. $OUT/campaign.tar: results/model_zoo/<game>/campaign and checkpoints/campaign/<game> (unpack at the
#      repository root and commit), plus the lease's log.
#   4. with RESCORE=1, scripts/gpu_rescore.sh runs alongside (the committed checkpoints re-scored with the
#      current evaluator): $OUT/rescore/results.tar and $OUT/rescore.log.
# Usage: SECONDS_PER_RUN=240 MAX_RUNS=2 [RESCORE=1] bash scripts/gpu_campaign.sh
set -euo pipefail
GAME=${GAME:-MsPacman}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-240}
MAX_RUNS=${MAX_RUNS:-2}
DATA=${DATA:-/tmp/data/campaign-$GAME}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
if [ "${RESCORE:-0}" = 1 ]; then  # the committed checkpoints re-scored alongside (scripts/gpu_rescore.sh)
  (OUT="$OUT/rescore" bash scripts/gpu_rescore.sh > "$OUT/rescore.log" 2>&1; echo "rescore exit $?" >> "$OUT/rescore.log") &
  RESCORE_PID=$!
fi
python3 -m ssmlib campaign data --game "$GAME" --out "$DATA"
echo "collected in $(( $(date +%s) - t0 )) s"
python3 -m ssmlib campaign lease --game "$GAME" --data "$DATA" --seconds "$SECONDS_PER_RUN" --max-runs "$MAX_RUNS" || true
echo "lease done at $(( $(date +%s) - t0 )) s"
for f in runs/campaign/*.log; do [ -f "$f" ] && grep -v "Warning\|warn\|softmax\|reduction\|important use\|^$" "$f" | tail -5; done
python3 -m ssmlib campaign table --game "$GAME" || true
[ -z "${RESCORE_PID:-}" ] || { wait "$RESCORE_PID" || true; tail -3 "$OUT/rescore.log"; }
tar -cf "$OUT/campaign.tar" "results/model_zoo/$GAME/campaign" "checkpoints/campaign/$GAME" 2>/dev/null || true
ls -la "$OUT"
