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
# # 7. A model-free agent
#
# Chapters {doc}`3 <03_autoregressive>` to {doc}`6 <06_jumpy_speed>` trained environment models and measured how well and how fast they imagine. The
# rest of the paper is about **using** them: an Imagination-Augmented Agent (I2A, {doc}`chapter 8 <08_i2a>`) queries a
# model before every decision, and {doc}`chapter 9 <09_learning_to_query>` trains the policy that decides what to imagine. Every
# one of those agents is judged against a **model-free** agent that sees the same frames, is trained
# with the same algorithm, and imagines nothing. This chapter builds that baseline:
#
# 1. the real game as the agent sees it: 3 stacked RGB frames, preprocessed exactly like the
#    models' data;
# 2. the network, and the advantage actor-critic (A2C) objective that trains every agent of the book;
# 3. a short training run on the CPU, to see the loop work and measure its speed;
# 4. the GPU runs of the I2A study (`results/i2a/MsPacman/`): learning curves of two seeds, each
#    trained for 2,000,000 agent steps;
# 5. the trained agent the book serves playing the real game: the best finished model-free run of the
#    I2A campaign ({doc}`chapter 10 <10_results>`) once one has finished, until then seed 0 of that study;
# 6. how a trained agent becomes a data-collection policy for the environment models.
#
# The paper does not say which actor-critic it used. The reimplementations use A2C or A3C, and so do
# we (ours: synchronous A2C with GAE, in the style of CleanRL).

# %%
import dataclasses
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ssmlib.agents import (ModelFreeAgent, a2c_losses, gae, load_agent, make_agent_env, reset_env,
                           train_agent)
from ssmlib.book import demo_dataset
from ssmlib.config import PROFILES, REPO_ROOT, RUNS_DIR, AgentConfig, agent_profile, book_profile, get_profile
from ssmlib.data.ale import action_meanings, make_vector_env, preprocess
from ssmlib.data.cli import AgentPolicies
from ssmlib.data.collect import collect, config_with
from ssmlib.models import count_parameters
from ssmlib.pretrained import agent_source, pretrained_agent_path
from ssmlib.studies.i2a import curve, runs_of, score_at
from ssmlib.studies.i2a import load_study as load_i2a_study
from ssmlib.studies import zoo_campaign
from ssmlib.train import read_metrics
from ssmlib.viz.agent_view import play_agent
from ssmlib.viz.frames import frame_strip, frames_player

torch.set_num_threads(1)  # robust on a shared 2-core CPU
PROFILE = book_profile()
OUT = RUNS_DIR / "book" / "07_model_free"
MF_AGENT = pretrained_agent_path("MsPacman", "model-free")  # the campaign's best finished run, else the pilot's seed 0
print("profile:", PROFILE)

# %% [markdown]
# ## The game as the agent sees it
#
# `make_agent_env` runs ALE's own vectorised Ms. Pac-Man (`ale_py.vector_env.AtariVectorEnv`,
# emulators in C++ threads) with the settings of the datasets of {doc}`chapter 1 <01_data>`: frame skip 4, sticky
# actions with probability 0.25, up to 30 random no-ops at the start, one episode per whole game
# (all lives), and rewards left unclipped (the learner clips them; the book reports real scores).
# An observation is the last **3 RGB frames**, `(N, 3, H, W, 3)` uint8. That is exactly what an
# environment model reads as its context, so an agent and a model can share the same input.
#
# The emulator's 210x160 screen is resized by ALE itself. The environment models were trained on
# frames resized by `ssmlib.data.preprocess`. If the two differed by even a pixel, an I2A would feed
# its model frames unlike any it was trained on. The cell below steps both environments with the
# same seeds and actions and compares the newest frame with the preprocessed screen.

