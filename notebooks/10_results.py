# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10. Results: the paper's claims against our measurements
#
# The earlier chapters each test one part of the paper. This chapter puts every GPU study of
# `results/` in one place and checks the paper's five claims (see the introduction) against them:
#
# | # | The paper's claim |
# |---|---|
# | 1 | State-space models are substantially faster than pixel-space autoregressive models, at competitive accuracy (a secondary summary says "more than 5x"; that number is **uncertain**). |
# | 2 | Stochastic SSMs reach a higher test log-likelihood than deterministic ones on several ALE games. |
# | 3 | Jumpy SSMs give a large further speed-up with similar accuracy. |
# | 4 | On MS_PACMAN, an I2A that queries an SSM beats model-free baselines; learning to query gives the best I2A. |
# | 5 | Inside an I2A with few rollouts, deterministic SSMs tend to work better than stochastic ones. |
#
# For each claim we print what we measured and at what scale. The verdicts are **not** computed in
# this chapter: one cell at the end prints them from `ssmlib.claims`, which judges each claim by a
# rule written down before the numbers it judges (`claims.RULES`), with a 95% interval where the
# results allow one, as **reproduced**, **not reproduced**, **inconclusive** or **not run**. This
# chapter trains nothing: it only reads the committed files, each of which records the git commit,
# the device and the time it was made. Every number below is printed by a cell. The few numbers
# that are **the paper's** are kept in one dictionary, `PAPER`, and are labelled as such wherever
# they are printed.
#
# A warning before the numbers: our budgets are **tiny** next to the paper's. The models trained for
# minutes, and each agent for a small fraction of the steps of the paper's agent curves (both printed
# below). Where a claim is not reproduced, the most likely reason is the budget, and we say so rather
# than claim that the paper is wrong.

# %%
import json
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ssmlib import claims
from ssmlib.book import MODEL_NAMES, colour
from ssmlib.book import VARIANTS as STUDY_VARIANTS
from ssmlib.config import RESULTS_DIR
from ssmlib.errors import SsmlibError
from ssmlib.paper import PUBLISHED, paper_i2a_scores
from ssmlib.studies import jumpy
from ssmlib.studies.i2a import PILOT_COST_TARGET
from ssmlib.studies.i2a import load_study as load_i2a_study
from ssmlib.studies.scaling import TARGET_SPEEDUP
from ssmlib.studies.common import read_json
from ssmlib.studies.zoo import load_study

# The only numbers in this chapter that are not ours. Sources: our reading of the paper's abstract and redrawn figures, kept as data in `ssmlib.paper`.
PAPER = {
    "speedup_claim": PUBLISHED["ssm_speedup_vs_ar"].value,  # claim 1, "more than 5x": secondary summary, UNCERTAIN
    "i2a_env_steps": PUBLISHED["i2a_env_steps"].value,      # the x-axis of the paper's MS_PACMAN agent curves
    "i2a_scores": paper_i2a_scores(),                       # read off the paper's MS_PACMAN figure (approximate)
}


def load(rel: str) -> dict:
    return read_json(RESULTS_DIR / rel)  # (or its compressed .gz)


zoo = {g: load_study(g) for g in ("MsPacman", "Bowling")}
speed = {p.stem: json.loads(p.read_text()) for p in sorted((RESULTS_DIR / "speed").glob("*.json"))}
jstudy = jumpy.load_study("MsPacman")
i2a = load_i2a_study()
scaling = load("scaling/h200-x4.json")
collect = {p.stem: json.loads(p.read_text()) for p in sorted((RESULTS_DIR / "bench_collect").glob("*.json"))}
collect_workers = {p.stem: json.loads(p.read_text())
                   for p in sorted((RESULTS_DIR / "bench_collect_workers").glob("*.json"))}
reward = load("reward/MsPacman/dSSM-DET/eval.json")
reward_cfg = load("reward/MsPacman/dSSM-DET/config.json")
print("studies loaded:", ", ".join([f"model_zoo/{g}" for g in zoo] + [f"speed/{k}" for k in speed]
                                   + ["jumpy/MsPacman", "i2a/MsPacman", "scaling/h200-x4"]
                                   + [f"bench_collect/{k}" for k in collect]
                                   + [f"bench_collect_workers/{k}" for k in collect_workers]
                                   + ["reward/MsPacman/dSSM-DET"]))

# %% [markdown]
# ## Provenance
#
# Each study file says which commit of `ssmlib` wrote it, on which device and when. The jumpy study
# merges one run from a second lease (`merged_from`); it is listed on its own line.

# %%
def prov_row(name: str, p: dict) -> None:
    print(f"{name:36} {str(p.get('git_sha'))[:10]:10}  {p.get('device', '?'):40} {p.get('time', '?')}")


print(f"{'study':36} {'git sha':10}  {'device':40} date (UTC)")
for g, s in zoo.items():
    prov_row(f"model_zoo/{g}", s["provenance"])
for k, s in speed.items():
    prov_row(f"speed/{k}", s["provenance"])
prov_row("jumpy/MsPacman", jstudy["provenance"])
for run, m in jstudy.get("merged_from", {}).items():
    prov_row(f"  merged: jumpy/{run}", m["provenance"])
prov_row("i2a/MsPacman (training runs)", i2a["provenance"])
prov_row("i2a/MsPacman (steps/s alone)", i2a["bench"]["provenance"])
prov_row("scaling/h200-x4", scaling["provenance"])
for k, s in collect.items():
    prov_row(f"bench_collect/{k}", s["provenance"])
for k, s in collect_workers.items():
    prov_row(f"bench_collect_workers/{k}", s["provenance"])
prov_row("reward/MsPacman/dSSM-DET", reward["provenance"])

# %% [markdown]
# ## The scale of our runs
#
# How much training did each model and agent get? The cell below prints, per model of the model zoo,
# the optimiser steps, the wall-clock time and the number of predicted frames it saw (steps x batch
# x horizon), next to the size of the game's training data: divided by the training windows (one per
# training frame that can start a window), it says how often each training frame was a prediction
# target. For the agents it prints the common
# budget and how far it is below the x-axis of the paper's agent curves. The paper's training length
# for the environment models is not in our notes, so for them we can only report ours.

# %%
for g, s in zoo.items():
    print(f"{g}: {s['data']['frames']:,} frames of collected data ({s['data']['episodes']} episodes)")
    for r in s["rows"]:
        if r.get("kind") == "reference":  # the copy baselines of the re-scored study: no training to report
            continue
        cfg = s["configs"][r["model"]]
        tc, n_train = cfg["train_cfg"], cfg["data"]["train_windows"]
        seen = r["train_steps"] * tc["batch_size"] * tc["horizon"]
        print(f"  {r['model']:9} {r['train_steps']:6,} steps x batch {tc['batch_size']} x horizon {tc['horizon']}"
              f" = {seen / 1e6:5.2f}M predicted frames in {r['train_wall_s'] / 60:5.1f} min: each of the "
              f"{n_train:,} training windows' frames a target about {seen / n_train:.0f} times")
frames_per_agent_step = i2a["budget_frames"] / i2a["budget_agent_steps"]
print(f"\nagents: {i2a['budget_agent_steps']:,} agent steps = {i2a['budget_frames']:,} frames per run")
reached = sorted({r["steps"] for r in i2a["rows"]})
print(f"steps reached by the {len(i2a['rows'])} runs: {', '.join(f'{x:,}' for x in reached)} "
      f"(every run at the budget: {reached == [i2a['budget_agent_steps']]})")
print(f"our agent steps are {i2a['budget_agent_steps'] / PAPER['i2a_env_steps']:.1%} of the paper's "
      f"{PAPER['i2a_env_steps']:.0e}")
print(f"the paper's agent curves run to {PAPER['i2a_env_steps']:.0e} env steps (the paper's): "
      f"{PAPER['i2a_env_steps'] / i2a['budget_agent_steps']:,.0f}x our agent steps, "
      f"{PAPER['i2a_env_steps'] / i2a['budget_frames']:,.0f}x our frames "
      "(which of the two the paper counts is not known to us)")

# %% [markdown]
# As the table above shows, every model trained for minutes; each training frame was a prediction
# target the number of times printed per model (tens of times on MsPacman, fewer on Bowling, whose
# runs were shorter). Every agent run reached the budget printed above, a small fraction of the 5e8
# steps of the paper's curves (the ratios are printed). Read everything below with that in mind.
#
# ## Claim 1: state-space models are faster, at competitive accuracy
#
# **Speed.** The rollout benchmark (`results/speed/rollout-paper-h200.json`) times imagined env
# steps per second for every model, batch size and numeric variant on one H200; each row also holds
# its speed-up against RAR (and AR) measured in the same file. We read the headline variant
# (bf16 with CUDA graphs) at jump 1, latent-only (no frame decoded) and decoded (a frame decoded at
# every step).

