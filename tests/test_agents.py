"""Agents: A2C pieces, I2A and its rollout policies, the copy model, the model as an environment, and
tiny CPU training of every variant. Each known defect of public I2A code has a test here:
distillation with the wrong sign, a rollout policy that is never updated, imagination that leaves the
GPU tensor path (per-pixel Python loops), a model that the RL loss changes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ssmlib.agents import (CopyModel, I2AAgent, ImaginedVectorEnv, a2c_losses, build_agent, distill_loss, gae,
                           load_agent, make_agent_env, train_agent)
from ssmlib.agents.networks import AFTER_FIRST, first_step
from ssmlib.config import AgentConfig, agent_profile, get_profile
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model

torch.set_num_threads(1)
A = 9


def quick_model(name="dSSM-DET", seed=0):
    torch.manual_seed(seed)
    cfg = dataclasses.replace(get_profile("quick").model, model=name)
    return build_model(cfg).eval()


def obs_batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 80, 64, 3), generator=g, dtype=torch.uint8)


def i2a(mode="distill", model="dSSM-DET", copy=False, depth=2):
    torch.manual_seed(1)
    return I2AAgent(quick_model(model), A, 80, 64, rollout_policy=mode, depth=depth, hidden=64, lstm=32, copy=copy)


def train_quick_i2a(quick_dataset, tmp_path, mode: str, total_steps: int, env_model=None):
    """An I2A of ``mode`` trained in imagination (4 envs of a quick sSSM on the quick dataset, 3 steps per
    update, depth 2) around ``env_model`` (default a quick dSSM-DET)."""
    from ssmlib.data.store import open_dataset

    env = ImaginedVectorEnv(quick_model("sSSM", seed=2), open_dataset(quick_dataset), num_envs=4, max_steps=6)
    cfg = dataclasses.replace(agent_profile("quick"), agent="i2a", rollout_policy=mode, num_envs=4, num_steps=3,
                              total_steps=total_steps, rollout_depth=2, log_every=1, env_model="(given)")
    return train_agent(cfg, tmp_path / "run", env=env, env_model=env_model or quick_model("dSSM-DET"),
                       progress=False)


# ----- A2C ------------------------------------------------------------------------------------------

def test_gae_stops_at_episode_ends_hand_made():
    # two envs, three steps; env 0's episode ends after step 1 (obs 2 starts a new one)
    r = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    v = torch.zeros(3, 2)
    dones = torch.tensor([[False, False], [False, False], [True, False]])
    adv, ret = gae(r, v, dones, next_value=torch.tensor([10.0, 10.0]), next_done=torch.tensor([False, True]),
                   gamma=0.5, lam=1.0)
    # env 0: steps 0,1 form one episode (1 + 0.5*1), step 2 starts another and bootstraps from 10
    assert torch.allclose(ret[:, 0], torch.tensor([1.5, 1.0, 1.0 + 0.5 * 10]))
    # env 1: the episode ends after step 2 (next_done): no bootstrap from 10
    assert torch.allclose(ret[:, 1], torch.tensor([0.25, 0.5, 1.0]))
    assert torch.allclose(adv, ret - v)


def test_distillation_has_the_right_sign_and_decreases_kl():
    torch.manual_seed(0)
    pi = torch.randn(64, A)
    rollout = torch.nn.Parameter(torch.zeros(64, A))
    opt = torch.optim.SGD([rollout], lr=64.0)  # the loss is a mean over 64 rows
    kls = []
    for _ in range(20):
        with torch.no_grad():
            p = torch.softmax(pi, -1)
            kls.append(float((p * (torch.log_softmax(pi, -1) - torch.log_softmax(rollout, -1))).sum(-1).mean()))
        loss = distill_loss(pi, rollout)
        opt.zero_grad()
        loss.backward()
        assert pi.grad is None  # the agent's policy is a stop-gradient target
        opt.step()
    assert kls[-1] < 0.3 * kls[0]


def test_distillation_trains_the_rollout_policy_of_i2a():
    agent = i2a("distill")
    opt = torch.optim.RMSprop([p for p in agent.parameters() if p.requires_grad], lr=1e-3)
    before = [p.detach().clone() for p in agent.rollout_policy.parameters()]
    obs = obs_batch(4)
    cfg = AgentConfig(rollout_policy="distill", distill_coef=1.0)
    kls = []
    for _ in range(15):
        out = agent(obs)
        terms = a2c_losses(out, torch.zeros(4, dtype=torch.long), torch.zeros(4), torch.zeros(4), cfg)
        kls.append(float(terms["kl_pi_rollout"]))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()  # the rollout policy's parameters are in the optimiser and do move
    assert kls[-1] < kls[0]
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.rollout_policy.parameters()))


def test_only_the_distillation_term_reaches_a_distilled_rollout_policy():
    agent = i2a("distill")
    out = agent(obs_batch(2))
    cfg = AgentConfig(rollout_policy="distill", distill_coef=0.0)
    a2c_losses(out, torch.tensor([1, 2]), torch.ones(2), torch.ones(2), cfg)["loss"].backward()
    assert all(p.grad is None or not p.grad.any() for p in agent.rollout_policy.parameters())


def test_learning_to_query_sends_policy_gradients_into_the_rollout_policy():
    agent = i2a("learned", depth=3)
    out = agent(obs_batch(2))
    assert out.rollout_logits is not None
    cfg = AgentConfig(rollout_policy="learned")
    terms = a2c_losses(out, torch.tensor([1, 2]), torch.tensor([1.0, -0.5]), torch.ones(2), cfg)
    assert "distill_loss" not in terms
    terms["loss"].backward()
    grads = [p.grad for p in agent.rollout_policy.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_uniform_rollouts_have_no_rollout_policy():
    agent = i2a("uniform")
    assert agent.rollout_policy is None
    out = agent(obs_batch(2))
    assert out.rollout_logits is None
    names = [n for n, p in agent.named_parameters() if p.requires_grad]
    assert not any("rollout_policy" in n for n in names)


def test_environment_model_stays_frozen_through_training_updates():
    agent = i2a("learned", depth=2)
    m = agent.env_model
    before = {k: v.clone() for k, v in m.state_dict().items()}
    assert not any(p.requires_grad for p in m.parameters())
    opt = torch.optim.RMSprop([p for p in agent.parameters() if p.requires_grad], lr=1e-2)
    agent.train()
    assert not m.training
    for _ in range(2):
        out = agent(obs_batch(2))
        loss = a2c_losses(out, torch.tensor([0, 1]), torch.ones(2), torch.ones(2), AgentConfig(rollout_policy="learned"))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert all(p.grad is None for p in m.parameters())


def test_imagination_is_one_batched_call_per_depth_over_envs_times_actions():
    agent = i2a("distill", depth=3)
    calls = []
    real = agent.env_model.imagine

    def spy(state, actions, **kw):
        calls.append((state.s.shape[0], tuple(actions.shape), state.s.device.type))
        return real(state, actions, **kw)

    agent.env_model.imagine = spy
    with torch.no_grad():
        agent(obs_batch(5))
    assert calls == [(5 * A, (5 * A, 1), "cpu")] * 3  # no per-env, per-action or per-pixel loops


@pytest.mark.parametrize("mode", ["uniform", "distill"])
def test_the_update_reuses_the_rollouts_the_policy_acted_on(mode):
    agent = i2a(mode, depth=2)
    obs = obs_batch(3)
    with torch.no_grad():
        acted = agent(obs)
    torch.manual_seed(123)  # a fresh pass would sample other rollout actions; the cached one may not
    again = agent(obs, imagination=acted.imagination)
    fresh = agent(obs)
    torch.testing.assert_close(again.logits.detach(), acted.logits, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(again.value.detach(), acted.value, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(fresh.logits.detach(), acted.logits, rtol=1e-5, atol=1e-7)  # other samples
    assert acted.imagination["features"].shape[:2] == (3 * A, 2)


def test_inside_training_the_update_sees_what_the_policy_acted_on(quick_dataset, tmp_path, monkeypatch):
    """In train_agent the update's forward (before the optimiser step) must give, row by row, the logits
    and values of the acting passes: the (steps, envs*actions) cache is flattened in the obs order."""

    seen = {"act": [], "update": []}
    real = I2AAgent.forward

    def spy(self, obs, imagination=None):
        out = real(self, obs, imagination)
        if imagination is not None:
            seen["update"].append((out.logits.detach().clone(), out.value.detach().clone()))
            out.rollout_logits.sum().backward(retain_graph=True)  # pi_hat still learns (distillation)
            assert self.rollout_policy.net[0].weight.grad is not None
            self.zero_grad(set_to_none=True)
        elif not torch.is_grad_enabled():
            seen["act"].append((out.logits.clone(), out.value.clone()))
        return out

    monkeypatch.setattr(I2AAgent, "forward", spy)
    train_quick_i2a(quick_dataset, tmp_path, "distill", total_steps=12)
    assert len(seen["update"]) == 1 and len(seen["act"]) == 3 + 1  # 3 acting passes + the bootstrap value
    logits, values = seen["update"][0]
    torch.testing.assert_close(logits, torch.cat([a[0] for a in seen["act"][:3]]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(values, torch.cat([a[1] for a in seen["act"][:3]]), rtol=1e-5, atol=1e-6)


def test_the_first_acting_step_after_an_update_acts_on_the_bootstrap_rollouts(quick_dataset, tmp_path, monkeypatch):
    """Over two updates: the bootstrap pass's rollouts of the last observation are what the next collect's first
    step acts on (no second imagination of it), and each update still sees, row by row, its own acting passes."""

    passes = []  # (kind, obs, logits, values, imagination features)
    real = I2AAgent.forward

    def spy(self, obs, imagination=None):
        out = real(self, obs, imagination)
        kind = "update" if torch.is_grad_enabled() else "act" if imagination is None else "act-cached"
        passes.append((kind, obs.clone(), out.logits.detach().clone(), out.value.detach().clone(),
                       out.imagination["features"].clone()))
        if kind == "update":
            out.rollout_logits.sum().backward(retain_graph=True)
            self.zero_grad(set_to_none=True)
        return out

    monkeypatch.setattr(I2AAgent, "forward", spy)
    train_quick_i2a(quick_dataset, tmp_path, "distill", total_steps=24)
    kinds = [p[0] for p in passes]
    assert kinds == ["act"] * 3 + ["act", "update"] + ["act-cached", "act", "act"] + ["act", "update"]
    bootstrap, cached = passes[3], passes[5]
    assert torch.equal(bootstrap[1], cached[1])  # the same observation
    assert torch.equal(bootstrap[4], cached[4])  # acted on the bootstrap's own rollouts
    for update, acts in ((passes[4], passes[0:3]), (passes[9], passes[5:8])):
        torch.testing.assert_close(update[2], torch.cat([a[2] for a in acts]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(update[3], torch.cat([a[3] for a in acts]), rtol=1e-5, atol=1e-6)


def test_learning_to_query_refuses_cached_rollouts():
    agent = i2a("learned", depth=2)
    assert not agent.reuses_imagination
    obs = obs_batch(2)
    with torch.no_grad():
        acted = agent(obs)
        again = agent(obs, imagination=acted.imagination)  # acting needs no gradient: earlier rollouts will do
    torch.testing.assert_close(again.logits, acted.logits, rtol=1e-5, atol=1e-7)
    with pytest.raises(SsmlibError, match="fresh rollouts"):
        agent(obs, imagination=acted.imagination)


@pytest.mark.parametrize("mode,fresh_in_update", [("distill", False), ("learned", True)])
def test_training_imagines_once_per_acting_step(mode, fresh_in_update, quick_dataset, tmp_path):
    """Per update: S acting passes + 1 bootstrap pass imagine, and after the first update the first acting
    pass reuses the bootstrap's rollouts; the update imagines again only when the rollout policy learns
    through the rollouts (learning to query), and then only the steps after the forced first one, without
    encoding the frames again."""

    model = quick_model("dSSM-DET")
    calls, encoded = [], []
    real, real_init = model.imagine, model.initial_state
    model.imagine = lambda state, actions, **kw: (calls.append(state.s.shape[0]), real(state, actions, **kw))[1]
    model.initial_state = lambda frames: (encoded.append(frames.shape[0]), real_init(frames))[1]
    train_quick_i2a(quick_dataset, tmp_path, mode, total_steps=24, env_model=model)
    # the second update's first acting step reuses the first update's bootstrap rollouts (learned too)
    acting = (3 + 1) + (3 - 1 + 1)
    assert encoded == [4] * acting  # the update never encodes frames again
    assert len(calls) == acting * 2 + (2 * (2 - 1) if fresh_in_update else 0)  # depth 2; the update: depth - 1
    assert sorted(set(calls)) == sorted({4 * A} | ({3 * 4 * A} if fresh_in_update else set()))


def test_learning_to_query_continues_its_rollouts_after_the_forced_first_step_exactly():
    """With a deterministic model the forced first step is the same however often it is taken, so the update's
    continuation (first=) must equal imagining afresh: same policy, value and pi_hat gradient, given the same
    random draws for the rollout actions after it."""
    agent = i2a("learned", depth=3)
    obs = obs_batch(2)
    with torch.no_grad():
        acted = agent(obs)
    assert any(k.startswith(AFTER_FIRST) for k in acted.imagination)
    m, calls, work = agent.env_model, [], []
    real_init, real_step = m.initial_state, m.imagine
    m.initial_state = lambda frames: (calls.append("encode"), real_init(frames))[1]
    m.imagine = lambda state, actions, **kw: (calls.append("step"), real_step(state, actions, **kw))[1]
    outs = []
    for kw in ({}, {"first": first_step(acted.imagination)}):
        agent.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        calls.clear()
        out = agent(obs, **kw)
        work.append(list(calls))
        (out.logits.logsumexp(-1).sum() + out.value.sum()).backward()
        outs.append((out.logits.detach(), out.value.detach(),
                     [p.grad.clone() for p in agent.rollout_policy.parameters()], out.imagination["actions"]))
    (l0, v0, g0, a0), (l1, v1, g1, a1) = outs
    assert work == [["encode", "step", "step", "step"], ["step", "step"]]  # continued: no encoding, no first step
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v1, v0, rtol=1e-5, atol=1e-6)
    assert torch.equal(a1, a0) and torch.equal(a1[:, 0], torch.arange(A).repeat(2))
    assert all(g.abs().sum() > 0 for g in g0)  # the gradient reaches pi_hat through the continued rollouts
    for x, y in zip(g1, g0):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def test_first_action_of_each_rollout_is_forced():
    agent = i2a("uniform", depth=2)
    with torch.no_grad():
        im = agent.imagine(torch.rand(3, 3, 3, 80, 64))
    assert torch.equal(im["actions"][:, 0], torch.arange(A).repeat(3))
    assert im["features"].shape[:2] == (3 * A, 2)


def test_copy_model_returns_its_input():
    m = quick_model("sSSM")
    copy = CopyModel(m)
    with torch.no_grad():
        s0 = copy.initial_state(torch.rand(2, 3, 3, 80, 64))
        assert copy.step(s0, torch.tensor([1, 2])) is s0
        roll = copy.imagine(s0, torch.tensor([[1, 2, 3], [4, 5, 6]]))
    f0 = m.features(s0)
    assert all(torch.equal(roll.features[:, t], f0) for t in range(3))
    assert roll.final is s0
    # the copy agent's rollouts for different first actions are identical
    agent = i2a("uniform", model="sSSM", copy=True)
    with torch.no_grad():
        im = agent.imagine(torch.rand(1, 3, 3, 80, 64))
    assert torch.equal(im["features"][0], im["features"][1])


def test_pixel_models_are_refused_inside_i2a():
    with pytest.raises(SsmlibError, match="state-space model"):
        I2AAgent(quick_model("RAR"), A, 80, 64)


# ----- environments ---------------------------------------------------------------------------------

def test_agent_env_frames_equal_the_datasets_preprocessing():
    from ssmlib.data.ale import make_vector_env, preprocess

    a = make_agent_env("MsPacman", 2, 80, 64, noop_max=0, sticky_actions=0.0, num_threads=1)
    b = make_vector_env("MsPacman", 2, sticky_actions=0.0, num_threads=1)
    seeds = np.array([5, 6], np.int64)
    oa, _ = a.reset(seed=seeds)
    ob, _ = b.reset(seed=seeds)
    for t in range(6):
        act = np.array([t % A, (t + 2) % A])
        oa, *_ = a.step(act)
        ob, *_ = b.step(act)
    assert oa.shape == (2, 3, 80, 64, 3) and oa.dtype == np.uint8
    assert np.array_equal(oa[:, -1], preprocess(ob[:, -1], 80, 64))
    a.close()
    b.close()


def test_imagined_env_resets_from_real_frames_and_steps(quick_dataset):
    from ssmlib.data.store import open_dataset

    ds = open_dataset(quick_dataset)
    env = ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=3, max_steps=2, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 3, 80, 64, 3) and obs.dtype == np.uint8
    obs2, r, term, trunc, _ = env.step(np.array([0, 1, 2]))
    assert np.array_equal(obs2[:, :2], obs[:, 1:])  # the stack shifts; the new frame is the prediction
    assert r.shape == (3,) and not term.any() and not trunc.any()
    obs3, r, term, trunc, _ = env.step(np.array([0, 1, 2]))
    assert trunc.all()  # max_steps reached: same-step autoreset to new real contexts
    assert env.t.tolist() == [0, 0, 0]
    env_lat = ImaginedVectorEnv(quick_model("dSSM-DET"), ds, num_envs=2, decode=False)
    o, _ = env_lat.reset(seed=1)
    assert o.shape == (2, env_lat.model.feature_channels, 10, 8)
    with pytest.raises(SsmlibError, match="actions must lie"):
        env_lat.step(np.array([0, 99]))


# ----- training, checkpoints, command line ----------------------------------------------------------

VARIANTS = [("model-free", "uniform"), ("i2a", "uniform"), ("i2a", "distill"), ("i2a", "learned"), ("copy", "distill")]


@pytest.mark.parametrize("agent,mode", VARIANTS)
def test_every_variant_trains_in_imagination(agent, mode, quick_dataset, tmp_path):
    from ssmlib.data.store import open_dataset

    model = quick_model("dSSM-DET")
    env = ImaginedVectorEnv(quick_model("sSSM", seed=2), open_dataset(quick_dataset), num_envs=4, max_steps=6)
    cfg = dataclasses.replace(agent_profile("quick"), agent=agent, rollout_policy=mode, num_envs=4, num_steps=4,
                              total_steps=64, log_every=1, env_model="(given)")
    s = train_agent(cfg, tmp_path / "run", env=env, env_model=model, progress=False)
    assert s["status"] == "done" and s["step"] == 64
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in lines] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["steps_per_s"] > 0 for r in lines)
    assert (tmp_path / "run" / "episodes.jsonl").exists()  # 6-step imagined episodes ended and were logged


def test_real_game_training_resumes_and_checkpoints_refuse_bad_input(tmp_path):
    m = quick_model("dSSM-DET")
    from ssmlib.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "model.safetensors", m)
    cfg = dataclasses.replace(agent_profile("quick"), agent="i2a", rollout_policy="distill", num_envs=2, num_steps=3,
                              total_steps=12, env_model=str(tmp_path / "model.safetensors"), env_threads=1)
    out = tmp_path / "agent"
    s = train_agent(cfg, out, progress=False)
    assert s["step"] == 12
    with pytest.raises(SsmlibError, match="exists and is not empty"):
        train_agent(cfg, out, progress=False)
    s2 = train_agent(dataclasses.replace(cfg, total_steps=24), out, resume=True, progress=False)
    assert s2["step"] == 24
    with pytest.raises(SsmlibError, match="cannot change rollout_policy"):
        train_agent(dataclasses.replace(cfg, rollout_policy="learned", total_steps=30), out, resume=True, progress=False)
    agent, cfg2, meta, _ = load_agent(out / "checkpoint.safetensors")
    assert meta["step"] == 24 and cfg2.rollout_policy == "distill"
    with pytest.raises(SsmlibError, match="not an ssmlib ssmlib-agent checkpoint|not an ssmlib agent checkpoint"):
        load_agent(tmp_path / "model.safetensors")
    blob = (out / "checkpoint.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(SsmlibError, match="truncated|corrupt"):
        load_agent(tmp_path / "cut.safetensors")


def test_cli_errors_are_one_line(tmp_path, capsys):
    from ssmlib.__main__ import main

    code = main(["agent", "train", "--agent", "i2a", "--out", str(tmp_path / "x"), "--env-model",
                 str(tmp_path / "missing.safetensors"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not found" in err[0]
    code = main(["agent", "train", "--agent", "model-free", "--out", str(tmp_path / "y"), "--set", "bogus=1"])
    assert code == 2 and "no such AgentConfig field" in capsys.readouterr().err


def test_build_agent_refuses_a_model_of_another_frame_size(tmp_path):
    from ssmlib.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.safetensors", quick_model())
    cfg = dataclasses.replace(agent_profile("paper"), env_model=str(tmp_path / "m.safetensors"))
    with pytest.raises(SsmlibError, match="80x64 frames, the agent's are 200x160"):
        build_agent(cfg, A)


def test_a_trained_agent_collects_data_with_epsilon(tmp_path):
    from ssmlib.__main__ import main
    from ssmlib.data.store import open_dataset

    cfg = dataclasses.replace(agent_profile("quick"), agent="model-free", num_envs=2, num_steps=2, total_steps=8,
                              env_threads=1)
    train_agent(cfg, tmp_path / "mf", progress=False)
    args = ["collect", "--steps", "40", "--envs", "2", "--steps-per-shard", "20", "--out", str(tmp_path / "data"),
            "--policy-agent", str(tmp_path / "mf" / "checkpoint.safetensors"), "--epsilon", "0.1", "--no-progress"]
    assert main(args) == 0
    ds = open_dataset(tmp_path / "data")
    assert len(ds) > 0
    pol = ds.manifest["policy"]
    assert pol["name"] == "epsilon" and pol["epsilon"] == 0.1 and pol["policy"]["name"] == "agent"
    bad = [*args[:9], "--policy-agent", str(tmp_path / "nope.safetensors"), "--overwrite"]
    assert main(bad) == 2
    assert open_dataset(tmp_path / "data").summary() == ds.summary()  # nothing lost


def test_env_rows_must_stay_in_env_order():
    from ssmlib.agents.envs import check_env_order

    check_env_order({"env_id": np.arange(4)}, 4)
    check_env_order({}, 4)  # envs that do not report ids (ImaginedVectorEnv) are in order by construction
    with pytest.raises(SsmlibError, match="out of env order"):
        check_env_order({"env_id": np.array([1, 0, 2, 3])}, 4)


def test_init_from_starts_a_new_run_from_another_agents_weights(tmp_path):
    cfg = dataclasses.replace(agent_profile("quick"), agent="model-free", num_envs=2, num_steps=2, total_steps=4,
                              env_threads=1)
    train_agent(cfg, tmp_path / "a", progress=False)
    src, *_ = load_agent(tmp_path / "a" / "checkpoint.safetensors")
    s = train_agent(dataclasses.replace(cfg, lr=0.0, rollout_policy="distill"), tmp_path / "b", progress=False,
                    init_from=tmp_path / "a" / "checkpoint.safetensors")  # (a model-free agent has no rollout policy)
    assert s["step"] == 4  # a new run: the step counter starts at 0
    dst, *_ = load_agent(tmp_path / "b" / "checkpoint.safetensors")
    assert all(torch.allclose(p, q) for p, q in zip(src.parameters(), dst.parameters()))
    with pytest.raises(SsmlibError, match="hidden differ"):
        train_agent(dataclasses.replace(cfg, hidden=64), tmp_path / "c", progress=False,
                    init_from=tmp_path / "a" / "checkpoint.safetensors")


def test_study_report_sets_the_training_log_beside_the_frozen_final_weights(quick_dataset, tmp_path):
    """Each run's logged score (a policy that learns while it plays) beside two scores of its final
    weights frozen: ``agent eval`` and the same A2C loop with lr=0."""
    from ssmlib.agents.evaluation import evaluate_agent
    from ssmlib.studies.i2a import report
    from ssmlib.data.store import open_dataset

    def env(seed):
        return ImaginedVectorEnv(quick_model("sSSM", seed=2), open_dataset(quick_dataset), num_envs=4, max_steps=5,
                                 seed=seed)

    cfg = dataclasses.replace(agent_profile("quick"), agent="model-free", num_envs=4, num_steps=4, total_steps=64)
    runs, frozen = tmp_path / "runs", tmp_path / "frozen"
    for seed in (0, 1):
        run = runs / f"model-free-s{seed}"
        train_agent(dataclasses.replace(cfg, seed=seed), run, env=env(seed), progress=False)
        agent, *_ = load_agent(run / "checkpoint.safetensors")
        ev = evaluate_agent(agent, env(9), episodes=4)
        (run / "eval.json").write_text(json.dumps({**ev, "trained_steps": 64}))
        train_agent(dataclasses.replace(cfg, seed=seed, lr=0.0), frozen / run.name, env=env(seed), progress=False,
                    init_from=run / "checkpoint.safetensors")
    s = report(runs, tmp_path / "results", frozen=frozen)
    mf = s["variants"]["model-free"]
    assert mf["seeds"] == 2 and all(r["eval_episodes"] == 4 and r["frozen_loop_episodes"] > 0 for r in s["rows"])
    assert mf["eval_return_mean"] == pytest.approx(np.mean([r["eval_return_mean"] for r in s["rows"]]))
    assert mf["online_last100_at_end"] is not None and mf["frozen_loop_last100"] is not None
    assert (tmp_path / "results" / "model-free-s1" / "frozen-loop-episodes.jsonl").exists()
    assert "| model-free |" in (tmp_path / "results" / "table.md").read_text().split("first game per env |")[1]
    # the lr=0 loop's first game of every env (episodes record their env): 4 envs, each its first game
    fe = [json.loads(x) for x in (frozen / "model-free-s0" / "episodes.jsonl").read_text().splitlines()]
    firsts = {}
    for e in fe:
        firsts.setdefault(e["env"], e["return"])
    row0 = next(r for r in s["rows"] if r["run"] == "model-free-s0")
    assert row0["frozen_loop_envs"] == len(firsts) == 4
    assert row0["frozen_loop_first_game"] == pytest.approx(np.mean(list(firsts.values())))
    # a score taken before the run was resumed is stale: flagged, and left out of the variant's mean
    ev = json.loads((runs / "model-free-s1" / "eval.json").read_text())
    (runs / "model-free-s1" / "eval.json").write_text(json.dumps({**ev, "trained_steps": 32}))
    s = report(runs, tmp_path / "results2", frozen=frozen)
    row1 = next(r for r in s["rows"] if r["run"] == "model-free-s1")
    assert row1["eval_stale_at_step"] == 32 and "eval_return_mean" not in row1
    assert s["variants"]["model-free"]["eval_return_mean"] is None  # not a mean over one of two seeds


def test_the_default_environment_model_follows_the_game(tmp_path, capsys):
    from ssmlib.__main__ import main
    from ssmlib.config import env_model_path, resolve_env_model

    paper = agent_profile("paper")
    assert paper.env_model == "auto"
    for game, spelled in (("MsPacman", "MsPacman"), ("Bowling", "bowling")):
        cfg = resolve_env_model(dataclasses.replace(paper, game=spelled))
        assert cfg.env_model == f"checkpoints/{game}/dSSM-DET.safetensors" and env_model_path(cfg.env_model).exists()
        agent = build_agent(cfg, 6 if game == "Bowling" else 9)  # loads that game's model (its action count)
        assert agent.env_model.cfg.num_actions == (6 if game == "Bowling" else 9)
    # a game without a committed model is refused, in one line that says what to pass
    code = main(["agent", "train", "--agent", "i2a", "--game", "Pong", "--profile", "paper",
                 "--out", str(tmp_path / "p"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no committed environment model for Pong" in err[0] and "--env-model" in err[0]
    assert not (tmp_path / "p").exists()
    assert resolve_env_model(dataclasses.replace(paper, agent="model-free", game="Pong")).agent == "model-free"
