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
# # 9. Learning to query
#
# An I2A ({doc}`chapter 8 <08_i2a>`) forces the first action of each rollout and lets a **rollout policy**
# $\hat\pi(a \mid \hat s)$ choose the later ones. Which futures the agent gets to see depends on that
# policy, so it decides what the environment model is asked. Buesing et al. (2018) compare three
# choices, and claim that training the rollout policy for the agent's benefit, "learning to query",
# gives the best I2A:
#
# | rollout policy | how $\hat\pi$ is trained | `rollout_policy=` |
# |---|---|---|
# | uniform | not at all: every action equally likely | `uniform` |
# | distilled | to imitate the agent's own policy $\pi$ (Weber et al., 2017) | `distill` |
# | learned | by the RL loss itself, backpropagated through the imagination | `learned` |
#
# This chapter derives the distillation loss and shows why its sign matters, explains how a gradient
# can cross a sampled discrete action (the paper does not say how; our choice is the straight-through
# Gumbel-softmax), checks on a small I2A that the gradients go where they should, trains the three
# variants for a few steps inside a learned model used as a game, and loads the GPU study: how close
# the distilled rollout policy gets to the agent's policy, and the scores of the three variants.

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from ssmlib import claims
from ssmlib.agents import (ImaginedVectorEnv, a2c_losses, build_agent, distill_loss, frames_from_obs, load_agent,
                           make_agent_env, train_agent)
from ssmlib.agents.networks import straight_through_gumbel
from ssmlib.book import colour, quick_dataset, quick_env_model
from ssmlib.checkpoint import load_model
from ssmlib.config import RUNS_DIR, AgentConfig, agent_profile, book_profile
from ssmlib.data.ale import action_meanings
from ssmlib.pretrained import agent_source, pretrained_agent_path
from ssmlib.studies.i2a import load_study as load_i2a_study
from ssmlib.studies.i2a import runs_of
from ssmlib.train import read_metrics
from ssmlib.viz.agent_view import play_agent, plot_study_curves

torch.set_num_threads(1)  # robust on a shared 2-core CPU
PROFILE = book_profile()
NAMES = action_meanings("MsPacman")
A = len(NAMES)
OUT = RUNS_DIR / "book" / "09_learning_to_query"
print("profile:", PROFILE)

# %% [markdown]
# ## Distillation: imitate the agent, with the right sign
#
# A distilled rollout policy imitates the agent: if the rollouts follow what the agent would do,
# they show the agent its own likely futures. Weber et al. train $\hat\pi$ by the cross-entropy from
# the agent's policy, added to the RL loss (`distill_loss` in `ssmlib/agents/a2c.py`):
#
# $$
# \mathcal{L}_{\text{distill}} = -\sum_a \mathrm{sg}\big[\pi(a \mid o_t)\big] \log \hat\pi(a \mid s_t)
# = \mathrm{KL}\big(\pi \,\|\, \hat\pi\big) + H(\pi),
# $$
#
# where $\mathrm{sg}$ stops the gradient, and $s_t$ is the model's state of the real frames. With
# $\pi$ held fixed, $H(\pi)$ is a constant, so minimising the cross-entropy minimises the KL: $\hat\pi$
# moves towards $\pi$, and the agent's policy is never pulled towards its rollout policy.
#
# **The sign matters.** The loss is *added* to the quantity that gradient descent minimises. A
# public reimplementation had it with the wrong sign, which maximises the KL, and so trains the rollout
# policy to be as *unlike* the agent as possible: the rollouts then show the futures the agent would
# never choose. We run both signs on a batch of fixed target policies, with plain gradient descent on
# the rollout policy's logits, and print the KL along the way.

# %%
torch.manual_seed(0)
pi_logits = torch.randn(64, A, requires_grad=True)  # the agent's policies (a batch of states)


def kl(p_logits, q_logits):
    p = F.softmax(p_logits, -1)
    return float((p * (F.log_softmax(p_logits, -1) - F.log_softmax(q_logits, -1))).sum(-1).mean())


trained = {}
for sign, label in ((+1, "right sign (+ cross-entropy)"), (-1, "wrong sign (- cross-entropy)")):
    rollout_logits = trained[sign] = torch.zeros(64, A, requires_grad=True)  # a uniform rollout policy to start
    opt = torch.optim.SGD([rollout_logits], lr=64.0)  # the loss is a mean over 64 rows
    kls = []
    for step in range(31):
        if step % 10 == 0:
            kls.append(kl(pi_logits.detach(), rollout_logits.detach()))
        loss = sign * distill_loss(pi_logits, rollout_logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"{label}: KL(pi || pi_hat) at steps 0, 10, 20, 30: {[round(k, 3) for k in kls]}")
