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
# # 12. Play inside the model
#
# {doc}`Chapter 11 <11_explorer>` showed what a model imagines for actions you choose in advance. This chapter lets you
# **play** in it. You press an action, and two things move at once:
#
# - the **learned model** makes one transition and draws its imagined frame and its predicted reward;
# - the **real game**, an ALE emulator started from the same frame, makes the same move.
#
# The two are shown side by side, with the difference image, the score each side has made since the
# start, and buttons to **re-sync** the model (give it the last 3 real frames again), to **resample**
# the stochastic model's future, and to **switch** the model mid-play. A model that has learned the
# game keeps the two pictures together. Where it has not, you see where they part, and you can steer
# into it.
#
# Everything is in `ssmlib.viz.play`. `PlaySession` holds both sides and their histories (plain
# Python, tested without a browser), and `play_widget` is its ipywidgets front end. The last section
# holds the widget; the sections before it measure what the widget shows, so that the static page of
# the book tells the story without a kernel.
#
# The models are the committed pretrained ones ($200 \times 160$, at every profile), chosen by
# `ssmlib.pretrained.pretrained_path`: for MsPacman each model's best evaluated seed of the model-zoo
# campaign so far (`checkpoints/campaign/MsPacman/`; how far each has trained is in chapter
# {doc}`10 <10_results>`), for Bowling the first zoo's short GPU runs (`checkpoints/Bowling/`, chapters
# {doc}`3 <03_autoregressive>` to {doc}`5 <05_sssm>`).

# %%
import json
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ssmlib.config import RESULTS_DIR, book_profile
from ssmlib.viz.frames import frames_player
from ssmlib.viz.play import (DEFAULT_START, LATENCY_TARGET_MS, PlaySession, play_widget, quick_jumpy_model,
                             record_demo)

torch.set_num_threads(1)  # the latency target is for one CPU thread
T_START = time.perf_counter()
print("profile:", book_profile(), "(this chapter uses the pretrained paper-size models at every profile)")

# %% [markdown]
# ## The start: a live demo episode, and restoring the emulator
#
# Both sides must start from the same moment of a real game. `record_demo` plays one episode live:
# the emulator is reset from a seed (1000, which no pretrained model was trained on) and driven by
# the collector's random policy (uniform actions, each held for a few steps). At every frame it keeps
# the emulator's whole state, `cloneState(include_rng=True)`.
#
# The RNG matters. ALE v5 has **sticky actions**: at every emulator frame, with probability 0.25, the
# game repeats the previous action instead of the new one. The same actions from the same screen can
# therefore lead to different frames. A saved state that includes the emulator's random number
# generator fixes its future draws too, so the continuation is exact. A state saved without it drifts
# apart after a few steps. So the real side here has the same sticky actions as the collected data,
# and it is still reproducible.
#
# The check: start a session at frame 120 and feed the real side the recorded actions. Every frame
# must equal the recorded one, pixel for pixel.

# %%
demo = record_demo("MsPacman")
print(f"demo episode: seed {demo.seed}, {demo.length} frames, sticky actions {demo.sticky_actions},")
print(f"  {'ended' if demo.ended else 'cut'} at the last frame, recorded score {demo.rewards.sum():g}")
check = PlaySession("MsPacman", "dSSM-DET", start=DEFAULT_START)
check.play(demo.actions[DEFAULT_START:DEFAULT_START + 100])
same = [np.array_equal(check.real_screens[DEFAULT_START + 1 + i], demo.screens[DEFAULT_START + 1 + i])
        for i in range(len(check.steps))]
assert all(same), "the restored emulator left the recorded episode"
print(f"restored at frame {DEFAULT_START}, fed the recorded actions:")
print(f"  {sum(same)} of {len(same)} frames identical to the recording")
check.close()

# %% [markdown]
# The real side shows its frames after the same preprocessing as the training data
# (`ssmlib.data.ale.preprocess`: the whole $210 \times 160$ screen resized to the model's frame size
# by area averaging), so the difference image compares like with like.
#
# ## A play-through, as the widget shows it
#
# A reader's moves, scripted so that the page can show them: 16 presses of LEFT, then 16 of DOWN,
# from frame 120. The same 32 actions go into the game and into each model. Each model gets the
# 3 real frames up to frame 120 once, and after that only the actions. Every press is one
# `session.press(action)`. Below is what the widget shows for each press of dSSM-DET: the real frame,
# the imagined one, $2 \times |\text{imagined} - \text{real}|$, and the numbers of the press.

