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
# For each claim we print what we measured and at what scale, then give one of three verdicts:
# **reproduced**, **not reproduced at our scale**, or **not measured**. This chapter trains nothing:
# it only reads the committed files, each of which records the git commit, the device and the time
# it was made. Every number below is printed by a cell. The few numbers that are **the paper's**
# are kept in one dictionary, `PAPER`, and are labelled as such wherever they are printed.
#
# A warning before the numbers: our budgets are **tiny** next to the paper's. The models trained for
# minutes, and each agent for 2,000,000 agent steps, 0.4% of the paper's 5e8. Where a claim is not
# reproduced, the most likely reason is the budget, and we say so rather than claim that the paper
# is wrong.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ssmlib import jumpy
from ssmlib.config import RESULTS_DIR
from ssmlib.viz.agent_view import load_i2a_study
from ssmlib.zoo import load_study

# The only numbers in this chapter that are not ours. Sources: ../shared/paper-notes.md.
PAPER = {
    "speedup_claim": 5.0,          # claim 1, "more than 5x": from a secondary summary, UNCERTAIN
    "i2a_env_steps": 5e8,          # the x-axis of the paper's MS_PACMAN agent curves
    "i2a_scores": {                # read off the paper's MS_PACMAN figure at that budget (approximate)
        "model-free": 3400, "copy-distill": 3900, "i2a-uniform": 5200, "i2a-distill": 6300,
        "i2a-learned": 6500,
    },
}
# Thresholds that are ours (the paper gives none): what we call "competitive" and "similar" accuracy.
OURS = {"competitive_rel_gap": 0.01,   # an SSM within 1% of the best AR/RAR log-likelihood per frame
        "i2a_cost_target": 3.0,        # issue target: an I2A costs at most 3x the model-free agent per step
        "ddp_targets": {2: 1.8, 4: 3.4}}  # issue #7: training speed-up at 2 and 4 GPUs
VERDICT = {}  # claim -> (verdict, one line of why), filled in claim by claim below


def load(rel: str) -> dict:
    return json.loads((RESULTS_DIR / rel).read_text())


zoo = {g: load_study(g) for g in ("MsPacman", "Bowling")}
speed = {p.stem: json.loads(p.read_text()) for p in sorted((RESULTS_DIR / "speed").glob("*.json"))}
jstudy = jumpy.load_study("MsPacman")
i2a = load_i2a_study()
scaling = load("scaling/h200-x4.json")
collect = {p.stem: json.loads(p.read_text()) for p in sorted((RESULTS_DIR / "bench_collect").glob("*.json"))}
reward = load("reward/MsPacman/dSSM-DET/eval.json")
reward_cfg = load("reward/MsPacman/dSSM-DET/config.json")
print("studies loaded:", ", ".join([f"model_zoo/{g}" for g in zoo] + [f"speed/{k}" for k in speed]
                                   + ["jumpy/MsPacman", "i2a/MsPacman", "scaling/h200-x4"]
                                   + [f"bench_collect/{k}" for k in collect] + ["reward/MsPacman/dSSM-DET"]))

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
prov_row("reward/MsPacman/dSSM-DET", reward["provenance"])

# %% [markdown]
# ## The scale of our runs
#
# How much training did each model and agent get? The cell below prints, per model of the model zoo,
# the optimiser steps, the wall-clock time and the number of predicted frames it saw (steps x batch
# x horizon), next to the size of the game's training data. For the agents it prints the common
# budget and how far it is below the x-axis of the paper's agent curves. The paper's training length
# for the environment models is not in our notes, so for them we can only report ours.

