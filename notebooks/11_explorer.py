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
# # 11. Explore the models
#
# The earlier chapters score the environment models with numbers: log-likelihoods, bounds, frame
# errors per horizon. This chapter is about **looking** at what the models imagine. An agent that
# plans with a model never sees a real frame after the context. It gives the model 3 real frames and
# a sequence of actions and reads back imagined frames and rewards. The **rollout explorer**
# (`ssmlib.viz.explorer`) shows exactly that, for any model, test episode, start frame and actions:
#
# - the 3 real **context frames** the model is given;
# - for every step $t+1, \dots, t+10$, the **recorded** frame (what really happened), the model's
#   **imagined** frame (its mean frame $\sigma(\text{logits})$, open-loop), and the absolute
#   **difference** between the two;
# - the **reward** the model predicts next to the recorded one;
# - for the stochastic models, **several samples** side by side: different draws of $z_{1:T}$ from the
#   prior, from the same context and actions.
#
# Three things are worth looking for, and this chapter measures each of them before handing you the
# explorer:
#
# 1. **open-loop against real**: which parts of the frame a model gets right (the maze, the pellets,
#    the score) and which it does not (the moving sprites);
# 2. **diverse futures**: an sSSM draws different futures from one context, a dSSM-DET always draws
#    the same one;
# 3. **where rollouts drift**: how the error grows with the horizon, and how the imagination
#    answers actions that were never taken ("what if I had gone left?"), the question an agent asks.
#
# The live cells use the committed pretrained models (paper size, $200 \times 160$): for each model
# the model-zoo campaign's best evaluated seed so far (`checkpoints/campaign/MsPacman/`, chosen by
# `ssmlib.pretrained.pretrained_path`; how far each has trained is in chapter {doc}`10 <10_results>`),
# on the demo dataset, whose episodes were collected live from a seed that no model was trained on.

# %%
import statistics
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ssmlib.config import MODEL_NAMES, book_profile
from ssmlib.io import device_name
from ssmlib.pretrained import model_source, pretrained_path
from ssmlib.viz.explorer import RolloutExplorer, explore
from ssmlib.viz.frames import frames_player

torch.set_num_threads(1)  # on a shared 2-core CPU one thread is faster than two competing ones
T_START = time.perf_counter()
PROFILE = book_profile()
print("profile:", PROFILE, "(this chapter uses the pretrained paper-size models at every profile)")

# %% [markdown]
# ## One rollout, and how long it takes
#
# A `RolloutExplorer` holds the state of the explorer: game, model, test episode, start frame,
# action mode, number of samples and seed. `rollout()` builds the initial state from the 3 context
# frames, repeats it once per sample, and imagines all samples in **one** batched call,
# `model.imagine(state, actions, decode=True, sample=True)`. The result is cached under the inputs it
# depends on. Moving the timeline only switches between pictures that are already drawn.
#
# How long does a 10-step rollout of the pretrained sSSM take on this CPU? We draw 7 rollouts with
# 7 different seeds (each one computed anew) and time the model's part (initial state, imagine,
# sigmoid) and everything the widget needs (the model plus the 10 pictures as PNGs).

# %%
ex = RolloutExplorer("MsPacman", "sSSM", horizon=10, samples=1)
print(textwrap.fill(ex.describe(), 88))
model_s, total_s = [], []
for seed in range(7):
    ex.update(seed=seed)
    t0 = time.perf_counter()
    r = ex.rollout()
    pngs = [ex.png(t) for t in range(ex.horizon)]
    total_s.append(time.perf_counter() - t0)
    model_s.append(r.seconds)
print(f"device: {device_name('cpu')}, torch threads: {torch.get_num_threads()}")
print(f"10-step rollout of the pretrained sSSM ({ex.data.height}x{ex.data.width} frames), "
      f"median of {len(model_s)}:")
print(f"  model {statistics.median(model_s) * 1000:.0f} ms, with the 10 pictures "
      f"{statistics.median(total_s) * 1000:.0f} ms (rollouts computed: {ex.computes})")

# %% [markdown]
# The model's part is the small one. A state-space model steps its small state map (1/8 of the
# frame's height and width) and decodes all the frames in one batched decoder call at the end. Most of the rest is drawing and compressing
# the pictures. This is fast enough that the explorer recomputes the rollout whenever an action,
# the start frame or the number of samples changes.
#
# ## Open-loop against real
#
# Below is step $t+6$ of that window, as the explorer draws it: the recorded frame, the imagined
# one, and in the bottom row the numbers of the step and $2 \times |\text{imagined} - \text{recorded}|$
# (doubled so that small errors are visible).

