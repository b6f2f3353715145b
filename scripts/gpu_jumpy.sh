#!/usr/bin/env bash
# The jumpy study on a lent GPU machine, in one lease (each call starts from a bare machine):
#   1. collect the paper-profile dataset from its seed (the model zoo's command and steps: same fingerprint);
#   2. train dSSM-DET and sSSM at jump k = 1, 2, 4 from scratch, 6 processes in parallel on the one GPU, for
#      TRAIN_SECONDS each; alongside, a 7th process fine-tunes the committed dSSM-DET with the reward term
#      weighted by REWARD_WEIGHT, then exports it and evaluates it;
#   3. score the 6 runs at matched env steps with the same code (results/jumpy/<game>/);
#   4. pack into $OUT (at most 8 files): results.tar (the study), runs-<model>.tar (per run: weights-only
#      weights.safetensors, config, metrics, log; no optimiser state), and the reward model:
#      dSSM-DET-reward.safetensors (+ .json), dSSM-DET-reward-eval.json, reward-run.tar (config, metrics, log).
# Usage: GAME=MsPacman STEPS=128000 TRAIN_SECONDS=390 bash scripts/gpu_jumpy.sh
# A CPU check at a tiny scale: PROFILE=quick STEPS=8000 TRAIN_SECONDS=20 SETS="channel_scale=0.25 batch_size=2"
#   REWARD_INIT=<a quick-size dSSM-DET checkpoint> REWARD_SETS="batch_size=2" MAX_WINDOWS=8 bash scripts/gpu_jumpy.sh
set -euo pipefail
GAME=${GAME:-MsPacman}
PROFILE=${PROFILE:-paper}
STEPS=${STEPS:-128000}
TRAIN_SECONDS=${TRAIN_SECONDS:-390}
MAX_WINDOWS=${MAX_WINDOWS:-512}
SETS=${SETS:-}                 # extra key=value overrides of the 6 jumpy runs (tiny CPU checks)
REWARD_WEIGHT=${REWARD_WEIGHT:-100}
REWARD_INIT=${REWARD_INIT:-checkpoints/$GAME/dSSM-DET.safetensors}
REWARD_SETS=${REWARD_SETS:-}   # extra overrides of the fine-tune (its architecture comes from REWARD_INIT)
DATA=${DATA:-/tmp/data/$GAME-$PROFILE}
RUNS=runs/jumpy/$GAME
REWARD_RUN=runs/reward/dSSM-DET
RESULTS=results/jumpy/$GAME
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS" "$(dirname "$REWARD_RUN")"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
[ -f "$DATA/manifest.json" ] || python3 -m ssmlib collect --profile "$PROFILE" --game "$GAME" --steps "$STEPS" --out "$DATA" --no-progress
echo "collected in $(( $(date +%s) - t0 )) s"

sets=(); for s in $SETS; do sets+=(--set "$s"); done
reward_sets=(); for s in $REWARD_SETS; do reward_sets+=(--set "$s"); done
# the 7th process, in the background: fine-tune, export, evaluate (eval: the model zoo's windows and K)
(
  python3 -m ssmlib train --model dSSM-DET --data "$DATA" --profile "$PROFILE" --out "$REWARD_RUN" --resume \
    --init-from "$REWARD_INIT" --set "reward_weight=$REWARD_WEIGHT" ${reward_sets[@]+"${reward_sets[@]}"} \
    --time-limit "$TRAIN_SECONDS" --no-progress
  python3 -m ssmlib export --checkpoint "$REWARD_RUN" --out "$OUT/dSSM-DET-reward.safetensors" --overwrite
  python3 -m ssmlib eval --checkpoint "$REWARD_RUN" --data "$DATA" --samples 8 --max-windows "$MAX_WINDOWS" \
    --out "$OUT/dSSM-DET-reward-eval.json"
) > "$REWARD_RUN.log" 2>&1 &
reward_pid=$!

python3 -m ssmlib jumpy train --data "$DATA" --runs "$RUNS" --profile "$PROFILE" --time-limit "$TRAIN_SECONDS" \
  ${sets[@]+"${sets[@]}"} || echo "some jumpy runs failed (see $RUNS/*.log); reporting the others"
echo "trained until $(( $(date +%s) - t0 )) s"
python3 -m ssmlib jumpy report --data "$DATA" --runs "$RUNS" --results "$RESULTS" --samples 8 --max-windows "$MAX_WINDOWS" \
  || echo "the jumpy report failed; packing what there is"
echo "reported at $(( $(date +%s) - t0 )) s"

# weights-only copies of the runs (the training checkpoints with optimiser state stay behind: too big to carry)
python3 - "$RUNS" <<'EOF'
import sys
from pathlib import Path
from ssmlib.pretrained import export
for run in sorted(p for p in Path(sys.argv[1]).iterdir() if (p / "checkpoint.safetensors").exists()):
    export(run, run / "weights.safetensors", overwrite=True)
EOF
for d in "$RUNS"/*/; do r=$(basename "$d"); cp "$RUNS/$r.log" "$RUNS/$r/train.log" 2>/dev/null || true; done
for m in dSSM-DET sSSM; do
  tar -cf "$OUT/runs-$m.tar" -C "$RUNS" --exclude 'checkpoint.*' $(cd "$RUNS" && ls -d "$m"-k*/ 2>/dev/null) || true
done
[ -f "$RESULTS/summary.json" ] && tar -cf "$OUT/results.tar" "$RESULTS"

wait "$reward_pid" && echo "reward fine-tune, export and eval done" || echo "reward fine-tune failed (see reward-run.tar)"
cp "$REWARD_RUN.log" "$REWARD_RUN/train.log" 2>/dev/null || true
tar -cf "$OUT/reward-run.tar" -C "$(dirname "$REWARD_RUN")" --exclude 'checkpoint.*' "$(basename "$REWARD_RUN")" || true
tail -n 20 "$REWARD_RUN.log"
echo "done at $(( $(date +%s) - t0 )) s"
ls -la "$OUT"