# %%
RSPEED = speed["rollout-paper-h200"]
HEAD = "bf16-graph"
rows = [r for r in RSPEED["rows"] if r["variant"] == HEAD]
batches = sorted({r["batch"] for r in rows})
models = list(MODEL_NAMES)


def sp(model, jump, batch, decode, key="speedup_vs_RAR", rws=rows):
    hit = [r for r in rws if (r["model"], r["jump"], r["batch"], r["decode"]) == (model, jump, batch, decode)]
    return hit[0][key] if hit else None


print(f"speed-up over RAR ({HEAD}, jump 1), per batch size {batches}")
for m in models:
    for dec in (False, True):
        vals = [sp(m, 1, b, dec) for b in batches]
        print(f"  {m:9} {'decoded    ' if dec else 'latent-only'}", " ".join(f"{v:5.2f}x" for v in vals))
ssm1 = {(m, dec): [sp(m, 1, b, dec) for b in batches] for m in models[2:] for dec in (False, True)}
best_k1 = max(max(v) for (m, dec), v in ssm1.items())
worst_k1 = min(min(v) for (m, dec), v in ssm1.items())
best_jumpy = max(r["speedup_vs_RAR"] for s in speed.values() if s.get("study") == "speed_rollout"
                 for r in s["rows"] if r["jump"] > 1)
print(f"SSMs at jump 1: {worst_k1:.2f}x to {best_k1:.2f}x over RAR; best jumpy SSM in any speed file: "
      f"{best_jumpy:.2f}x; the paper's (uncertain) target: more than {PAPER['speedup_claim']:.0f}x")
rf = RSPEED["roofline"]
print(f"roofline at B={rf['batch']}: best measured {rf['best_measured_ms_per_step']:.2f} ms per step, "
      f"{rf['measured_over_floor']:.1f}x above the memory/compute floor of {rf['floor_ms_per_step']:.2f} ms")

# %% [markdown]
# **Accuracy.** "Competitive" has no number in the paper. The rule of `ssmlib.claims` (printed with
# the verdicts below) judges it on the **excess** over the exact floor of each test window's target
# frames, open loop, and on the error of the moving pixels, each against the better pixel model and
# against copying the last context frame. The model zoos of both games have been re-scored with the
# current evaluator: their evaluations hold each test window's excess over the exact floor, open loop
# for every model (AR and RAR included), with per-episode sums from which `ssmlib.claims` draws
# intervals over the test episodes (the first cell says, per game, whether the committed evaluations
# hold the excess). The verdict table at the end judges claim 1 on MsPacman; the second cell applies
# the same rule to Bowling. Both games hold the raw log-likelihood per frame, printed in the first
# cell with its difference from the better of AR and RAR. Most of each number is the irreducible
# floor of the Bernoulli pixel likelihood, which moves with the game's progress ({doc}`chapter 3 <03_autoregressive>`), so a
# difference as a share of the whole says little. The model-zoo table gives each model after the
# same wall-clock time; the steps are printed next to it.

# %%
for g, s in zoo.items():
    rw = {r["model"]: r for r in s["rows"]}
    base = max(("AR", "RAR"), key=lambda m: rw[m]["ll_nats_per_frame"])
    for m in models[2:]:
        gap = rw[m]["ll_nats_per_frame"] - rw[base]["ll_nats_per_frame"]
        print(f"{g:8} {m:9} {rw[m]['ll_nats_per_frame']:10.1f} nats/frame ({rw[m]['train_steps']:5} steps) vs "
              f"{base} {rw[base]['ll_nats_per_frame']:10.1f}: {gap:+7.1f} nats/frame; open-loop frame MSE "
              f"{rw[m]['frame_mse_open_loop']:.5f} vs {rw[base]['frame_mse_open_loop']:.5f}")
    print(f"{g:8} per-window excess in the committed evaluation: "
          f"{'present' if all('excess_open_loop_nats_per_frame' in e['total'] for e in s['evals'].values()) else 'absent (needs re-score)'}")

# %%
print(claims.format_verdicts([claims.claim1("Bowling")]))

# %% [markdown]
# Every state-space model is faster than RAR in the speed table above, latent-only and decoded. The
# speed-up is largest when no frame is decoded, which is how an I2A uses the model. The roofline
# line says our fastest rollout is still far above the hardware floor, so the absolute speeds could
# improve; the ratios are what we compare. Whether this reproduces claim 1 is decided by the rule of
# `ssmlib.claims` (its speed part reads the fp32-eager cells at batch 64 and above), printed at the
# end of the chapter.
#
# ## Claim 2: stochastic SSMs reach a higher log-likelihood than deterministic ones
#
# The claim is about the sSSM, the one model whose **transition** is stochastic. dSSM-VAE has a latent
# too, but only its decoder reads it: its transition is deterministic, so it is one of the two
# deterministic models the sSSM is compared with. {doc}`Chapter 5 <05_sssm>` compares them in two ways: in the final
# table (equal wall-clock time, so unequal steps) and on the test curves at the largest step both
# reached (equal steps; the curves hold the ELBO, a looser bound than the final table's estimate for
# the latent models, and dSSM-DET's exact log-likelihood).

# %%
for g, s in zoo.items():
    for c in claims.sssm_vs_deterministic(s):
        print(f"{g:8} sSSM - {c['other']:8} final table: {c['final_diff']:+7.1f} nats/frame ({c['steps'][0]} vs "
              f"{c['steps'][1]} steps) | at equal step {c['common_step']}: {c['equal_step_diff']:+7.1f}")

# %% [markdown]
# Positive numbers above mean the sSSM is better. These are raw log-likelihoods (and bounds) per
# frame, most of which is the floor of the Bernoulli pixel likelihood; the rule of `ssmlib.claims`
# judges the per-window excess with an episode-bootstrap interval, which the re-scored evaluations of
# both games give (the verdict at the end shows each game, and the claim over both). On the same
# windows every model has the same floor, so the difference of two models' excess equals the
# difference of their raw log-likelihoods: what the re-score adds is the interval, and the
# comparison with copying the previous frame. The paper's own numbers for this claim are not known
# to us.
#
# ## Claim 3: jumpy SSMs are faster again, at similar accuracy
#
# The jumpy study trains each model at jumps $k$ = 1, 2, 4 for the same wall-clock time and scores
# them at **matched env steps** (open-loop log-likelihood of the frames at env steps printed below,
# on the same test windows). The sSSM trio trained side by side on one GPU, so its training is
# matched. The dSSM-DET at $k$ = 1 comes from a second lease where it ran alone, and its training is
# **not** matched to its $k$ = 2, 4 siblings (the file says why). The speed-ups come from the speed
# files: the same model at jump $k$ against jump 1, latent-only, at the largest batch.

# %%
print("env steps scored:", jstudy["env_steps"])
print("merged from a second lease:", ", ".join(jstudy.get("merged_from", {})) or "none")
speed_rows = [dict(r, file=f) for f, s in speed.items() if s.get("study") == "speed_rollout" for r in s["rows"]
              if r["variant"] == HEAD and not r["decode"]]
bmax = max(r["batch"] for r in speed_rows)


jrows = {r["run"]: r for r in jstudy["rows"]}
for model in ("sSSM", "dSSM-DET"):
    k1 = jrows[f"{model}-k1"]
    matched = f"{model}-k1" not in jstudy.get("merged_from", {})
    for k in jstudy["jumps"][1:]:
        r = jrows[f"{model}-k{k}"]
        dll = r["ll_open_loop_nats_matched_mean"] - k1["ll_open_loop_nats_matched_mean"]
        # the smallest ratio over the speed files that measured both at the largest batch (claims' own reading)
        spd = (claims.speed_ratio(speed_rows, model, [model], jump=k, ref_jump=1, variant=HEAD, min_batch=bmax)
               or {}).get("min_ratio")
        print(f"{model:8} k={k} vs k=1: speed {'%.2fx' % spd if spd else 'not measured':>12} (B={bmax}) | "
              f"open-loop LL {dll:+7.1f} nats/frame | steps {r['train_steps']} vs "
              f"{k1['train_steps']} ({r['train_wall_s']:.0f} s vs {k1['train_wall_s']:.0f} s) | training "
              f"{'matched' if matched else 'NOT matched'}")

# %% [markdown]
# For the sSSM, where training is matched, the jumpy models in the table above are faster per env
# step and their raw open-loop log-likelihood at matched env steps is higher than at $k$ = 1. For
# dSSM-DET the $k$ = 1 model trained alone for several times more steps than its jumpy siblings
# (steps and seconds printed), so its lead says nothing about the jump. The rule of `ssmlib.claims`
# judges the per-window excess at matched env steps with an interval; the jumpy evaluations predate
# it, and unlike the model zoo they cannot be re-scored from the repository: the runs' weights are
# not committed, so the study has to be trained again (the verdict at the end says what is
# missing). All of these models trained for only a few thousand steps (printed above), so the
# accuracies are those of young models.
#
# ## Claims 4 and 5: imagination-augmented agents on MsPacman
#
# Five agents, two seeds each, every run trained for the same number of agent steps
# (`results/i2a/`). The score is the mean return of the last 100 episodes before the budget, as the
# training log records it; further below, the same final weights are also scored frozen. Each agent's
# cost is its agent steps per second when it runs alone on the GPU, relative to the model-free
# agent's. Below we describe seed ranges (is every seed of one variant above every seed of
# another?); the verdict on claim 4 is the rule of `ssmlib.claims`, a bootstrap over the frozen
# evaluation games and the seeds, printed at the end.