print("gradient reaching the agent's policy through the distillation loss:", pi_logits.grad)
with torch.no_grad():
    ce = distill_loss(pi_logits, trained[+1])
    H_pi = float(-(F.softmax(pi_logits, -1) * F.log_softmax(pi_logits, -1)).sum(-1).mean())
print(f"after the right-sign run, cross-entropy = KL + H(pi): {float(ce):.4f} = "
      f"{kl(pi_logits.detach(), trained[+1].detach()):.4f} + {H_pi:.4f}")

# %% [markdown]
# With the right sign the KL falls towards 0. With the wrong sign it grows without bound, as the
# rollout policy piles its probability on the actions the agent likes least. The agent's policy gets
# no gradient at all from the distillation loss (`None`): it is the teacher, never the student.
#
# Where is $\hat\pi$ distilled, and where is it used? It is trained at the state $s_t$ of the **real**
# frames, the only state for which the agent's policy is known. It is used at the **imagined** states
# $\hat s_1, \dots, \hat s_{D-1}$. We come back to that gap below, with the GPU agent.
#
# ## Learning to query: a gradient through a sampled action
#
# The learned rollout policy gets no imitation target. Instead, the gradient of the RL loss itself
# reaches it, through everything the rollouts feed: the imagined states, the rollout encoder and the
# policy and value heads. The obstacle is the sampled action: $\hat a_j \sim \hat\pi(\cdot \mid \hat s_j)$
# is discrete, and a sample has no derivative with respect to the probabilities it was drawn from.
# The paper does not say how it crossed this step. Feeding the action probabilities instead of a
# sample, or a continuous relaxation, are both reasonable. **Ours** is the straight-through
# Gumbel-softmax (Jang et al., 2017; Maddison et al., 2017):
#
# $$
# g_a \sim \mathrm{Gumbel}(0, 1), \qquad
# y = \mathrm{softmax}\big((\ell + g) / \tau\big), \qquad
# \hat a = \arg\max_a y_a, \qquad
# \text{forward: } \mathrm{onehot}(\hat a), \qquad \text{backward: } \frac{\partial y}{\partial \ell},
# $$
#
# with $\ell$ the rollout policy's logits and temperature $\tau$ (`gumbel_tau`). The forward pass
# feeds the model a true one-hot action, exactly what it was trained on, and the $\arg\max$ of
# Gumbel-perturbed logits is an exact sample of $\mathrm{softmax}(\ell)$ (the Gumbel-max trick). The
# backward pass pretends the relaxed $y$ was fed, which gives a biased but low-variance gradient.
# The model's action input is a tiled one-hot, so it accepts $y$'s shape as it is. Three checks on
# `straight_through_gumbel`: the forward value is one-hot, the samples have the right frequencies,
# and the gradient is the relaxation's.

# %%
torch.manual_seed(0)
logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5, 0.0, -2.0, 1.5, 0.0]])
onehot = straight_through_gumbel(logits, tau=1.0)
is_onehot = bool(((onehot == 0) | (onehot == 1)).all() and onehot.sum() == 1)
print("forward value:", onehot.tolist()[0], "| one-hot:", is_onehot)
samples = straight_through_gumbel(logits.expand(50_000, -1), tau=1.0).detach()
freq = samples.mean(0)
print(f"50,000 samples: largest |frequency - softmax(logits)| = {(freq - torch.softmax(logits[0], -1)).abs().max():.4f}")
w = torch.randn(A)  # any downstream function of the action: here a linear one
lg = logits.clone().requires_grad_(True)
torch.manual_seed(1)
(straight_through_gumbel(lg, 1.0) @ w).sum().backward()
g_st = lg.grad.clone()
lg.grad = None
torch.manual_seed(1)  # the same Gumbel noise
(F.gumbel_softmax(lg, tau=1.0, hard=False) @ w).sum().backward()
print("straight-through gradient == gradient of the relaxed sample:", torch.allclose(g_st, lg.grad))
print("temperature of the learned rollout policy, gumbel_tau =", AgentConfig().gumbel_tau)

