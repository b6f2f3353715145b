#!/usr/bin/env bash
# One lease of the model-zoo campaign (ssmlib/studies/zoo_campaign.py) on a lent GPU machine:
#   1. collect the campaign's dataset from its config (agent + random envs, same fingerprint every lease), DATA_WORKERS
#      (4) shards at once, each in its own process; in one process if that fails (below);
#   2. `campaign lease`: the unfinished runs in the pick order (the config's first_runs, then fewest frames),
#      MAX_RUNS at once on the one GPU, each
#      for SECONDS of training (compilation not counted), continuing from the committed bf16 weights (a
#      bare machine) or exactly from runs/campaign (a machine still warm from the previous call);
#   3. $OUT/campaign.tar (in parts campaign.tar.part-aa, -ab, ... when over 15 MiB): results/model_zoo/<game>/campaign
#      and checkpoints/campaign/<game>, plus the lease's log. Put them in place with
#      `python -m ssmlib unpack --from <the folder $OUT came back to>` (joins the parts, checks every
#      member, unpacks, stores the log under logs/ by the tar's time, rewrites the tables and README.md's
#      summary; the I2A tar of I2A=1 too), once per call in call order, then commit, BEFORE the next call: a
#      machine released between calls starts bare from the tree it is sent, and a tree without the last call's
#      results continues the same runs a second time from the same state (2026-12-03, kept as
#      results/model_zoo/<game>/campaign/branches/2026-12-03-0839-h200/). A machine still warm accepts either tree (with
#      REQUIRE_WARM=1, below, only these two; any other machine refuses). The exception: a call made at once after
#      the previous one returned, with REQUIRE_WARM=1 and the same tree, before unpacking (the unpacking takes
#      longer than the machine's 30 s idle release); its files and the previous call's are unpacked in call order
#      afterwards. If it exits 3 (the machine was released), unpack and call again without it.
#   4. with RESCORE=1, scripts/gpu_rescore.sh runs alongside (the committed checkpoints re-scored with the
#      current evaluator): $OUT/rescore/results.tar and $OUT/rescore.log.
# Usage: [LEASE_SECONDS=560] [MAX_RUNS=2] [RESCORE=1] [CHECK=1] SSMLIB_GIT_SHA=<local HEAD> bash scripts/gpu_campaign.sh
#   LEASE_SECONDS is the whole call's budget: after the data, each run trains for what is left minus
#   OVERHEAD (startup, final evaluation, export and scoring: 63-107 s measured, 90 by default) unless
#   SECONDS_PER_RUN is given; the lease is stopped before the budget ends so that campaign.tar is always
#   written, and each run is recorded as soon as it ends. CHECK=1 runs scripts/check_step.py's variants
#   (which part of torch.compile breaks the gradient) on a small dataset, for at most CHECK_SECONDS (150;
#   CHECK_VARIANTS=a,b picks variants) while the campaign's data is
#   collected: $OUT/check_step.log. BENCH=1 runs `bench train` (BENCH_VARIANTS, default b256-eager-cl against
#   b256-compile, for at most BENCH_TIMEOUT=240 s) while the data is collected: $OUT/train-engine-h200.json.
#   OPEN_LOOP=1 (the default since 2026-12-03; OPEN_LOOP=0 to skip it) runs scripts/open_loop_samples.py beside the
#   lease (see there; 64 windows x 256 samples took 2-3 s per checkpoint on the H200, 10 checkpoints in 30 s), so
#   every sampling run's latest weights get their 256-sample open-loop excess (the README table's column):
#   $OUT/open_loop_samples.json and its log, which `python -m ssmlib unpack --from DIR` stores as
#   results/open_loop_samples/<game>-campaign.json.gz (when it continues the committed file) and under its logs/.
#   COMPILE=1 (the default; COMPILE=0 for eager) trains with torch.compile behind train's compiled-step guard
#   (a step that disagrees with eager falls back, recorded as compile_fallback). Measured in the campaign
#   (2026-12-02, dSSM-VAE-s0/s1, two runs at once): eager 9.4k frames/s per run, compiled 14.2-14.3k (1.51x);
#   the first compilation on a machine cost about 66 s per lease, a warm machine's later ones none.
#   WARM_COMPILE=1 (the default since 2026-12-04; 0 to skip): on a bare machine (no torch compile cache on its disk),
#   `campaign warm` compiles what the lease's runs will compile (their own train commands, on 16,016 frames collected
#   for it, 3 steps) while the campaign's data is collected; the runs then read the compiled graphs from the cache,
#   and when it finished, the I2A lane starts after 30 s instead of 120. The lease waits for it at most WARM_WAIT s
#   after its data (default 0) and then kills what is still compiling (its process group), because waiting did not
#   pay (results/model_zoo/<game>/campaign/compile-warmup.json, scripts/compile_warmup_effect.py): with a warm-up
#   a run lost 20-30 s of its seconds to start-up, against medians of 48.5 s (dSSM-DET) and 99.5-100 s (sSSM) on
#   cold calls without one, but the sSSM's warm-up took 191-193 s, 97-98 s past the data, and the two calls of
#   2026-12-05 that waited for it lost 117-126 s of each run's window (the wait plus the start-up); the
#   dSSM-DET-only call between them, whose warm-up ended before the data, lost 29 s. Since 2026-12-05 a lease that
#   does not wait leaves the sSSM's warm-up out (WARM_SKIP, below), and collects its data with DATA_WORKERS processes.
#   MAX_RUNS=3 was killed by the host's OOM killer before the episode-by-episode sampler store (41 GiB per
#   process); two runs already fill the GPU (9.2k frames/s each against 19.7k alone).
#   REQUIRE_WARM=1 (scripts/lease_start.sh): call again at once with the tree of the previous call, its files not yet
#   unpacked, so that the machine is still warm (the device releases it 30 s after a call): it restores that call's
#   state, reuses its dataset (10-14 s instead of 75-240 s of collection) and its compiled graphs (2026-12-04:
#   397-423 s trained of 431-450 s given on warm calls, compile-warmup.json); a machine that is not that one exits 3
#   before training. Unpack every call's files in order after. The I2A lane beside it is not held to it
#   (I2A_REQUIRE_WARM, default 0): its own saved state may be missing (a call without I2A), and the zoo's check has
#   shown the machine is the previous call's; a stale I2A tar would still be refused by unpack.
#   I2A=1 runs a lease of the I2A campaign (scripts/gpu_i2a_campaign.sh, I2A_MAX_RUNS runs, default 2) beside
#   the zoo's, once the data is collected: the zoo's runs hold their data on the GPU and leave the CPU idle,
#   while the I2A campaign's model-free arm (the one arm no zoo model blocks) is bound by ALE on the CPU. It
#   is pinned to the cores from I2A_FIRST_CPU (4) up, so the zoo's processes keep cores 0-3 to themselves,
#   and starts I2A_DELAY s after the zoo's runs (default 120 on a cold call, 30 warm: their first
#   compilation needs the CPU). Its output: $OUT/i2a.log and $OUT/i2a/i2a_campaign.tar, which
#   `python -m ssmlib unpack` (step 3) puts in place with the zoo's. Compare the zoo runs'
#   frames/s in the log with earlier leases to see what it costs them. The zoo waits at most I2A_WAIT (30) s
#   for it after its own lease, then writes its tar regardless.
set -euo pipefail
GAME=${GAME:-MsPacman}
LEASE_SECONDS=${LEASE_SECONDS:-560}
# measured (campaign/logs/, 2026-12-02): 75-96 s eager, 107 s with a first compilation, 63 s compiled on a warm
# machine; a run that would overrun is stopped and recorded by --stop-after (below), so no wide margin is kept.
# Since session 10 a compiled run also compiles its test pass before its clock starts (train._first_test; about
# 50 s on a cold machine, results/speed/engine/time-up-diagnosis-h200/): on a cold call the runs then end by
# --stop-after rather than by their own --seconds, and are recorded all the same
OVERHEAD=${OVERHEAD:-$([ "${COMPILE:-1}" = 1 ] && echo 90 || echo 80)}
MAX_RUNS=${MAX_RUNS:-2}
DATA=${DATA:-/tmp/data/campaign-$GAME}
CAMPAIGN_PATHS=("results/model_zoo/$GAME/campaign" "checkpoints/campaign/$GAME")
source "$(dirname "$0")/lease_start.sh"  # OUT, allocator, git-sha warning, t0, the device, the warm state
STUDY_LAST="runs/open_loop_samples-$GAME.last.json"  # this machine's last study (runs/ outlives a call; OPEN_LOOP)
if [ "${RESCORE:-0}" = 1 ]; then  # the committed checkpoints re-scored alongside (scripts/gpu_rescore.sh)
  (OUT="$OUT/rescore" bash scripts/gpu_rescore.sh > "$OUT/rescore.log" 2>&1; echo "rescore exit $?" >> "$OUT/rescore.log") &
  RESCORE_PID=$!
