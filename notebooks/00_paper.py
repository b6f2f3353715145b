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

# %%

# %% [markdown]
# # 0. The paper, in our words
#
# This page says what Buesing et al. (2018) set out to do and what they claim, before any code runs.
# It is about **the paper**, not about us: our own measurements start in chapter 1, and chapter 10
# puts them against the claims listed here. The last section maps every part of the paper to the
# Python object in `ssmlib` that computes it, the chapter that teaches it and a test that checks it.
#
# **How much of the paper we know.** Its full text was not available to us. What follows is pieced
# together from the abstract, from the figure captions as a later reproduction report redrew them,
# and from two reimplementations written independently of each other. Every statement carries its
# source:
#
# - **paper**: the abstract or a caption;
# - **reimplementations**: what both independent reimplementations do;
# - **ours**: a choice this project makes where the paper says nothing (each chapter labels these);
# - **uncertain**: a number taken from a summary by others, which may be wrong.
#
# Where the page needs one of the paper's numbers, a code cell prints it from `ssmlib.paper.PUBLISHED`,
# the one place that holds them, with its source beside it. No number on this page is ours.

# %%
from IPython.display import Markdown, display

from ssmlib.paper import CITATION, CLAIMS, PAPER_MAP, PUBLISHED

print(CITATION)

