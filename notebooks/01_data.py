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
# # 1. Data: frames, actions and rewards from the Arcade Learning Environment
#
# Every model in this book is an **environment model**: given a few real frames of an Atari game and
# a sequence of actions, it predicts the frames and rewards that follow. Buesing et al. (2018) learn
# these models from raw pixels, so the first thing we need is pixels: episodes of a game, recorded
# frame by frame together with the actions that were taken and the rewards that came back.
#
# A training example is a **window** of the recorded stream: $C = 3$ context frames
# $o_{t-2}, o_{t-1}, o_t$ and $T$ future frames $o_{t+1..t+T}$ with the actions $a_{t..t+T-1}$ and
# rewards $r_{t..t+T-1}$. The model is asked for
#
# $$p(o_{t+1:t+T},\, r_{t:t+T-1} \mid o_{t-2:t},\, a_{t:t+T-1}).$$
#
# This chapter collects such data with the code in `ssmlib.data`, shows what the frames look like
# before and after preprocessing, and looks at the statistics a model will have to learn.
#
# Run it top to bottom. The **quick** profile (the default, and what `make book` runs) uses small
# 80x64 frames and a few thousand steps so it finishes in seconds on a laptop CPU; set
# `SSMLIB_PROFILE=paper` to collect at the paper's 200x160.

# %%
import json

import matplotlib.pyplot as plt
import numpy as np

from ssmlib.book import CONTEXT, book_dataset
from ssmlib.config import RESULTS_DIR, book_profile
from ssmlib.data.ale import action_meanings, make_env, preprocess, resolve_game
from ssmlib.data.windows import WindowSampler
from ssmlib.studies.speed import format_table, format_workers_table
from ssmlib.viz.frames import episode_browser, frame_strip, frames_player

PROFILE = book_profile()
print("profile:", PROFILE)

# %% [markdown]
# ## The game and its actions
#
# The paper certainly used **MS_PACMAN** (its reinforcement-learning experiments are on it); ssmlib
# accepts any ALE game by its short name. The ROMs ship inside the `ale-py` wheel. MsPacman's minimal
# action set has 9 actions: no-op and the eight joystick directions.

# %%
game = resolve_game("MsPacman")
print(game)
print(action_meanings(game))

# %% [markdown]
# ## Raw screens and the one preprocessing function
#
# The ALE renders a $210 \times 160$ RGB screen. The paper's models work on frames whose sides are a
# multiple of 8, because the encoder reduces the frame by a factor 8 into the **state map** (for a
# $200 \times 160$ frame, a $25 \times 20$ map). How the paper cropped or resized is not known; ssmlib
# uses one function for every path (collection, widgets, agents): an area-averaging resize of the
# whole screen, score and lives included (`ssmlib.data.ale.preprocess`). Below: a raw screen after
# 60 random steps, and the same screen at the paper size and at the quick size.

# %%
env = make_env(game)
obs, _ = env.reset(seed=0)
rng = np.random.default_rng(0)
for _ in range(60):
    obs, *_ = env.step(int(rng.integers(env.action_space.n)))
env.close()
fig = frame_strip([[obs, preprocess(obs, 200, 160), preprocess(obs, 80, 64)]],
                  col_labels=["raw 210x160", "paper 200x160", "quick 80x64"], scale=3)

# %% [markdown]
# ## Sticky actions and frame skip
#
# We follow ALE v5 (Machado et al., 2018): each agent step lasts **4 emulator frames** (frame skip),
# and at every emulator frame the console ignores the new action with probability $\varsigma = 0.25$
# and repeats the previous one:
#
# $$a^{\text{emu}}_f = \begin{cases} a^{\text{emu}}_{f-1} & \text{with probability } \varsigma \\ a_t & \text{otherwise.}\end{cases}$$
#
# Sticky actions make the game stochastic even for a fixed action sequence, which is exactly what a
# *stochastic* environment model ({doc}`chapter 5 <05_sssm>`) should capture and a deterministic one cannot. Agent and
# model see only every 4th frame; the reward of a step is the sum over its 4 frames.

# %% [markdown]
# ## Collecting a dataset
#
# `ssmlib.data.collect` steps many emulators at once with ale-py's native `AtariVectorEnv` (C++
# threads), preprocesses the screens, cuts the streams into episodes and writes **shards**: uint8
# arrays plus a `manifest.json` with the game, the preprocessing, the policy, the seed, the library
# versions and a SHA-256 checksum of every file. A shard is written to a temporary folder and renamed
# into place, so a killed collection leaves only complete shards and `--resume` continues it,
# producing the same bytes as an uninterrupted run (shard $i$ is collected from seed $(s, i)$).
#
# The policy here is uniformly random, each action held for a geometric number of steps (mean 4), so
# Ms. Pac-Man runs along corridors instead of jittering. The same command line does this at scale:
#
# ```bash
# python -m ssmlib collect --game MsPacman --steps 128000 --profile paper --out data/MsPacman-paper
# ```

# %%
ds = book_dataset(PROFILE)  # the book's shared dataset: 8,000 steps at quick, 128,000 at paper, 20% test episodes
summary = ds.summary()
print(json.dumps({k: summary[k] for k in ("frames", "episodes", "test_episodes")}))

# %%
print("frame shape:", ds.shards[0]["frames"].shape[1:], "| actions:", ds.num_actions,
      "| preprocessing:", ds.manifest["preprocessing"])