# %% [markdown]
# ## Where the gradients go, in a small I2A
#
# The known defects of public I2A code are about gradients that go to the wrong place or nowhere: a
# rollout policy that is never updated, a distillation loss that also trains the agent's policy, an
# environment model changed by the RL loss. `tests/test_agents.py` checks each of them. Here are the
# same checks on a quick-size I2A around the quick dSSM-DET, one policy-gradient step each with the
# distillation weight set to 0 (so that only the RL loss acts), then with it set to 1.

# %%
ENV_MODEL = quick_env_model()
qcfg = dataclasses.replace(agent_profile("quick"), agent="i2a", env_model=str(ENV_MODEL))
env = make_agent_env("MsPacman", 4, qcfg.height, qcfg.width, seed=0, num_threads=1)
obs, _ = env.reset(seed=np.arange(4))
for _ in range(80):
    obs, *_ = env.step(np.array([3, 2, 1, 4]))
env.close()
obs = torch.as_tensor(obs)
acts, adv, ret = torch.tensor([1, 2, 3, 4]), torch.tensor([1.0, -0.5, 0.3, -1.0]), torch.ones(4)


def grad_report(mode: str, distill_coef: float) -> str:
    torch.manual_seed(0)
    agent = build_agent(dataclasses.replace(qcfg, rollout_policy=mode), A)
    cfg = AgentConfig(rollout_policy=mode, distill_coef=distill_coef)
    terms = a2c_losses(agent(obs), acts, adv, ret, cfg)
    terms["loss"].backward()

    def norm(module):
        if module is None:
            return "no such network"
        g = [p.grad for p in module.parameters() if p.grad is not None]
        return "no gradient" if not g else f"{torch.sqrt(sum((x ** 2).sum() for x in g)):.2e}"

    model_grads = sum(p.grad is not None for p in agent.env_model.parameters())
    return (f"{mode:8} distill_coef={distill_coef:g}: rollout policy {norm(agent.rollout_policy):>15} | rollout encoder "
            f"{norm(agent.encoder)} | env model: {model_grads} parameters with a gradient")


for mode, coef in (("uniform", 0.0), ("distill", 0.0), ("distill", 1.0), ("learned", 0.0)):
    print(grad_report(mode, coef))

# %% [markdown]
# - **uniform**: there is no rollout policy to train.
# - **distill**: with the distillation weight at 0 the RL loss sends nothing into $\hat\pi$: its
#   sampled actions are constants to the RL loss. With the weight at 1, the distillation term is the
#   only thing that trains it.
# - **learned**: the policy-gradient loss alone reaches $\hat\pi$, through the straight-through
#   actions, the imagined states they lead to, and the rollout encoder.
# - In every case the rollout encoder learns, and the environment model gets no gradient: it is
#   frozen, and the RL loss never changes it.
#
# ## The three variants, trained inside a learned model
#
# `ImaginedVectorEnv` turns a trained environment model into a gymnasium vector environment: `reset`
# takes 3 real frames from the test episodes of a dataset, `step` makes one transition of the model
# with the agent's action and returns its most likely reward and its predicted frame pushed onto the
# 3-frame stack. The observations look exactly like the real game's, so any agent plays it
# unchanged. Here the quick dSSM-DET is both the world the agents act in and the model inside each
# I2A. We train each variant (and the model-free agent, for the cost) for a few updates, only to see
# every variant run and to compare their speed and how their rollout policies move. A few hundred
# steps teach nothing about Ms. Pac-Man.

# %%
ds = quick_dataset()
STEPS, N = 480, 8
live = {}
for name, agent_kind, mode in (("model-free", "model-free", "uniform"), ("i2a-uniform", "i2a", "uniform"),
                               ("i2a-distill", "i2a", "distill"), ("i2a-learned", "i2a", "learned")):
    world = ImaginedVectorEnv(load_model(ENV_MODEL), ds, num_envs=N, max_steps=30, seed=0)
    cfg = dataclasses.replace(agent_profile("quick"), agent=agent_kind, rollout_policy=mode, num_envs=N,
                              total_steps=STEPS, log_every=1, env_model=str(ENV_MODEL))
    t0 = time.perf_counter()
    s = train_agent(cfg, OUT / name, env=world, env_model=load_model(ENV_MODEL), overwrite=True, progress=False)
    live[name] = read_metrics(OUT / name / "metrics.jsonl")
    sps = np.median([m["steps_per_s"] for m in live[name][1:]])
    live[name + "/sps"] = sps
    print(f"{name:12} {s['step']} agent steps in {time.perf_counter() - t0:4.1f} s: median {sps:5.0f} steps/s "
          f"on this CPU ({sps / live.get('model-free/sps', sps):.2f}x model-free's speed); "
          f"imagined games ended: {s['episodes_this_run']}")

