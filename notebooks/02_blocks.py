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
# # 2. Building blocks: encoder, transition, prior and posterior, decoder, reward
#
# All five environment models of Buesing et al. (2018) (AR, RAR, dSSM-DET, dSSM-VAE and sSSM) are
# assembled from the **same handful of convolutional blocks**. The paper gives them in the captions
# of its appendix figures. This chapter builds each block from `ssmlib.models.blocks`, puts the
# paper's caption next to it, and pushes real Ms. Pac-Man frames through it. Nothing is trained
# here. Every output you see comes from randomly initialised weights, and the point is the
# **shapes**, the **data flow** and the **parameter counts**.
#
# The state-space models (SSMs) have this structure: an initial state from 3 real frames, then a
# transition that steps a compact state map $s_t$ with the action $a_{t-1}$ (and, for the
# stochastic models, a latent map $z_t$):
#
# $$
# s_0 = \mathrm{init}\big(e(o_{-2}), e(o_{-1}), e(o_0)\big), \qquad
# z_t \sim p(z_t \mid s_{t-1}, a_{t-1}), \qquad
# s_t = g(s_{t-1}, z_t, a_{t-1}), \qquad
# o_t \sim p(o_t \mid s_t, z_t).
# $$
#
# The state $s_t$ is a feature map at **1/8 of the frame size**: $25 \times 20$ with 64 channels for
# a $200 \times 160$ frame. Everything in this chapter runs in a few seconds on a CPU.

# %%
import dataclasses
import functools

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyBboxPatch

from ssmlib.book import quick_dataset
from ssmlib.config import MODEL_NAMES, PROFILES, get_profile
from ssmlib.data.ale import action_meanings, make_env, preprocess, resolve_game
from ssmlib.models import CONTEXT, build_model, count_parameters, decode_reward, encode_reward, tile_actions
from ssmlib.models.blocks import (ConvStack, PoolAndInject, ResConv, Transition, depth_to_space,
                                  reward_class_counts, reward_values_from_counts, scaled, space_to_depth)
from ssmlib.train import reward_counts
from ssmlib.viz.frames import as_hwc_uint8, frame_strip

torch.set_num_threads(1)  # the tensors here are tiny; one thread is as fast and reproducible
model_cfg = {p: get_profile(p).model for p in PROFILES}

# %% [markdown]
# ## The map of this chapter
#
# The diagram follows one step of a state-space model. Blue boxes are blocks (modules with
# parameters), grey boxes are tensors, and orange boxes are the latent variable and its two
# distributions. The prior reads $(s_0, a_0)$. The filtering posterior also reads the encoding of
# the **real** next frame $o_1$, and is used only in training and scoring. Imagination samples $z$
# from the prior, and dSSM-DET has no $z$ at all. The AR and RAR models use the same blocks. They
# differ in what feeds the transition: AR re-encodes the last 3 (possibly predicted) frames at
# every step, and RAR mixes the encoding of the previous frame into its recurrent map. {doc}`Chapter 3 <03_autoregressive>`
# covers both.

# %%
fig, ax = plt.subplots(figsize=(13, 4.6))
ax.set_xlim(-0.2, 15.2), ax.set_ylim(-0.6, 5.0), ax.axis("off")
BLOCK, TENSOR, LATENT = "#cfe2f3", "#eeeeee", "#fce5cd"


def box(x, y, text, color, w=1.9, h=0.8):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def arrow(x0, y0, x1, y1, text="", color="0.2", ls="-"):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2, ls=ls, shrinkA=0, shrinkB=0))
    if text:
        ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, text, ha="left", fontsize=7, color=color)


box(0.8, 2.0, "$o_{-2}, o_{-1}, o_0$\n3 real frames\n3×H×W each", TENSOR, h=1.0)
box(3.0, 2.0, "encoder $e$\n(shared, ×3)", BLOCK)
box(5.2, 2.0, "initial state\nconv_stack", BLOCK)
box(7.4, 2.0, "$s_0$: state map\nC×H/8×W/8", TENSOR)
box(9.7, 2.0, "transition $g$\nres_conv, pool-and-inject,\nres_conv", BLOCK, w=2.3, h=1.0)
box(11.9, 2.0, "$s_1$", TENSOR, w=1.0)
box(14.0, 3.0, "decoder\n→ logits of $o_1$\n3×H×W", BLOCK, w=2.0, h=1.0)
box(14.0, 1.0, "reward head\n→ bits of $r_1$", BLOCK, w=2.0)
box(9.7, 0.2, "$a_0$: tiled one-hot\nA×H/8×W/8", TENSOR, w=2.1)
box(7.4, 4.2, "prior $p(z_1 | s_0, a_0)$ or\nposterior $q(z_1 | s_0, a_0, o_1)$", LATENT, w=2.9)
box(11.9, 4.2, "$z_1$\n(dSSM-VAE, sSSM)", LATENT, w=1.7)
box(3.0, 4.2, "$e(o_1)$ of the real $o_1$\n(posterior only)", TENSOR, w=2.3)
for x0, x1 in ((1.75, 2.05), (3.95, 4.25), (6.15, 6.45), (8.35, 8.55), (10.85, 11.4)):
    arrow(x0, 2.0, x1, 2.0)
