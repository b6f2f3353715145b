#!/usr/bin/env bash
# One-off diagnosis on a lent GPU (2026-12-02): does a fresh compiled sSSM run end promptly on runs.TIME_UP (SIGUSR1)?
# Two fresh runs (reward_state prior and posterior) are told their time is up at UP_AT s; each one still alive
# every 10 s after is sent SIGUSR2, on which faulthandler prints every thread's stack to its log.
# Results: results/speed/engine/time-up-diagnosis-h200/README.md
set -u
exec > >(tee "$OUT/driver.log") 2>&1  # the timeline (TIME_UP sent, who is alive when) is stored too
python3 -m ssmlib collect --profile paper --steps 40000 --envs 16 --out /tmp/dd --no-progress > $OUT/collect.log 2>&1 || tail -5 $OUT/collect.log
W='import faulthandler,signal,sys,runpy; faulthandler.register(signal.SIGUSR2, all_threads=True); sys.argv=["ssmlib"]+sys.argv[1:]; runpy.run_module("ssmlib", run_name="__main__", alter_sys=True)'
python3 -c "$W" train --model sSSM --data /tmp/dd --out /tmp/rp --profile paper --no-progress --time-limit 600 --set compile=true --set reward_state=prior --set steps=100000000 --set seed=2 > $OUT/rp.log 2>&1 & P1=$!
python3 -c "$W" train --model sSSM --data /tmp/dd --out /tmp/post --profile paper --no-progress --time-limit 600 --set compile=true --set steps=100000000 --set seed=3 > $OUT/post.log 2>&1 & P2=$!
t0=$(date +%s)
sleep ${UP_AT:-200}; echo "TIME_UP at $(( $(date +%s) - t0 )) s"; kill -USR1 $P1 $P2
for i in 1 2 3 4 5 6; do sleep 10; for p in $P1 $P2; do kill -0 $p 2>/dev/null && { echo "$p alive at $(( $(date +%s) - t0 )) s"; kill -USR2 $p; }; done; done
kill -TERM $P1 $P2 2>/dev/null; sleep 5; kill -KILL $P1 $P2 2>/dev/null
echo "rp=$P1 post=$P2"; for f in rp post; do echo "== $f"; grep -v "Warn\|warn\|frames\[row" $OUT/$f.log | tail -60; done
cp /tmp/rp/metrics.jsonl $OUT/rp-metrics.jsonl; cp /tmp/post/metrics.jsonl $OUT/post-metrics.jsonl