# %%
for g, s in zoo.items():
    print(f"{g}: {s['data']['frames']:,} frames of collected data ({s['data']['episodes']} episodes)")
    for r in s["rows"]:
        tc = s["configs"][r["model"]]["train_cfg"]
        seen = r["train_steps"] * tc["batch_size"] * tc["horizon"]
        print(f"  {r['model']:9} {r['train_steps']:6,} steps x batch {tc['batch_size']} x horizon {tc['horizon']}"
              f" = {seen / 1e6:5.2f}M predicted frames in {r['train_wall_s'] / 60:5.1f} min")
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
# As the table above shows, every model trained for minutes, and saw each frame of its data only a
# few times. Every agent run reached the full budget of 2,000,000 agent steps (8,000,000 frames),
# which is 0.4% of the 5e8 steps of the paper's curves: those go on 250 times longer in agent steps,
# or 62 times longer if the paper counted frames. Read everything below with that in mind.
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
models = ["AR", "RAR", "dSSM-DET", "dSSM-VAE", "sSSM"]


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
# **Accuracy.** "Competitive" has no number in the paper. Ours: a state-space model is competitive
# if its test log-likelihood per frame is within 1% of the better of AR and RAR on the same test
# windows (`OURS["competitive_rel_gap"]`). The model-zoo table gives each model after the same
# wall-clock time; the steps are printed next to it.

# %%
acc_ok = {}
for g, s in zoo.items():
    rw = {r["model"]: r for r in s["rows"]}
    base = max(("AR", "RAR"), key=lambda m: rw[m]["ll_nats_per_frame"])
    for m in models[2:]:
        gap = rw[m]["ll_nats_per_frame"] - rw[base]["ll_nats_per_frame"]
        rel = gap / abs(rw[base]["ll_nats_per_frame"])
        acc_ok[(g, m)] = rel > -OURS["competitive_rel_gap"]
        print(f"{g:8} {m:9} {rw[m]['ll_nats_per_frame']:10.1f} nats/frame ({rw[m]['train_steps']:5} steps) vs "
              f"{base} {rw[base]['ll_nats_per_frame']:10.1f}: {gap:+7.1f} nats/frame ({100 * rel:+.2f}%)"
              f" -> {'competitive' if acc_ok[(g, m)] else 'not competitive'}")

faster = worst_k1 > 1.0
VERDICT[1] = (
    "reproduced" if faster and all(acc_ok.values()) else "not reproduced at our scale",
    f"every SSM faster than RAR ({worst_k1:.2f}x-{best_k1:.2f}x at jump 1, H200) and within "
    f"{100 * OURS['competitive_rel_gap']:.0f}% of its LL: {all(acc_ok.values())}; the uncertain "
    f">{PAPER['speedup_claim']:.0f}x only with jumps (best {best_jumpy:.2f}x)")
print("claim 1:", *VERDICT[1], sep="\n  ")

# %% [markdown]
# The direction of claim 1 holds in the table above: every state-space model is faster than RAR at
# every batch size, latent-only and decoded, and its log-likelihood stays within our 1% band. The
# size of the speed-up does not reach the secondary summary's "more than 5x" at jump 1; only the
# jumpy models pass it. The speed-up is largest when no frame is decoded, which is how an I2A uses
# the model. The roofline line says our fastest rollout is still far above the hardware floor, so the
# absolute speeds could improve; the ratios are what we compare.
#
# ## Claim 2: stochastic SSMs reach a higher log-likelihood than deterministic ones
#
# Chapter 5 compares dSSM-DET with the two latent models in two ways: in the final table (equal
# wall-clock time, so unequal steps) and on the test curves at the largest step both reached (equal
# steps; the curve holds the ELBO, a looser bound than the final table's log-likelihood estimate,
# which only makes the latent models look worse).

# %%
REF = "dSSM-DET"
c2 = {}
for g, s in zoo.items():
    rw = {r["model"]: r for r in s["rows"]}
    det_curve = {r["step"]: r["elbo"] for r in s["curves"][REF] if r["split"] == "test"}
    for m in ("sSSM", "dSSM-VAE"):
        diff = rw[m]["ll_nats_per_frame"] - rw[REF]["ll_nats_per_frame"]
        curve = {r["step"]: r["elbo"] for r in s["curves"][m] if r["split"] == "test"}
        common = max(set(curve) & set(det_curve))
        d_eq = curve[common] - det_curve[common]
        c2[(g, m, "final")], c2[(g, m, "equal steps")] = diff > 0, d_eq > 0
        print(f"{g:8} {m:8} final table: {diff:+7.1f} nats/frame ({rw[m]['train_steps']} vs "
              f"{rw[REF]['train_steps']} steps) | at equal step {common}: {d_eq:+7.1f}")
