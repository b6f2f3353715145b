"""Tests of ssmlib.models: shapes, the interface contract, likelihood bounds, and that each model can learn."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ssmlib.config import MODEL_NAMES, ModelConfig, get_profile
from ssmlib.errors import SsmlibError
from ssmlib.models import CONTEXT, build_model, decode_reward, encode_reward, logmeanexp, tile_actions
from ssmlib.models.blocks import Decoder, Encoder

LATENT = ("dSSM-VAE", "sSSM")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is several times faster than two on a shared 2-core CI machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_cfg(model: str, **kw) -> ModelConfig:
    base = dict(model=model, height=32, width=24, num_actions=5, channel_scale=0.25, z_channels=16, reward_bits=6)
    base.update(kw)
    return ModelConfig(**base)


def make_batch(cfg: ModelConfig, B: int = 2, T: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    shape = (B, CONTEXT + T - 1) + ((cfg.jump,) if cfg.jump > 1 else ())
    return {
        "frames": torch.rand(B, CONTEXT + T, 3, cfg.height, cfg.width, generator=g),
        "actions": torch.randint(0, cfg.num_actions, shape, generator=g),
        "rewards": torch.randint(-1, 3, (B, CONTEXT + T - 1), generator=g).float() * 10,
    }


def moving_square_batch(cfg: ModelConfig, B: int = 2, T: int = 3) -> dict:
    """Binary frames (so the Bernoulli loss can approach 0): a 4x4 square moving by its action."""
    H, W = cfg.height, cfg.width
    frames = torch.zeros(B, CONTEXT + T, 3, H, W)
    actions = torch.tensor([[1, 2, 1, 2, 1][: CONTEXT + T - 1], [2, 2, 1, 1, 2][: CONTEXT + T - 1]])[:B]
    for b in range(B):
        y, x = 2 + 4 * b, 2
        for t in range(CONTEXT + T):
            frames[b, t, b % 3, y:y + 4, x:x + 4] = 1.0
            frames[b, t, 2, H - 2:, :] = 1.0  # a static bar
            if t < CONTEXT + T - 1:
                x += 2 if actions[b, t] == 1 else 1
    rewards = (actions == 2).float() * 10
    return {"frames": frames, "actions": actions, "rewards": rewards}


# ----- shapes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_encoder_decoder_shapes(profile):
    cfg = get_profile(profile).model
    scale, H, W = cfg.channel_scale, cfg.height, cfg.width
    enc = Encoder(64 if scale == 1.0 else 32, scale)
    e = enc(torch.rand(1, 3, H, W))
    assert e.shape == (1, enc.out_channels, H // 8, W // 8)
    if profile == "paper":
        assert e.shape == (1, 64, 25, 20)
    dec = Decoder(e.shape[1], scale)
    assert dec(e).shape == (1, 3, H, W)


def test_model_shapes_quick_profile():
    cfg0 = get_profile("quick").model
    B, T = 2, 2
    for name in MODEL_NAMES:
        cfg = dataclasses.replace(cfg0, model=name)
        m = build_model(cfg)
        batch = make_batch(cfg, B=B, T=T)
        sc = m.score(batch, num_samples=3)
        assert set(sc) == {"log_px", "log_pz", "log_qz", "kl", "reward_logp", "reward_correct", "frame_mse"}
        assert all(v.shape == (3, B, T) for v in sc.values())
        assert sc["reward_correct"].dtype == torch.bool
        st = m.initial_state(batch["frames"][:, :CONTEXT])
        r = m.imagine(st, torch.randint(0, 9, (B, 4)), decode=True)
        assert r.features.shape == (B, 4, m.feature_channels, 10, 8)
        assert r.reward_logits.shape == (B, 4, m.reward_dims)
        assert r.frame_logits.shape == (B, 4, 3, 80, 64)
        fl, rl = m.decode(m.step(st, torch.zeros(B, dtype=torch.long)))
        assert fl.shape == (B, 3, 80, 64) and rl.shape == (B, m.reward_dims)


def test_model_shapes_paper_profile():
    cfg = dataclasses.replace(get_profile("paper").model, model="sSSM")
    m = build_model(cfg)
    batch = make_batch(cfg, B=1, T=1)
    with torch.no_grad():
        out = m.loss(batch)
        st = m.initial_state(batch["frames"][:, :CONTEXT])
        assert st.s.shape == (1, 64, 25, 20)
        r = m.imagine(st, torch.zeros(1, 1, dtype=torch.long), decode=True)
    assert r.features.shape == (1, 1, 64 + 32, 25, 20)
    assert r.frame_logits.shape == (1, 1, 3, 200, 160)
    assert torch.isfinite(out["loss"])


# ----- the interface contract ----------------------------------------------------------------------
def test_det_imagination_deterministic_and_sssm_sampling():
    torch.manual_seed(0)
    acts = torch.randint(0, 5, (2, 4))
    m = build_model(tiny_cfg("dSSM-DET"))
    st = m.initial_state(make_batch(m.cfg)["frames"][:, :CONTEXT])
    a, b = m.imagine(st, acts, decode=True, sample=True), m.imagine(st, acts, decode=True, sample=True)
    assert torch.equal(a.features, b.features) and torch.equal(a.frame_logits, b.frame_logits)

    m = build_model(tiny_cfg("sSSM"))
    st = m.initial_state(make_batch(m.cfg)["frames"][:, :CONTEXT])
    a, b = m.imagine(st, acts, sample=True), m.imagine(st, acts, sample=True)
    assert not torch.allclose(a.features, b.features)
    a, b = m.imagine(st, acts, sample=False), m.imagine(st, acts, sample=False)
    assert torch.equal(a.features, b.features)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_step_loop_matches_imagine_and_observe_matches_score(name):
    """imagine == a loop of step (+ decode); score == a loop of observe (+ decode) on real frames."""
    m = build_model(tiny_cfg(name))
    batch = make_batch(m.cfg, B=2, T=3)
    frames, actions = batch["frames"], batch["actions"]
    st0 = m.initial_state(frames[:, :CONTEXT])
    acts = actions[:, CONTEXT - 1:]
    with torch.no_grad():
        roll = m.imagine(st0, acts, decode=True, sample=False)
        st, logits = st0, []
        for t in range(acts.shape[1]):
            st = m.step(st, acts[:, t], sample=False)
            logits.append(m.decode(st)[0])
        torch.testing.assert_close(torch.stack(logits, 1), roll.frame_logits)

        torch.manual_seed(1)
        sc = m.score(batch)
        torch.manual_seed(1)
        st, log_px, kl = st0, [], []
        for t in range(acts.shape[1]):
            st, info = m.observe(st, acts[:, t], frames[:, CONTEXT + t])
            fl = m.decode(st)[0]
            log_px.append(-F.binary_cross_entropy_with_logits(fl, frames[:, CONTEXT + t], reduction="none").sum((1, 2, 3)))
            kl.append(info["kl"])
    torch.testing.assert_close(torch.stack(log_px, 1), sc["log_px"][0])
    torch.testing.assert_close(torch.stack(kl, 1), sc["kl"][0])


def test_deterministic_models_report_zero_latent_terms():
    for name in ("AR", "RAR", "dSSM-DET"):
        m = build_model(tiny_cfg(name))
        sc = m.score(make_batch(m.cfg), num_samples=2)
        for key in ("kl", "log_pz", "log_qz"):
            assert torch.count_nonzero(sc[key]) == 0
        assert m.loss(make_batch(m.cfg))["kl"] == 0


# ----- likelihood bounds ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", LATENT)
def test_kl_nonnegative_and_iwae_above_elbo(name):
    torch.manual_seed(0)
    m = build_model(tiny_cfg(name))
    batch = make_batch(m.cfg, B=3, T=3)
    with torch.no_grad():
        elbos, iwaes = [], []
        for _ in range(4):
            sc = m.score(batch, num_samples=16)
            assert (sc["kl"] >= 0).all()
            assert (sc["log_qz"] != 0).all()
            elbos.append((sc["log_px"] - sc["kl"]).sum(-1).mean(0))  # (B,)
            iwaes.append(logmeanexp((sc["log_px"] + sc["log_pz"] - sc["log_qz"]).sum(-1), 0))
    elbo, iwae = torch.stack(elbos).mean(0), torch.stack(iwaes).mean(0)
    assert (iwae >= elbo - 0.5).all(), (iwae, elbo)
    assert (iwae - elbo).mean() > 0


@pytest.mark.parametrize("name", LATENT)
def test_posterior_sees_real_frame_prior_does_not(name):
    """The filtering posterior q(z_t | s_{t-1}, a_{t-1}, o_t) must read the REAL o_t (a public bug fed the
    model's own prediction instead); the prior must not, and nothing before t may change."""
    m = build_model(tiny_cfg(name))
    batch = make_batch(m.cfg, B=2, T=3)
    st = m.initial_state(batch["frames"][:, :CONTEXT])
    a = batch["actions"][:, CONTEXT - 1]
    o = batch["frames"][:, CONTEXT]
    torch.manual_seed(0)
    _, i1 = m.observe(st, a, o)
    torch.manual_seed(0)
    _, i2 = m.observe(st, a, 1 - o)
    assert torch.equal(i1["p_mean"], i2["p_mean"]) and torch.equal(i1["p_std"], i2["p_std"])
    assert not torch.allclose(i1["q_mean"], i2["q_mean"])
    assert not torch.allclose(i1["kl"], i2["kl"])

    # in a whole filtering pass: changing target frame t=1 changes KL at t=1, never at t=0
    other = dict(batch, frames=batch["frames"].clone())
    other["frames"][:, CONTEXT + 1] = 1 - other["frames"][:, CONTEXT + 1]
    torch.manual_seed(0)
    k1 = m.score(batch)["kl"][0]
    torch.manual_seed(0)
    k2 = m.score(other)["kl"][0]
    assert torch.equal(k1[:, 0], k2[:, 0])
    assert not torch.allclose(k1[:, 1], k2[:, 1])


# ----- learning ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_every_parameter(name):
    m = build_model(tiny_cfg(name))
    m.loss(make_batch(m.cfg))["loss"].backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert torch.count_nonzero(p.grad) > 0, pname


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_overfits_one_tiny_batch(name):
    torch.manual_seed(0)
    cfg = tiny_cfg(name, height=16, width=16, channel_scale=0.25)
    m = build_model(cfg)
    batch = moving_square_batch(cfg)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        out = m.loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = out["loss"].item() if first is None else first
    final = m.loss(batch)
    assert final["loss"].item() < first / 10, (first, final)


# ----- rewards, actions, names ---------------------------------------------------------------------
def test_reward_bits_round_trip():
    r = torch.tensor([0.0, 10.0, 50.0, 200.0, 1600.0, -1.0, -10.0, 3.7, 5000.0])
    bits = encode_reward(r, 12)
    assert bits.shape == (9, 13)
    assert bits[1].tolist() == [0, 0, 1, 0, 1] + [0] * 8  # 10 = 0b1010, LSB first after the sign
    logits = (bits * 2 - 1) * 5
    assert decode_reward(logits).tolist() == [0, 10, 50, 200, 1600, -1, -10, 3, 4095]


def test_jumpy_action_tiling_order():
    A, k = 4, 3
    acts = torch.tensor([[2, 0, 3], [1, 1, 1]])
    tiled = tile_actions(acts, A, 2, 3)
    assert tiled.shape == (2, k * A, 2, 3)
    for b in range(2):
        on = tiled[b, :, 0, 0].nonzero().flatten().tolist()
        assert on == [j * A + int(acts[b, j]) for j in range(k)]
    assert torch.equal(tiled[..., 0, 0], tiled[..., 1, 2])


@pytest.mark.parametrize("name", ["sSSM", "AR"])
def test_jumpy_models_run(name):
    cfg = tiny_cfg(name, jump=2)
    m = build_model(cfg)
    batch = make_batch(cfg, B=2, T=2)
    assert batch["actions"].shape == (2, CONTEXT + 1, 2)
    assert torch.isfinite(m.loss(batch)["loss"])
    st = m.initial_state(batch["frames"][:, :CONTEXT])
    assert m.imagine(st, torch.zeros(2, 3, 2, dtype=torch.long)).features.shape[:2] == (2, 3)
    with pytest.raises(SsmlibError):
        m.step(st, torch.zeros(2, dtype=torch.long))


def test_unknown_model_name():
    with pytest.raises(SsmlibError, match="sSSM"):
        build_model(tiny_cfg("ssm"))
    with pytest.raises(SsmlibError, match="choose one of"):
        build_model(tiny_cfg("nonsense"))


def test_bad_batch_shapes():
    m = build_model(tiny_cfg("dSSM-DET"))
    batch = make_batch(m.cfg)
    with pytest.raises(SsmlibError):
        m.loss(dict(batch, actions=batch["actions"][:, 1:]))
    with pytest.raises(SsmlibError):
        m.loss(dict(batch, frames=batch["frames"][..., :16]))
    with pytest.raises(SsmlibError):
        m.initial_state(batch["frames"][:, :2])


# ----- the reward head: alignment and the action-aware head (issue #13, results/reward_head/) ----------
@pytest.mark.parametrize("head", ["categorical", "categorical-action"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_reward_of_step_j_reads_the_state_that_applied_action_j(name, head):
    """Target j's reward logits come from the state that applied ``actions[:, C-1+j]`` (not the previous
    state): changing that action changes reward j and leaves the rewards before j alone, in the teacher-
    forced pass, in imagination, and in a loop of step + decode (which all agree)."""
    torch.manual_seed(0)
    m = build_model(tiny_cfg(name, reward_head=head, reward_values=(0.0, 10.0))).eval()
    batch = make_batch(m.cfg, B=2, T=4)
    frames, j = batch["frames"], 2
    changed = batch["actions"].clone()
    changed[:, CONTEXT - 1 + j] = (changed[:, CONTEXT - 1 + j] + 1) % m.cfg.num_actions

    def reward_logits(actions):
        torch.manual_seed(1)
        teacher = m._terms(frames, actions)["reward_logits"]
        st0 = m.initial_state(frames[:, :CONTEXT])
        roll = m.imagine(st0, actions[:, CONTEXT - 1:], sample=False)
        st, looped = st0, []
        for t in range(actions.shape[1] - CONTEXT + 1):
            st = m.step(st, actions[:, CONTEXT - 1 + t], sample=False)
            looped.append(m.decode(st)[1])
        torch.testing.assert_close(torch.stack(looped, 1), roll.reward_logits)
        return teacher, roll.reward_logits

    with torch.no_grad():
        for before, after in zip(reward_logits(batch["actions"]), reward_logits(changed)):
            torch.testing.assert_close(before[:, :j], after[:, :j])
            assert (before[:, j] - after[:, j]).abs().max() > 1e-6


@pytest.mark.parametrize("name", ["sSSM", "dSSM-VAE", "dSSM-DET"])
def test_reward_state_prior_hides_the_real_frame_from_the_reward_head(name):
    """The sSSM's posterior z_t sees the real o_t and feeds s_t, so with ``reward_state="posterior"`` target
    j's reward logits change with o_j (the head can read the score off the frame). With ``"prior"`` they do
    not, and they equal what a mean-prior imagined step builds from the filtered s_{j-1} (for j = 0, from the
    context). The other models' s_t never sees o_t: unchanged either way."""
    torch.manual_seed(0)
    base = build_model(tiny_cfg(name, reward_values=(0.0, 10.0))).eval()
    prior = build_model(tiny_cfg(name, reward_values=(0.0, 10.0), reward_state="prior")).eval()
    prior.load_state_dict(base.state_dict())  # the same weights: reward_state adds none
    batch = make_batch(base.cfg, B=2, T=3)
    frames, j = batch["frames"], 1
    other = frames.clone()
    other[:, CONTEXT + j] = torch.rand_like(other[:, CONTEXT + j])  # another real frame o_j

    def reward(m, f):
        torch.manual_seed(1)  # the same posterior noise for both frame sets
        return m._terms(f, batch["actions"])["reward_logits"]

    with torch.no_grad():
        moved_posterior = (reward(base, frames)[:, j] - reward(base, other)[:, j]).abs().max()
        torch.testing.assert_close(reward(prior, frames)[:, j], reward(prior, other)[:, j])
        first = prior.imagine(prior.initial_state(frames[:, :CONTEXT]), batch["actions"][:, CONTEXT - 1:CONTEXT],
                              sample=False).reward_logits[:, 0]
        torch.testing.assert_close(reward(prior, frames)[:, 0], first)
    if name == "sSSM":
        assert moved_posterior > 1e-6  # the leak the option closes
    else:
        assert moved_posterior == 0
    with pytest.raises(SsmlibError):
        build_model(tiny_cfg(name, reward_state="future"))


def test_action_reward_head_keeps_the_old_structure_and_reads_the_action():
    cfg = tiny_cfg("dSSM-DET", reward_values=(0.0, 10.0))
    old, new = build_model(cfg), build_model(dataclasses.replace(cfg, reward_head="categorical-action"))
    old_sd, new_sd = old.state_dict(), new.state_dict()
    assert old_sd.keys() == new_sd.keys()  # the same names: a categorical checkpoint loads as before
    assert old_sd["reward_head.conv.weight"].shape[1] == old.state_channels
    assert new_sd["reward_head.conv.weight"].shape[1] == new.state_channels + new.action_channels
    assert not old.action_reward and new.action_reward
    with pytest.raises(SsmlibError):
        build_model(dataclasses.replace(cfg, reward_head="action"))
    s = torch.randn(2, new.state_channels, new.h, new.w)
    with pytest.raises(ValueError):
        new.reward_head(s)  # an action-aware head without the action


def _planted_rule_auc(action_channels: int, steps: int = 300) -> float:
    """A CategoricalRewardHead trained on a planted rule: states carry a direction d (one-hot channels,
    constant over the map, plus noise); the reward is 10 iff the action a == d. Without the action the
    reward is independent of the state (P = 1/A whatever s), so only a head that reads a can rank it."""
    from ssmlib.models.blocks import CategoricalRewardHead
    from ssmlib.stats import auc

    A, C, h, w = 5, 8, 4, 3
    g = torch.Generator().manual_seed(0)

    def data(n):
        d, a = torch.randint(0, A, (n,), generator=g), torch.randint(0, A, (n,), generator=g)
        s = 0.3 * torch.randn(n, C, h, w, generator=g)
        s[:, :A] += F.one_hot(d, A).float()[:, :, None, None]
        return s, tile_actions(a, A, h, w).float(), (a == d).float() * 10

    torch.manual_seed(0)
    head = CategoricalRewardHead(C, h, w, (0.0, 10.0), 1.0, action_channels=action_channels)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        s, a, r = data(128)
        logp = head(s, a if action_channels else None).log_softmax(-1)
        loss = F.nll_loss(logp, head.classes(r))
        opt.zero_grad()
        loss.backward()
        opt.step()
    s, a, r = data(2000)
    with torch.no_grad():
        p = head(s, a if action_channels else None).softmax(-1)[:, 1 - head.zero_class]
    return auc(p.numpy(), (r != 0).numpy())


def test_action_reward_head_learns_an_action_dependent_reward():
    """The action-aware head ranks the planted reward almost perfectly; the state-only head cannot."""
    with_action, state_only = _planted_rule_auc(action_channels=5), _planted_rule_auc(action_channels=0)
    assert with_action > 0.95, with_action
    assert abs(state_only - 0.5) < 0.08, state_only