# %%
ex.update(seed=0, t=5)
fig, ax = plt.subplots(figsize=(7, 6.2))
ax.imshow(ex.frame(), interpolation="nearest")
ax.set_axis_off()
fig.tight_layout()

# %% [markdown]
# The difference image is black where the model is right. The maze, the pellets and the lives are
# static, and every model learns them early. What remains are the sprites, each of which leaves a
# bright mark in the difference: the ghosts and Ms. Pac-Man in the recorded frame are missing or
# blurred in the imagined one. The score can also differ: the model has to predict when a pellet is
# eaten and draw the new digits.
#
# The same window for all five models, with the recorded actions: the frame error (MSE of the mean
# frame against the recorded one) at every step, and the rewards.

# %%
window = {"episode": ex.episode, "start": ex.start}
rolls = {}
for name in MODEL_NAMES:
    e = RolloutExplorer("MsPacman", name, horizon=10, samples=1, **window)
    rolls[name] = e.rollout()
rec = rolls["sSSM"].real_rewards
print("recorded rewards:   ", " ".join(f"{v:g}" for v in rec))
for name, r in rolls.items():
    right = int((r.predicted_rewards[0] == rec).sum())
    print(f"{name:9} MSE t+1 {r.mse[0, 0]:.5f}, t+10 {r.mse[0, -1]:.5f}; {right} of {len(rec)} rewards right")
    print(f"{'':9} predicted:", " ".join(f"{v:.3g}" for v in r.predicted_rewards[0]))
print("models that predict a non-zero reward in this window:")
print("  ", [name for name, r in rolls.items() if (r.predicted_rewards != 0).any()] or "none")

# %% [markdown]
# One window is one example. Its numbers move with the window, so we read shapes, not decimals, and
# measure the drift on more windows below. Read the rewards with care. Most steps of Ms. Pac-Man
# give no reward, so a model that always predicts 0 gets every step without a pellet right, and
# the count "right" flatters it. The last line lists the models that predict any non-zero reward
# in this window. A reward head that has only learned "usually nothing" is useless to an agent,
# which plans for exactly the steps that do pay.
#
# ## Diverse futures: sSSM against dSSM-DET
#
# With `samples=4`, the explorer repeats the initial state 4 times and imagines the 4 futures in one
# call. For dSSM-DET there is nothing to sample: the 4 rows are the same rollout, bit for bit. For the
# sSSM each row draws its own $z_{1:T}$ from the prior, and for dSSM-VAE each row draws $z_t$ for
# the decoder only. The number to read is the per-pixel standard deviation across the 4 samples,
# averaged over the frame.

# %%
diverse = {}
for name in (m for m in MODEL_NAMES if "SSM" in m):  # the three state-space models
    e = RolloutExplorer("MsPacman", name, horizon=10, samples=4, seed=0, **window)
    diverse[name] = e
    r = e.rollout()
    std = (r.imagined.astype(np.float32) / 255).std(0).mean((1, 2, 3))  # (T,)
    print(f"{name:9} mean per-pixel std across 4 samples, per step:")
    print("   ", " ".join(f"{v:.4f}" for v in std))

# %%
assert diverse["dSSM-DET"].rollout().samples_identical(), "dSSM-DET's samples differ"
assert not diverse["sSSM"].rollout().samples_identical(), "the sSSM's samples are identical"
print("dSSM-DET samples identical:", diverse["dSSM-DET"].rollout().samples_identical(),
      "| sSSM samples identical:", diverse["sSSM"].rollout().samples_identical())

# %%
e = diverse["sSSM"]
e.update(t=9)
fig, ax = plt.subplots(figsize=(12, 5.6))
ax.imshow(e.frame(), interpolation="nearest")
ax.set_axis_off()
ax.set_title("sSSM, 4 samples of the same 10 steps: step t+10", fontsize=10)
fig.tight_layout()

# %% [markdown]
# The sSSM's samples do differ, and their spread grows over the first steps: each step adds a draw of
# $z_t$ that then stays in the state. The spreads printed above say how much. {doc}`Chapter 5 <05_sssm>`
# maps where: the sSSM's samples disagree along the corridors, over which pellets a future eats, while
# dSSM-VAE's disagree on the sprites. Its $z_t$ is drawn afresh for the decoder at every step and never
# enters the state, so nothing carries one sample's choice into its next frame. This is the difference
# between the two latent models that chapters {doc}`4 <04_dssm>` and {doc}`5 <05_sssm>` describe, and here you can see it.
#
# ## Where rollouts drift
#
# Over 30 steps instead of 10, on 8 windows (2 per test episode, after the intro), with the recorded
# actions: the mean frame error at every step, for every model.