# %%
VARIANTS = list(STUDY_VARIANTS)
var = i2a["variants"]


def above(a, b):
    return var[a]["score_min"] > var[b]["score_max"]


print(f"budget: {i2a['budget_agent_steps']:,} agent steps per run; score = {i2a['score']}")
print(f"{'variant':13} {'ours: mean':>10} {'min':>6} {'max':>6} {'cost':>6} | the paper's (at {PAPER['i2a_env_steps']:.0e})")
for v in VARIANTS:
    s = var[v]
    print(f"{v:13} {s['score_mean']:10.0f} {s['score_min']:6.0f} {s['score_max']:6.0f} {s['cost_vs_model_free']:5.2f}x"
          f" | ~{PAPER['i2a_scores'][v]}")
i2as = ["i2a-uniform", "i2a-distill", "i2a-learned"]
beats_mf = [v for v in i2as if above(v, "model-free")]
beats_copy = [v for v in i2as if above(v, "copy-distill")]
learned_best = all(above("i2a-learned", v) for v in VARIANTS if v != "i2a-learned")
print("I2As above model-free (both seeds):", beats_mf or "none")
print("I2As above the copy model (both seeds):", beats_copy or "none")
print("copy model above model-free (both seeds):", above("copy-distill", "model-free"))
print("i2a-learned above every other agent:", learned_best)
print("highest mean:", max(VARIANTS, key=lambda v: var[v]["score_mean"]))
for v in VARIANTS[1:]:
    c = var[v]["cost_vs_model_free"]
    print(f"cost {v:13} {c:.2f}x model-free: {'within' if c <= PILOT_COST_TARGET else 'above'} "
          f"the pilot's {PILOT_COST_TARGET:g}x target (ours)")
env_models = {Path(r["config"]["config"]["env_model"]).stem for r in i2a["runs"].values()
              if r["config"]["config"]["agent"] != "model-free"}
print("environment models queried by the I2A runs:", sorted(env_models))

# %% [markdown]
# The table above puts our scores next to **the paper's** (read off its figure, at its far larger
# budget). The absolute levels cannot be compared. Of the shapes, as printed above:
#
# - Whether any I2A has both seeds above both model-free seeds, or above both seeds of the copy
#   model (the same architecture with an environment model that only returns its input), is printed
#   per variant. Compare the spread of each variant's two seeds (min, max) with the distance between
#   the variants' means: where the seeds of one variant are further apart than two variants' means,
#   two seeds cannot order them.
# - Whether the agent that learns to query is above every other agent, and which variant has the
#   highest mean, is printed too.
#
# On cost: the printed ratios say which I2As meet our target of at most 3x the model-free cost per
# step. The uniform and distilled I2As reuse in their A2C update the rollouts imagined while acting
# (the model is frozen and the rollout policy only changes at the update). The learned I2A imagines
# again in the update, since its gradients go through the rollouts, so it costs more. Claim 5 needs
# I2As with a stochastic environment model beside a deterministic one; the environment models the
# runs queried are printed above.
#
# ### Logged scores and the frozen final weights
#
# All the scores above are the training logs' "mean of the last 100 games". Those games were played
# by a policy that changed while it played: A2C updates it every 5 agent steps, well over a hundred times
# in a game of the lengths printed in {doc}`chapter 8 <08_i2a>`. The final weights of every run were also scored frozen, in two ways that share little code:
# `agent eval` plays one fresh game in each of 64 environments, sampling from the policy
# (`eval_return_mean`); and the A2C training loop itself, restarted from the final weights with
# learning rate 0 for 96,000 steps, gives the mean of its last 100 games (`frozen_loop_last100`).
# The cell below prints the three measures per run and per variant (from `summary.json`), their means
# over the 10 runs, and how well the two frozen measures agree.

# %%
KEYS = {"log": "online_last100_at_end", "eval": "eval_return_mean", "lr=0 loop": "frozen_loop_last100"}
runs10 = sorted(i2a["rows"], key=lambda r: (VARIANTS.index(r["variant"]), r["seed"]))
print(f"{'run':17}" + "".join(f"{k:>11}" for k in KEYS) + f"{'eval-log':>10}{'loop-log':>10}")
for r in runs10:
    print(f"{r['run']:17}" + "".join(f"{r[k]:11.0f}" for k in KEYS.values())
          + f"{r['eval_return_mean'] - r['online_last100_at_end']:+10.0f}"
          + f"{r['frozen_loop_last100'] - r['online_last100_at_end']:+10.0f}")
print("per variant, mean over its seeds:")
for v in VARIANTS:
    print(f"{v:17}" + "".join(f"{var[v][k]:11.0f}" for k in KEYS.values()))
col = {n: np.array([r[k] for r in runs10]) for n, k in KEYS.items()}
print(f"{'mean of all runs':17}" + "".join(f"{col[n].mean():11.0f}" for n in KEYS))
for n in ("eval", "lr=0 loop"):
    d = col[n] - col["log"]
    print(f"{n} vs log: {100 * (col[n].mean() / col['log'].mean() - 1):+.0f}% on average; single runs from "
          f"{d.min():+.0f} to {d.max():+.0f}; below the log in {int((d < 0).sum())} of {len(d)} runs")
print(f"correlation over the runs of the two frozen measures (eval vs lr=0 loop): "
      f"{np.corrcoef(col['eval'], col['lr=0 loop'])[0, 1]:.2f}")
print(f"games per run: eval {sorted({r['eval_episodes'] for r in runs10})}, lr=0 loop "
      f"{min(r['frozen_loop_episodes'] for r in runs10)} to {max(r['frozen_loop_episodes'] for r in runs10)}")

# %% [markdown]
# These runs make an explanation plausible for the puzzle of the previous, shorter study, where the
# exported model-free agent evaluated far below its logged score (`results/i2a/MsPacman-previous/`);
# they do not prove it. Two effects would explain it. One is the variation of an A2C policy from one
# snapshot to the next: the frozen final weights of a single run can score well above or well below
# its log (the per-run differences above go both ways). The other is systematic: the log scores a
# policy that learns while it plays, and on average it scores more than its final weights do frozen
# (the average differences are printed above). The evaluation code agrees with the training loop run
# at learning rate 0, a different code path over the same weights (the correlation above), which
# makes a fault in the evaluation unlikely. The lr=0 loop's figure is the less fair of the two: its
# 96,000 steps from a common start give each environment about two games, and the games that ended
# are the shorter ones ({doc}`chapter 8 <08_i2a>`).
#
# So read the logged agent scores of this book as a **mild upper bound** of what the final policy
# scores frozen. The cell below repeats the seed-range checks above with each measure in place of the
# log.

# %%
def seeds_of(v, key):
    return [r[key] for r in i2a["rows"] if r["variant"] == v]


def above_by(a, b, key):
    return min(seeds_of(a, key)) > max(seeds_of(b, key))


for n, k in KEYS.items():
    mf = [v for v in i2as if above_by(v, "model-free", k)]
    cp = [v for v in i2as if above_by(v, "copy-distill", k)]
    best = max(VARIANTS, key=lambda v: var[v][k])
    learned_top = all(above_by("i2a-learned", v, k) for v in VARIANTS if v != "i2a-learned")
    print(f"{n:9} I2As above model-free (both seeds): {mf or 'none'}; above the copy model: {cp or 'none'}; "
          f"i2a-learned above every other agent: {learned_top}; highest mean: {best}")
    print(f"{'':9} order of the means: {' > '.join(sorted(VARIANTS, key=lambda v: -var[v][k]))}")

# %% [markdown]
# Under the frozen measures no I2A has both seeds above both model-free seeds either, and neither
# does any I2A above the copy model: the one separation of the log, from the copy model's two
# nearly equal seeds, is gone. The distilled I2A has the highest mean under all three measures, and
# learning to query is never the best. The order of the other variants changes from one measure to
# the next, as it should when their differences are within the seed spread. The rule of
# `ssmlib.claims` uses the frozen `agent eval` games (`eval_return_mean`), bootstrapped over games
# and seeds.