won = [k for k, v in c2.items() if v]
VERDICT[2] = ("reproduced" if all(c2.values()) else
              "not reproduced at our scale" if won else "not reproduced at our scale (none above)",
              f"stochastic above dSSM-DET in {len(won)} of {len(c2)} comparisons: "
              + "; ".join(f"{g} {m} ({how})" for g, m, how in won))
print("claim 2:", *VERDICT[2], sep="\n  ")

# %% [markdown]
# Positive numbers above mean the stochastic model is better. The picture is mixed: on MsPacman
# the latent models lead at equal steps, but the sSSM falls behind in the final table because it
# got fewer steps in the same time; on Bowling (one short lease) neither leads. The differences are
# small next to the total nats per frame, most of which is the floor of the Bernoulli pixel
# likelihood (chapter 5). The paper's own numbers for this claim are not known to us.
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


def jump_speedup(model, k):
    """Speed of `model` at jump k over jump 1, both read from one speed file (None if no file has both)."""
    for f in speed:
        v = {r["jump"]: r["env_steps_per_s"] for r in speed_rows
             if r["file"] == f and (r["model"], r["batch"]) == (model, bmax)}
        if 1 in v and k in v:
            return v[k] / v[1]
    return None


jrows = {r["run"]: r for r in jstudy["rows"]}
c3 = {}
for model in ("sSSM", "dSSM-DET"):
    k1 = jrows[f"{model}-k1"]
    matched = f"{model}-k1" not in jstudy.get("merged_from", {})
    for k in jstudy["jumps"][1:]:
        r = jrows[f"{model}-k{k}"]
        dll = r["ll_open_loop_nats_matched_mean"] - k1["ll_open_loop_nats_matched_mean"]
        rel = dll / abs(k1["ll_open_loop_nats_matched_mean"])
        spd = jump_speedup(model, k)
        if matched:
            c3[(model, k)] = (spd, rel)
        print(f"{model:8} k={k} vs k=1: speed {'%.2fx' % spd if spd else 'not measured':>12} (B={bmax}) | "
              f"open-loop LL {dll:+7.1f} nats/frame ({100 * rel:+.2f}%) | steps {r['train_steps']} vs "
              f"{k1['train_steps']} | training {'matched' if matched else 'NOT matched'}")
ok3 = {key: (spd is not None and spd > 1.5 and rel > -OURS["competitive_rel_gap"]) for key, (spd, rel) in c3.items()}
VERDICT[3] = ("reproduced" if ok3 and all(ok3.values()) else "not reproduced at our scale",
              "matched comparisons only (sSSM): " + "; ".join(
                  f"k={k}: {spd:.2f}x faster, LL {100 * rel:+.2f}%" for (m, k), (spd, rel) in c3.items())
              + "; dSSM-DET not judged (k=1 trained unmatched)")
print("claim 3:", *VERDICT[3], sep="\n  ")

# %% [markdown]
# For the sSSM, where training is matched, the jumpy models in the table above are faster per env
# step and their open-loop log-likelihood at matched env steps is no worse (it is even better),
# which is the claim. For dSSM-DET the $k$ = 1 model trained for several times more steps than its
# jumpy siblings, so its lead says nothing about the jump; we leave it unjudged. "Large" has no
# number in the paper; we counted a speed-up above 1.5x (ours). All of these models trained for only
# a few thousand steps (printed above), so the accuracies are those of young models.
#
# ## Claims 4 and 5: imagination-augmented agents on MsPacman
#
# Five agents, two seeds each, every run trained for the same number of agent steps
# (`results/i2a/`). The score is the mean return of the last 100 episodes before the budget, as the
# training log records it; further below, the same final weights are also scored frozen. Each agent's
# cost is its agent steps per second when it runs alone on the GPU, relative to the model-free
# agent's. We compare seed ranges: an agent "beats" another only if both its seeds are above both of
# the other's.