# %%
H = 30
drift = {}
for name in MODEL_NAMES:
    e = RolloutExplorer("MsPacman", name, horizon=H, samples=1)
    errs = []
    for ep in range(len(e.episodes)):
        for start in (120, e.max_start(ep)):
            e.update(episode=ep, start=start)
            errs.append(e.rollout().mse[0])
    drift[name] = np.mean(errs, 0)
fig, ax = plt.subplots(figsize=(7, 3.6))
for name, v in drift.items():
    ax.plot(range(1, H + 1), v, marker="o", ms=2, label=name)
ax.set(xlabel="step t+h", ylabel="frame MSE (mean of 8 windows)", title="open-loop error over 30 steps (live, CPU)")
ax.grid(alpha=0.3), ax.legend(fontsize=8)
fig.tight_layout()
for name, v in drift.items():
    print(f"{name:9} MSE t+1 {v[0]:.5f}, t+10 {v[9]:.5f}, t+30 {v[-1]:.5f} (t+30 / t+1: {v[-1] / v[0]:.1f}x)")
print("lowest MSE at t+1:", min(drift, key=lambda m: drift[m][0]), "| at t+30:", min(drift, key=lambda m: drift[m][-1]))
print("growth t+30 / t+1, largest first:", " > ".join(sorted(drift, key=lambda m: -drift[m][-1] / drift[m][0])))

# %% [markdown]
# Every model drifts: its error at $t+30$ is a multiple of its error at $t+1$ (the last column). The
# models were trained to predict 10 steps, so the steps after $t+10$ ask for more than they
# learned. The last two lines rank the models on these 8 windows: which one is best one step ahead,
# which one is best 30 steps ahead, and whose error grows fastest. They need not be the same model.
# The pixel models (AR, RAR) read back their own blurred frames at every step, so their errors
# compound; this is the drift of {doc}`chapter 3 <03_autoregressive>`. The state-space models never look at a frame after the
# context, and their training objective was open-loop from the start ({doc}`chapter 4 <04_dssm>`).
#
# ### Actions that were never taken
#
# An agent asks "what if?" questions: the same context, but another action. In `"repeat"` mode the
# explorer holds one action for all 10 steps. Below, the sSSM's imagined frame at $t+10$ for each of
# the four directions, and the per-pixel standard deviation across the four futures: the places
# where the action changes what the model imagines.

# %%
e = RolloutExplorer("MsPacman", "sSSM", horizon=10, samples=1, **window)
print("the sSSM here:", model_source(pretrained_path("MsPacman", "sSSM")))
names = e.action_meanings
directions = [names.index(a) for a in ("UP", "RIGHT", "LEFT", "DOWN")]
futures = []
for a in directions:
    e.update(action_mode="repeat", repeat_action=a)
    futures.append(e.rollout().imagined[0, -1].astype(np.float32) / 255)
spread = np.std(futures, 0).mean(-1)
fig, axes = plt.subplots(1, 5, figsize=(14, 3.8))
for ax, a, f in zip(axes, directions, futures):
    ax.imshow(f, interpolation="nearest")
    ax.set_title(f"repeat {names[a]}: t+10", fontsize=9)
im = axes[-1].imshow(spread, cmap="magma", interpolation="nearest")
axes[-1].set_title("std across the 4 actions", fontsize=9)
fig.colorbar(im, ax=axes[-1], fraction=0.05)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
sample_spread = (diverse["sSSM"].rollout().imagined[:, -1].astype(np.float32) / 255).std(0).mean(-1)
print("t+10, mean per-pixel std:")
print(f"  across the 4 actions {spread.mean():.4f} (max {spread.max():.3f})")
print(f"  across 4 samples with the recorded actions {sample_spread.mean():.4f} (max {sample_spread.max():.3f})")
print(f"action spread / sample spread: {spread.mean() / sample_spread.mean():.1f}")
print("recorded actions of this window:")
print("  ", " ".join(names[a] for a in e.recorded_actions()))