# %%
moves = ["LEFT"] * 16 + ["DOWN"] * 16
sessions = {}
for name in ("dSSM-DET", "sSSM"):
    s = PlaySession("MsPacman", name, start=DEFAULT_START, seed=0)
    s.play(moves)
    sessions[name] = s
det = sessions["dSSM-DET"]
frames_player(det.pictures(), fps=4, scale=0.75,
              titles=[f"dSSM-DET, press {i + 1}: {m}" for i, m in enumerate(moves)])

# %%
for name, s in sessions.items():
    mse = [st.mse for st in s.steps]
    print(f"{name:9} frame MSE: presses 1-8 {np.mean(mse[:8]):.4f}, 25-32 {np.mean(mse[-8:]):.4f}")
    print(f"{'':9} score since frame {s.start}: real {s.real_score:g}, predicted {s.predicted_score:.3g}")
    print(f"{'':9} model time per press (median, 1 thread, this build): "
          f"{statistics.median(st.model_ms for st in s.steps):.0f} ms")

# %% [markdown]
# Read the picture first. The maze, the pellets and the lives stay right, because they do not move.
# The sprites are where the two sides part. Ms. Pac-Man moves in the real game as you steer her,
# while the model draws her only faintly, and its ghosts fade. {doc}`Chapter 11 <11_explorer>` found the same thing with
# the recorded actions: none of the models served here has finished training (MsPacman's are the
# model-zoo campaign's best seeds so far, {doc}`chapter 10 <10_results>`; Bowling's are the first zoo's short
# runs on a random policy), and one small sprite is a small part of a frame's likelihood.
#
# The two printed lines per model give the frame error early and late in the play, and the score each
# side has made since frame 120. The real score counts the pellets Ms. Pac-Man really ate. The
# predicted score adds up the reward the model predicted at each press. An agent that plans with the
# model sees only the second number.
#
# ## Re-sync
#
# Open-loop, a model's errors pile up. The **re-sync** button starts the model again from the last 3
# real frames (`initial_state`), as an agent does when it plans from the frame it really sees. Here
# is the same play for dSSM-DET, once without a re-sync and once with a re-sync every 8 presses.

# %%
resynced = PlaySession("MsPacman", "dSSM-DET", start=DEFAULT_START)
for i, m in enumerate(moves):
    if i and i % 8 == 0:
        resynced.resync()
    resynced.press(m)
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(range(1, len(moves) + 1), [st.mse for st in det.steps], marker="o", ms=3, label="never re-synced")
ax.plot(range(1, len(moves) + 1), [st.mse for st in resynced.steps], marker="o", ms=3,
        label="re-synced every 8 presses")
for x in (8.5, 16.5, 24.5):
    ax.axvline(x, color="grey", lw=0.6, ls=":")
ax.set(xlabel="press", ylabel="frame MSE", title="dSSM-DET against the real game, same 32 actions")
ax.grid(alpha=0.3), ax.legend(fontsize=8)
fig.tight_layout()
before = np.mean([det.steps[i].mse for i in (8, 16, 24)])
after = np.mean([resynced.steps[i].mse for i in (8, 16, 24)])
print("MSE at the first press after each re-sync point:")
print(f"  without re-sync {before:.4f}, with {after:.4f}")
print(f"segments of the re-synced play: {len(resynced.segments)}")

# %% [markdown]
# After each re-sync the error drops back to about what it was at the first press, then grows again.
# The dotted lines mark the re-syncs. How fast the error grows between re-syncs tells you how many
# steps ahead an agent can trust this model.
#
# ## A stochastic model's other futures
#
# The sSSM draws a latent $z_t$ from its prior at every transition. **Resample** replays the presses
# since the last sync with the same actions and another seed: the real side stays, and the
# imagined frames are redrawn. For dSSM-DET nothing would change.