# %%
fig, ax = plt.subplots(figsize=(7, 3))
for name in ("i2a-distill", "i2a-learned"):
    m = live[name]
    ax.plot([x["step"] for x in m], [x["kl_pi_rollout"] for x in m], "o-", ms=3, color=colour(name),
            label=name)
ax.set(xlabel="agent steps (in the imagined game)", ylabel=r"KL($\pi \,\|\, \hat\pi$) at $s_t$ (nats)",
       title="Quick I2As on the CPU: rollout policy vs agent")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
print({name: round(live[name][-1]["kl_pi_rollout"], 4) for name in ("i2a-distill", "i2a-learned")})

# %% [markdown]
# Both rollout policies start close to the agent's policy, which is itself close to uniform at the
# start. In the run that built this page the agent's policy jumped after its first updates, and the
# distilled rollout policy caught up within a few updates. The learned rollout policy hardly moved in
# so few updates (its gradient is small, as the norms above showed): its KL stayed near its starting
# value. Only the GPU runs are long enough to show where each one goes.
#
# ## The GPU study: how close does the distilled policy get?
#
# Every update of the GPU runs logged $\mathrm{KL}(\pi \,\|\, \hat\pi)$ at the real states of its
# batch (`kl_pi_rollout` in `metrics.jsonl`). For the uniform rollout policy this KL is not logged,
# but it follows from the logged entropy of the agent's policy:
# $\mathrm{KL}(\pi \,\|\, \mathcal{U}) = \log |\mathcal{A}| - H(\pi)$. That is the reference: a
# rollout policy above it is further from the agent than a uniform one.

# %%
study = load_i2a_study()
fig, ax = plt.subplots(figsize=(10, 3.8))
plot_study_curves(ax, study, ["copy-distill", "i2a-distill", "i2a-learned"], value="kl_pi_rollout", budget=False)
for run in runs_of(study, "i2a-uniform"):
    m = study["runs"][run]["metrics"]
    ax.plot([x["step"] for x in m], [np.log(A) - x["entropy"] for x in m], color=colour("i2a-uniform"),
            lw=0.8, alpha=0.6)
ax.plot([], [], color=colour("i2a-uniform"), label=r"uniform: $\log 9 - H(\pi)$ (seeds)")
ax.set_yscale("log")
ax.set(ylabel=r"KL($\pi \,\|\, \hat\pi$) (nats)", title="How far each rollout policy is from the agent's policy")
ax.legend(fontsize=8)
fig.tight_layout()


def tail(run, key, n=10):
    vals = [m[key] for m in study["runs"][run]["metrics"] if m.get(key) is not None][-n:]
    return float(np.median(vals))


for v in ("copy-distill", "i2a-distill", "i2a-learned"):
    print(f"{v:13} median KL(pi || pi_hat) of the last 10 log lines, per seed: "
          f"{[round(tail(r, 'kl_pi_rollout'), 3) for r in runs_of(study, v)]}")
ref = [round(float(np.log(A) - tail(r, "entropy")), 3) for r in runs_of(study, "i2a-uniform")]
print(f"{'i2a-uniform':13} log 9 - H(pi), same: {ref}")

# %% [markdown]
# The distilled rollout policies (of the I2A and of the copy agent) stay close to the agent's policy
# throughout, well below the uniform policy's distance. The learned rollout policy goes the other
# way: it ends much further from $\pi$ than even the uniform policy. A KL of that size means that
# $\hat\pi$ gives almost no probability to the actions the agent takes. Learning to query does not
# make the rollouts imitate the agent; it makes them whatever the RL gradient favours, and here that
# is a policy very unlike the agent's.
#
# ### Distilled at real states, used at imagined ones
#
# The KL above is measured where $\hat\pi$ is trained: at the state of the real frames. Inside a
# rollout it acts on imagined states $\hat s_j = g(\hat s_{j-1}, \hat a_{j-1})$, which come out of the
# transition, not out of the encoder and $\mathrm{init}$. Nothing forces the two kinds of state maps
# to look alike to a small CNN. We check with the distilled I2A the book serves ({doc}`chapter 8 <08_i2a>`): it plays a short stretch of
# the real game, and at every step we compare the agent's policy with its rollout policy at the real
# state and at the imagined states of the rollouts.