arrow(9.7, 0.6, 9.7, 1.5)
arrow(12.4, 2.1, 13.0, 2.9)
arrow(12.4, 1.9, 13.0, 1.1)
arrow(7.4, 2.4, 7.4, 3.75)
arrow(4.15, 4.2, 5.95, 4.2)
arrow(8.85, 4.2, 11.05, 4.2)
arrow(12.75, 4.0, 13.6, 3.5)
arrow(11.4, 3.8, 10.3, 2.5, "sSSM only", color="tab:red", ls="--")
ax.text(9.7, 4.85, "repeat $g$ for $s_2, s_3, \\dots$ (imagination draws $z$ from the prior)",
        ha="center", fontsize=8, style="italic")
ax.text(-0.1, -0.5, "blue: block with parameters   grey: tensor   orange: latent variable and its distributions",
        fontsize=7, color="0.35")
plt.show()

# %% [markdown]
# ## Two sizes of the same network
#
# ssmlib builds every model at two **profiles**. `paper` uses the paper's frame size and channel
# counts. `quick` uses small frames and half the channels, so that the book's live cells train on a
# CPU. A channel count $n$ from a caption becomes `scaled(n, channel_scale)`, which is $n$ times the
# scale, rounded, and at least 4. The latent $z$ has 32 channels at `paper`: the paper does not say
# how many, so the number is **ours**.

# %%
print(f"{'profile':8} {'frame':>8} {'state map':>10} {'scale':>6} {'s ch':>5} {'z ch':>5} {'actions':>8}")
for p, cfg in model_cfg.items():
    print(f"{p:8} {cfg.height:>4}x{cfg.width:<3} {cfg.height // 8:>6}x{cfg.width // 8:<3} {cfg.channel_scale:>6} "
          f"{scaled(cfg.state_channels, cfg.channel_scale):>5} {scaled(cfg.z_channels, cfg.channel_scale):>5} "
          f"{cfg.num_actions:>8}")

# %% [markdown]
# ## A real frame at both sizes
#
# We play 60 random steps of Ms. Pac-Man with a fixed seed. We keep the last four screens (three
# context frames $o_{-2}, o_{-1}, o_0$ and the next frame $o_1$) and the actions between them, and
# preprocess the screens with `ssmlib.data.ale.preprocess` to both sizes. This is the same function
# that {doc}`chapter 1 <01_data>` used to build the datasets.

# %%
game = resolve_game("MsPacman")
names = action_meanings(game)
env = make_env(game)
obs, _ = env.reset(seed=0)
rng = np.random.default_rng(0)
screens, acts = [obs], []
for _ in range(60):
    a = int(rng.integers(env.action_space.n))
    obs, *_ = env.step(a)
    screens.append(obs), acts.append(a)
env.close()
screens, acts = np.stack(screens[-4:]), acts[-3:]  # o_{-2}, o_{-1}, o_0, o_1 and a_{-2}, a_{-1}, a_0

# frames[p]: (1, 4, 3, H, W) float in [0, 1], the layout every model reads
frames = {p: torch.from_numpy(preprocess(screens, c.height, c.width)).permute(0, 3, 1, 2).float().div(255)[None]
          for p, c in model_cfg.items()}
actions = torch.tensor([acts])  # (1, 3): a_{-2}, a_{-1}, a_0
fig = frame_strip([list(frames["paper"][0]), list(frames["quick"][0])], row_labels=["paper 200x160", "quick 80x64"],
                  col_labels=["$o_{-2}$", "$o_{-1}$", "$o_0$", f"$o_1$ (after $a_0$ = {names[acts[-1]]})"], scale=2.2)

# %% [markdown]
# ## space-to-depth and depth-to-space
#
# The encoder does not stride or pool. It **moves pixels into channels**:
# space-to-depth($r$) maps a $(C, H, W)$ tensor to $(C r^2, H/r, W/r)$ with
#
# $$\mathrm{out}[c\,r^2 + i\,r + j,\; y,\; x] = \mathrm{in}[c,\; r y + i,\; r x + j], \qquad 0 \le i, j < r.$$
#
# No information is lost, and the convolutions that follow run on an $r^2$ times smaller grid.
# depth-to-space is the exact inverse and is how the decoder gets back to full resolution. In
# PyTorch these operations are `pixel_unshuffle` and `pixel_shuffle`. Below, a $4 \times 4$ image
# with pixel values 0 to 15 becomes 4 channels of $2 \times 2$.

# %%
x = torch.arange(16.0).reshape(1, 1, 4, 4)
print("in (1 channel, 4x4):\n", x[0, 0].int().numpy())
y = space_to_depth(x, 2)
print("space_to_depth(2):", tuple(y.shape))
for c in range(4):
    print(f"  channel {c} (i={c // 2}, j={c % 2}):", y[0, c].int().numpy().tolist())
f = frames["paper"][:, 0]
print("frame", tuple(f.shape), "-> space_to_depth(4)", tuple(space_to_depth(f, 4).shape),
      "-> back equal:", torch.equal(depth_to_space(space_to_depth(f, 4), 4), f))