# %%
sssm = sessions["sSSM"]
first = [st.imagined.copy() for st in sssm.steps]
sssm.resample()
diff = [np.abs(a.astype(np.int16) - st.imagined).mean() for a, st in zip(first, sssm.steps)]
print("sSSM, mean |difference| between two draws of the same 32 presses")
print("  (0-255), every 8th press:", " ".join(f"{d:.2f}" for d in diff[::8]), f"... last {diff[-1]:.2f}")
print("real frames the same in the dSSM-DET and sSSM sessions:",
      all(np.array_equal(a.real, b.real) for a, b in zip(det.steps, sssm.steps)))

# %% [markdown]
# The two draws are almost the same at the first press and differ more after it, but the differences
# stay small: as chapters {doc}`5 <05_sssm>` and {doc}`11 <11_explorer>` measured, the pretrained sSSM's prior is narrow, so its futures
# stay close to its mean.
#
# ## Switching models mid-play, and a jumpy model
#
# The model can be switched at any press. The new model starts from the last real frames, and the
# game goes on. A **jumpy** model of jump $k$ makes one transition per $k$ environment steps: one
# press repeats the action $k$ times in the real game, and the model draws the frame $k$ steps later.
# It gets its 3 context frames $k$ steps apart, as it was trained.
#
# No jumpy model is served: the campaign's jumpy sSSMs are committed (`checkpoints/campaign/MsPacman/`,
# `sSSM-k2-s0` and `sSSM-k4-s0`), but the pretrained models this widget offers are each model's best seed at
# $k = 1$ (`pretrained_path`). `quick_jumpy_model` trains a small dSSM-DET with $k = 4$ at the
# quick profile ($80 \times 64$ frames) for a few seconds, or reuses the one it trained before. It is
# blurrier than the pretrained models, and its pictures are smaller.

# %%
jumpy_path = quick_jumpy_model(jump=4)
mixed = PlaySession("MsPacman", "dSSM-DET", start=DEFAULT_START)
plan = [("dSSM-DET", ["LEFT"] * 6), ("RAR", ["UP"] * 6), ("sSSM", ["RIGHT"] * 6), (jumpy_path, ["DOWN"] * 4)]
for model, acts in plan:
    if model != "dSSM-DET":
        mixed.set_model(model)
    mixed.play(acts)
print(f"{'press':>5} {'model':28} {'steps/press':>11} {'frame':>6} {'MSE':>7}")
frame = mixed.start
for i, st in enumerate(mixed.steps):
    frame += st.jump
    if i == 0 or st.segment != mixed.steps[i - 1].segment or i == len(mixed.steps) - 1:
        print(f"{i + 1:>5} {st.model_label:28} {st.jump:>11} {frame:>6} {st.mse:>7.4f}")
print(f"{len(mixed.steps)} presses, {mixed.env_steps()} environment steps, {len(mixed.segments)} segments")

# %%
frames_player(mixed.pictures(), fps=3, scale=0.75,
              titles=[f"press {i + 1}: {st.model_label}, {mixed.action_meanings[st.action]}"
                      + (f" x{st.jump}" if st.jump > 1 else "") for i, st in enumerate(mixed.steps)])

# %% [markdown]
# The table prints the first press of each model, and the last press. At every switch the new model
# starts from the real frames, so its first error does not inherit what the previous model had
# drifted to. The jumpy model's presses each move the game 4 steps (the frame column), and the model
# makes one transition for all four. This is what makes jumpy models cheap for an agent ({doc}`chapter 6 <06_jumpy_speed>`).
# Its errors are larger than the pretrained models': it is a much smaller model, trained for seconds.
#
# ## Latency: one key press to the next imagined frame
#
# The widget should feel like a game: the target is at most 100 ms from a key press to the
# next imagined frame, for dSSM-DET and the sSSM at $200 \times 160$ on one CPU thread.
# `python -m ssmlib bench play --threads 1` measures it for dSSM-DET, the sSSM, RAR and jumpy models
# with $k = 4$, on the actions of the demo episode. It uses the pretrained checkpoints committed when it ran
# (the file names them; some have been replaced by the campaign's since), and freshly built paper-size
# models where none was committed: the time does not depend on the weights, only on the architecture. It
# writes `results/speed/play-cpu-1thread.json`. The table below reads that file:
#
# - **model ms**: `model.step` + `model.decode` + the frame as 8-bit pixels, i.e. the key press to
#   the imagined frame (the median of 40 presses; its 90th percentile and minimum next to it);
# - **whole press**: everything the widget computes per key: the model, the emulator's $k$ steps and
#   their preprocessing, and the picture as a PNG. The browser's round trip to the kernel comes on
#   top of it.