fi
if [ "${CHECK:-0}" = 1 ]; then  # compile diagnosis alongside the data: every check_step.py variant on a small dataset
  # bounded: the check waits for nothing the lease needs, and a slow variant (max-autotune) once ate a lease
  (python3 -m ssmlib collect --profile paper --game "$GAME" --steps 16000 --out /tmp/data/check --no-progress \
     && timeout "${CHECK_SECONDS:-150}" python3 scripts/check_step.py --data /tmp/data/check --model sSSM --batch 32 \
          ${CHECK_VARIANTS:+--only "$CHECK_VARIANTS"}) > "$OUT/check_step.log" 2>&1 &
  CHECK_PID=$!
fi
if [ "${BENCH:-0}" = 1 ]; then  # eager channels_last against compiled NCHW (the engine's open question), bounded
  timeout "${BENCH_TIMEOUT:-240}" python3 -m ssmlib bench train --profile paper --models sSSM,dSSM-DET \
    --variants "${BENCH_VARIANTS:-b256-eager-cl,b256-compile}" --seconds 8 --out "$OUT/train-engine-h200.json" \
    --overwrite > "$OUT/bench_train.log" 2>&1 &
  BENCH_PID=$!
fi
# torch's own default cache folder (TORCHINDUCTOR_CACHE_DIR, else <tempdir>/torchinductor_<user>)
INDUCTOR_CACHE=$(python3 -c "import getpass, os, tempfile; print(os.environ.get('TORCHINDUCTOR_CACHE_DIR') or os.path.join(tempfile.gettempdir(), 'torchinductor_' + getpass.getuser()))")
# a bare machine has no compile cache yet: its runs compile first, which needs the CPU (I2A_DELAY below). Said in the
# log, which compile_warmup reads: the data's collection time told it before DATA_WORKERS, and may no longer
BARE=$([ -d "$INDUCTOR_CACHE" ] && echo no || echo yes)
echo "bare machine (no compile cache): $BARE"
WARM_LOG=/tmp/warm_compile.log  # not under $OUT: the device returns at most 8 files; its summary goes to the lease's log
WARM_DEADLINE=${WARM_DEADLINE:-240}  # seconds from here after which the warm-up is killed (and no longer waited for)
WARM_WAIT=${WARM_WAIT:-0}  # seconds the lease waits for the warm-up once its data is collected (header: why 0)
# models not warmed up (their runs compile for themselves; WARM_SKIP= warms every one): by default the sSSM when the lease
# does not wait: its warm-up took 191-193 s, never ended before the data, and a cut one bought its run nothing (first
# step 69.2 s against a cold median of 68.6, compile-warmup.json) while it took cores from the data's collection
WARM_SKIP=${WARM_SKIP-$([ "$WARM_WAIT" = 0 ] && echo sSSM || true)}
if [ "${WARM_COMPILE:-1}" = 1 ] && [ "${COMPILE:-1}" = 1 ] && [ ! -d "$INDUCTOR_CACHE" ] && [ "$WARM_DEADLINE" -gt 0 ]; then
  # a bare machine (no compile cache yet): compile what the lease's runs will compile while the data is collected
  # (`campaign warm`, see zoo_campaign.warm_commands), on 16,016 frames collected for it. timeout -s KILL ends the
  # whole process group: a train process would finish its step on SIGTERM, next to the lease's runs
  timeout -s KILL "$WARM_DEADLINE" bash -c "python3 -m ssmlib collect --profile paper --game '$GAME' --envs 16 \
      --steps 16000 --out /tmp/data/warm-compile --no-progress && python3 -m ssmlib campaign warm --game '$GAME' \
      --data /tmp/data/warm-compile --max-runs '$MAX_RUNS' --runs runs/warm-compile --skip-models '$WARM_SKIP'" \
      > "$WARM_LOG" 2>&1 &
  WARM_PID=$!
  [ -z "$WARM_SKIP" ] || echo "compile warm-up leaves out: $WARM_SKIP"  # those runs compile cold (compile_warmup reads it)