# %% [markdown]
# ## The model-zoo campaign, lease by lease
#
# The zoo above trained each model for minutes. The campaign (`ssmlib.studies.zoo_campaign`) trains every model
# until it stops improving, over as many GPU leases as that takes: 3 seeds of each SSM, AR and RAR
# once, and jumpy sSSMs, on data where half the episodes come from our model-free agent. Its stop rule
# was written into `results/model_zoo/MsPacman/campaign/config.json` before the first run, and made
# stricter twice on the record (below, "How much one point can be trusted" and "How many samples an
# open-loop number needs"). Each lease appends a point to every run it trained: the test excess over
# the exact floor on the campaign's fixed test windows, open loop (imagined from 3 context frames) and
# joint (teacher-forced for AR and RAR, the posterior's bound for the sampling models, the open-loop
# number itself for dSSM-DET), each with its 95% episode-bootstrap interval. The table and the two
# panels below are read from the runs' lineages; runs that have not started are listed as such.

# %%
from IPython.display import Markdown, display

from ssmlib.studies import zoo_campaign as campaign

campaign_rows = campaign.table("MsPacman")
display(Markdown(campaign.table_markdown(campaign_rows)))
started = [r for r in campaign_rows if r["leases"]]
print(f"{len(started)} of {len(campaign_rows)} runs started; "
      f"{sum(r['gpu_minutes'] for r in campaign_rows):.1f} GPU minutes of training so far")
if started:
    fig, (ax_open, ax_joint) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    campaign.plot_curves(ax_open, "MsPacman", colour=colour)
    campaign.plot_curves(ax_joint, "MsPacman", colour=colour, y="excess_joint")
    ax_open.set_title("open loop (sampling models: 4 prior samples)")
    ax_joint.set_title("joint (teacher-forced or posterior bound)")
    for ax in (ax_open, ax_joint):
        ax.set_yscale("log")  # both span an order of magnitude
    plt.show()

# %% [markdown]
# Read the figure as a race that is still on: a model's curve is only comparable with another's at
# the same environment steps, and a run's last point is not its final word until its stop rule
# holds (the last column of the table). The two panels disagree for the models that sample their
# futures: their joint excess falls lease after lease while their open-loop number, scored with 4
# prior samples, flattens; the section on the number of samples below shows how much of that is the
# estimator's, and why the stop rule now reads both panels. Claims 2 and 3 will be decided on the campaign's runs once
# they have finished; until then the verdicts in this chapter read the short zoo above.
#
# ### How much one point can be trusted
#
# Each interval above is an episode bootstrap: it says how much the number would move on other test
# episodes, for these exact weights. It says nothing about the weights themselves. One lease was run
# twice from the same committed state, with the same data and the same seed, so the batches were
# identical; up to the 2,523 steps they share, the two differ only through the GPU's non-deterministic
# kernels (the branch then ran 63 steps more). The branch that was not continued is kept under
# `campaign/branches/`, and the table puts it beside the kept lease:

# %%
pairs = campaign.branch_pairs("MsPacman")
display(Markdown(campaign.branch_markdown(pairs)))
for p in pairs:
    lo, hi = (p["excess_ci"][1] or [None, None])
    if lo is not None:
        print(f"{p['run']}: the two continuations differ by {p['excess'][0] - p['excess'][1]:+.1f} nats/frame open loop; "
              f"the kept point's own 95% interval is {hi - lo:.1f} wide")

# %% [markdown]
# The teacher-forced excess of the two AR continuations is close, but their open-loop excess is not:
# small differences in what the model predicts compound when it is fed its own frames. The two sSSM-s0
# points are not a pair (the branch trained longer, and its teacher-forced excess is the lower one), yet
# its open-loop excess is the higher. This is why the
# stop rule was made stricter on the record (`design_changes` in the campaign's config): its
# improvement test must now hold at two curve points in a row, so no single point can end a run (a
# second amendment, for the models that sample their futures, follows in the sample-count section). It
# is also why the claims compare models across seeds, not one run's last point against another's.
#
# The campaign can also test that decision against what happened next. Below, every run's curve is
# replayed under the rule as first written (one point suffices); for each run it would have ended, the
# point where it would have stopped, beside where the run stands now (`zoo_campaign.stop_rule_replay`):

# %%
replay = campaign.stop_rule_replay("MsPacman", confirmations=1)
for r in replay:
    (f0, f1), (e0, e1) = r["frames"], r["excess"]
    print(f"{r['run']:>12}: the first rule would have ended it at point {r['stopped_at']} of {r['points']} "
          f"({f0 / 1e6:.2f}M frames, excess {e0:.1f}); now {f1 / 1e6:.2f}M frames, excess {e1:.1f} "
          f"({(e0 - e1) / e0:+.1%}), {'finished' if r['finished_now'] else 'open'} under the amended rule")
improved = [r for r in replay if (r["excess"][0] - r["excess"][1]) / r["excess"][0] >= 0.03]
print(f"{len(improved)} of {len(replay)} runs the first rule would have ended improved by 3% or more afterwards")

# %% [markdown]
# ### How many samples an open-loop number needs
#
# dSSM-DET, AR and RAR imagine one future, so their open-loop log-likelihood is exact. The sSSM and the
# dSSM-VAE imagine by sampling, and the evaluator scores the real frame under the mixture of $K$ sampled
# futures:
#
# $$\hat L_K(h) = \log \frac{1}{K} \sum_{k=1}^{K} \mathrm{Ber}\big(o_h \mid \ell^{(k)}_h\big), \qquad
#   \mathbb{E}\,\hat L_K \le \mathbb{E}\,\hat L_{2K} \le \log p(o_h \mid o_{\le 0}, a_{0:h-1}).$$
#
# The campaign scores with $K$ = 4 (`eval_samples` in its config). A frame has 96,000 Bernoulli pixels, so
# two sampled futures differ by hundreds of nats and the mean of $K$ likelihoods is close to the best of
# them: a small $K$ overstates the excess, by an amount that depends on how widely the model's samples
# spread, which can change as it trains. `ssmlib.studies.open_loop_samples` measures it: 64 prior samples
# per test window, and for each $K$ the mean of $\hat L_K$ over the $64/K$ disjoint groups of $K$
# (`estimates_by_k`: chapter 5 groups its posterior samples the same way for the importance-weighted
# bound). It ran on a CPU
# (`scripts/open_loop_samples.py`; the file's provenance), on 48 evenly spaced test windows of a dataset
# collected with the campaign's mix of agent and random play but another seed, so its numbers sit beside
# the campaign's table, not in it. A dSSM-DET on the same windows is the reference that needs no $K$.

# %%
from ssmlib.config import SAMPLING_MODELS
from ssmlib.studies import open_loop_samples as ols

ol_doc = read_json(ols.results_file("MsPacman"))
ol = ols.summarise(ol_doc, n_boot=1000)
k_camp, k_max = campaign.load_config("MsPacman").eval_samples, ol["ks"][-1]
flips = ols.ordering_flips(ol, k_camp)
display(Markdown(ols.markdown(ol, ol_doc, pairs=flips)))  # the differences: only the pairs K = 4 misreads
fig, ax = plt.subplots(figsize=(7, 3.5))
ols.plot(ax, ol, ol_doc, colour=colour)
ax.set_title(f"{ol_doc['config']['windows']} test windows, {ol_doc['config']['k_max']} prior samples each")
plt.show()
for name, drops in ol["drop"].items():
    if ol_doc["checkpoints"][name]["model"] in SAMPLING_MODELS:
        print(f"{name:>20}: K = {k_camp} overstates the excess of K = {k_max} by {drops[k_camp]:.1f} nats/frame")
print(f"orders decided at K = {k_camp} that K = {k_max} overturns or leaves undecided (the second table):",
      "; ".join(" vs ".join(p) for p in flips) or "none")
seed_runs = {r["name"] for r in campaign.load_config("MsPacman").runs if r["model"] == "sSSM" and r["jump"] == 1
             and r.get("reward_state", "posterior") == "posterior"}  # the design's sSSM seeds, not a variant
one_step = {n: c for n, c in ol_doc["checkpoints"].items() if n.split("@")[0] in seed_runs}
k1_ref = max(one_step, key=lambda n: one_step[n]["frames"])  # the latest one-step sSSM point scored
for name, c in ol_doc["checkpoints"].items():
    if c["jump"] > 1:
        r = ols.jumpy_ratio(ol_doc, name, k1_ref, c["jump"], n_boot=1000)
        print(f"claim 3's ratio against one seed's point, {name} over {k1_ref} at matched env steps: "
              f"K = {k_camp} {r[k_camp]:.2f}, K = {k_max} {r[k_max]:.2f}")
for name, c in ol_doc["checkpoints"].items():
    prov_row(f"open_loop_samples/{name}", c["provenance"])

# %% [markdown]
# Where do the curves end? A second run took 256 samples on 16 of the windows, for two checkpoints:

# %%
deep_doc = read_json(ols.results_file("MsPacman", "K256"))
deep = ols.summarise(deep_doc, n_boot=1000)
for name, by_k in deep["excess"].items():
    steps = [by_k[k].point - by_k[2 * k].point for k in deep["ks"][-3:-1]]
    print(f"{name:>20}: " + ", ".join(f"K = {k} {by_k[k].point:.1f}" for k in (4, 64, 256))
          + f"; the last two doublings of K still lower it by {steps[0]:.1f} and {steps[1]:.1f} nats/frame")

# %% [markdown]
# How to read it. The flat lines are the dSSM-DETs, exact at every $K$. The jumpy rows (sSSM-k2, -k4) average
# over their own 10 predicted frames, up to 20 and 40 environment steps ahead, so only their drop with $K$
# compares with the one-step rows; the last lines print claim 3's statistic (`claims.RULES['3.accuracy']`:
# the jumpy excess over the one-step excess at the same environment steps) at both ends of the $K$ axis. Each sampling model's curve still
# falls at $K$ = 64 (and, on the 16 windows of the second run, at 256), so even the right-hand end is an
# upper bound on the
# excess of a sampling model, and the true open-loop excess lies lower by an amount this study cannot
# give. Three things follow for the campaign. First, a sampling model's open-loop excess in the table
# above is mostly a property of the estimator, and comparing it with a dSSM-DET's exact number favours
# the dSSM-DET by the whole gap. Second, the stop rule compares a run's $K$ = 4 numbers across its own
# points; when the gap grows as the model trains, a $K$ = 4 curve can stall or rise while the model
# improves. The two points of sSSM-s0 above test that for one run: if the pair is in the second table, the
# rise between its points that $K$ = 4 reports is not one that 64 samples confirm. Claim 2 is not read
# from these numbers: it compares the joint excess, an importance-weighted bound with the *posterior*,
# whose gap chapter 5 measures in nats, not hundreds of nats.
# Third, claim 3 compares jumpy runs with $K$ = 4 too, and a jump-$k$ model samples $k$ times fewer
# latents per environment step, so its gap need not be the one-step model's. Its statistic is a ratio of
# two such estimates; the printed lines give it at $K$ = 4 and at $K$ = 64, against one sSSM seed's
# latest point here (the claim pools every seed, on the campaign's windows): where the two agree
# within their intervals, the jumpy reading does not hinge on the number of samples. These windows are
# not the campaign's, and 48 windows leave wide intervals; the next cells measure the same on the
# campaign's own test windows.

# %% [markdown]
# #### On the campaign's own windows
#
# The same study ran on the H200 beside a lease (`scripts/gpu_campaign.sh` runs it beside every lease, a few seconds
# per checkpoint there against minutes here): every sampling run's committed weights, jumpy ones included,
# and sSSM-s0's earlier point at 10.29M frames carried from git, on 64 of the campaign's own test windows
# with 256 prior samples each (`results/open_loop_samples/MsPacman-campaign.json.gz`); each lease adds the
# runs' new weights. The table gives the excess at every $K$ of each run's latest scored weights and of
# sSSM-s0's two points (the last column: $K$ = 1 minus $K$ = 256); the lines under the figure,
# how much the campaign's $K$ overstates the largest, sSSM-s0's change between its two points at both
# ends, and claim 3's ratio at both ends.

# %%
camp_doc = read_json(ols.results_file("MsPacman", "campaign"))
s0_pair = ("sSSM-s0@10.29M", "sSSM-s0@16.93M")  # the two points whose rise the campaign's K = 4 reported
# each run's latest scored weights (the study grows lease by lease), and the pair above
shown = sorted({names[-1] for names in ols.runs_of(camp_doc).values()} | set(s0_pair) & set(camp_doc["checkpoints"]))
camp = ols.summarise(camp_doc, n_boot=1000, names=shown, pairs=[s0_pair] if set(s0_pair) <= set(shown) else [])
display(Markdown(ols.markdown(camp, camp_doc, pairs=[])))
fig, ax = plt.subplots(figsize=(7, 4.5))
ols.plot(ax, camp, camp_doc, colour=colour)
ax.set_title(f"the campaign's windows: {camp_doc['config']['windows']} windows, "
             f"{camp_doc['config']['k_max']} prior samples each")
