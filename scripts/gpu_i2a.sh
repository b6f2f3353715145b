#!/usr/bin/env bash
# The I2A study on a lent GPU machine (one lease; every GPU of the machine used):
#   1. train every variant x seed at the paper profile, in parallel processes spread over the GPUs,
#      each for TRAIN_SECONDS (the report compares them at the common number of agent steps);
#   2. bench each variant alone (steps/s of the whole A2C loop) for the cost of imagination;
#   3. report into results/i2a/$GAME and pack it (plus small weights-only agent checkpoints) into $OUT.
# Usage: TRAIN_SECONDS=420 SEEDS="0 1" bash scripts/gpu_i2a.sh
set -euo pipefail
GAME=${GAME:-MsPacman}
TRAIN_SECONDS=${TRAIN_SECONDS:-420}
BENCH_SECONDS=${BENCH_SECONDS:-25}
SEEDS=${SEEDS:-"0 1"}
VARIANTS=${VARIANTS:-"model-free copy-distill i2a-uniform i2a-distill i2a-learned"}
PROFILE=${PROFILE:-paper}
ENV_MODEL=${ENV_MODEL:-checkpoints/$GAME/dSSM-DET.safetensors}
RUNS=runs/i2a/$GAME
RESULTS=${RESULTS:-results/i2a/$GAME}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS"
t0=$(date +%s)
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c GPU || true)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
NRUNS=$(( $(echo $VARIANTS | wc -w) * $(echo $SEEDS | wc -w) ))
THREADS=$(( $(nproc) / NRUNS )); [ "$THREADS" -ge 1 ] || THREADS=1
i=0
for v in $VARIANTS; do
  case $v in model-free) a=model-free; m=uniform;; *) a=${v%%-*}; m=${v#*-};; esac
  for s in $SEEDS; do
    dev=""; [ "$NGPU" -gt 0 ] && dev="--device cuda:$(( i % NGPU ))"
    python3 -m ssmlib agent train --profile "$PROFILE" --game "$GAME" --agent "$a" --rollout-policy "$m" \
      --env-model "$ENV_MODEL" --seed "$s" --out "$RUNS/$v-s$s" --resume --time-limit "$TRAIN_SECONDS" \
      --total-steps 1000000000 --set env_threads=$THREADS $dev --no-progress > "$RUNS/$v-s$s.log" 2>&1 &
    i=$((i + 1))
  done
done
wait || true
for f in "$RUNS"/*.log; do echo "$f: $(tail -n 1 "$f")"; done
echo "trained until $(( $(date +%s) - t0 )) s"
# each variant alone on its own GPU (up to NGPU at once), for the cost of imagination
i=0
for v in $VARIANTS; do  # one variant per GPU at a time; a GPU's CPU share is what one 16-core box has
  dev=""; [ "$NGPU" -gt 0 ] && dev="--device cuda:$(( i % NGPU ))"
  python3 -m ssmlib agent bench --profile "$PROFILE" --env-model "$ENV_MODEL" --seconds "$BENCH_SECONDS" \
    --variants "$v" --set env_threads=$(( $(nproc) / (NGPU > 0 ? NGPU : 1) )) $dev --out "$RUNS/bench-$v.json" \
    > "$RUNS/bench-$v.log" 2>&1 &
  i=$((i + 1))
  if [ "$NGPU" -gt 0 ] && [ $(( i % NGPU )) -eq 0 ]; then wait || true; fi
done
wait || true
echo "benched until $(( $(date +%s) - t0 )) s"
python3 -m ssmlib agent report --runs "$RUNS" --results "$RESULTS" --bench "$RUNS"/bench-*.json
cp "$RUNS"/*.log "$RESULTS"/ 2>/dev/null || true
cat "$RESULTS/table.md"
tar -cf "$OUT/results.tar" "$RESULTS"
# small weights-only checkpoints of seed 0 of each variant (no optimiser state), for the book
mkdir -p /tmp/agents
for v in $VARIANTS; do
  [ -f "$RUNS/$v-s0/checkpoint.safetensors" ] && python3 -m ssmlib agent export --checkpoint "$RUNS/$v-s0/checkpoint.safetensors" \
    --out "/tmp/agents/$GAME-$v.safetensors" || true
done
tar -cf "$OUT/agents.tar" -C /tmp/agents .
ls -la "$OUT"
echo "done at $(( $(date +%s) - t0 )) s"
