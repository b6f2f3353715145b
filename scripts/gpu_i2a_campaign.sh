#!/usr/bin/env bash
# One lease of the I2A campaign (ssmlib/studies/i2a_campaign.py) on a lent GPU machine:
#   1. `i2a-campaign lease`: the unfinished runs (required arms first, fewest agent steps, then seed, then arm:
#      the arms stay balanced), MAX_RUNS at once on the one GPU, one process each, each for SECONDS_PER_RUN of
#      training; each continues from its committed state (checkpoints/i2a_campaign/<game>, bf16 weights and
#      RMSprop averages) on a bare machine, or exactly from runs/i2a_campaign on one still warm; a run that
#      reaches the budget plays its final weights frozen over the config's eval_games games. Arms whose
#      environment model the design's rule cannot select yet (the model-zoo campaign unfinished) are refused,
#      one line each; the arms and runs come from the config (Python), none is named here. When every run has
#      ended (reached its budget) with at least i2a_campaign.REFILL_S of the seconds left, the runs picked next
#      train for what is left (`--refill-s`), so the lane does not stand idle.
#   2. $OUT/i2a_campaign.tar: results/i2a/<game>/campaign and checkpoints/i2a_campaign/<game>. Unpack at the
#      repository root AFTER deleting checkpoints/i2a_campaign/<game> (the tar holds every open run's state;
#      a run finished in this lease has none any more), then commit both folders. `python -m ssmlib
#      unpack --from DIR` (DIR: where $OUT came back) does all of it, and stores the log under logs/.
# Usage: [LEASE_SECONDS=560] [MAX_RUNS=2] [OVERHEAD=90] [STATE_BUDGET_MIB=9] SSMLIB_GIT_SHA=<local HEAD> bash scripts/gpu_i2a_campaign.sh
#   STATE_BUDGET_MIB: the open runs' committed (xz) state at most this (i2a-campaign lease --state-budget-mib; the
#   repository must stay under 56 MiB; an I2A or copy agent's state is 7.1-7.3 MiB raw, about 4 MiB stored)
#   LEASE_SECONDS is the whole call's budget; each run trains LEASE_SECONDS - OVERHEAD seconds (startup, the
#   frozen evaluation of a run at its budget and the recording: 35 s measured without the evaluation) unless
#   SECONDS_PER_RUN is given; the lease is stopped before the budget ends so that the tar is always written,
#   and each run is recorded as soon as its process ends.
set -euo pipefail
GAME=${GAME:-MsPacman}
LEASE_SECONDS=${LEASE_SECONDS:-560}
OVERHEAD=${OVERHEAD:-90}  # measured 35 s without a frozen evaluation (2026-12-02, logs/), plus 64 whole games' margin
MAX_RUNS=${MAX_RUNS:-2}
CAMPAIGN_PATHS=("results/i2a/$GAME/campaign" "checkpoints/i2a_campaign/$GAME")
source "$(dirname "$0")/lease_start.sh"  # OUT, allocator, git-sha warning, t0, the device, the warm state
SECONDS_PER_RUN=${SECONDS_PER_RUN:-$(( LEASE_SECONDS - OVERHEAD ))}
echo "each run trains $SECONDS_PER_RUN s"
[ "$SECONDS_PER_RUN" -ge 30 ] || { echo "no time left to train (LEASE_SECONDS=$LEASE_SECONDS)"; exit 1; }
timeout $(( LEASE_SECONDS - 10 )) python3 -m ssmlib i2a-campaign lease --game "$GAME" --seconds "$SECONDS_PER_RUN" \
  --max-runs "$MAX_RUNS" ${STATE_BUDGET_MIB:+--state-budget-mib "$STATE_BUDGET_MIB"} --stop-after $(( LEASE_SECONDS - 10 - ${RECORD_SECONDS:-75} )) || echo "lease ended with exit $?"
echo "lease done at $(( $(date +%s) - t0 )) s"
for f in runs/i2a_campaign/*.log; do [ -f "$f" ] && { grep -v "Warning\|warn\|^$" "$f" | tail -5 || true; }; done
python3 -m ssmlib i2a-campaign table --game "$GAME" || true
save_warm_state || true
pack_campaign i2a_campaign.tar  # split when over 15 MiB (lease_start.sh)
ls -la "$OUT"