# %% [markdown]
# ## The problem
#
# An agent that plans by imagination asks its environment model "what happens if I do this?" many
# times for every real step it takes. Such a model is only useful if it is both **accurate** and
# **cheap to run**. Models that work in pixel space pay for every imagined step with a whole
# generated image that they then have to read back in. The paper's proposal is to step a compact
# **latent state** forward instead, and to draw a frame only when something actually needs to look
# at one. It then asks whether such models are good enough for an agent to plan with, and whether the
# agent can learn *what* to imagine.
#
# ## The models
#
# Notation: $o_t$ is a frame, $a_t$ an action, $s_t$ a deterministic state and $z_t$ a latent variable.
# Five models are compared:
#
# | model | how the state moves | latent variable | frame |
# |---|---|---|---|
# | AR | no state: each frame from the few frames before it and the action | none | $p(o_t \mid o_{t-k:t-1}, a_{t-1})$ |
# | RAR | a recurrent state that re-reads the previous (imagined) frame at every step | none | $p(o_t \mid h_t)$ |
# | dSSM-DET | $s_t = g(s_{t-1}, a_{t-1})$ | none | $p(o_t \mid s_t)$ |
# | dSSM-VAE | $s_t = g(s_{t-1}, a_{t-1})$ | $z_t \sim p(z_t \mid s_{t-1}, a_{t-1})$, read by the decoder only | $p(o_t \mid s_t, z_t)$ |
# | sSSM | $s_t = g(s_{t-1}, z_t, a_{t-1})$ | $z_t \sim p(z_t \mid s_{t-1}, a_{t-1})$, read by the transition and the decoder | $p(o_t \mid s_t, z_t)$ |
#
# The table follows the paper's first figure as redrawn (**paper**). Of the two pixel-space models only
# the name RAR is certain; the equations we give them are **ours** (chapter 3).
#
# What the models share, and how they are trained:
#
# - **Everything is convolutional.** The state is a feature map one eighth of the frame's height and
#   width; the encoder, the initial-state network, the transition, the prior and posterior heads and
#   the decoder are built from the same few convolution blocks (**paper**, captions; chapter 2).
# - **The start.** The initial state is computed from a handful of real frames, and training asks
#   the model to predict several steps past them (**paper**; both counts are printed below).
# - **The posterior filters.** For the latent models, $q(z_t \mid s_{t-1}, a_{t-1}, o_t)$ is a diagonal
#   Gaussian that sees the *real* current frame through the encoder, and never a later one
#   (**reimplementations**).
# - **The objective.** The latent models maximise an evidence lower bound: the expected
#   log-likelihood of each frame minus the KL divergence from the posterior to the prior, plus the
#   log-likelihood of the reward. dSSM-DET has no latent and is trained by maximum likelihood
#   (**reimplementations**; chapters 4 and 5).
# - **Imagination** draws $z$ from the prior; dSSM-DET has no $z$ and imagines deterministically
#   (**reimplementations**).
# - **Pixels** are independent Bernoulli variables, one per pixel and colour channel, on intensities
#   in $[0, 1]$; log-likelihoods are in nats per frame (**paper**).
# - **Rewards** are predicted from the state $s_t$ alone, as Bernoulli bits of the integer part of the
#   reward (**paper**, caption; the details are **ours**).
# - **Jumpy models** make one transition per several environment steps: the actions of the chunk go
#   in together and the rewards are added up (**paper**, the idea). The jump lengths the paper used
#   are unknown; ours are $k \in \{1, 2, 4\}$ (chapter 6).
# - Frame preprocessing, the optimiser and its schedule are not known: ours, stated in chapters 1 to 5.
#
# ## The agents
#
# The paper puts its models inside an **Imagination-Augmented Agent** (I2A, Weber et al. 2017),
# changed to read latent states instead of frames:
#
# - the frozen environment model encodes the last few real frames into a state;
# - from there it imagines one short rollout **per action**: the first action is fixed to that
#   action, the later ones come from a *rollout policy*;
# - each imagined step (state and reward) goes through a small network, and an LSTM reads the rollout
#   from its last step back to its first;
# - the codes of all rollouts are joined with a model-free view of the frames, and the agent's policy
#   and value are read from the result (Weber et al.; chapter 8).
#
# Three rollout policies are compared (**paper**; chapter 9):
#
# - **uniform**: random actions;
# - **distillation**: the rollout policy is trained to imitate the agent's own policy, through a
#   cross-entropy towards that policy with its gradient stopped, added to the RL loss;
# - **learning to query**: the agent's RL loss itself is backpropagated through the imagined rollouts
#   into the rollout policy. How the gradient gets past the sampled, discrete actions is not stated; a
#   relaxation and feeding action probabilities would both do. Ours is a straight-through
#   Gumbel-softmax.
#
# Two baselines keep the comparison honest: the **model-free** agent (the same frame network, no
# imagination) and the **copy model**, an identical I2A whose "model" hands back its input state, so it
# has every extra parameter and no knowledge of the future (Weber et al.). The agents learn with an
# actor-critic of the A2C family (**reimplementations**; chapter 7).
#
# ## The claims
#
# These five statements are what the book sets out to check. `ssmlib.paper.CLAIMS` holds them in our
# words, each with its source:

# %%
for c in CLAIMS.values():
    print(f"Claim {c.number} [{c.source}]: {c.title}.\n    {c.text}\n")

# %% [markdown]
# ## The numbers the paper publishes
#
# Few numbers survive from the paper, and some of them only roughly. The table prints every one this
# book mentions, from `ssmlib.paper.PUBLISHED`, with its source: **paper** (the text or a caption),
# **secondary** (a summary by others: **uncertain**, the value may be off) or **figure** (read off a
# plotted curve by eye, so rough). They are the paper's numbers, never ours.

# %%
def fmt(value):
    if isinstance(value, dict):
        return "; ".join(f"{k} ≈ {v:,}" for k, v in value.items())
    if isinstance(value, float) and value >= 1e4:
        return f"{value:.0e}"
    return str(value)