# %% [markdown]
# Where the four futures differ is where the model thinks the action matters. A model that
# ignored its actions would give four identical frames and a black map. A well-trained model would
# draw Ms. Pac-Man in four different places, and the map would show a bright trail from her
# position in the last context frame along each direction. Read the printed ratio: it compares how
# much the action changes the imagined frame with how much a new draw of $z$ does.
#
# Look at the four frames above and the map, and read the printed ratio. Where the frames are hard to tell
# apart and the map is dark except for small spots on the sprites, the model barely answers the action:
# Ms. Pac-Man herself, whom the actions steer, is a small sprite, which these models draw only faintly
# ({doc}`chapter 5 <05_sssm>`), and what an action does to her is a small part of a frame's likelihood, so
# training gains little by drawing her sharply. The model used here is the campaign's run printed above the
# figure, with the training frames it had seen; its data came half from the model-free agent and half from
# random play. This is what an agent querying these models would get. The I2A agent ({doc}`chapter 8 <08_i2a>`) is built for imperfect models:
# it learns from experience how much of what it imagines to trust.
#
# ## The explorer
#
# The widget below is the whole explorer. In JupyterLab (`make lab`, then open
# `notebooks/11_explorer.ipynb`) every control works:
#
# - **game** and **model**: the committed pretrained models, or any checkpoint by path (a
#   `.safetensors` file, or a run folder of `python -m ssmlib train`). A model of another frame size
#   gets its own demo dataset, collected live at its size the first time (a few seconds);
# - **episode** and **start frame**: which test window; the context frames are shown under them;
# - **actions**: the recorded ones, one action repeated, or one dropdown per step;
# - **samples** (1 to 4) and **new samples** (another seed), for the stochastic models;
# - **timeline** and **play**: step through the 10 pictures, which are drawn once per rollout;
# - **export GIF**: writes the 10 pictures as an animated GIF under `runs/explorer/`, or to the
#   path you type.
#
# On the static page of the book there is no Python. The widget state was saved when the book was
# built, so the page shows the explorer as it was then. The timeline and play work there too (the
# slider switches between pictures in the browser), but the other controls need JupyterLab.

# %%
explorer = explore("MsPacman", "sSSM", samples=2, **window)
explorer

# %% [markdown]
# ## A player for the static page
#
# The same rollout as a plain animation, made with matplotlib's `to_jshtml` (`frames_player`). It
# needs neither a kernel nor the widget library, only the page itself.

# %%
ex.update(seed=0)  # the sSSM explorer of the first section: 1 sample, the same window
frames_player([ex.frame(t) for t in range(ex.horizon)], fps=2, scale=0.9,
              titles=[f"{ex.model_label}, step t+{t + 1}" for t in range(ex.horizon)])

# %% [markdown]
# ## Exporting a rollout
#
# `export_gif` writes the pictures of the current rollout as an animated GIF, atomically (a reader
# never sees half a file), by default under `runs/explorer/`. The "export GIF" button of the widget
# calls it on the widget's explorer, `explorer.explorer`.

# %%
from PIL import Image  # noqa: E402  (only this cell needs it)

path = explorer.explorer.export_gif()
with Image.open(path) as gif:
    print(f"wrote {path.relative_to(path.parents[2])}:")
    print(f"  {gif.n_frames} frames of {gif.size[0]}x{gif.size[1]}, {path.stat().st_size / 1024:.0f} KiB")

# %%
print(f"chapter runtime: {time.perf_counter() - T_START:.0f} s")

# %% [markdown]
# ## Summary
#
# - An environment model is queried open-loop: 3 real frames, then actions only. The explorer
#   puts its imagined frames next to the recorded ones and their difference, step by step, with the
#   predicted and recorded rewards.
# - The pretrained models get the static parts of the frame right. Their errors sit on the moving
#   sprites and the score, and the pictures above show where.
# - dSSM-DET has one future per context and actions: its samples are identical. The sSSM draws a
#   different future with every sample and carries each draw in its state. dSSM-VAE's samples differ
#   in how each frame is drawn, with no memory from one frame to the next.
# - Every model's error grows with the horizon, beyond the 10 steps it was trained on too.
# - A 10-step rollout of the pretrained sSSM takes the time printed at the top of the chapter on this
#   CPU. The explorer computes a rollout once, and the timeline only switches pictures.
#
# ## Exercises
#
# 1. In the explorer, choose a window in which a pellet is eaten (a recorded reward of 10) and
#    compare the predicted rewards of dSSM-DET and sSSM. Do they predict the reward at the right
#    step, one step off, or never? Export both rollouts as GIFs and compare the score digits.
# 2. Train a quick sSSM ({doc}`chapter 5 <05_sssm>`'s training cell), load its run folder in the explorer through
#    the checkpoint path, and compare its samples with the pretrained sSSM's. What changes in the
#    diversity of the samples after 200 CPU steps?
# 3. Repeat the "actions that were never taken" cell with dSSM-DET and with AR. Which model's
#    imagination depends most on the action, and where in the frame?