plt.show()
k_top = camp["ks"][-1]
gaps = {n: d[k_camp].point for n, d in camp["drop"].items()}
print(f"K = {k_camp} overstates K = {k_top} by {min(gaps.values()):.1f} to {max(gaps.values()):.1f} nats/frame")
if s0_pair in camp["difference"]:
    early, late = s0_pair
    change = camp["difference"][s0_pair]  # earlier minus later: below 0 means the later point is worse
    tail = {n: camp["excess"][n][k_top // 2].point - camp["excess"][n][k_top].point for n in s0_pair}
    print(f"sSSM-s0: K = {k_camp} overstates K = {k_top} by {gaps[early]:.1f} at {early} and {gaps[late]:.1f} at "
          f"{late}; the last doubling of K still lowers them by {tail[early]:.1f} and {tail[late]:.1f}")
    print(f"sSSM-s0, {early} minus {late}: K = {k_camp} {change[k_camp]:.1f}, K = {k_top} {change[k_top]:.1f} "
          f"({'decided' if ols.sign(change[k_camp]) != '?' else 'undecided'} at K = {k_camp}, "
          f"{'decided' if ols.sign(change[k_top]) != '?' else 'undecided'} at K = {k_top})")
    for name in shown:
        if camp_doc["checkpoints"][name]["jump"] > 1:
            r = ols.jumpy_ratio(camp_doc, name, late, camp_doc["checkpoints"][name]["jump"], n_boot=1000)
            print(f"claim 3's ratio, {name} over {late} at matched env steps: "
                  f"K = {k_camp} {r[k_camp]:.2f}, K = {k_top} {r[k_top]:.2f}")
for name in shown:
    prov_row(f"open_loop_samples/campaign/{name}", camp_doc["checkpoints"][name]["provenance"])

# %% [markdown]
# Each lease adds the runs' new weights to this study, so each run gains a curve over training at both
# ends of the $K$ axis: dotted the campaign's $K$, solid the largest. Where the dotted line rises and the
# solid one does not, the rise is the estimator's, not the model's (`open_loop_samples.plot_training`;
# only runs scored at two or more points are drawn).

# %%
fig, ax = plt.subplots(figsize=(7, 4))
drawn = ols.plot_training(ax, camp_doc, (k_camp, k_top), colour=colour)
ax.set_title(f"the campaign's windows: open-loop excess at K = {k_camp} and K = {k_top} along training")
plt.show()
print(f"runs scored at two or more points: {', '.join(drawn) or 'none yet'}")

# %% [markdown]
# What it changed. The gap between the campaign's $K$ and 256 samples grows as a model trains (sSSM-s0's
# two points above), so a sampling run's curve of $K$ = 4 numbers can flatten or rise by the estimator
# alone, and the stop rule, which compares a run's own points, would end the run there. It had ended one:
# dSSM-VAE-s0, on a rise of its $K$ = 4 number while its joint excess, the quantity claim 2 reads, still
# fell by three quarters over the same doubling. The rule was amended on the record (the config's
# `design_changes`; `python -m ssmlib campaign amend-stop --joint`): its improvement test must now hold on
# the joint excess as well as on the open-loop one (for dSSM-DET the two are one number; for AR and RAR
# the joint excess is the teacher-forced one). Raising $K$ instead would not have cured it: the curves
# still fall at 256, by more for the later point. The replay asks which runs the rule without this
# amendment (its points in a row, the open loop alone) would have ended by now, and where each stands:

# %%
cfg_now = campaign.load_config("MsPacman")
print(f"the rule as it stands: {cfg_now.stop_rule}")
for r in campaign.stop_rule_replay("MsPacman", confirmations=cfg_now.stop_confirmations, joint=False):
    print(f"{r['run']}: the open loop alone would have ended it at point {r['stopped_at']} of {r['points']} "
          f"({r['frames'][0] / 1e6:.2f}M frames); {'finished' if r['finished_now'] else 'open'} as amended")

# %% [markdown]
# ### The reward head along the way
#
# An agent that plans with a model needs its predicted rewards, and the stop rule above looks only at
# frames. So each lease also scores the reward head: the AUC of the open-loop $P(r_h \neq 0)$ over
# $h = 1..10$ (0.5 is chance), and the target of the "reward head that learns" issue, written down before
# these numbers (`RULES['reward.target']`, applied by `evaluate.reward_target` with episode-bootstrap
# intervals). Evaluations from before the class weights were divided out of the readings are marked
# "raw": their return errors measure the miscalibration of chapter 2, not the head.

# %%
reward_rows = campaign.reward_rows("MsPacman", n_boot=500)
display(Markdown(campaign.reward_markdown(reward_rows)))
if started:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    campaign.plot_curves(ax, "MsPacman", colour=colour, y="reward_auc")
    plt.show()
frames_of = {r["run"]: r["frames"] for r in campaign_rows}
met = [r["run"] for r in reward_rows if r["verdict"] == "reproduced"]
print("target met by:", ", ".join(f"{m} (at {frames_of[m] / 1e6:.1f}M frames)" for m in met) or "no run yet")
named = [r for r in reward_rows if r["model"] in ("dSSM-DET", "sSSM") and r["jump"] == 1
         and r["reward_state"] == "posterior"]  # the design's seeds, not the jumpy runs or an added variant
print(f"the models the target names (dSSM-DET, sSSM; one frame per step): {sum(r['verdict'] == 'reproduced' for r in named)} "
      f"of {len(named)} seeds meet it")

# %% [markdown]
# How to read the reward figure: the AUC is the head's ranking of rewarded against unrewarded steps,
# so it does not depend on the calibration, and it rises with training much as the frame excess
# falls. A seed that meets the target early is not a verdict on its model: the rule judges each
# run's latest evaluation, and the runs stand at different frames. The return error, by contrast,
# does depend on the calibration: a head that ranks well but over-predicts rewards sums them into a
# return error worse than predicting no reward at all.
#
# ## The I2A campaign, lease by lease
#
# The pilot agents above had 2 seeds per variant, too few to separate anything. The I2A campaign
# (`ssmlib.studies.i2a_campaign`) runs 6 seeds per arm at a fixed budget of agent steps, with the
# arms, the hyper-parameters, the measures, the rules of claims 4 and 5 and a power statement written
# into `results/i2a/MsPacman/campaign/config.json` before the runs they judge. The arms that query an
# environment model wait until every seed of that model in the zoo campaign has met its stop rule;
# the model-free arm does not wait. Its training curve is also our sanity check: published model-free
# agents reach the scores marked below at the frames marked, and ours must not sit above a reference
# that was reached with more frames (a still-rising curve may sit anywhere below it). That check alone
# would pass an agent that learned nothing, so it has a floor as well. The random player
# (`agents.evaluation.UniformPolicy`) plays the same 64 starts as a finished run's frozen weights
# (`python -m ssmlib i2a-campaign random-floor`, `results/i2a/MsPacman/campaign/random-eval.json`). Game
# $i$ of a run is paired with game $i$ of the random player, and a run is above the floor when the
# episode-bootstrap 95% interval of the difference of their means lies above 0.

# %%
from ssmlib.checkpoint import read_meta
from ssmlib.studies import i2a_campaign

i2a_rows = i2a_campaign.table("MsPacman")
display(Markdown(i2a_campaign.table_markdown([r for r in i2a_rows if r["status"] != "waiting"])))
waiting = sorted({r["arm"] for r in i2a_rows if r["status"] == "waiting"})
print(f"{sum(r['status'] == 'waiting' for r in i2a_rows)} runs of {', '.join(waiting)} wait for their environment model")
i2a_design = i2a_campaign.load_config("MsPacman")
print("power, as designed (from the pilot):", i2a_campaign.format_power(i2a_design.power_statement))
measured = i2a_campaign.measured_power("MsPacman")
print("power, from the campaign's own finished seeds:",
      i2a_campaign.format_power(measured) if measured else "no arm has two finished seeds yet")
sanity = i2a_campaign.model_free_sanity("MsPacman")
for c in sanity["checks"]:
    run = next(x for x in sanity["runs"] if x["run"] == c["run"])
    print(f"  {c['run']}: {run['last100']:.0f} at {run['frames'] / 1e6:.1f}M frames against {c['reference']} "
          f"{c['score']:.0f} at {c['frames'] / 1e6:.0f}M: {'consistent' if c['consistent'] else 'ABOVE the reference'}")
floor = sanity["floor"]
if floor is None:
    print("floor: the random player's games are not stored (python -m ssmlib i2a-campaign random-floor)")
else:
    print(f"floor: the random player scores {floor['random_mean']:.0f} on average over {floor['random_games']} games")
    for f in floor["runs"]:
        print(f"  {f['run']}: frozen {f['frozen_mean']:.0f}, minus random {f['difference']:.0f} "
              f"[{f['ci'][0]:.0f}, {f['ci'][1]:.0f}]: {'above' if f['above'] else 'NOT above'} the floor")
if sanity["runs"]:
    fig, ax = plt.subplots(figsize=(7, 4))
    i2a_campaign.plot_training_curves(ax, "MsPacman", colour=colour)
    plt.show()

# %% [markdown]
# Two readings of the power statement. The design's was written before any campaign run, from the pilot's
# between-seed spread; it stays as written. The second pools the campaign's own finished seeds (each
# seed's mean over its 64 frozen games) the same way. The pilot had two seeds per variant, so its spread
# rested on few degrees of freedom. The second reading so far holds the model-free arm only: whether the
# I2A arms' seeds spread alike is not known until they have run.
#
# **Extra seeds and kept weights (a design change on the record).** The restart rule deletes a finished
# run's state, weights included. So when the six model-free seeds finished, nothing was left to commit as
# the book's model-free agent. Until the zoo's gate runs meet their stop rule, the I2A lane beside the
# zoo also has no design run to train. The design now adds six extra model-free seeds, trained only
# while no design run can train. They are marked "(extra seed)" in the table and never read by a verdict.
# No new extra seed starts while a design run waits for state budget. The best finished run of
# model-free and of I2A-distill (dSSM-DET) now keeps its final weights, stored in bfloat16 with the run and
# its frozen score in the metadata. The best is chosen by the float32 weights' score, which every design
# seed has. The finishing lease also plays the bfloat16 copy from the same starts, so the copy the book
# will commit is scored as stored. The dated line:

# %%
print(textwrap.fill(next(c for c in i2a_design.design_changes if "extra seeds" in c), 100))
for arm in i2a_design.keep_weights:
    best = i2a_campaign.best_weights_path("MsPacman", arm)
    if best.exists():
        b = read_meta(best, kind="ssmlib-agent")["campaign_best"]
        as_stored = "not scored" if b["stored_frozen_mean"] is None else f"{b['stored_frozen_mean']:.0f}"
        print(f"  best {arm}: {b['run']}, frozen mean {b['frozen_mean']:.0f} over {b['frozen_games']} games, "
              f"as stored (bfloat16) {as_stored} ({best})")
    else:
        print(f"  best {arm}: no finished run has kept its weights yet")

# %% [markdown]
# **Open runs travel compressed (a design change on the record).** An open run's state (its weights and
# its optimiser's running averages, stored as described in "How a run continues across leases" below) is
# committed so that the next lease, on a bare machine, can continue it, and the whole repository travels
# with every GPU call. Since 2026-12-04 that state is
# stored compressed with xz: the same bytes inside, so no restart changes. A lease counts a run that has
# no state yet at its raw size times the largest stored/raw ratio measured so far, which lets two I2A
# runs be open at once where one could before. The dated line, and the open runs' state as it is now:

# %%
print(textwrap.fill(next(c for c in i2a_design.design_changes if "compressed with xz" in c), 100))
for run in i2a_campaign.campaign_runs(i2a_design, extra=True):
    state = i2a_campaign.state_path("MsPacman", run.name)
    if state.exists():
        raw = read_json(i2a_campaign.state_sidecar(state))["raw_bytes"]
        print(f"  {run.name}: {state.stat().st_size:,} bytes stored of {raw:,} ({state.stat().st_size / raw:.3f})")
print(f"a run without state counts at {i2a_campaign.stored_ratio('MsPacman'):.3f} of its raw size; "
      f"state budget {i2a_campaign.STATE_BUDGET_MIB:g} MiB")

# %% [markdown]
# Our model-free curve sits between the two bounds: well above the random player, and below both
# published references. Being "consistent" with the references only means it is not above them. It
# does not mean it is as good as they are at the same frames. Two differences in the setup point the
# same way.
#
# - DQN learns from a replay memory, so it uses each frame many times. Ours is an on-policy
#   actor-critic (A2C), which uses each frame for one update, and it reached 8M frames.
# - Our game repeats the previous action with probability 0.25 (the design's `sticky_actions`), so play
#   is less precise. Sticky actions became the recommended protocol only in 2018, and the settings
#   behind the two references are not recorded here: they may have been reached without them.
#
# How much each of these costs was not measured here, so the book claims no more than the two bounds.

# %% [markdown]
# Claims 4 and 5 stay with the pilot until the campaign's arms have finished: the claims section
# below lists the campaign beside each of them, as "not run" while no seed of an arm is finished and as
# a provisional interval after that.
#
# One caution for claim 5 before its arm runs: an agent reads the rewards its model imagines, and the
# campaign's posterior sSSM heads learn their rewards through the posterior, from the real frame
# ({doc}`chapter 5 <05_sssm>`, "a leak"). Below, for each run of the two models the design queries, its
# reward NLL in imagination against predicting the reward frequencies (below 1: better than knowing
# nothing), the open-loop AUC, and the leak's two readings (chapter 5: `RULES['reward.leak']` of
# 2026-12-03, which a head that cannot leak also met once its 10-step rollout drifted, and
# `RULES['reward.leak.h1']` of 2026-12-05, written after the numbers it reads, one imagined step ahead,
# where such a head cannot be flagged), from each run's latest evaluation. More training can teach a dSSM-DET head, which cannot leak; it cannot be relied on to fix
# a head that learned from the wrong path. The zoo campaign's `sSSM-rp-s0` trains the head on the
# prior's state instead.

# %%
one_step = {x["run"] for x in campaign_rows if x["jump"] == 1}
for r in campaign.reward_paths("MsPacman"):
    if r["model"] in ("dSSM-DET", "sSSM") and r["run"] in one_step:
        print(f"{r['run']:>12} ({r['reward_state']:>9}): open-loop reward NLL / base rate's "
              f"{r['open_loop'] / r['base_rate']:.2f}, AUC {r['auc_open_loop']:.3f}, leak: "
              f"{ {True: 'yes', False: 'no', None: '-'}[r['leak']] }, at h=1: "
              f"{ {True: 'yes', False: 'no', None: '-'}[r['leak_h1']] }")

# %% [markdown]
# The I2A design was changed on the record, before any I2A arm ran and before `sSSM-rp-s0` had
# trained: the sSSM arm will query the best finished run trained with the reward from the prior. The
# design's `env_model_reward_states` field holds this, and its dated `design_changes` line gives the
# reason:

# %%
print("reward state of each queried model's zoo runs:", i2a_design.env_model_reward_states or "posterior (all)")
print(textwrap.fill(next(c for c in i2a_design.design_changes if "env_model_reward_states" in c), 100))

# %% [markdown]
# ### How a run continues across leases, and what it may cost
#
# An I2A run of 2M agent steps does not fit one GPU call, so every open run commits its state to the
# repository and the next lease continues from it (the design's `restart_rule`). RMSprop divides each
# gradient by $\sqrt{v} + \epsilon$, where $v$ is a running average of the squared gradient; the weights
# are stored in bfloat16, and since a design change of 2026-12-03 (the I2A agents' state did not fit
# the repository otherwise) $v$ is stored as $b$-bit codes of $\log_2 v$ on each tensor's range
# $[\ell, h]$, with a floor $v_{\min} = (\epsilon / 100)^2$ (`ssmlib.agents.log_codes`):
#
# $$c = \mathrm{round}\Big(\frac{\log_2 \max(v, v_{\min}) - \ell}{h - \ell}\,(2^b - 1)\Big), \qquad
# \hat v = 2^{\,\ell + c\,(h - \ell)/(2^b - 1)}.$$
#
# What a restart changes is each parameter's step size, by the factor
# $(\sqrt{v} + \epsilon)/(\sqrt{\hat v} + \epsilon)$. Below, the measurement that chose $b = 8$
# (`scripts/state_quantization.py`, on the two model-free runs' committed state while their averages
# were still stored in bfloat16): that factor over every parameter, for 4, 6 and 8 bits.

# %%
quantization_file = RESULTS_DIR / "i2a/MsPacman/campaign/state-quantization.json"
quantization = json.loads(quantization_file.read_text()) if quantization_file.exists() else {"rows": []}
print("states measured:", quantization.get("states", f"none ({quantization_file} is missing)"))
for row in quantization["rows"]:
    q = row["step_factor_quantiles"]
    print(f"{row['state']:>26}, {row['bits']} bits: {row['state_mib_bf16_weights']:.2f} MiB, step factor "
          f"[{q['0.0']:.3f}, {q['1.0']:.3f}] (1%-99%: {q['0.01']:.3f}-{q['0.99']:.3f})")
print(f"the design: averages in {i2a_design.state_average_bits} bits, weights in {i2a_design.state_dtype}")
for arm, a in quantization.get("arms", {}).items():
    print(f"  {arm:>21}: {a['parameters']:,} parameters, state {a['mib_coded']:.2f} MiB before compression "
          f"({a['mib_bf16']:.2f} MiB with bfloat16 averages)")
fig, ax = plt.subplots(figsize=(7, 3)) if quantization["rows"] else (None, None)
for k, state in enumerate(sorted({row["state"] for row in quantization["rows"]})):
    rows = sorted((r for r in quantization["rows"] if r["state"] == state), key=lambda r: r["bits"])
    x = np.array([r["bits"] for r in rows]) + 0.15 * k
    q = [r["step_factor_quantiles"] for r in rows]
    ax.vlines(x, [v["0.0"] for v in q], [v["1.0"] for v in q], colors=f"C{k}", lw=1)  # every parameter
    ax.vlines(x, [v["0.01"] for v in q], [v["0.99"] for v in q], colors=f"C{k}", lw=5, label=state.split(".")[0])
if ax is not None:
    ax.axhline(1, color="grey", lw=0.5)
    ax.set(xlabel="bits per coded average", ylabel="restarted / uncoded step size", xticks=[4, 6, 8],
           title="Step sizes after a restart from coded averages (thick: 1%-99%, thin: all)")
    ax.legend()
    plt.show()

# %% [markdown]
# The other number the design fixes in advance is the **cost target**: every I2A arm may cost at most
# `cost_target` times the model-free agent's wall time per agent step, measured alone, all arms in one
# `agent bench` run on the campaign's GPU. `i2a_campaign.imagination_cost` judges it: the ratio of the
# median steps/s, with a bootstrap interval over the bench's logged intervals, "met" when the whole
# interval is under the target.

# %%
cost_files = sorted(i2a_campaign.campaign_dir("MsPacman").glob(i2a_campaign.COST_BENCH_FILE.format(device="*")))
for path in cost_files:
    bench_doc = json.loads(path.read_text())
    print(f"{path.name} ({bench_doc['provenance']['device']}, git {bench_doc['provenance']['git_sha'][:7]}, "
          f"environment model {bench_doc.get('env_model', '?')}):")
    try:
        cost_rows = i2a_campaign.imagination_cost(bench_doc, i2a_design.cost_target)
    except SsmlibError as e:  # e.g. a bench file without model-free or without its intervals
        print(f"  cannot be judged: {e}")
        cost_rows = []
    for r in cost_rows:
        print(f"  {r['variant']:>13}: {r['steps_per_s']:,.0f} agent steps/s, {r['cost']:.2f}x model-free "
              f"[{r['lo']:.2f}, {r['hi']:.2f}] over {r['intervals']} intervals -> "
              f"{r['verdict'] or 'no target (not an I2A)'}"
              + (" (its loop was stopped before its time limit)" if r["stopped_early"] else ""))
if not cost_files:
    print("the cost target has not been measured on the campaign's GPU yet")

# %% [markdown]
# ### How long both campaigns still take
#
# No zoo run has met its stop rule yet, and the I2A arms that query a model wait for four of them
# (every dSSM-DET seed and `sSSM-rp-s0`). `ssmlib.studies.campaign_outlook` replays the calls still to
# come from `results/`: each open zoo run gains per call its variant's median frames per compiled lease
# so far and goes on to the frame cap (an upper bound: the rule reads the joint excess too, and no run's
# has flattened yet); each gated I2A run trains per call
# $\text{model-free's steps per lease} / \text{arm's cost}$ agent steps (model-free's pace beside the
# zoo's runs while they train, alone after) until its budget is reached, at most as many open at once
# as the state budget holds. The order the zoo trains its runs in decides when the
# I2A lane beside it has work; since 2026-12-04 the four runs it waits for go first (`first_runs`, on the
# record). `unpack` rewrites the file after every lease.

# %%
from ssmlib.studies import campaign_outlook

plan = read_json(campaign.campaign_dir("MsPacman") / "outlook.json")
display(Markdown(campaign_outlook.markdown(plan)))
print("the campaign trains first:", ", ".join(plan["current_first_runs"]) or "none (fewest frames first)")
fig, ax = plt.subplots(figsize=(7, 3.5))
for (name, order), style in zip(plan["orders"].items(), ("--", "-")):
    ends = [0, *sorted(order["run_at_cap_call"].values())]
    ax.step(ends, range(len(ends)), style, where="post", color="0.2", label=f"zoo runs at the cap ({name})")
    opens = max(order["gates_open_call"].values())
    ax.axvspan(opens, order["i2a_gated_done_call"], alpha=0.15, color="C0" if name == "gates-first" else "C3",
               label=f"gated I2A runs training ({name})")
ax.set_xlabel("GPU calls from now (3 a session)")
ax.set_ylabel("zoo runs at the frame cap")
ax.set_xlim(0, None)
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# ## The supporting studies
#
# Three studies are not claims of the paper but make the others possible: how well training scales
# over GPUs (targets ours, `scaling.TARGET_SPEEDUP`), how fast data is collected, and a dSSM-DET fine-tuned with a
# heavier reward term for the agents.

# %%
print("data-parallel training of the sSSM (per-GPU batch fixed):")
for r in scaling["rows"]:
    tgt = TARGET_SPEEDUP.get(r["gpus"])
    print(f"  {r['gpus']} GPU(s): {r['frames_per_s']:8.0f} frames/s, {r['speedup']:.2f}x, efficiency "
          f"{r['efficiency']:.2f}" + (f" | target {tgt}x: {'met' if r['speedup'] >= tgt else 'missed'}" if tgt else ""))
print("collection (MsPacman, random actions), env steps/s:")
for k, s in collect.items():
    for r in s["rows"]:
        print(f"  {k:18} {r['envs']:3} envs: native {r['native_steps_per_s']:8.0f} | full pipeline at 200x160 "
              f"{r['pipeline_200x160_steps_per_s']:8.0f}")
zev, rev = zoo["MsPacman"]["evals"]["dSSM-DET"], reward["results"]
same = zev["windows"] == rev["windows"] and zev.get("windows_sha") is not None \
    and zev.get("windows_sha") == rev.get("windows_sha")
print(f"reward fine-tune of dSSM-DET (reward weight {reward_cfg['train_cfg']['reward_weight']:g}, "
      f"{reward['checkpoint']['step']} steps from the zoo's step {reward_cfg['init_from']['step']}):")
print(f"  the same test windows in both evaluations: {same} ({zev['windows']} windows for the zoo's, "
      f"{rev['windows']} for the fine-tune's)")
for label, ev in (("zoo", zev), ("fine-tuned", rev)):
    t = ev["total"]
    if "reward_nll_open_loop" in t:
        auc = t.get("reward_auc_open_loop")
        print(f"  {label:10} reward NLL open loop {t['reward_nll_open_loop']:.3f} nats (base rate "
              f"{t['reward_nll_base_rate']:.3f}), AUC of P(r != 0) {'-' if auc is None else f'{auc:.3f}'}; "
              f"LL {t['ll_nats_per_frame']:.1f} nats/frame")
    else:
        print(f"  {label:10} open-loop reward accuracy {t['reward_acc_open_loop']:.3f} (no reward NLL or AUC in this "
              f"evaluation); LL {t['ll_nats_per_frame']:.1f} nats/frame")

# %% [markdown]
# As printed above: the data-parallel speed-up meets our issue's target at 4 GPUs and falls just
# short of it at 2; the collection pipeline is well below the raw emulator speed. The reward
# fine-tune's two evaluations ran on **different window sets** (printed), so the comparison of the
# fine-tune with the zoo's model is not like-for-like. Nor is the reward accuracy evidence: it
# counts a step as right when every reward bit is, and on MsPacman most steps have no reward, so a
# head that always predicts zero scores the share of reward-free steps, the base rate. The reward
# NLL against the base rate and the AUC of `ssmlib.evaluate` can say more: the re-scored zoo
# evaluation holds them, the fine-tune's older one does not, and its weights are not committed, so
# it needs to be trained again to get them (the cell prints them when an evaluation holds them).
#
# ## Two plots
#
# Left: imagined env steps per second against batch size for every model (headline variant,
# latent-only, solid; decoded, dashed), from the speed file. Right: each agent's two seeds against
# its cost per step relative to the model-free agent.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
for m in models:
    for dec, ls in ((False, "-"), (True, "--")):
        ys = [sp(m, 1, b, dec, key="env_steps_per_s") for b in batches]
        ax1.plot(batches, ys, ls, marker="o", ms=3, color=colour(m), label=m if not dec else None)
for k in (j for j in jumpy.JUMPS if j > 1):
    ys = [sp("sSSM", k, b, False, key="env_steps_per_s") for b in batches]
    ax1.plot(batches, ys, ":", marker="s", ms=3, color=colour(jumpy.run_name("sSSM", k)), label=f"sSSM k={k}")
ax1.set(xscale="log", yscale="log", xlabel="batch (rollouts in parallel)", ylabel="imagined env steps / s",
        title=f"rollout speed, {RSPEED['provenance']['device']} ({HEAD})")
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3, which="both")
for v in VARIANTS:
    runs = [r for r in i2a["rows"] if r["variant"] == v]
    ax2.scatter([var[v]["cost_vs_model_free"]] * len(runs), [r["score_at_budget"] for r in runs],
                color=colour(v), label=v)
ax2.axvline(PILOT_COST_TARGET, color="gray", ls="--", lw=1, label=f"the pilot's {PILOT_COST_TARGET:g}x cost target (ours)")
ax2.set(xlabel="cost per agent step vs model-free", ylabel="score at the budget",
        title=f"MsPacman agents at {i2a['budget_agent_steps']:,} agent steps")
ax2.legend(fontsize=8)
ax2.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The verdicts
#
# The table below is printed by `ssmlib.claims`: each verdict follows the claim's rule
# (`claims.RULES`, written before the numbers it judges) from the files in `results/`, with the scale
# it rests on and the 95% intervals where the results allow one. Nothing in it is computed in this
# chapter. The model zoos of both games have been re-scored (`scripts/gpu_rescore.sh`): per-window
# excess over the exact floor, open loop for every model, per-episode sums for the intervals. Where
# the evaluations predate that (the jumpy study), the rule cannot decide, and the line says why. For
# the jumpy study a re-score is not enough: its weights are not committed, so it has to be trained
# again.

# %%
print(claims.format_verdicts(claims.all_claims()))

# %% [markdown]
# ## Summary
#
# - Every study in `results/` records the device it ran on and its commit (the provenance cell): the
#   models and agents were trained on H200s (one or four), and the collection benchmarks and some scoring
#   ran on CPUs. The budgets are a small fraction of the paper's: minutes of model
#   training (each training frame a prediction target tens of times at most), and the agent budget
#   printed in the scale cell.
# - The verdicts are those printed by `ssmlib.claims`, one table, by rules fixed before the numbers.
#   The model zoos of both games have been re-scored with the current evaluator (the per-window
#   excess over the exact floor, open loop for every model, episode-bootstrap intervals): claim 1 is
#   judged on MsPacman from it (the accuracy section prints the same rule on Bowling), claim 2 on
#   MsPacman and Bowling; claim 3 reads the model-zoo campaign's jumpy sSSM runs, provisionally while they are
#   open (the jumpy study's weights are not committed, so it cannot be re-scored).
# - Descriptively: every SSM imagines faster than RAR in the speed file, most of all without decoding;
#   against the two deterministic-transition SSMs (dSSM-DET, dSSM-VAE), the sign of the sSSM's raw
#   log-likelihood difference depends on the game, on the dSSM and on equal steps versus equal time
#   (printed); the matched sSSM jumpy trio is faster with a higher raw open-loop log-likelihood, and
#   the dSSM-DET trio is not matched.
# - The agents' seed ranges overlap; the claim-4 verdict bootstraps the frozen evaluation games over
#   games and seeds. The frozen final weights score below the training logs on average; the new runs
#   make that an explanation of the earlier logged-versus-evaluated gap plausible, no more.
# - One number of one checkpoint is a weaker measurement than its interval: two continuations of
#   AR-s0 from the same state and seed differ by hundreds of nats/frame open loop (the branch table),
#   so the campaign's stop rule needs two points in a row and its claims rest on seeds.
# - The open-loop excess of a sampling model (sSSM, dSSM-VAE) depends on how many prior samples score
#   it: on the campaign's own windows its 4 overstate what 256 give by hundreds of nats/frame, more as a
#   model trains, and 256 are not the end either (the sample-count section). Claim 2 reads the joint
#   excess and is not affected; claim 3's ratio moved little with the number of samples; the stop rule
#   was, and now asks the joint excess to stop improving too, which re-opened dSSM-VAE-s0.
# - The reward fine-tune was evaluated on a different window set from the zoo's model, and reward
#   accuracy on MsPacman equals about the base rate of reward-free steps: neither is evidence about
#   the reward head.
#
# ## Exercises
#
# 1. Replace the headline variant `HEAD` with `"fp32-eager"`, and with `"bf16-compile"` (only in
#    `rollout-paper-h200-compile.json`: point `RSPEED` at it). Which speed lines change, and why
#    do ratios measured within one file survive a change of numeric format better than absolute
#    speeds?
# 2. The claims' thresholds are constants of `ssmlib.claims` (`SPEED_MIN`, `JUMPY_SPEED_MIN`,
#    `ACCURACY_RATIO`). Read `claims.RULES` and, for each claim, write down which verdict a change of
#    threshold could move and which only new data could. Why must such thresholds be fixed before the
#    numbers are seen?
# 3. Replay the stop rule point by point with and without the joint test
#    (`campaign.stop_rule_replay("MsPacman", 2, joint=...)`) and plot both excesses of each run the two
#    replays disagree on (`campaign.curves`). Which of the two numbers says whether a sampling model is
#    still learning, and why is neither its open-loop likelihood? Write down, before the next leases, a
#    pattern of numbers under which you would amend the rule again.