# %% [markdown]
# ## What is in the data
#
# Episodes end when Ms. Pac-Man loses her last life (terminated) or when a shard ends (truncated;
# windows never cross either kind of end). Rewards are sparse and discrete: 10 for a pellet, 50 for a
# power pill, 200 and more for ghosts and fruit, sums of these within one 4-frame step. The paper
# predicts rewards as bits of $\lfloor r \rfloor$, which this discreteness makes natural.

# %%
lengths = np.array([e.length for e in ds.episodes])
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
axes[0].hist(lengths, bins=20, color="tab:blue")
axes[0].set(title="episode length (frames)", xlabel="frames", ylabel="episodes")
axes[1].bar(range(ds.num_actions), summary["action_counts"], color="tab:green")
axes[1].set_xticks(range(ds.num_actions), ds.action_meanings, rotation=60, fontsize=7)
axes[1].set(title="actions taken")
rv = {float(k): v for k, v in summary["reward_values"].items()}
axes[2].bar([str(int(k)) for k in rv], list(rv.values()), color="tab:orange")
axes[2].set(title="reward per step", yscale="log", ylabel="steps")
fig.tight_layout()

# %% [markdown]
# ## Train and test split, and windows
#
# Episodes, not frames, are split: an episode goes to the test set when a hash of (seed, episode id)
# falls below the test fraction, the same on every machine. Test log-likelihoods in later chapters
# are computed on episodes the model never saw.
#
# **Why 3 context frames?** One frame shows where things are, not where they go. Two frames give
# velocities; three give accelerations and disambiguate sprites that flicker between frames (the ALE
# draws some objects on alternate frames). The paper builds the initial state from 3 frames.
#
# `WindowSampler` copies a split into one uint8 tensor (on the GPU when it fits) and gathers whole
# batches by index: `frames` (B, C+T, 3, H, W) in [0, 1], `actions` (B, C+T-1), `rewards` (B, C+T-1).

# %%
train = WindowSampler(ds, "train", context=CONTEXT, horizon=10, seed=0)
test = WindowSampler(ds, "test", context=CONTEXT, horizon=10, seed=0)
batch = train.sample(4)
print({k: tuple(v.shape) for k, v in batch.items()})
print("train windows > test windows > 0:", len(train) > len(test) > 0)

# %%
b = 0
labels = ["context"] * CONTEXT + [f"t+{i}" for i in range(1, 11)]
acts = [ds.action_meanings[a] for a in batch["actions"][b].tolist()]
fig = frame_strip([list(batch["frames"][b])], col_labels=[f"{l}\n{a if i < len(acts) else ''}" for i, (l, a) in
                                                          enumerate(zip(labels, acts + [""]))], scale=1.5)

# %% [markdown]
# ## Browse an episode
#
# The widget steps through one test episode with the action taken at each frame and the reward that
# followed (live in Jupyter). The player below it is a static animation that also works in the HTML
# book.

# %%
episode = ds.episode(ds.split("test")[0])
episode_browser(episode, ds.action_meanings)

# %%
frames_player(episode["frames"][:60], fps=10)

# %% [markdown]
# ## How fast can we collect?
#
# `python -m ssmlib bench collect` measures agent steps per second of gymnasium's synchronous vector
# env (one Python loop over emulators) against ale-py's `AtariVectorEnv` (C++ threads), at raw RGB,
# and of the whole ssmlib pipeline including preprocessing. The table is loaded from
# `results/bench_collect/`, written by that command on the lent GPU machine's 16 CPU cores and on a
# 2-core CI-class machine.

# %%
for path in sorted((RESULTS_DIR / "bench_collect").glob("*.json")):
    r = json.loads(path.read_text())
    print(f"{path.name}: {r['provenance']['device']}, git {r['provenance']['git_sha'][:10]}")
    print(format_table(r))

# %% [markdown]
# Every shard depends only on its own seeds $(\text{seed}, i)$, so shards can also be collected side by side:
# `collect --workers N` runs $N$ shards at once, each in its own process with its share of the cores, and
# writes the same bytes as one process (a test checks this with the campaign's own policy). One process
# leaves cores idle while its envs wait on the policy, the resizing and the cut into episodes.
# `python -m ssmlib bench collect-workers` times one whole collection per worker count and checks the bytes;
# its results are in `results/bench_collect_workers/`.

# %%
for path in sorted((RESULTS_DIR / "bench_collect_workers").glob("*.json")):
    r = json.loads(path.read_text())
    print(f"{path.name}: {r['provenance']['device']}, {r['cores']} cores, git {r['provenance']['git_sha'][:10]}; "
          f"{r['shards']} shards of {r['envs']} envs x {r['steps_per_shard']} steps at {r['frame']}, {r['policy']}")
    print(format_workers_table(r))

# %% [markdown]
# ## Summary
#
# - A dataset is a folder of checksummed shards of episodes (frames, actions, rewards, ends) and a
#   manifest that records how it was made; collection is deterministic from the seed and resumable.
# - Frames are RGB, resized by one function to a multiple of 8; frame skip 4 and sticky actions 0.25
#   follow ALE v5.
# - Models train on windows of 3 context frames and $T$ future frames that never cross an episode end;
#   the split is by episode.
#
# ## Exercises
#
# 1. Collect Bowling or Centipede with `python -m ssmlib collect --game Bowling --steps 8000 --out
#    runs/bowling` and compare its reward statistics with MsPacman's. Which game's rewards would a
#    reward head find hardest?
# 2. Set `sticky_actions=0.0` in a `DataConfig`, collect twice with the same seed and compare the
#    frames. Then do the same with 0.25. What does this tell you about the entropy a model must capture?
# 3. With `mean_action_repeat=1`, how does the fraction of non-zero rewards change, and why?