rows = ["| what | the paper's value | unit | source | how sure |", "|---|---|---|---|---|"]
for p in PUBLISHED.values():
    sure = {"paper": "stated", "secondary": "**uncertain**", "figure": "rough"}[p.source]
    rows.append(f"| `{p.key}` | {fmt(p.value)} | {p.unit} | {p.source} | {sure}{': ' + p.note if p.note else ''} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# Two of these need care. The speed-up in claim 1 comes from a secondary summary, not from the paper's
# own table, so it is **uncertain**. Of the paper's games only MS_PACMAN is certain; the others are
# plausible guesses, and this book uses MsPacman first, then Bowling (**ours**). The agent scores were
# read off learning curves that run far longer than any run of ours: with our budget only their
# **ordering** can be compared, never their levels (chapters 8 to 10).
#
# ## Bugs that public reimplementations made
#
# Reading the reimplementations also showed mistakes that are easy to make, and the tests of `ssmlib`
# guard against each one:
#
# - a "posterior" that was fed the model's own predicted frame instead of the real one
#   (`tests/test_models.py::test_posterior_sees_real_frame_prior_does_not`);
# - a distillation loss with the wrong sign, and a rollout-policy optimiser that never took a step
#   (`tests/test_agents.py::test_distillation_has_the_right_sign_and_decreases_kl`,
#   `tests/test_agents.py::test_distillation_trains_the_rollout_policy_of_i2a`);
# - imagination copied to the CPU and looped over pixels at every step
#   (`tests/test_agents.py::test_imagination_is_one_batched_call_per_depth_over_envs_times_actions`).
#
# ## The paper in the code
#
# `ssmlib.paper.PAPER_MAP` lists each part of the paper with the object that computes it, the chapter
# that teaches it and a test that exercises it (`tests/test_paper_map.py` checks that all three exist).

# %%
def cell(text):
    return text.replace("|", "\\|")


rows = ["| the paper | equation | computed by | chapter | tested by |", "|---|---|---|---|---|"]
for r in PAPER_MAP:
    test_file, test_name = r.test.split("::", 1)
    rows.append(f"| {cell(r.item)} | ${r.equation}$ | `{r.symbol}` | `{r.chapter.split('/')[-1]}` "
                f"| `{test_name}` ({test_file.split('/')[-1]}) |")
display(Markdown("\n".join(rows)))
chapters = sorted({r.chapter for r in PAPER_MAP})
print(f"{len(PAPER_MAP)} items, taught in {len(chapters)} chapters:",
      ", ".join(f"{c.split('/')[-1]} ({sum(r.chapter == c for r in PAPER_MAP)})" for c in chapters))

# %% [markdown]
# ## Summary
#
# - The paper asks for environment models that are accurate *and* fast, and proposes state-space
#   models that step a latent state and draw frames only on demand: dSSM-DET, dSSM-VAE and sSSM,
#   against the pixel-space AR and RAR, plus jumpy versions that skip several environment steps per
#   transition.
# - It then uses them inside I2A agents on MS_PACMAN, with uniform, distilled and learned
#   ("learning to query") rollout policies, against a model-free agent and a copy-model agent.
# - Its five claims are printed above. We know them from the abstract, captions and reimplementations,
#   not from the full text; the one published speed-up is **uncertain**, and its agent scores are rough
#   readings of curves at a budget far above ours.
# - Wherever the paper is silent (preprocessing, optimiser, jump lengths, how gradients cross a
#   discrete action), the choice is ours and labelled as such in its chapter.
# - Every part of the paper has a place in `ssmlib` and a test: the table above.
#
# ## Exercises
#
# 1. Pick a row of the map, for instance the filtering posterior. Print its source with
#    `inspect.getsource` and run its test (`pytest "<the test id>"`). Then, in a scratch copy, feed the
#    posterior the model's own predicted frame instead of the real one (the first bug above). Which
#    test fails, and what does the failure message say about *why* that is wrong for a filtering
#    posterior?
# 2. From `PUBLISHED["i2a_mspacman_scores"]`, write down the ordering of the six agents and the gap
#    between the copy model and the model-free agent. Why is that gap the yardstick for "imagination
#    helps" rather than the gap to the model-free agent? Which parts of the ordering would you expect to
#    survive a far smaller training budget, like ours, and which not? Compare with what chapter 10 finds.