# %%
agent_path = pretrained_agent_path("MsPacman", "i2a-distill-dSSM-DET")  # chapter 8's agent
agent, acfg, meta, _ = load_agent(agent_path)  # with the frozen model its config names, checked by sha256
print("served:", agent_source(agent_path))
env = make_agent_env("MsPacman", 1, acfg.height, acfg.width, seed=1, num_threads=1)
t0 = time.perf_counter()
clip = play_agent(agent, env, 16, warmup=60, seed=1, action_names=NAMES, decode=False)
env.close()
print(f"played {clip.start + len(clip)} steps in {time.perf_counter() - t0:.1f} s; {clip.rollout_actions[:, :, 1:].size} "
      f"actions chosen by the rollout policy inside the rollouts")
pi = clip.probs.mean(0)
at_real = clip.rollout_probs.mean(0)
taken = np.bincount(clip.rollout_actions[:, :, 1:].ravel(), minlength=A) / clip.rollout_actions[:, :, 1:].size
print(f"{'':28}" + "".join(f"{n[:6]:>7}" for n in NAMES))
for label, p in (("agent pi (mean over steps)", pi), ("pi_hat at the real state", at_real),
                 ("pi_hat's actions, imagined", taken)):
    print(f"{label:28}" + "".join(f"{x:7.2f}" for x in p))
kl_real = np.mean([(p * (np.log(p + 1e-12) - np.log(q + 1e-12))).sum() for p, q in zip(clip.probs, clip.rollout_probs)])
print(f"KL(pi || pi_hat) at the real states of this stretch: {kl_real:.3f} nats")
tv = lambda p, q: 0.5 * np.abs(p - q).sum()  # noqa: E731  total variation distance, 0 (same) to 1 (disjoint)
print(f"total variation from the agent's row: pi_hat at the real state {tv(pi, at_real):.2f}, "
      f"pi_hat's actions inside the rollouts {tv(pi, taken):.2f}")

# %% [markdown]
# The first two rows are averages over the recorded steps: the agent's policy, and the distilled
# policy at the same real states, a close copy as the logged KL said. The third row counts the
# actions that the same rollout policy actually chose at the imagined steps (every rollout, every
# step after the forced first action). The last line measures how far each row is from the agent's.
# When this was written, with the pilot's I2A (seed 0 of the study above, around the first zoo's
# dSSM-DET), the third row was far from the other two: inside the imagination the distilled policy
# favoured actions that neither the agent nor its own copy at the real state preferred. Distillation at
# real states did not carry over to imagined states. Once the I2A campaign serves its own agent, the cell
# shows that agent, and the last line says whether its distance is as large. A fix would distil $\hat\pi$ on
# states produced by the transition too (for example $g(s_{t-1}, a_{t-1})$, the state one real step
# earlier stepped with the real action, whose target $\pi(\cdot \mid o_t)$ is known). We have not
# tried it.
#
# ## Scores of the three rollout policies
#
# Every run of the study trained to the same budget of agent steps ({doc}`chapter 8 <08_i2a>` has the full table and
# the verdict against the baselines). The score is the training log's mean of the last 100 games;
# {doc}`chapter 10 <10_results>` also scores the final weights frozen, and the cell prints that mean too.

# %%
ROLLOUT = ("i2a-uniform", "i2a-distill", "i2a-learned")
print(f"budget: {study['budget_agent_steps']:,} agent steps per run")
for v in ROLLOUT:
    s = study["variants"][v]
    runs = [r for r in study["rows"] if r["variant"] == v]
    steps = ", ".join(f"{r['steps']:,}" for r in runs)
    walls = ", ".join(f"{r['wall_s']:.0f}" for r in runs)
    print(f"{v:12} seeds {s['score_min']:.0f} and {s['score_max']:.0f}, mean {s['score_mean']:.0f} "
          f"(frozen weights, eval: {s['eval_return_mean']:.0f}); {s['steps_per_s_alone']:,.0f} agent steps/s alone "
          f"({s['cost_vs_model_free']:.2f}x model-free); steps reached: {steps} in {walls} s")
for key, label in (("score_mean", "training log"), ("eval_return_mean", "frozen eval")):
    print(f"order of the means ({label}): {' > '.join(sorted(ROLLOUT, key=lambda v: -study['variants'][v][key]))}")
ranges = {v: (study["variants"][v]["score_min"], study["variants"][v]["score_max"]) for v in ROLLOUT}
disjoint = [(a, b) for a in ranges for b in ranges
            if a < b and (ranges[a][0] > ranges[b][1] or ranges[b][0] > ranges[a][1])]