# %%
VARIANTS = ["model-free", "copy-distill", "i2a-uniform", "i2a-distill", "i2a-learned"]
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
    print(f"cost {v:13} {c:.2f}x model-free: {'within' if c <= OURS['i2a_cost_target'] else 'above'} "
          f"the {OURS['i2a_cost_target']:.0f}x target (ours)")
VERDICT[4] = ("reproduced" if beats_copy and learned_best else "not reproduced at our scale",
              f"I2As above model-free: {beats_mf or 'none'}; above the copy model: {beats_copy or 'none'}; "
              f"learning to query best: {learned_best}")
env_models = {Path(r["config"]["config"]["env_model"]).stem for r in i2a["runs"].values()
              if r["config"]["config"]["agent"] != "model-free"}
VERDICT[5] = ("not measured" if env_models <= {"dSSM-DET"} else "see chapter 8",
              f"environment models used by the I2A runs: {sorted(env_models)}")
print("claim 4:", *VERDICT[4], sep="\n  ")
print("claim 5:", *VERDICT[5], sep="\n  ")

# %% [markdown]
# The table above puts our scores next to **the paper's** (read off its figure, at its far larger
# budget). The absolute levels cannot be compared. Of the shapes, as printed above:
#
# - No I2A has both seeds above both model-free seeds. The model-free agent's own two seeds (904 and
#   1134) are further apart than any two variants' means.
# - The copy model, the same architecture with an environment model that only returns its input, is
#   not ahead of the model-free agent: its mean (984) is below the model-free mean (1019).
# - Two I2As, distill and learned, have both seeds above both seeds of the copy model. That rests on
#   the copy model's two seeds being almost equal (983 and 985), a far narrower spread than any
#   other variant's, and it does not hold for the frozen weights (below).
# - The distilled I2A has the highest mean (1080); the agent that learns to query (1034) is not the
#   best I2A, and is not above every other agent.
#
# Claim 4 is not reproduced at our scale. On cost: the uniform (2.27x) and distilled (2.52x) I2As
# meet our target of at most 3x the model-free cost per step, because their A2C update reuses the
# rollouts imagined while acting (the model is frozen and the rollout policy only changes at the
# update). The learned I2A imagines again in the update, since its gradients go through the
# rollouts, and at 3.64x it misses the target. Claim 5 needs I2As with a stochastic environment
# model; every I2A here queried dSSM-DET, so it is not measured.
#
# ### Logged scores and the frozen final weights
#
# All the scores above are the training logs' "mean of the last 100 games". Those games were played
# by a policy that changed while it played: A2C updates it every 5 agent steps, about 130 times per
# game. The final weights of every run were also scored frozen, in two ways that share little code:
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
# This settles the puzzle of the previous, shorter study, where the exported model-free agent
# logged 930 but evaluated at 484 (`results/i2a/MsPacman-previous/`). Two effects explain it. The larger is the variation of an A2C
# policy from one snapshot to the next: the frozen final weights of a single run can score well
# above or well below its log (the per-run differences above go both ways). The smaller is
# systematic: the log scores a policy that learns while it plays, and on average it scores more than
# its final weights do frozen. The evaluation code is not at fault: it agrees with the training loop
# run at learning rate 0, a different code path over the same weights (the correlation above). On the
# 10 paired runs the frozen weights average about 9% (eval) to 12% (lr=0 loop) below the log. The
# lr=0 loop's figure is the less fair of the two: its 96,000 steps from a common start give each
# environment about two games, and the games that ended are the shorter ones (chapter 8).
#
# So read the logged agent scores of this book as a **mild upper bound** of what the final policy
# scores frozen. The comparisons between variants hold under all three measures: the cell below
# repeats the checks of claim 4 with each measure in place of the log.

# %%
def seeds_of(v, key):
    return [r[key] for r in i2a["rows"] if r["variant"] == v]


def above_by(a, b, key):
    return min(seeds_of(a, key)) > max(seeds_of(b, key))