fi
# DATA_WORKERS shards at once, each in its own process (the same bytes: tests/test_data.py; since 2026-12-05, not
# yet timed on the H200): one process took 90-150 s of a cold call for the 4 shards, its phases in the logs' "collect
# phases" lines leaving most of the 16 cores idle. If that fails (the campaign would refuse another fingerprint),
# the data are collected again in one process, as before.
# Bounded (DATA_TIMEOUT, SIGINT: the collection's own clean stop), and only a collection this call made is collected
# again: a warm machine's dataset that the campaign refuses would be refused again, after minutes.
DATA_NEW=$([ -f "$DATA/manifest.json" ] && echo no || echo yes)
timeout -s INT -k 10 "${DATA_TIMEOUT:-300}" python3 -m ssmlib campaign data --game "$GAME" --out "$DATA" \
    --workers "${DATA_WORKERS:-4}" || { code=$?; [ "$DATA_NEW" = yes ] || exit "$code"
  echo "campaign data with ${DATA_WORKERS:-4} workers ended with exit $code: collecting again in one process"
  rm -rf "$DATA"; python3 -m ssmlib campaign data --game "$GAME" --out "$DATA"; }
if [ "${OPEN_LOOP:-1}" = 1 ]; then  # beside the lease: how many prior samples the open-loop excess needs
  # (scripts/open_loop_samples.py) for every committed sampling-model weights, on the campaign's data, bounded; it
  # reads the weights before the lease exports new ones (OPEN_LOOP_SECONDS < each run's training), and writes its
  # file after every checkpoint. OPEN_LOOP_EXTRA="NAME=PATH@FRAMES ..." adds checkpoints (e.g. earlier points of a
  # run, carried in an ignored folder): $OUT/open_loop_samples.json
  # It continues the committed file (results/open_loop_samples/<game>-campaign.json.gz): checkpoints scored there
  # already (same name and sha256) are skipped, so a study longer than one lease finishes over several.
  read -ra EXTRA_IN <<< "${OPEN_LOOP_EXTRA:-}"  # split on spaces only (no glob expansion)
  EXTRA=(); for c in "${EXTRA_IN[@]}"; do EXTRA+=(--checkpoint "$c"); done
  STUDY_IN="results/open_loop_samples/$GAME-campaign.json"  # committed gzip-compressed since 2026-12-04
  # the plain file first, as every reader (ssmlib.io.stored_path) and `unpack` prefer it where both exist
  # a warm machine restored the previous call's state, whose study (not unpacked yet) the committed file lacks: unpack
  # refuses a study that does not continue the committed one, so this one continues the previous call's
  if [ "${WARM_RESTORED:-0}" = 1 ] && [ -f "$STUDY_LAST" ] && python3 -c "import sys; from pathlib import Path; \
from ssmlib.studies.lease_files import check_study; check_study(Path(sys.argv[1]), Path(sys.argv[2]))" \
      "$STUDY_LAST" "$STUDY_IN" > /dev/null 2>&1; then cp "$STUDY_LAST" "$OUT/open_loop_samples.json"  # it continues
  elif [ -f "$STUDY_IN" ]; then cp "$STUDY_IN" "$OUT/open_loop_samples.json"
  elif [ -f "$STUDY_IN.gz" ]; then gzip -dc "$STUDY_IN.gz" > "$OUT/open_loop_samples.json"; fi
  timeout "${OPEN_LOOP_SECONDS:-240}" python3 scripts/open_loop_samples.py --data "$DATA" --campaign "$GAME" \
    "${EXTRA[@]}" --device cuda --windows 64 --k-max 256 --ks 1,2,4,8,16,32,64,128,256 --batch-size 16 \
    --chunk 64 --out "$OUT/open_loop_samples.json" > "$OUT/open_loop_samples.log" 2>&1 &
  OPEN_LOOP_PID=$!
