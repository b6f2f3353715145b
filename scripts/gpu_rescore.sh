#!/usr/bin/env bash
# Re-score every committed environment model with the current evaluator (ssmlib.evaluate: excess over the
# exact floor, joint and open-loop likelihood, copy references, moving pixels, reward NLL/AUC, per-episode
# sums for the bootstraps of ssmlib.claims) on a lent GPU machine, in one call:
#   1. collect each game's paper-profile dataset from its seed (the model zoo's command and steps: the
#      same fingerprint as the checkpoints were trained on; checked below);
#   2. python -m ssmlib zoo rescore: checkpoints/<game>/<model>.safetensors -> results/model_zoo/<game>/
#      (eval.json per model, summary.json, table.md, rollouts.png; the training files there are kept);
#   3. the jumpy study, if its run folders are given (JUMPY_RUNS: folders <model>-k<k>/ holding
#      checkpoint.safetensors or weights.safetensors, e.g. gpu_jumpy.sh's runs-*.tar unpacked):
#      python -m ssmlib jumpy report -> results/jumpy/<game>/ (the committed study's runs are not in git:
#      without JUMPY_RUNS this step says so and is skipped);
#   4. pack results.tar (the rewritten results folders) and rescore.log into $OUT.
# Usage on one H200 (under 7 minutes):  bash scripts/gpu_rescore.sh
# Options (environment): GAMES="MsPacman Bowling", MAX_WINDOWS=0 (0: every test window), SAMPLES=8,
#   BATCH=64, STEPS=128000, PROFILE=paper, CHECKPOINTS=checkpoints (folder of <game>/<model>.safetensors),
#   JUMPY_RUNS=, JUMPY_WINDOWS=0, OUT=/tmp/out, WHEELS=.whl (installed when gymnasium is missing).
# A CPU check at a tiny scale: PROFILE=quick STEPS=2400 GAMES=MsPacman MAX_WINDOWS=8 BATCH=4 SAMPLES=2
#   CHECKPOINTS=<folder with MsPacman/<model>.safetensors of quick-size models> bash scripts/gpu_rescore.sh
# MsPacman's first-zoo checkpoints, except the dSSM-DET the committed I2A agent uses, were replaced by the
# model-zoo campaign's (checkpoints/campaign/, scored by every campaign lease and `campaign calibrate`), so
# results/model_zoo/MsPacman/ can no longer be re-scored as a whole: GAMES is Bowling by default.
set -euo pipefail
GAMES=${GAMES:-Bowling}
PROFILE=${PROFILE:-paper}
STEPS=${STEPS:-128000}
MAX_WINDOWS=${MAX_WINDOWS:-0}
SAMPLES=${SAMPLES:-8}
BATCH=${BATCH:-64}
MODELS=${MODELS:-all}
CHECKPOINTS=${CHECKPOINTS:-checkpoints}
JUMPY_RUNS=${JUMPY_RUNS:-}
JUMPY_WINDOWS=${JUMPY_WINDOWS:-0}
JUMPY_NOTE=${JUMPY_NOTE:-}
OUT=${OUT:-/tmp/out}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT"
LOG="$OUT/rescore.log"
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
since() { echo "$(( $(date +%s) - t0 )) s"; }
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
if ! python3 -c "import gymnasium, ale_py" 2>/dev/null; then
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "gymnasium/ale-py missing and no wheels in $WHEELS (pip download --no-deps --only-binary=:all: gymnasium and ale-py for Python 3.12 into it)"; exit 1; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
git_sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "git $git_sha; games: $GAMES; profile $PROFILE; max windows $MAX_WINDOWS (0: all); K=$SAMPLES; batch $BATCH"

packed=()
for GAME in $GAMES; do
  DATA=/tmp/data/$GAME-$PROFILE
  [ -f "$DATA/manifest.json" ] || python3 -m ssmlib collect --profile "$PROFILE" --game "$GAME" --steps "$STEPS" \
    --out "$DATA" --no-progress
  echo "$GAME: data ready at $(since)"
  # the checkpoints' training data must be these very frames (else the test split differs): say so loudly
  python3 - "$DATA" "$CHECKPOINTS/$GAME" <<'EOF'
import json, sys
from pathlib import Path
from ssmlib.data.store import open_dataset
fp = open_dataset(sys.argv[1]).fingerprint
for meta in sorted(Path(sys.argv[2]).glob("*.json")):
    want = json.loads(meta.read_text()).get("data_fingerprint")
    print(f"  {meta.stem}: trained on {'this dataset' if want == fp else f'ANOTHER dataset ({want})'}")
EOF
  python3 -m ssmlib zoo rescore --data "$DATA" --checkpoints "$CHECKPOINTS/$GAME" --models "$MODELS" \
    --results "results/model_zoo/$GAME" --samples "$SAMPLES" --max-windows "$MAX_WINDOWS" --batch-size "$BATCH" \
    && packed+=("results/model_zoo/$GAME") || echo "$GAME: rescore FAILED"
  echo "$GAME: re-scored at $(since)"
  if [ -n "$JUMPY_RUNS" ] && [ "$GAME" = "MsPacman" ]; then
    note=(); [ -n "$JUMPY_NOTE" ] && note=(--note "$JUMPY_NOTE")
    python3 -m ssmlib jumpy report --data "$DATA" --runs "$JUMPY_RUNS" --results "results/jumpy/$GAME" \
      --samples "$SAMPLES" --max-windows "$JUMPY_WINDOWS" --batch-size "$BATCH" ${note[@]+"${note[@]}"} \
      && packed+=("results/jumpy/$GAME") || echo "jumpy: report FAILED"
    echo "jumpy: re-scored at $(since)"
  elif [ "$GAME" = "MsPacman" ]; then
    echo "jumpy: no JUMPY_RUNS given (the jumpy runs' weights are not committed): results/jumpy is left as it is"
  fi
done
python3 -c "from ssmlib.claims import all_claims, format_verdicts; print(format_verdicts(all_claims()))" \
  || echo "claims: could not be computed"
[ ${#packed[@]} -gt 0 ] && tar -cf "$OUT/results.tar" "${packed[@]}"
echo "done at $(since)"
ls -la "$OUT"
