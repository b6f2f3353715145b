#!/usr/bin/env bash
# The I2A study on a lent GPU machine, every GPU of it used, in one or more back-to-back calls (runs/
# stays on a warm machine between calls; every call resumes the runs from their checkpoints):
#   1. train every variant x seed at the paper profile, in parallel processes spread over the GPUs,
#      up to TARGET_STEPS agent steps each or TRAIN_SECONDS (a run that reached the target is skipped,
#      so its CPU threads go to the others);
#   2. FINAL=1 only: score each run's final weights frozen, twice (`agent eval`: one game per env;
#      the A2C loop restarted from them with lr=0), bench each variant alone (the cost of imagination),
#      and export small weights-only checkpoints of seed 0;
#   3. every call: report into results/i2a/$GAME and pack it into $OUT (a lost machine loses no results).
# Usage: TARGET_STEPS=2000000 TRAIN_SECONDS=480 bash scripts/gpu_i2a.sh   (then again, FINAL=1 at the end)
# A FINAL call trains first too (up to TRAIN_SECONDS): leave it room for the frozen scores and the bench
# (about 4 minutes on 4xH200) under the 10-minute limit of one device call.
set -euo pipefail
GAME=${GAME:-MsPacman}
TARGET_STEPS=${TARGET_STEPS:-2000000}
TRAIN_SECONDS=${TRAIN_SECONDS:-420}
BENCH_SECONDS=${BENCH_SECONDS:-25}
FROZEN_STEPS=${FROZEN_STEPS:-96000}
FINAL=${FINAL:-0}
SEEDS=${SEEDS:-"0 1"}
VARIANTS=${VARIANTS:-$(python3 -c "from ssmlib.studies.i2a import VARIANTS; print(' '.join(VARIANTS))")}  # the one list, in Python
PROFILE=${PROFILE:-paper}
ENV_MODEL=${ENV_MODEL:-checkpoints/$GAME/dSSM-DET.safetensors}
RUNS=runs/i2a/$GAME
FROZEN=runs/i2a-frozen/$GAME
RESULTS=${RESULTS:-results/i2a/$GAME}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS" "$FROZEN"
t0=$(date +%s)
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c GPU || true)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
steps_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$1/summary.json" 2>/dev/null || echo 0; }
args_of() { python3 -c "import sys; from ssmlib.studies.i2a import variant_args; print(*variant_args(sys.argv[1]))" "$1"; }

# ---- 1. train (resume) the runs still short of the target
todo=()
for v in $VARIANTS; do for s in $SEEDS; do
  [ "$(steps_of "$RUNS/$v-s$s")" -lt "$TARGET_STEPS" ] && todo+=("$v-s$s")
done; done
echo "runs to train: ${todo[*]:-none}"
if [ ${#todo[@]} -gt 0 ]; then
  THREADS=$(( $(nproc) / ${#todo[@]} )); [ "$THREADS" -ge 1 ] || THREADS=1
  i=0
  for run in "${todo[@]}"; do
    v=${run%-s*}; s=${run##*-s}; read -r a m <<< "$(args_of "$v")"
    dev=""; [ "$NGPU" -gt 0 ] && dev="--device cuda:$(( i % NGPU ))"
    python3 -m ssmlib agent train --profile "$PROFILE" --game "$GAME" --agent "$a" --rollout-policy "$m" \
      --env-model "$ENV_MODEL" --seed "$s" --out "$RUNS/$run" --resume --time-limit "$TRAIN_SECONDS" \
      --total-steps "$TARGET_STEPS" --set env_threads=$THREADS $dev --no-progress >> "$RUNS/$run.log" 2>&1 &
    i=$((i + 1))
  done
  wait || true
fi
for f in "$RUNS"/*.log; do echo "$f: $(tail -n 1 "$f")"; done
echo "trained until $(( $(date +%s) - t0 )) s"

if [ "$FINAL" = 1 ]; then
  # ---- 2a. the final weights, frozen: eval (1 game per env) and the A2C loop with lr=0, all runs at once
  runs=(); for v in $VARIANTS; do for s in $SEEDS; do runs+=("$v-s$s"); done; done
  THREADS=$(( $(nproc) / ${#runs[@]} )); [ "$THREADS" -ge 1 ] || THREADS=1
  i=0
  for run in "${runs[@]}"; do
    v=${run%-s*}; s=${run##*-s}; read -r a m <<< "$(args_of "$v")"
    dev=""; [ "$NGPU" -gt 0 ] && dev="--device cuda:$(( i % NGPU ))"
    ck="$RUNS/$run/checkpoint.safetensors"
    ( python3 -m ssmlib agent eval --checkpoint "$ck" --episodes 64 --num-envs 64 --env-threads $THREADS $dev \
        --out "$RUNS/$run/eval.json" --overwrite
      python3 -m ssmlib agent train --profile "$PROFILE" --game "$GAME" --agent "$a" --rollout-policy "$m" \
        --env-model "$ENV_MODEL" --seed "$s" --out "$FROZEN/$run" --overwrite --init-from "$ck" \
        --total-steps "$FROZEN_STEPS" --set lr=0 --set env_threads=$THREADS $dev --no-progress
    ) > "$FROZEN/$run.log" 2>&1 &
    i=$((i + 1))
  done
  wait || true
  for f in "$FROZEN"/*.log; do echo "$f: $(tail -n 1 "$f")"; done
  echo "frozen scores until $(( $(date +%s) - t0 )) s"
  # ---- 2b. each variant alone on its own GPU (up to NGPU at once), for the cost of imagination
  i=0
  for v in $VARIANTS; do  # a GPU's CPU share is what one 16-core box has
    dev=""; [ "$NGPU" -gt 0 ] && dev="--device cuda:$(( i % NGPU ))"
    python3 -m ssmlib agent bench --profile "$PROFILE" --env-model "$ENV_MODEL" --seconds "$BENCH_SECONDS" \
      --variants "$v" --set env_threads=$(( $(nproc) / (NGPU > 0 ? NGPU : 1) )) $dev --out "$RUNS/bench-$v.json" \
      > "$RUNS/bench-$v.log" 2>&1 &
    i=$((i + 1))
    if [ "$NGPU" -gt 0 ] && [ $(( i % NGPU )) -eq 0 ]; then wait || true; fi
  done
  wait || true
  echo "benched until $(( $(date +%s) - t0 )) s"
fi

# ---- 3. report and pack (every call; with whatever bench files exist)
shopt -s nullglob; BENCH=("$RUNS"/bench-*.json); shopt -u nullglob
rm -rf "$RESULTS"  # (the machine's copy of the committed study) so nothing stale is packed with the new one
python3 -m ssmlib agent report --runs "$RUNS" --results "$RESULTS" --frozen "$FROZEN" --bench "${BENCH[@]}"
cp "$RUNS"/*.log "$RESULTS"/ 2>/dev/null || true
cat "$RESULTS/table.md"
tar -cf "$OUT/results.tar" "$RESULTS"
if [ "$FINAL" = 1 ]; then  # small weights-only checkpoints of seed 0 of each variant (no optimiser state)
  mkdir -p /tmp/agents
  for v in $VARIANTS; do
    [ -f "$RUNS/$v-s0/checkpoint.safetensors" ] && python3 -m ssmlib agent export \
      --checkpoint "$RUNS/$v-s0/checkpoint.safetensors" --out "/tmp/agents/$GAME-$v.safetensors" --overwrite || true
  done
  tar -cf "$OUT/agents.tar" -C /tmp/agents .
fi
ls -la "$OUT"
echo "done at $(( $(date +%s) - t0 )) s"