print("pairs of rollout policies whose seed ranges do not overlap:", disjoint or "none")
print("most expensive per step:", max(ROLLOUT, key=lambda v: study["variants"][v]["cost_vs_model_free"]))

# %%
fig, ax = plt.subplots(figsize=(9, 3.6))
plot_study_curves(ax, study, ["i2a-uniform", "i2a-distill", "i2a-learned"])
ax.set(ylabel="mean score of the last 100 games", title="The three rollout policies (thin: seeds; thick: mean)")
fig.tight_layout()

# %% [markdown]
# The paper's claim is that learning to query gives the best I2A, with distillation second and
# uniform rollouts last ({doc}`chapter 8 <08_i2a>` prints the paper's values). At our budget, 2,000,000 agent steps
# (0.4% of the paper's 5e8), learning to query is **not separated** from the other rollout policies: its
# mean (1034) is below the distilled I2A's (1080) and the uniform one's (1049), and the frozen final weights
# put the distilled I2A first too, but the verdict of `ssmlib.claims` (printed below, with its rule and
# interval) is what decides, and it is not "learning to query is worse". It is also the most expensive: 3.64x the model-free agent's cost per step, against
# 2.27x for uniform and 2.52x for distilled rollouts. The uniform and distilled I2As reuse, in the
# A2C update, the rollouts they imagined while acting (the environment model is frozen and
# $\hat\pi$ only changes at the update, so the update sees exactly the imagination the policy acted
# on). The learned I2A cannot: its gradients go through the rollouts, so it imagines again in the
# update. (These costs were measured before two savings: every variant now acts on the bootstrap pass's
# rollouts at the first step after an update, and the learned I2A's update continues the acting
# rollouts after their forced first step; {doc}`chapter 8 <08_i2a>` explains both; the I2A campaign measured all three again after them, alone on one H200, and {doc}`chapter 10 <10_results>` judges its cost target from that run.) None of the three is separated from the others by the seed spread: every pair of seed
# ranges overlaps (the cell above says so), so the order of the means is not a result either. The
# learned rollout policy clearly learned *something*, since it moved far from both the agent's policy
# and the uniform one, but nothing here shows that it helps the agent.

# %%
print(claims.format_verdicts([claims.claim4()], rules=True))
#
# ## Summary
#
# - **Uniform** rollouts need nothing. **Distillation** adds
#   $-\sum_a \mathrm{sg}[\pi(a)] \log \hat\pi(a) = \mathrm{KL}(\pi \,\|\, \hat\pi) + H(\pi)$ to the
#   loss: with the stop-gradient and the plus sign, it pulls $\hat\pi$ towards $\pi$ and leaves $\pi$
#   alone; with the wrong sign it pushes $\hat\pi$ away without bound.
# - **Learning to query** backpropagates the RL loss through the imagination into $\hat\pi$. Our
#   crossing of the discrete action is the straight-through Gumbel-softmax: exact one-hot samples
#   forward, the relaxation's gradient backward.
# - The gradient checks show each rollout policy trained by exactly what it should be, and the
#   environment model by nothing.
# - On the GPU the distilled rollout policy stays close to the agent's policy at real states, but
#   the pilot agent's rollout policy chose very different actions at imagined states; the
#   learned one ends far from $\pi$. At 2,000,000 agent steps the three variants' scores are not
#   distinguishable; learning to query has neither the highest mean (the distilled I2A has) nor the
#   lowest cost (it is the most expensive, since it must imagine again in the update).
#
# ## Exercises
#
# 1. Train a quick I2A with `rollout_policy="learned"` and `gumbel_tau` 0.5, 1 and 2 inside the
#    imagined game for a few thousand steps. How do the rollout policy's gradient norms change with
#    $\tau$? (Hint: differentiate $\mathrm{softmax}(\ell / \tau)$.) What would $\tau \to 0$ and
#    $\tau \to \infty$ do?
# 2. Replace the straight-through sample by the action probabilities themselves (feed
#    $\mathrm{softmax}(\ell)$ to the model, which accepts any vector over actions). Is the rollout
#    still an imagined *trajectory*? What does the model see that it never saw in training?
# 3. Distil the rollout policy on imagined states as suggested above: write the loss for
#    $\hat s = g(s_{t-1}, a_{t-1})$ with the target $\pi(\cdot \mid o_t)$, and measure, as in this
#    chapter, the actions that the rollout policy takes inside the imagination before and after.