frozen4 = {}
for n, k in KEYS.items():
    mf = [v for v in i2as if above_by(v, "model-free", k)]
    cp = [v for v in i2as if above_by(v, "copy-distill", k)]
    best = max(VARIANTS, key=lambda v: var[v][k])
    learned_top = all(above_by("i2a-learned", v, k) for v in VARIANTS if v != "i2a-learned")
    frozen4[n] = mf
    print(f"{n:9} I2As above model-free (both seeds): {mf or 'none'}; above the copy model: {cp or 'none'}; "
          f"i2a-learned above every other agent: {learned_top}; highest mean: {best}")
    print(f"{'':9} order of the means: {' > '.join(sorted(VARIANTS, key=lambda v: -var[v][k]))}")
VERDICT[4] = (VERDICT[4][0], VERDICT[4][1] + "; frozen weights (eval, lr=0 loop): I2As above model-free: "
              f"{frozen4['eval'] or 'none'}, {frozen4['lr=0 loop'] or 'none'}")
print("claim 4:", *VERDICT[4], sep="\n  ")

# %% [markdown]
# Under the frozen measures no I2A has both seeds above both model-free seeds either, and neither
# does any I2A above the copy model: the one separation of the log, from the copy model's two
# nearly equal seeds, is gone. The distilled I2A has the highest mean under all three measures, and
# learning to query is never the best. The order of the other variants changes from one measure to
# the next, as it should when their differences are within the seed spread. The verdict on claim 4
# is the same whichever measure is used.
#
# ## The supporting studies
#
# Three studies are not claims of the paper but make the others possible: how well training scales
# over GPUs (issue #7; targets ours), how fast data is collected, and a dSSM-DET fine-tuned with a
# heavier reward term for the agents.

# %%
print("data-parallel training of the sSSM (per-GPU batch fixed):")
for r in scaling["rows"]:
    tgt = OURS["ddp_targets"].get(r["gpus"])
    print(f"  {r['gpus']} GPU(s): {r['frames_per_s']:8.0f} frames/s, {r['speedup']:.2f}x, efficiency "
          f"{r['efficiency']:.2f}" + (f" | target {tgt}x: {'met' if r['speedup'] >= tgt else 'missed'}" if tgt else ""))
print("collection (MsPacman, random actions), env steps/s:")
for k, s in collect.items():
    for r in s["rows"]:
        print(f"  {k:18} {r['envs']:3} envs: native {r['native_steps_per_s']:8.0f} | full pipeline at 200x160 "
              f"{r['pipeline_200x160_steps_per_s']:8.0f}")
zt = zoo["MsPacman"]["evals"]["dSSM-DET"]["total"]
rt = reward["results"]["total"]
print(f"reward fine-tune of dSSM-DET (reward weight {reward_cfg['train_cfg']['reward_weight']:g}, "
      f"{reward['checkpoint']['step']} steps from the zoo's step {reward_cfg['init_from']['step']}):")
print(f"  open-loop reward accuracy {zt['reward_acc_open_loop']:.3f} (zoo, {zoo['MsPacman']['evals']['dSSM-DET']['windows']}"
      f" windows) -> {rt['reward_acc_open_loop']:.3f} (fine-tuned, {reward['results']['windows']} windows); "
      f"LL {zt['ll_nats_per_frame']:.1f} -> {rt['ll_nats_per_frame']:.1f} nats/frame")

# %% [markdown]
# As printed above: the data-parallel speed-up meets our issue's target at 4 GPUs and falls just
# short of it at 2; the collection pipeline is well below the raw emulator speed; and the reward
# fine-tune raises the open-loop reward accuracy without costing log-likelihood. The two evaluations of dSSM-DET used
# different numbers of test windows, so the comparison is indicative only.
#
# ## Two plots
#
# Left: imagined env steps per second against batch size for every model (headline variant,
# latent-only, solid; decoded, dashed), from the speed file. Right: each agent's two seeds against
# its cost per step relative to the model-free agent.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
colors = dict(zip(models, plt.cm.tab10.colors))
for m in models:
    for dec, ls in ((False, "-"), (True, "--")):
        ys = [sp(m, 1, b, dec, key="env_steps_per_s") for b in batches]
        ax1.plot(batches, ys, ls, marker="o", ms=3, color=colors[m], label=m if not dec else None)