# %% [markdown]
# ## conv_stack
#
# The paper's workhorse. It is three same-padded, stride-1 convolutions with a residual connection
# in the middle:
#
# > **conv_stack**$(k_1, c_1, k_2, c_2, k_3, c_3)$:
# > $h_1 = \mathrm{relu}(\mathrm{conv}_{k_1, c_1}(x))$, $\;h_2 = \mathrm{relu}(h_1 + \mathrm{conv}_{k_2, c_2}(h_1))$,
# > $\;\mathrm{out} = \mathrm{conv}_{k_3, c_3}(h_2)$. *(paper, appendix captions)*
#
# The output has no ReLU, so whoever uses the stack decides. The residual $h_1 + \mathrm{conv}(h_1)$
# needs $c_1 = c_2$, which holds for every stack in the paper, and `ConvStack` refuses anything else.
# Here is the encoder's first stack, conv_stack(3, 16, 5, 16, 3, 64), reading the 48 channels that
# space-to-depth(4) makes of an RGB frame.

# %%
stack = ConvStack(48, 3, 16, 5, 16, 3, 64)
print(stack)
print("parameters:", count_parameters(stack))
print(tuple(space_to_depth(f, 4).shape), "->", tuple(stack(space_to_depth(f, 4)).shape))
try:
    ConvStack(48, 3, 16, 5, 32, 3, 64)
except ValueError as e:
    print("ValueError:", e)
else:
    raise AssertionError("ConvStack accepted c1 != c2")

# %% [markdown]
# ## res_conv and pool-and-inject: local and global
#
# The transition uses two more blocks:
#
# > **res_conv**: $x \to \mathrm{conv}_{3\times3, 32} \to \mathrm{relu} \to \mathrm{conv}_{5\times5, 32}
# > \to \mathrm{relu} \to \mathrm{conv}_{3\times3, 64}$, plus $x$.
# >
# > **pool-and-inject**: $x \to \mathrm{conv}_{3\times3, 32} \to$ global max-pool $\to$ tile to
# > $H \times W \to$ concat with $x$. *(paper)*
#
# A res_conv is local. Its output at one position depends on the input within $1 + 2 + 1 = 4$
# positions, a $9 \times 9$ window of the state map. Objects in Ms. Pac-Man cross the whole screen,
# for example through the tunnels, and the ghosts react to where Ms. Pac-Man is. **Pool-and-inject**
# gives every position a summary of the whole map in one layer: it takes the maximum of 32 feature
# maps over all positions and appends those 32 numbers to every position. When the input of the
# skip connection does not have the output's channel count, ssmlib makes the skip a $1 \times 1$
# convolution. The first res_conv of the transition needs one, because it reads
# $\mathrm{concat}(s, a, z)$. That choice is **ours**; the paper does not say.
#
# The figure below measures how far each block sees. We perturb the input at one position at a time
# and mark the positions that change the output at the centre of a $15 \times 15$ map.

# %%
torch.manual_seed(0)
C, S, A = 32, 15, 9
blocks = {"res_conv": ResConv(C, C, 0.5), "pool-and-inject": PoolAndInject(C, 0.5),
          "transition": Transition(C + A, C, 0.5)}
print("skip of a res_conv 32 -> 32:", blocks["res_conv"].skip,
      "| skip of the transition's first res_conv 41 -> 32:", blocks["transition"].res1.skip)
