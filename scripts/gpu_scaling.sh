#!/usr/bin/env bash
# Data-parallel scaling of training (issue #7) on one lent multi-GPU machine, in one session:
#   1. collect paper-profile MsPacman data from its seed (one shard of 64 envs x 1000 steps is enough to
#      measure throughput: the window sampler holds it on the GPU);
#   2. for N in 1, 2 (and 4 when there are 4 GPUs): `torchrun --nproc-per-node N -m ssmlib train` of the
#      sSSM with a FIXED PER-GPU batch (--batch-size = PER_GPU_BATCH x N; training proper keeps the
#      config's global batch), compiled and bf16 as on one GPU, no evaluation, a fixed number of steps;
#      N = 1 is one process without DDP (torchrun with one process never makes a process group);
#   3. `python -m ssmlib.studies.scaling report`: steady-state frames/s per N (median of the logging
#      intervals after SKIP_STEPS, so torch.compile and warm-up are left out), speed-up and efficiency
#      = fps_N / (N fps_1), with provenance -> results/scaling/<machine>.json; that file and a tar of
#      the logs, configs and metrics go to $OUT.
# Usage on the lent machine: bash scripts/gpu_scaling.sh (about 5 minutes). A CPU smoke test of the script
# (gloo, quick profile, a dataset already collected; python3 = the venv's):
#   PATH=.venv/bin:$PATH DEVICE=cpu COUNTS="1 2" PROFILE=quick DATA=... PER_GPU_BATCH=2 TRAIN_STEPS=6 LOG_EVERY=2 SKIP_STEPS=2 \
#   MACHINE=cpu-smoke RESULTS=/tmp/scaling OUT=/tmp/scaling-out EXTRA="--set channel_scale=0.25" bash scripts/gpu_scaling.sh
set -euo pipefail
# NVLink multicast stays off on the lent machines (a program that uses it can take the shared GPUs down)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
GAME=${GAME:-MsPacman}
PROFILE=${PROFILE:-paper}
MODEL=${MODEL:-sSSM}
DEVICE=${DEVICE:-cuda}
COLLECT_STEPS=${COLLECT_STEPS:-64000}
DATA=${DATA:-/tmp/data/$GAME-$PROFILE-scaling}
PER_GPU_BATCH=${PER_GPU_BATCH:-256}  # the new engine's per-GPU batch (the paper profile's; 32 before it)
TRAIN_STEPS=${TRAIN_STEPS:-300}
LOG_EVERY=${LOG_EVERY:-20}
SKIP_STEPS=${SKIP_STEPS:-100}
TIME_LIMIT=${TIME_LIMIT:-110}    # seconds of training loop per N after its first step (compilation is not counted)
RUN_TIMEOUT=${RUN_TIMEOUT:-140}  # wall seconds per N, start-up included: 3 runs + data stay under 8 min
EXTRA=${EXTRA:-}
RUNS=${RUNS:-runs/scaling}
RESULTS=${RESULTS:-results/scaling}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS" "$RESULTS"
OUT=$(cd "$OUT" && pwd)
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
  nvidia-smi topo -m > "$RUNS/topology.txt" 2>&1 || true  # how the GPUs are linked (NVLink or PCIe)
  NGPU=$(nvidia-smi -L | grep -c '^GPU ')
  COUNTS=${COUNTS:-$([ "$NGPU" -ge 4 ] && echo "1 2 4" || echo "1 2")}
  name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | sed 's/^NVIDIA //' | awk '{print tolower($1)}')
  MACHINE=${MACHINE:-$name-x$NGPU}
else
  COUNTS=${COUNTS:-1 2}
  MACHINE=${MACHINE:-cpu-x$(nproc)}
fi
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.device_count())'
say "machine $MACHINE, ranks: $COUNTS, per-GPU batch $PER_GPU_BATCH, $TRAIN_STEPS steps"

[ -f "$DATA/manifest.json" ] || python3 -m ssmlib collect --profile "$PROFILE" --game "$GAME" --steps "$COLLECT_STEPS" \
  --out "$DATA" --no-progress
say "data ready: $DATA"

runs=()
for N in $COUNTS; do
  run=$RUNS/$MODEL-n$N
  # shellcheck disable=SC2086  # EXTRA is a list of flags
  if timeout -k 20 "$RUN_TIMEOUT" python3 -m torch.distributed.run --standalone --nproc-per-node "$N" \
      -m ssmlib train --model "$MODEL" --data "$DATA" --profile "$PROFILE" --out "$run" --overwrite \
      --device "$DEVICE" --batch-size $(( PER_GPU_BATCH * N )) --steps "$TRAIN_STEPS" --time-limit "$TIME_LIMIT" \
      --no-progress --set log_every="$LOG_EVERY" --set eval_every=0 --set ckpt_every=0 $EXTRA \
      > "$RUNS/$MODEL-n$N.log" 2>&1; then
    say "N=$N: $(tail -1 "$RUNS/$MODEL-n$N.log")"
  else
    say "N=$N FAILED (exit $?); last lines of its log:"; tail -25 "$RUNS/$MODEL-n$N.log" || true
  fi
  if [ -f "$run/config.json" ]; then runs+=("$run"); fi
done

[ "${#runs[@]}" -gt 0 ] || { echo "no run produced metrics"; exit 1; }
python3 -m ssmlib.studies.scaling report --runs "${runs[@]}" --skip-steps "$SKIP_STEPS" --out "$RESULTS/$MACHINE.json" \
  --note "machine=$MACHINE" --note "per_gpu_batch=$PER_GPU_BATCH" --note "collect_steps=$COLLECT_STEPS" \
  --note "train_steps=$TRAIN_STEPS" --note "log_every=$LOG_EVERY" --note "extra_flags=$EXTRA" \
  --note "command=torchrun --standalone --nproc-per-node N -m ssmlib train --model $MODEL --profile $PROFILE --batch-size $PER_GPU_BATCH*N --steps $TRAIN_STEPS --set log_every=$LOG_EVERY --set eval_every=0 --set ckpt_every=0 $EXTRA"
cp "$RESULTS/$MACHINE.json" "$OUT/"
# logs, configs, metrics and summaries (no checkpoints) and the GPU topology: one tar
(cd "$RUNS" && tar -cf "$OUT/scaling-runs-$MACHINE.tar" --exclude='checkpoint.*' "$MODEL"-n* $(ls topology.txt 2>/dev/null))
ls -la "$OUT"
say "done"