# %%
NAMES = action_meanings("MsPacman")
H, W = get_profile("quick").data.height, get_profile("quick").data.width
agent_env = make_agent_env("MsPacman", 2, H, W, noop_max=0, sticky_actions=0.0, num_threads=1)
data_env = make_vector_env("MsPacman", 2, sticky_actions=0.0, num_threads=1)
seeds = np.array([5, 6], np.int64)
obs, _ = agent_env.reset(seed=seeds)
screens, _ = data_env.reset(seed=seeds)
for t in range(90):  # past the intro, with a few turns
    act = np.array([(t // 15) % len(NAMES), 3])
    obs, *_ = agent_env.step(act)
    screens, *_ = data_env.step(act)
print("observation:", obs.shape, obs.dtype, "| actions:", agent_env.single_action_space.n, NAMES)
print("settings of the agents' game:", {"frameskip": get_profile("paper").data.frameskip,
                                        "sticky_actions": agent_profile("paper").sticky_actions,
                                        "noop_max": agent_profile("paper").noop_max})
print("emulator screen:", screens.shape[1:], "-> newest frame equals ssmlib.data.preprocess of it:",
      np.array_equal(obs[:, -1], preprocess(screens[:, -1], H, W)))
agent_env.close()
data_env.close()

# %%
fig = frame_strip([list(obs[0]), list(obs[1])], row_labels=["env 0", "env 1"],
                  col_labels=["$o_{t-2}$", "$o_{t-1}$", "$o_t$"], scale=1.8)

# %% [markdown]
# ## The network
#
# The model-free agent is the convolutional network of Mnih et al. (2015) on the 9 channels of the
# stacked frames: three convolutions (32 filters 8x8 stride 4, 64 filters 4x4 stride 2, 64 filters
# 3x3 stride 1), a fully connected layer, and two linear heads, the policy logits $\pi(\cdot \mid o_t)$
# and the value $V(o_t)$. At the paper profile (200x160 frames) the frames are average-pooled 2x2
# first (ours: close to the input size of the usual Atari agents, at a quarter of the cost),
# and the hidden layer has 256 units instead of Mnih et al.'s 512 (ours: small agent checkpoints).
# The policy head starts with tiny weights, so the first policy is almost uniform.

# %%
for name in PROFILES:
    c = agent_profile(name)
    torch.manual_seed(0)
    mf = ModelFreeAgent(len(NAMES), c.height, c.width, c.mf_pool, c.hidden)
    print(f"{name:5}: {c.height}x{c.width} frames, pooled {c.mf_pool}x -> CNN input {c.height // c.mf_pool}x"
          f"{c.width // c.mf_pool}x9, hidden {c.hidden}: {count_parameters(mf):,} parameters")
torch.manual_seed(0)
mf = ModelFreeAgent(len(NAMES), H, W, 1, agent_profile("quick").hidden)
with torch.no_grad():
    out = mf(torch.as_tensor(obs))
p = torch.softmax(out.logits, -1)
print("convolutions (filters x kernel / stride):",
      [f"{c.out_channels}x{c.kernel_size[0]}/{c.stride[0]}" for c in mf.mf.convs if isinstance(c, torch.nn.Conv2d)])
print("logits", tuple(out.logits.shape), "value", tuple(out.value.shape),
      f"| untrained policy: max |pi(a) - 1/9| = {(p - 1 / 9).abs().max():.4f}")

# %% [markdown]
# ## Advantage actor-critic
#
# A2C runs $N$ environments side by side. Each **update** collects $S$ steps of every environment
# with the current policy (the $S \times N$ observations, actions, rewards and values are kept in
# tensors allocated once), then takes one gradient step on the loss written in the docstring of
# `ssmlib/agents/a2c.py`:
#
# $$
# \mathcal{L} = \underbrace{-\frac{1}{SN}\sum_{t,n} \hat A_t \log \pi(a_t \mid o_t)}_{\text{policy gradient}}
# \;+\; c_v\, \underbrace{\frac{1}{SN}\sum_{t,n} \tfrac12 \big(\hat R_t - V(o_t)\big)^2}_{\text{value regression}}
# \;-\; c_H\, \underbrace{\frac{1}{SN}\sum_{t,n} H\big(\pi(\cdot \mid o_t)\big)}_{\text{entropy bonus}}
# $$
#
# The advantages $\hat A_t$ come from generalised advantage estimation (GAE, Schulman et al., 2016):
#
# $$
# \delta_t = r_t + \gamma V(o_{t+1})(1 - d_{t+1}) - V(o_t), \qquad
# \hat A_t = \sum_{l \ge 0} (\gamma\lambda)^l \delta_{t+l}, \qquad \hat R_t = \hat A_t + V(o_t),
# $$
#
# where $d_{t+1} = 1$ marks that $o_{t+1}$ starts a new episode, so that no value flows back across
# the end of a game. The last step of each update bootstraps from $V$ of the next observation. The
# rewards $r_t$ are clipped to their sign for learning (the usual Atari practice), so an agent learns
# from "+1 for any points" while the book reports the real score. The advantages are a constant in
# the policy gradient, and the targets $\hat R_t$ a constant in the value loss. The settings of the
# GPU study (the `paper` profile), with RMSprop and gradient-norm clipping:

# %%
PAPER = agent_profile("paper")
print({k: getattr(PAPER, k) for k in ("num_envs", "num_steps", "lr", "gamma", "gae_lambda", "ent_coef", "vf_coef",
                                      "max_grad_norm")})
print(f"one update = {PAPER.num_steps} steps x {PAPER.num_envs} envs = {PAPER.num_steps * PAPER.num_envs} agent steps "
      f"= {4 * PAPER.num_steps * PAPER.num_envs} emulator frames")

# %% [markdown]
# ### GAE on a hand-made example
#
# Two environments, three steps, $\gamma = 0.5$, all values zero, and the value of the observation
# after the last step equal to 10. Environment 0 gets reward 1 at every step, and its first game ends
# after step 1 (`dones[2]` is set: observation 2 starts a new game). Environment 1 gets its only
# reward at step 2, and its game ends right after it (`next_done`). With $\lambda = 1$ the targets
# are discounted sums of rewards, cut at the end of each game, plus the bootstrap value where the
# game has not ended. With $\lambda = 0$ they are one-step targets $r_t + \gamma V(o_{t+1})$.

# %%
r = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
v = torch.zeros(3, 2)
dones = torch.tensor([[False, False], [False, False], [True, False]])
for lam in (1.0, 0.0):
    adv, ret = gae(r, v, dones, next_value=torch.tensor([10.0, 10.0]), next_done=torch.tensor([False, True]),
                   gamma=0.5, lam=lam)
    print(f"lambda={lam}: targets R_t env 0 = {ret[:, 0].tolist()}, env 1 = {ret[:, 1].tolist()}")

# %% [markdown]
# In environment 0, step 0's target is $1 + 0.5 \cdot 1$: the game ended after step 1, so step 2's
# reward and the bootstrap value belong to the next game. Step 2 starts that game and bootstraps:
# $1 + 0.5 \cdot 10$. In environment 1, the game ended after step 2, so nothing is bootstrapped at
# all, and the single reward is discounted back to step 0.
#
# The loss terms of one batch, from `a2c_losses` on the untrained network. The total is the weighted
# sum of the three terms, as in the equation.

# %%
cfg0 = agent_profile("quick")
with torch.no_grad():
    o = mf(torch.as_tensor(obs))
    terms = a2c_losses(o, torch.tensor([2, 3]), torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.0]), cfg0)
print(sorted(terms))
print("loss == policy_loss + vf_coef * value_loss - ent_coef * entropy:",
      torch.allclose(terms["loss"], terms["policy_loss"] + cfg0.vf_coef * terms["value_loss"]
                     - cfg0.ent_coef * terms["entropy"]))
print(f"entropy of the untrained policy {float(terms['entropy']):.4f} nats (uniform: log 9 = {np.log(9):.4f})")

# %% [markdown]
# ## Training on the CPU
#
# `train_agent` is the whole loop: it acts, steps the environments, computes GAE, takes the gradient
# step, and logs a line to `metrics.jsonl` every `log_every` updates (the loss terms and the agent
# steps per second) and one line to `episodes.jsonl` for every game that ends (its score and
# length). The `quick` profile plays 80x64 frames with 8 environments. We run it for 2,000 agent
# steps, a few hundred per environment. That is too short for a whole game to end, let alone for
# the agent to learn: the point here is to see the loop work and how fast it runs on this CPU.

# %%
cfg = dataclasses.replace(agent_profile("quick"), agent="model-free", total_steps=2000, env_threads=1)
t0 = time.perf_counter()
summary = train_agent(cfg, OUT / "model-free", overwrite=True, progress=False)
live = read_metrics(OUT / "model-free" / "metrics.jsonl")
sps = [m["steps_per_s"] for m in live[1:]]
print(f"{summary['step']} agent steps in {summary['update']} updates, {time.perf_counter() - t0:.1f} s; "
      f"median {np.median(sps):.0f} agent steps/s on this CPU ({cfg.num_envs} envs, {cfg.height}x{cfg.width})")
print(f"{summary['step'] // cfg.num_envs} steps per environment; games that ended: {summary['episodes_this_run']}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 2.8))
for ax, key in zip(axes, ("policy_loss", "value_loss", "entropy")):
    ax.plot([m["step"] for m in live], [m[key] for m in live], "o-", ms=3)
    ax.set(title=key, xlabel="agent steps")
    ax.grid(alpha=0.3)
axes[2].axhline(np.log(len(NAMES)), color="0.5", ls="--", lw=1, label="uniform policy")
axes[2].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## The GPU runs
#
# The I2A study (`scripts/gpu_i2a.sh`) trained five agents, each variant with two seeds, all at once
# on a machine with four H200 GPUs (so they shared the CPUs that run the emulators). Every run went to
# the same target of 2,000,000 agent steps (8,000,000 emulator frames): the runs were stopped by
# the time limit of a device call and resumed from their checkpoints in the next one, three calls in
# all. {doc}`Chapter 8 <08_i2a>` compares the five agents at that budget. Here are the model-free agent's two seeds:
# the raw score of every finished game (dots) and the running mean of the last 100 games (lines),
# against the agent steps at which the game ended.

# %%
study = load_i2a_study()
mf_runs = runs_of(study, "model-free")
rows = {r["run"]: r for r in study["rows"]}
gcfg = study["runs"][mf_runs[0]]["config"]["config"]
print(f"study: {study['provenance']['device']}, git {study['provenance']['git_sha']}; "
      f"{gcfg['num_envs']} envs, {gcfg['height']}x{gcfg['width']} frames (pooled {gcfg['mf_pool']}x), "
      f"n = {gcfg['num_steps']}, lr {gcfg['lr']}")
print(f"budget: {study['budget_agent_steps']:,} agent steps = {study['budget_frames']:,} emulator frames per run")
for run in mf_runs:
    r = rows[run]
    eps = study["runs"][run]["episodes"]
    x, y = curve(eps, 100)
    best = int(np.argmax(y))
    first = np.mean([e["return"] for e in eps[:100]])
    print(f"{run}: {r['steps']:,} agent steps in {r['wall_s']:.0f} s ({r['steps_per_s_shared']:,.0f} steps/s, "
          f"sharing the machine), {len(eps):,} games")
    print(f"    mean of 100 games: first {first:.0f}, highest {y[best]:.0f} (at {x[best]:,} steps), "
          f"last {score_at(eps, r['steps'])[0]:.0f} at the end")

# %%
fig, ax = plt.subplots(figsize=(9, 3.8))
for run, color in zip(mf_runs, ("tab:blue", "tab:orange")):
    eps = study["runs"][run]["episodes"]
    ax.scatter([e["step"] for e in eps], [e["return"] for e in eps], s=3, alpha=0.15, color=color)
    x, y = curve(eps, 100)
    ax.plot(x, y, color=color, lw=2, label=f"{run}: mean of the last 100 games")
ax.set(xlabel="agent steps (x4 emulator frames)", ylabel="score of a whole game", ylim=(0, None),
       title="Model-free A2C on MsPacman (H200 study, 2 seeds)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# Both seeds end well above the mean of their first 100 games (printed above). The way up is not
# smooth: the running means dip and recover along the way, and the last 100 games need not be the
# best 100 of the run (compare the highest and the last mean printed per seed). The single games
# scatter widely around their mean, because a game ends when the last life is lost, and one unlucky
# meeting with a ghost ends a life. A mean over 100 games has much less noise than the dots. The
# difference between the two seeds shows how much a whole run varies. These runs are short next to
# the paper's curves ({doc}`chapter 8 <08_i2a>` compares with them).
#
# ## The trained agent plays
#
# The book serves one model-free agent, found by `pretrained_agent_path`. The I2A campaign of
# {doc}`chapter 10 <10_results>` trains many more seeds than this pilot study and keeps the final
# weights (bfloat16, without the optimiser state) of its best finished run, the one with the highest
# frozen score. Once such a run exists, the book serves it. Until then it serves seed 0 of the pilot
# study above, committed as `checkpoints/agents/MsPacman-model-free.safetensors`. The cell prints
# which one this is. That pilot file stays in the repository either way: the model-zoo campaign
# collects its dataset with it (see the last section). `load_agent` rebuilds the network from the config stored in the
# file. The "frozen" score is of the final weights with learning switched off
# (`python -m ssmlib agent eval`, one fresh game in each of 64 environments). Chapter 8 explains why
# it can differ from the training log. We let the agent play one game on this CPU at its own frame
# size: it acts through the intro unrecorded, then `play_agent` records every
# step (the screen, the policy, the value, the action and the reward).

# %%
agent, acfg, meta, _ = load_agent(MF_AGENT)
print(f"{meta['agent']} agent, {acfg.height}x{acfg.width} frames, trained {meta['step']:,} agent steps "
      f"({meta['wall_s']:.0f} s, git {meta['git_sha']}); {count_parameters(agent):,} parameters; "
      f"exported from {meta['exported_from']}")
print("served:", agent_source(MF_AGENT))
env = make_agent_env("MsPacman", 1, acfg.height, acfg.width, seed=0, num_threads=1)
t0 = time.perf_counter()
clip = play_agent(agent, env, 160, warmup=60, seed=0, action_names=NAMES)
env.close()
print(f"played {clip.start + len(clip)} steps in {time.perf_counter() - t0:.1f} s; score after them: "
      f"{clip.scores[-1]:g}; games ended in the clip: {int(clip.dones.sum())}")

# %%
frames_player(clip.frames[::2], fps=8, scale=1.2,
              titles=[f"step {clip.start + t}: {NAMES[clip.actions[t]]}, score {clip.scores[t]:g}"
                      for t in range(0, len(clip), 2)])

# %% [markdown]
# What the policy does along the way: the probability of each action at every step (darker = more
# likely), and the value $V(o_t)$, the agent's estimate of its discounted future of clipped rewards.
# Marks show the steps that earned points.

# %%
fig, axes = plt.subplots(2, 1, figsize=(11, 4.4), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
steps = clip.start + np.arange(len(clip))
axes[0].imshow(clip.probs.T, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
               extent=(steps[0] - 0.5, steps[-1] + 0.5, len(NAMES) - 0.5, -0.5))
axes[0].set_yticks(range(len(NAMES)), NAMES, fontsize=7)
axes[0].set_title(r"$\pi(a \mid o_t)$ of the trained model-free agent")
axes[1].plot(steps, clip.values, color="tab:blue", label="$V(o_t)$")
scored = clip.rewards > 0
axes[1].plot(steps[scored], clip.values[scored], "|", color="tab:orange", ms=10, label="points scored")
axes[1].set(xlabel="agent step")
axes[1].grid(alpha=0.3)
axes[1].legend(fontsize=8)
fig.tight_layout()
probs_max = clip.probs.max(1)
print(f"median probability of the most likely action: {np.median(probs_max):.2f}; "
      f"actions used in the clip: {[NAMES[a] for a in np.unique(clip.actions)]}")

# %% [markdown]
# ## From agent to data-collection policy
#
# {doc}`Chapter 1 <01_data>` collected the models' data with a random policy that holds each action for a few steps.
# On Ms. Pac-Man a random player dies early and visits little of the maze, so a model trained on its
# data rarely sees the later parts of a game. The public reimplementations therefore collect with a
# trained model-free agent instead, plus a little randomness so that the data also shows actions the
# agent would not take (the paper's own data policy is not known).
#
# `ssmlib.agents.AgentPolicy` wraps an agent checkpoint as a collection policy: the collector hands it
# one new frame per environment, and it keeps the 3-frame stack the agent reads. `EpsilonPolicy` then
# replaces each action by a uniformly random one with probability $\epsilon$, and `SplitPolicy` lets the
# agent play only a share of the environments, the others playing randomly. The collector takes a
# **factory** (`ssmlib.data.cli.AgentPolicies` builds all three), so that every shard gets a fresh policy
# (shards are independent, and a resumed collection writes the same bytes). The model-zoo campaign of
# {doc}`chapter 10 <10_results>` collects its dataset this way, again in every GPU lease, with the pilot
# study's seed 0 on the share of the envs and with the $\epsilon$ its config holds (printed below). Its config
# pins that file: weights that drew other actions would give the dataset another fingerprint. A tiny
# collection with the same policy, at its frame size:

# %%
CAMPAIGN = zoo_campaign.load_config("MsPacman")  # the model-zoo campaign's data policy: agent, epsilon, share
COLLECTOR, EPS, SHARE = REPO_ROOT / CAMPAIGN.agent, CAMPAIGN.epsilon, CAMPAIGN.agent_share
print(f"collecting with {COLLECTOR.relative_to(REPO_ROOT)} on {SHARE:.0%} of the envs, epsilon {EPS:g}, the rest random")
data_cfg = config_with(get_profile("paper").data, num_envs=4, steps_per_shard=50, seed=7)
factory = AgentPolicies(str(COLLECTOR), "cpu", len(NAMES), EPS, SHARE, data_cfg.mean_action_repeat)
t0 = time.perf_counter()
agent_data = collect(data_cfg, OUT / "agent-data", 200, policy_factory=factory, overwrite=True, progress=False)
print(f"{len(agent_data)} frames of {agent_data.height}x{agent_data.width} in {time.perf_counter() - t0:.1f} s")
print("manifest policy:", json.dumps(agent_data.manifest["policy"]))

# %%
demo = demo_dataset("MsPacman")
hist = {}
for label, ds in (("random (demo dataset)", demo), (f"campaign's policy", agent_data)):
    acts = np.concatenate([ds.episode(e)["actions"][:-1] for e in ds.episodes])
    hist[label] = np.bincount(acts, minlength=len(NAMES)) / len(acts)
    print(f"{label:22} policy: {json.dumps(ds.manifest['policy'])[:90]}")
fig, ax = plt.subplots(figsize=(9, 2.6))
for k, (label, h) in enumerate(hist.items()):
    ax.bar(np.arange(len(NAMES)) + (k - 0.5) * 0.4, h, width=0.4, label=label)
ax.set_xticks(range(len(NAMES)), NAMES, fontsize=8)
ax.set(ylabel="fraction of actions")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The random policy spreads its actions evenly. In the campaign's mix the agent's envs concentrate on
# the few moves its policy prefers (its bars show which), the random envs spread theirs, and $\epsilon$ keeps
# every action present in the agent's. From the command line, a collection like the campaign's at full size
# (with its `--epsilon` and `--agent-share`, printed above) is
#
# ```bash
# python -m ssmlib collect --profile paper --steps 256000 --out data/MsPacman-agent \
#     --policy-agent checkpoints/agents/MsPacman-model-free.safetensors --epsilon EPS --agent-share SHARE
# ```
#
# and the dataset's manifest records the policy, the checkpoint and the number of steps it was
# trained for, next to the seed.
#
# ## Summary
#
# - Agents see the last 3 RGB frames, resized by ALE to exactly the frames the environment models
#   were trained on (checked above), so an agent and a model can share one input.
# - The model-free baseline is Mnih et al.'s CNN with a policy and a value head, trained by A2C:
#   policy gradient with GAE advantages, value regression and an entropy bonus, rewards clipped to
#   their sign for learning, real scores reported.
# - On this CPU the quick loop runs at the speed printed above. On the GPU, two seeds of the
#   paper-size agent, trained for 2,000,000 agent steps each, ended their runs well above their
#   first games, with dips on the way; their curves are the baseline of {doc}`chapter 8 <08_i2a>`.
# - A trained agent, wrapped in `AgentPolicy` and `EpsilonPolicy` (and, for the campaign, `SplitPolicy`
#   with random envs), collects data that covers more of the game than a random policy.
#
# ## Exercises
#
# 1. Run the quick training with `gae_lambda` 0, 0.95 and 1 (`dataclasses.replace(cfg, gae_lambda=...)`)
#    for 20,000 steps each. Compare the value losses. Which setting gives the noisiest targets, and
#    why? (Hint: write $\hat R_t$ for $\lambda = 1$ as a sum of rewards.)
# 2. Reward clipping makes a ghost (200 to 1,600 points) worth as much as a pellet (10 points) to the
#    learner. Find in `ssmlib/agents/a2c.py` where the clipping happens, and argue what the agent
#    could learn differently without it. Why do most Atari agents clip anyway?
# 3. Collect 2,000 steps with the trained agent at $\epsilon$ = 0, 0.05 and 1 (1 is a uniformly
#    random policy). For each dataset, count the distinct positions of Ms. Pac-Man (hint: her colour
#    is unique on the screen) and the number of games that end. Which dataset would you train an
#    environment model on, and what would the model never learn from the others?