x = torch.randn(1, C, S, S)
pos = torch.arange(S * S)
probe = x.repeat(S * S + 1, 1, 1, 1)  # row 0: unperturbed; row 1 + p: position p perturbed
probe[1 + pos, :, pos // S, pos % S] += 10 * torch.randn(S * S, C)
noop = tile_actions(torch.zeros(len(probe), dtype=torch.long), A, S, S)
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
with torch.no_grad():
    for ax, (name, block) in zip(axes, blocks.items()):
        out = block(probe, noop) if name == "transition" else block(probe)
        change = (out[1:, :, S // 2, S // 2] - out[0, :, S // 2, S // 2]).abs().sum(1).reshape(S, S)
        seen = change > 1e-5
        ax.imshow(seen, cmap="Blues", vmin=0, vmax=1.3)
        ax.plot(S // 2, S // 2, "r+", ms=12)
        ax.set(title=f"{name}: {int(seen.sum())}/{S * S}", xticks=[], yticks=[])
fig.suptitle("positions whose input changes the output at the centre (+)", fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## The encoder
#
# > **Encoder** $e(o)$: space-to-depth(4) $\to$ conv_stack(3, 16, 5, 16, 3, 64) $\to$ space-to-depth(2)
# > $\to$ conv_stack(3, 32, 5, 32, 3, 64) $\to$ relu. A $200 \times 160 \times 3$ frame gives a
# > $25 \times 20 \times 64$ map. *(paper)*
#
# We run the first context frame through the encoder of a model at each profile and record the
# input and output shape of every sub-module with forward hooks. Nothing in the table is computed
# by hand. The two space-to-depth steps show up as the change from one stack's output to the next
# stack's input: $64 \times 50 \times 40$ becomes $256 \times 25 \times 20$.

# %%
def shape_table(module, *inputs, depth=2):
    """Run ``module(*inputs)`` once; print each sub-module (up to ``depth`` levels) with its input and
    output shapes (batch dimension dropped) and its parameters. Returns the output."""
    rows, hooks = {}, []

    def before(name, m, args):  # a pre-hook must return None, or it replaces the input
        rows[name] = [tuple(args[0].shape[1:]), None, count_parameters(m)]

    def after(name, m, args, out):
        rows[name][1] = tuple(out.shape[1:])

    for name, m in module.named_modules():
        if name and name.count(".") < depth:
            hooks.append(m.register_forward_pre_hook(functools.partial(before, name)))
            hooks.append(m.register_forward_hook(functools.partial(after, name)))
    with torch.no_grad():
        out = module(*inputs)
    for h in hooks:
        h.remove()
    fmt = lambda s: "x".join(map(str, s))  # noqa: E731
    print(f"  {'input':24} {'':>13}    {' + '.join(fmt(x.shape[1:]) for x in inputs):>12}")
    for name, (i, o, n) in rows.items():
        print(f"  {'  ' * name.count('.') + name:24} {fmt(i):>13} -> {fmt(o):>12} {n:>9,} params")
    print(f"  {'= output':24} {'':>13}    {fmt(out.shape[1:]):>12} {count_parameters(module):>9,} params in all")
    return out


# %%
models, maps = {}, {}
for p, cfg in model_cfg.items():
    torch.manual_seed(0)
    models[p] = build_model(dataclasses.replace(cfg, model="sSSM"))
    quarter = {}
    hook = models[p].encoder.stack1.register_forward_hook(lambda m, i, o: quarter.__setitem__("map", o))
    print(f"encoder, {p} profile:")
    eighth = shape_table(models[p].encoder, frames[p][:, 0])
    hook.remove()
    maps[p] = {"1/4": quarter["map"], "1/8": eighth}

# %% [markdown]
# ## The initial state from 3 frames
#
# > **Initial state**: concat$(e(o_{-2}), e(o_{-1}), e(o_0))$ $\to$ conv_stack(1, 64, 3, 64, 3, 64).
# > *(paper)*
#
# One frame shows where things are but not where they are going, so three frames are used (chapter
# 1 explains why). The three frames go through the encoder in one batched call, their maps are
# concatenated along channels ($3 \times 64 = 192$ at `paper`), and a conv_stack mixes them into
# $s_0$. `model.initial_state` does all of this. The hooks show the initial-state block alone.

# %%
states = {}
for p, model in models.items():
    states[p] = model.initial_state(frames[p][:, :CONTEXT])
    enc = model.encoder(frames[p][0, :CONTEXT]).flatten(0, 1)[None]  # (1, 3*E, h, w)
    print(f"initial state, {p} profile:")
    shape_table(model.init, enc, depth=1)
    print("  model.initial_state(context).s:", tuple(states[p].s.shape))

# %% [markdown]
# ## The transition and the tiled one-hot action
#
# > **Transition** $s_t = g(s_{t-1}, z_t, a_{t-1})$: concat$(s_{t-1}$, tiled one-hot $a_{t-1}$,
# > $z_t)$ $\to$ res_conv $\to$ relu $\to$ pool-and-inject $\to$ res_conv. *(paper)*
#
# The action enters as a **one-hot vector tiled over the state grid**: $A$ extra channels, with
# channel $a$ equal to 1 everywhere and the others 0. A *jumpy* model takes $k$ environment steps
# per transition, so it receives $k$ actions at once. ssmlib concatenates their one-hots into
# $k \cdot A$ channels, and channel $j A + a$ is on when the $j$-th action of the chunk is $a$. The
# idea is the paper's; the layout and the jump lengths are **ours**. A floating-point input is read
# as action *probabilities*, and gradients flow through it. {doc}`Chapter 9 <09_learning_to_query>` uses this as a relaxation for
# learning to query (**ours**).
#
# `tile_actions` does not copy anything. It returns an `expand`ed view with stride 0 over the grid,
# and only the concatenation inside the transition writes the numbers out.

# %%
h, w = model_cfg["quick"].height // 8, model_cfg["quick"].width // 8
up, left = names.index("UP"), names.index("LEFT")
one = tile_actions(torch.tensor([up]), A, h, w)
jumpy = tile_actions(torch.tensor([[up, left]]), A, h, w)
probs = torch.softmax(torch.tensor([[0.0, 2, 0, 1, 0, 0, 0, 0, 0]]), -1)
soft = tile_actions(probs, A, h, w)
print("(B,) ids      ", tuple(one.shape), "strides", one.stride(), "channel on:", one[0, :, 0, 0].nonzero().flatten().tolist())
print("(B, k=2) ids  ", tuple(jumpy.shape), "channels on:", jumpy[0, :, 0, 0].nonzero().flatten().tolist(),
      f"= UP ({up}) and {A} + LEFT ({left})")
print("(B, A) probs  ", tuple(soft.shape), "channels hold the probabilities, summing to", round(float(soft[0, :, 0, 0].sum()), 4))

# %%
rows = {"a = UP\n(B,)": one[0], "jumpy j=0\n(UP)": jumpy[0, :A], "jumpy j=1\n(LEFT)": jumpy[0, A:],
        "probabilities\n(float)": soft[0]}
fig, axes = plt.subplots(len(rows), A, figsize=(A * 0.95, len(rows) * 1.2))
for r, (label, chans) in enumerate(rows.items()):
    for c in range(A):
        ax = axes[r, c]
        ax.imshow(chans[c], cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel(f"channel {c + (A if r == 2 else 0)}", fontsize=6, labelpad=2)
        if r == 0:
            ax.set_title(names[c], fontsize=7)
        if c == 0:
            ax.set_ylabel(label, fontsize=7)
fig.suptitle(f"tiled action channels on the {h}x{w} quick state grid (black = 1)", fontsize=9)
fig.tight_layout()

# %% [markdown]
# The transition's input width depends on the model. It reads $s$ and $a$ (times $k$ for a jumpy
# model), plus $z$ for the sSSM only. In dSSM-VAE, $z$ feeds the decoder but not the transition.
# Here is the channel arithmetic at the `quick` profile, read from the first convolution of each
# built model.

# %%
q = model_cfg["quick"]
for name in MODEL_NAMES:
    for k in (1, 4):
        m = build_model(dataclasses.replace(q, model=name, jump=k))
        print(f"{name:9} jump={k}: transition reads {m.transition.res1.conv1.in_channels:3} channels "
              f"= s {m.state_channels} + a {m.action_channels}"
              + (f" + z {m.z_channels}" if getattr(m, "z_in_transition", False) else ""))

# %%
for p, model in models.items():
    a0 = model.tile(actions[:, -1])
    z = torch.zeros(1, model.z_channels, model.h, model.w)
    print(f"transition, {p} profile (inputs s, a, z; res1 reads their concatenation):")
    shape_table(model.transition, states[p].s, a0, z)

# %% [markdown]
# ## The prior and the filtering posterior
#
# The latent $z_t$ has the same spatial size as $s_t$. Both of its distributions are diagonal
# Gaussians computed by a conv_stack:
#
# $$
# p(z_t \mid s_{t-1}, a_{t-1}) = \mathcal{N}\big(\mu_p, \mathrm{diag}\,\sigma_p^2\big), \qquad
# (\mu_p, \tilde\sigma_p) = \mathrm{conv\_stack}(1,32,3,32,3,64)\big(\mathrm{concat}(s_{t-1}, a_{t-1})\big),
# \qquad \sigma_p = \mathrm{softplus}(\tilde\sigma_p) + \sigma_{\min},
# $$
#
# $$
# q(z_t \mid s_{t-1}, a_{t-1}, o_t) = \mathcal{N}\big(\mu_q, \mathrm{diag}\,\sigma_q^2\big), \qquad
# (\mu_q, \tilde\sigma_q) = \mathrm{conv\_stack}\big(\mathrm{concat}(\mu_p, \sigma_p, s_{t-1}, e(o_t), a_{t-1})\big).
# $$
#
# The posterior is a **filtering** posterior. It sees the encoding of the real current frame $o_t$,
# never a future frame, and never the model's own prediction. One public reimplementation got this
# wrong ({doc}`chapter 0 <00_paper>` lists it). The stack's 64 output channels are split in two: 32 for the mean
# and 32 for the pre-std of the 32 channels of $z$. The split and the floor $\sigma_{\min} = 0.01$ are
# **ours**; the inputs follow the reimplementations. Training uses the analytic KL between the two
# Gaussians, summed over every position and channel of $z$ (`blocks.gaussian_kl`).
#
# `model.step` draws $z_1$ from the prior (imagination). `model.observe` draws it from the posterior
# given the real $o_1$ (training and scoring), and also returns both Gaussians and their KL.

# %%
for p, model in models.items():
    torch.manual_seed(0)
    with torch.no_grad():
        prior_step = model.step(states[p], actions[:, -1])
        post_step, info = model.observe(states[p], actions[:, -1], frames[p][:, CONTEXT])
    print(f"{p}: prior reads {model.prior.stack.conv1.in_channels} channels (s + a), "
          f"posterior reads {model.posterior.stack.conv1.in_channels} (mu_p + sigma_p + s + e(o_1) + a)")
    print("   z from prior", tuple(prior_step.z.shape), "| z from posterior", tuple(post_step.z.shape),
          "| q_mean", tuple(info["q_mean"].shape), "| kl", tuple(info["kl"].shape),
          "| every std >= 0.01:", bool(min(info["q_std"].min(), info["p_std"].min()) >= model.cfg.min_std))

# %% [markdown]
# ## The decoder
#
# > **Decoder** $p(o_t \mid s_t, z_t)$: concat$(s_t, z_t)$ $\to$ conv_stack(1, 32, 5, 32, 3, 64) $\to$
# > depth-to-space(2) $\to$ conv_stack(3, 64, 3, 64, 1, 48) $\to$ depth-to-space(4). *(paper)*
#
# The 48 output channels are $3 \times 4 \times 4$. The last depth-to-space(4) turns them into one
# logit per pixel and colour channel, and each pixel intensity in $[0, 1]$ is modelled as an
# independent Bernoulli variable:
#
# $$\log p(o_t \mid s_t, z_t) = \sum_{c, y, x} o \log \sigma(\ell) + (1 - o) \log(1 - \sigma(\ell)), \qquad \ell = \mathrm{logits}[c, y, x].$$
#
# ssmlib starts the last convolution at 1/10 of PyTorch's default scale, so that the first logits
# are close to 0 (**ours**). An untrained model then pays about $\log 2$ nats per pixel and colour
# channel, $3 H W \log 2$ per frame. Every log-likelihood in later chapters should be compared with
# this baseline.

# %%
for p, model in models.items():
    print(f"decoder, {p} profile (input: concat(s_1, z_1)):")
    torch.manual_seed(0)
    with torch.no_grad():
        feats = model.imagine(states[p], actions[:, -1:]).features[:, 0]
    maps[p]["logits"] = shape_table(model.decoder, feats)

# %%
for p, model in models.items():
    batch = {"frames": frames[p], "actions": actions, "rewards": torch.zeros(1, 3)}
    torch.manual_seed(0)
    with torch.no_grad():
        log_px = model.score(batch)["log_px"].item()
    cfg = model.cfg
    print(f"{p}: untrained log p(o_1) = {log_px:,.0f} nats; uniform Bernoulli 3*H*W*log 2 = "
          f"{-3 * cfg.height * cfg.width * np.log(2):,.0f} nats")

# %% [markdown]
# ## Shapes drawn through the encoder and decoder
#
# The same frame at both profiles. From left to right: the input, four channels of the encoder's
# first stack at **1/4 resolution**, four channels of the encoding $e(o)$ at **1/8 resolution**,
# which has the size of the state map, and the decoder's output for the imagined next frame
# $o_1$: the mean frame $\sigma(\text{logits})$ and the logits of the red channel. The weights are
# **untrained**. The feature maps show what random convolutions pick out of a frame, mostly the
# edges and colours of the maze. The decoded frame is an almost uniform grey, because the logits
# start near 0: the red-channel logits stay close to 0 (the panel title gives their range), with no
# visible structure.
# Chapters {doc}`3 <03_autoregressive>` to {doc}`5 <05_sssm>` train these blocks.

# %%
n_ch = 4  # per map: the channels that vary most over the frame (random ReLU maps can be all zero)
fig, axes = plt.subplots(2, 3 + 2 * n_ch, figsize=(16, 3.7))
for row, p in zip(axes, PROFILES):
    row[0].imshow(as_hwc_uint8(frames[p][0, 0]), interpolation="nearest")
    row[0].set_title(f"{p}: frame {frames[p].shape[-2]}x{frames[p].shape[-1]}", fontsize=7)
    for off, key in ((1, "1/4"), (1 + n_ch, "1/8")):
        fmap = maps[p][key][0]
        for j, c in enumerate(fmap.flatten(1).std(1).argsort(descending=True)[:n_ch].tolist()):
            row[off + j].imshow(fmap[c], cmap="viridis", interpolation="nearest")
            row[off + j].set_title(f"{key} map, ch {c}\n{fmap.shape[1]}x{fmap.shape[2]}", fontsize=7)
    logits = maps[p]["logits"][0]
    row[-2].imshow(as_hwc_uint8(torch.sigmoid(logits)), interpolation="nearest")
    row[-2].set_title("decoder σ(logits)\n(untrained)", fontsize=7)
    lim = float(logits[0].abs().max())
    row[-1].imshow(logits[0], cmap="RdBu", vmin=-lim, vmax=lim, interpolation="nearest")
    row[-1].set_title(f"red logits\n±{lim:.3f}", fontsize=7)
    for ax in row:
        ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# ## The reward head: rewards as bits
#
# The reward is predicted from $s_t$ alone. The paper's caption says the head is a convolution,
# a flatten and a linear layer giving Bernoulli logits of the **bits of $\lfloor r \rfloor$**. The
# sizes are **ours**: conv $3 \times 3$ with 16 channels, then linear. So is the layout: one sign
# bit, then 12 magnitude bits from the least significant, clipped at $2^{12} - 1 = 4095$.
# Ms. Pac-Man's rewards are sums of a few point values within one 4-frame step: 10 for a pellet,
# 50 for a power pill, 200, 400, 800 and 1600 for successive ghosts, and 100 to 5000 for fruit. A
# fruit worth 5000 is clipped, and that is the price of 12 bits.

# %%
bits = models["quick"].cfg.reward_bits
r = torch.tensor([0.0, 10, 50, 200, 1600, 5000, -1])
enc_r = encode_reward(r, bits)
print(f"{'reward':>7}  sign  bits b0..b{bits - 1} (least significant first)   decoded")
logits_r = (enc_r * 2 - 1) * 5.0  # confident logits that agree with the bits
for v, b, d in zip(r.tolist(), enc_r.int().tolist(), decode_reward(logits_r).tolist()):
    print(f"{v:>7g}  {b[0]:>4}  {''.join(map(str, b[1:]))}                     {d:>7g}")

# %% [markdown]
# The same round trip on every reward value of the quick dataset from {doc}`chapter 1 <01_data>` (shared, not
# collected again), and the reward head's output for the initial states above.

# %%
ds = quick_dataset()
values = torch.tensor(sorted({float(v) for v in ds.summary()["reward_values"]}))
exact = torch.equal(decode_reward(encode_reward(values, bits) * 10 - 5), torch.floor(values).clamp(max=2**bits - 1))
print("every reward of the dataset survives encode -> decode:", exact)
for p, model in models.items():
    with torch.no_grad():
        head = model.reward_head
        print(f"{p}: reward head conv3x3 {head.conv.in_channels} -> {head.conv.out_channels}, flatten, linear "
              f"{head.linear.in_features} -> {head.linear.out_features} logits; on s_0:", tuple(head(states[p].s).shape))

# %% [markdown]
# ## The categorical reward head and its class weights (ours)
#
# The bits head never learned on Ms. Pac-Man. Few steps carry a reward (the quick dataset's share is the
# P(r ≠ 0) printed below), almost all of them +10, so every bit's best constant guess is "off", a bit thresholded at 0.5 decodes to 0, and the
# head predicted 0 everywhere. The models of the campaign ({doc}`chapter 10 <10_results>`) therefore
# use a **categorical** head (**ours**): logits $\ell(s_t)$ over the reward values of the training data
# (0 and the most frequent others; a rarer reward counts as its nearest value), trained with a
# **class-weighted** cross-entropy so that rare rewards count:
#
# $$\mathcal{L}_r = -\frac{\sum_t w_{c(r_t)} \log \operatorname{softmax}(\ell(s_t))_{c(r_t)}}{\sum_t w_{c(r_t)}},
# \qquad w_c \propto \frac{1}{\sqrt{n_c}}, \quad \text{normalised to a mean of 1 over the data.}$$
#
# The weighted loss does not train the head towards $p(c \mid s)$. Its optimum is
#
# $$p_w(c \mid s) = \frac{w_c\, p(c \mid s)}{\sum_{c'} w_{c'}\, p(c' \mid s)},$$
#
# which makes rare, large rewards look far likelier than they are. So every reading of the head
# (P(r ≠ 0), the expected reward, the scored NLL, what an I2A agent reads) first divides the weights
# out again: $\tilde\ell_c = \ell_c - \log w_c$ and $\hat p(c \mid s) = \operatorname{softmax}(\tilde\ell)_c$
# (`EnvironmentModel.calibrated_reward_logits`; a checkpoint keeps its weights in
# `ModelConfig.reward_class_weights`). Below: the classes and weights of the quick dataset, and a head
# that has learned only the weighted base rate, read raw and calibrated.

# %%
counts = reward_counts(ds)  # the train split's {reward: steps}
values_r, weights_r = reward_values_from_counts(counts, max_classes=4)
n_c = reward_class_counts(counts, values_r)
q = torch.tensor(n_c, dtype=torch.float64) / sum(n_c)  # the data's base rate per class
print(f"{'class':>6} {'steps':>7} {'p(c)':>7} {'w_c':>7}")
for c, n, p_c, w in zip(values_r, n_c, q.tolist(), weights_r):
    print(f"{c:>6g} {n:>7} {p_c:>7.4f} {w:>7.2f}")
head_model = build_model(dataclasses.replace(model_cfg["quick"], model="dSSM-DET", reward_values=tuple(values_r),
                                             reward_class_weights=tuple(weights_r)))
w_t = torch.tensor(weights_r, dtype=torch.float64)
learned = (w_t * q).log().float()  # the weighted loss's optimum for a head that ignores the state: log(w_c p(c))
raw_p = learned.softmax(-1)
calibrated_p = head_model.reward_probs(learned)
print(f"\nP(r != 0): data {1 - q[0]:.4f}, raw head {1 - raw_p[0]:.4f}, "
      f"calibrated {float(head_model.reward_p_nonzero(learned)):.4f}")
print(f"expected reward per step: data {float(q @ torch.tensor(values_r, dtype=torch.float64)):.3f}, raw head "
      f"{float(raw_p @ torch.tensor(values_r)):.3f}, calibrated {float(head_model.reward_expected(learned)):.3f}")
assert torch.allclose(calibrated_p.double(), q, atol=1e-5)  # the weights divided out: the base rate again

fig, ax = plt.subplots(figsize=(6, 2.6))
xs = np.arange(len(values_r))
ax.bar(xs - 0.2, raw_p.numpy(), 0.4, label="raw head: p_w(c)")
ax.bar(xs + 0.2, calibrated_p.numpy(), 0.4, label="calibrated: p(c)")
ax.set(xticks=xs, xticklabels=[f"{v:g}" for v in values_r], yscale="log", xlabel="reward class",
       ylabel="probability", title="a head at the weighted base rate, read two ways")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## Parameters of every block and every model
#
# `build_model` builds each of the five models from the blocks above, and
# `count_parameters` counts trainable parameters. The tables give the count of each block, with a
# column per model, at both profiles.
#
# **AR and dSSM-DET have exactly the same parameters.** Both are an encoder, an initial-state
# conv_stack over 3 encodings, a transition reading $s$ and $a$, a decoder reading $s$, and a
# reward head. They differ only in **how the blocks are called**. AR re-encodes the last 3 frames
# at every step and builds a fresh map from them with the initial-state block. dSSM-DET encodes
# the context once and then only steps the transition. RAR adds one $1 \times 1$ conv that mixes
# the previous frame's encoding into its recurrent map (**ours**). The latent models add the prior
# and the posterior, a decoder that also reads $z$, and for the sSSM a transition that also reads
# $z$. Because the networks are equal, when {doc}`chapter 6 <06_jumpy_speed>` finds dSSM-DET much faster than AR, the
# difference comes from the data flow (rendering and re-encoding pixels at every imagined step),
# not from a smaller network.

# %%
for p, cfg in model_cfg.items():
    built = {name: build_model(dataclasses.replace(cfg, model=name)) for name in MODEL_NAMES}
    blocks_ = ["encoder", "init", "mix", "transition", "prior", "posterior", "decoder", "reward_head"]
    print(f"{p} profile ({cfg.height}x{cfg.width}, channel_scale {cfg.channel_scale})")
    print(f"  {'block':12}" + "".join(f"{n:>10}" for n in MODEL_NAMES))
    for b in blocks_:
        cells = [count_parameters(getattr(m, b)) if hasattr(m, b) else None for m in built.values()]
        print(f"  {b:12}" + "".join(f"{c:>10,}" if c is not None else f"{'-':>10}" for c in cells))
    print(f"  {'total':12}" + "".join(f"{count_parameters(m):>10,}" for m in built.values()))
    print("  AR == dSSM-DET:", count_parameters(built["AR"]) == count_parameters(built["dSSM-DET"]))

# %% [markdown]
# These models are small: at the paper's size an SSM has well under a million parameters (the table above).
# The reward head's linear layer reads the whole state map, so it grows with the frame's area. The
# computational cost comes from the large feature maps the convolutions run over, not from the
# number of weights.
#
# ## What is the paper's and what is ours
#
# | | source |
# |---|---|
# | conv_stack, res_conv, pool-and-inject, encoder, decoder: layers, kernel sizes, channels | **paper** (appendix captions) |
# | state at 1/8 of the frame with 64 channels; initial state from 3 frames; transition order | **paper** |
# | reward from $s_t$ as Bernoulli bits of $\lfloor r \rfloor$ (conv, flatten, linear) | **paper** (caption) |
# | prior reads $(s, a)$; filtering posterior reads $(\mu_p, \sigma_p, s, e(o_t), a)$; softplus std | **repro** (two reimplementations agree) |
# | $1 \times 1$ skip in res_conv when the channel counts differ | **ours** |
# | $z$ with 32 channels (8 at `quick`); std floor 0.01; the mean and std heads as one 64-channel conv | **ours** |
# | decoder's last conv initialised at 1/10 scale (logits start near 0) | **ours** |
# | reward head sizes; sign bit + 12 magnitude bits, clipped at 4095 | **ours** |
# | categorical reward head over the data's values, class weights $1/\sqrt{n_c}$, readings with the weights divided out | **ours** |
# | jumpy actions as $k \cdot A$ tiled channels; float action probabilities for learning to query | **ours** (the jumpy idea is the paper's) |
# | RAR's $1 \times 1$ mixing conv; AR reusing the initial-state block on the last 3 frames | **ours** (only the name RAR is the paper's) |
# | `quick` profile: 80x64 frames, half the channels | **ours** (for CPUs) |
#
# ## Summary
#
# - Every model is built from the same convolutional blocks: conv_stack, res_conv and
#   pool-and-inject, arranged into an encoder, an initial-state network, a transition, Gaussian
#   prior and posterior heads, a decoder and a reward head.
# - space-to-depth and depth-to-space move between the frame ($H \times W$) and the state map
#   ($H/8 \times W/8$) without losing information. A $200 \times 160$ frame becomes a
#   $25 \times 20 \times 64$ state.
# - Actions enter as tiled one-hot channels, $k \cdot A$ of them for a jumpy model. Rewards leave as
#   bits (the paper's caption) or, in the campaign's models, as a class-weighted categorical whose
#   readings divide the weights out. Pool-and-inject is the only block that lets a position see the
#   whole screen.
# - AR and dSSM-DET have identical parameters, so a speed difference between them comes from the
#   data flow, not from model size.
#
# ## Exercises
#
# 1. Replace the pool-and-inject in the influence figure by a second `ResConv` (build the blocks
#    yourself from `ssmlib.models.blocks`). How many positions does the centre see now? How many
#    res_convs would it take to see the whole $25 \times 20$ state map at the paper size?
# 2. The reward head's linear layer grows with the area of the state map. Compute its share of the
#    parameters at both profiles, and propose a head whose size does not depend on the frame size.
#    What would it lose?
# 3. Train only a categorical head (a linear layer on random features) with the class-weighted loss on
#    the quick dataset's rewards. Plot its raw and its calibrated P(r ≠ 0) against the data's rate.
#    Which one would an agent that plans with predicted rewards want, and why?