for k in (2, 4):
    ys = [sp("sSSM", k, b, False, key="env_steps_per_s") for b in batches]
    ax1.plot(batches, ys, ":", marker="s", ms=3, color=colors["sSSM"], alpha=0.5 + 0.25 * k / 4, label=f"sSSM k={k}")
ax1.set(xscale="log", yscale="log", xlabel="batch (rollouts in parallel)", ylabel="imagined env steps / s",
        title=f"rollout speed, {RSPEED['provenance']['device']} ({HEAD})")
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3, which="both")
for i, v in enumerate(VARIANTS):
    runs = [r for r in i2a["rows"] if r["variant"] == v]
    ax2.scatter([var[v]["cost_vs_model_free"]] * len(runs), [r["score_at_budget"] for r in runs],
                color=plt.cm.tab10.colors[i], label=v)
ax2.axvline(OURS["i2a_cost_target"], color="gray", ls="--", lw=1, label="3x cost target (ours)")
ax2.set(xlabel="cost per agent step vs model-free", ylabel="score at the budget",
        title=f"MsPacman agents at {i2a['budget_agent_steps']:,} agent steps")
ax2.legend(fontsize=8)
ax2.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The verdicts
#
# The table below is assembled from the verdicts computed claim by claim above.

# %%
for c in sorted(VERDICT):
    v, why = VERDICT[c]
    print(f"claim {c}: {v.upper()}\n          {why}")

# %% [markdown]
# ## Summary
#
# - Every study in `results/` was made on an H200 (one or four), at a commit recorded in its file
#   (see the provenance cell). The budgets are a tiny fraction of the paper's: minutes of model
#   training, and 2,000,000 agent steps per agent run (8,000,000 frames), 0.4% of the paper's 5e8.
# - **Claim 1** (speed at competitive accuracy): reproduced in direction. The uncertain "more
#   than 5x" is reached only by jumpy models.
# - **Claim 2** (stochastic beats deterministic in log-likelihood): not reproduced at our scale. It
#   holds on MsPacman at equal training steps, not on Bowling.
# - **Claim 3** (jumpy models: faster, similar accuracy): reproduced for the sSSM, whose training
#   was matched. The dSSM-DET comparison is not matched and is left unjudged.
# - **Claim 4** (I2A beats model-free; learning to query is best): not reproduced at our scale. No
#   I2A has both seeds above both model-free seeds, in the training log or with the final weights
#   frozen. The distilled I2A has the highest mean under all three measures, and learning to query
#   is not the best I2A. The uniform and distilled I2As cost less than 3x the model-free agent per
#   step; the learned one costs more.
# - **Logged vs frozen agent scores**: measured on all 10 runs. The frozen final weights average
#   about 9-12% below the training log, because the log scores a policy that learns while it plays
#   and because single snapshots of an A2C policy vary. The evaluation code agrees with the
#   training loop at learning rate 0.
# - **Claim 5** (deterministic SSMs are better inside an I2A): not measured.
#
# ## Exercises
#
# 1. Replace the headline variant `HEAD` with `"fp32-eager"`, and with `"bf16-compile"` (only in
#    `rollout-paper-h200-compile.json`: point `RSPEED` at it). Which verdict lines change, and why
#    do ratios measured within one file survive a change of numeric format better than absolute
#    speeds?
# 2. Our thresholds (`OURS`) decide two verdicts. Change `competitive_rel_gap` to 0.1% and the
#    "large" speed-up threshold in the claim-3 cell to 4x, rerun, and write down which verdicts
#    depend on thresholds and which on the data alone.
# 3. Claim 4 is judged on seed ranges. With `i2a["runs"][run]["episodes"]`, plot each run's
#    returns against agent steps and decide whether a longer budget would be likely to separate the
#    I2As from the copy model. How many seeds would you need?