fi
# weights exported before checkpoints kept the reward head's class weights: add them and re-score (once per
# run, about 6 s each; afterwards it reads the weights' headers only)
python3 -m ssmlib campaign calibrate --game "$GAME" --data "$DATA" 2>&1 | grep -v "Warn\|warn\|frames\[row" || true
# (every pipe that prints a log ends in `|| true`: under pipefail a grep with no line would end the lease)
[ -z "${CHECK_PID:-}" ] || { wait "$CHECK_PID" || true; grep '^{' "$OUT/check_step.log" | cut -c1-220 || true; }
[ -z "${BENCH_PID:-}" ] || { wait "$BENCH_PID" || true; grep -v "Warn\|warn" "$OUT/bench_train.log" | tail -8 || true; }
WARM_EXIT=
if [ -n "${WARM_PID:-}" ]; then  # what the warm-up compiled by now the runs read from the cache; the rest they compile
  w0=$(date +%s); WARM_EXIT=0
  while kill -0 "$WARM_PID" 2> /dev/null && [ $(( $(date +%s) - w0 )) -lt "$WARM_WAIT" ]; do sleep 1; done
  # timeout leads its own process group: SIGKILL to the group, as a train process would finish its step on SIGTERM
  kill -KILL -- -"$WARM_PID" 2> /dev/null || true  # also what outlived timeout itself (compile workers)
  wait "$WARM_PID" || WARM_EXIT=$?
  echo "compile warm-up: exit $WARM_EXIT (137: killed at its deadline, ${WARM_DEADLINE} s, or WARM_WAIT=${WARM_WAIT} s after the data), waited $(( $(date +%s) - w0 )) s after the data; its log's last lines:"
  grep -v "Warn\|warn\|frames\[row" "$WARM_LOG" | tail -4 || true
  for f in runs/warm-compile/*.log; do [ -f "$f" ] && { echo "$f:"; grep "test\|rror\|compile" "$f" | grep -v "Warn\|warn" | tail -3 || true; }; done
fi
elapsed=$(( $(date +%s) - t0 ))
SECONDS_PER_RUN=${SECONDS_PER_RUN:-$(( LEASE_SECONDS - elapsed - OVERHEAD ))}
echo "collected in $elapsed s; each run trains $SECONDS_PER_RUN s"
LEFT=$(( LEASE_SECONDS - elapsed - 10 ))  # the lease's own bound (`timeout 0` would mean none)
# runs still training RECORD_SECONDS before that bound are stopped (they save) and recorded: a first compilation,
# which --seconds leaves out, once ran both jumpy runs past it and neither was recorded (2026-12-02)
RECORD_SECONDS=${RECORD_SECONDS:-75}  # two runs scored and exported one after the other, after the lease's own start-up
[ "$SECONDS_PER_RUN" -ge 30 ] && [ "$LEFT" -gt "$SECONDS_PER_RUN" ] || {
  echo "no time left to train (LEASE_SECONDS=$LEASE_SECONDS, $LEFT s left, SECONDS_PER_RUN=$SECONDS_PER_RUN)"; exit 1; }
if [ "${I2A:-0}" = 1 ]; then  # the I2A campaign beside the zoo's runs (header): ends 20 s before the zoo's bound
  # a cold call's runs compile first, which needs the CPU; not after a warm-up that finished (exit 0)
  I2A_DELAY=${I2A_DELAY:-$([ "${BARE:-yes}" = yes ] && [ "$WARM_EXIT" != 0 ] && echo 120 || echo 30)}
  I2A_SECONDS=$(( LEFT - I2A_DELAY - 20 ))
  I2A_CPUS="${I2A_FIRST_CPU:-4}-$(( $(nproc) - 1 ))"
  PIN=(); if command -v taskset > /dev/null && [ "${I2A_FIRST_CPU:-4}" -lt "$(nproc)" ]; then PIN=(taskset -c "$I2A_CPUS"); fi
  ( sleep "$I2A_DELAY"
    echo "I2A lease beside the zoo's: $I2A_SECONDS s, ${PIN[*]:-not pinned (too few cores or no taskset)}"
    OUT="$OUT/i2a" LEASE_SECONDS=$I2A_SECONDS MAX_RUNS=${I2A_MAX_RUNS:-2} REQUIRE_WARM=${I2A_REQUIRE_WARM:-0} \
      "${PIN[@]}" bash scripts/gpu_i2a_campaign.sh \
      || echo "I2A lease failed with exit $?"
    echo "I2A lease done" ) > "$OUT/i2a.log" 2>&1 &
  I2A_PID=$!
fi
LEASE_EXIT=0
timeout "$LEFT" python3 -m ssmlib campaign lease --game "$GAME" --data "$DATA" \
  --seconds "$SECONDS_PER_RUN" --max-runs "$MAX_RUNS" $([ "${COMPILE:-1}" = 1 ] && echo --compile) \
  --stop-after $(( LEFT - RECORD_SECONDS )) || { LEASE_EXIT=$?; echo "lease ended with exit $LEASE_EXIT"; }
echo "lease done at $(( $(date +%s) - t0 )) s"
if [ "$LEASE_EXIT" = 124 ]; then  # killed at its bound: record what its stopped runs saved (sSSM-rp-s0 was lost so,
  # 2026-12-03); scoring takes 3-10 s a run, and the call's own limit leaves about 40 s past LEASE_SECONDS.
  # The killed runs save on SIGTERM: wait (at most 15 s) until no training process is left ([n]: not this line)
  for _ in $(seq 15); do pgrep -f "ssmlib trai[n] " > /dev/null || break; sleep 1; done
  timeout "${RECORD_LEFT_SECONDS:-25}" python3 -m ssmlib campaign record --game "$GAME" --data "$DATA" 2>&1 \
    | grep -v "Warn\|warn\|frames\[row" || echo "campaign record ended with exit $?"
fi
if [ -n "${I2A_PID:-}" ]; then  # it ends on its own bound; never let it hold back the zoo's tar
  for _ in $(seq "${I2A_WAIT:-30}"); do kill -0 "$I2A_PID" 2> /dev/null || break; sleep 1; done
  if kill -0 "$I2A_PID" 2> /dev/null; then echo "I2A lease still running: the zoo's tar is written without waiting"
  else wait "$I2A_PID" || true; fi
  grep -v "Warn\|warn\|^$" "$OUT/i2a.log" | tail -15 || true
fi
for f in runs/campaign/*.log; do [ -f "$f" ] && { grep -v "Warning\|warn\|softmax\|reduction\|important use\|^$" "$f" | tail -5 || true; }; done
python3 -m ssmlib campaign table --game "$GAME" || true
[ -z "${OPEN_LOOP_PID:-}" ] || { wait "$OPEN_LOOP_PID" || true; grep -v "Warn\|warn\|frames\[row" "$OUT/open_loop_samples.log" | tail -30 || true
  [ ! -f "$OUT/open_loop_samples.json" ] || cp "$OUT/open_loop_samples.json" "$STUDY_LAST" || true; }
[ -z "${RESCORE_PID:-}" ] || { wait "$RESCORE_PID" || true; tail -3 "$OUT/rescore.log" || true; }
save_warm_state || true
pack_campaign campaign.tar  # split when over 15 MiB (lease_start.sh)
ls -la "$OUT"