# %%
bench = json.loads((RESULTS_DIR / "speed" / "play-cpu-1thread.json").read_text())
prov = bench["provenance"]
print(f"{prov['device']}, {bench['threads']} torch thread, {prov['cpu_count']} cores, "
      f"load average {prov['load_average_1m'][0]:.1f} -> {prov['load_average_1m'][1]:.1f}")
print(f"git {prov['git_sha'][:12]}, torch {prov['versions']['torch']}")
print(f"{'model':>9} {'k':>2} {'model ms':>9} {'p90':>6} {'min':>6} {'per env step':>12} {'whole press':>11}  "
      f"<= {bench['target_ms']} ms?")
for r in bench["rows"]:
    ok = "yes" if r["model_ms_median"] <= bench["target_ms"] else "no"
    print(f"{r['model']:>9} {r['jump']:>2} {r['model_ms_median']:>9.1f} {r['model_ms_p90']:>6.1f} "
          f"{r['model_ms_min']:>6.1f} {r['model_ms_per_env_step']:>12.1f} {r['press_ms_median']:>11.1f}  {ok}")
print("weights:")
for r in bench["rows"]:
    print(f"  {r['model']} k={r['jump']}: {r['weights'].split(' (')[0]}")

# %% [markdown]
# The last column compares each median model time with the target (the 90th percentile and the
# fastest press are next to it). A state-space model steps its small state map and runs its decoder once per press. RAR also
# re-encodes the frame it drew, so it is the slowest of the three models that advance one step per
# press. A jumpy model makes one transition per $k$ environment steps, so its time per environment
# step (fourth column) is a fraction of its time per press. The whole press adds the emulator, the
# preprocessing and the picture as a PNG. The machine was shared with other jobs while this ran (the
# load average is printed), so the times are upper bounds for an idle laptop. The times printed with
# the play-through above were measured on the machine that built this page.
#
# ## The widget
#
# Below is the whole widget. In JupyterLab (`make lab`, then open `notebooks/12_play.ipynb`) every
# control works:
#
# - **game**, **model** (the committed pretrained models and the quick jumpy model) and **start
#   frame** of the demo episode; changing the model mid-play continues from the real frames;
# - the **action pad**: one button per action of the game's action set. Or click into the widget and
#   use the **arrow keys** (q, e, z, c: the diagonals; space: no-op);
# - **re-sync**, **resample future** (stochastic models) and **restart**.
#
# On the static page of the book there is no kernel, and the buttons do nothing. The page shows the
# widget as it was when the book was built, at its start frame. The players above show what it does.

# %%
widget = play_widget("MsPacman", "dSSM-DET", start=DEFAULT_START,
                     extra_models={"dSSM-DET k=4 (quick)": jumpy_path})
widget

# %%
for s in (*sessions.values(), resynced, mixed):
    s.close()
print(f"chapter runtime: {time.perf_counter() - T_START:.0f} s")

# %% [markdown]
# ## Summary
#
# - `PlaySession` drives a learned model and the real game with the same actions. The real side
#   starts from an emulator state saved with its RNG, so even with sticky actions it replays the
#   recorded episode frame for frame. The model side is `model.step` and `model.decode`, press by
#   press, and equals one `model.imagine` call on the same actions.
# - The pretrained models keep the static maze and lose the moving sprites within a few presses. A
#   re-sync from the real frames brings the error back down. The sSSM's resampled futures differ
#   only a little.
# - Switching models mid-play restarts from the real frames. A jumpy model moves the game $k$ steps per
#   press for one transition.
# - One key press to the next imagined frame, at $200 \times 160$ on one CPU thread, is measured by
#   `python -m ssmlib bench play` and printed above against the 100 ms target.
#
# ## Exercises
#
# 1. In the widget, steer Ms. Pac-Man into a corridor with pellets and watch the predicted score. Does
#    the model predict the pellets' reward at the press where the real score changes?
# 2. Play 20 presses with dSSM-DET, switch to the sSSM, and press **resample future** a few times.
#    Which parts of the imagined frame change between draws?
# 3. Measure the latency on your own machine:
#    `python -m ssmlib bench play --threads 1 --out runs/play.json`, and with `--threads 4`. Which
#    model gains most from more threads?
