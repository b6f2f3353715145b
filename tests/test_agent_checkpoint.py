"""Agent checkpoints stored in bf16: ``export_agent(..., dtype="bfloat16")`` halves the bytes of the
floating-point weights, ``load_agent`` casts them back into float32 parameters whose outputs match the
float32 copy within bf16's precision, a re-export keeps where the weights came from, an existing file is
never replaced silently; the committed agents are bf16 and their float32-vs-bf16 check is of them."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ssmlib.agents import build_agent, load_agent
from ssmlib.agents.checkpoint import (DTYPES, compare_dtypes, export_agent, float_bytes, save_agent,
                                      write_comparison)
from ssmlib.checkpoint import SUFFIX, read_meta, save_checkpoint
from ssmlib.config import REPO_ROOT, agent_profile, get_profile
from ssmlib.errors import SsmlibError
from ssmlib.io import sha256_file
from ssmlib.models import build_model

torch.set_num_threads(1)
A = 9
AGENTS = REPO_ROOT / "checkpoints" / "agents"
PILOTS_IN_BF16 = ("MsPacman-i2a-distill",)
"""The pilot agents stored in bf16 (``bf16-check.json`` compares them with their float32 weights). The model-free
pilot stays float32: the model-zoo campaign collects its dataset with it, and bf16 weights would draw other actions,
hence another dataset fingerprint. The pilot I2A leaves the repository once the I2A campaign keeps a run of its arm
(``ssmlib.pretrained.retire_pilots``); the kept run's own check is its ``stored_frozen_mean``."""
COMMITTED = tuple(n for n in PILOTS_IN_BF16 if (AGENTS / f"{n}.safetensors").exists())


def _header(path) -> dict:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return {k: v for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}


def _train_ckpt(tmp_path, agent: str = "model-free"):
    """A training checkpoint (weights, RMSprop state, RNG) of a quick-profile agent, as a run folder."""
    cfg = dataclasses.replace(agent_profile("quick"), agent=agent, rollout_policy="distill")
    extra = {"num_actions": A, "game": "MsPacman"}
    if agent != "model-free":
        torch.manual_seed(0)
        path = tmp_path / "model.safetensors"
        save_checkpoint(path, build_model(dataclasses.replace(get_profile("quick").model, model="dSSM-DET")))
        cfg = dataclasses.replace(cfg, env_model=str(path))
        extra["env_model_sha256"] = sha256_file(path)
    torch.manual_seed(1)
    net = build_agent(cfg, A)
    with torch.no_grad():  # weights of a trained agent's scale, not an init's near-zero biases
        for p in net.agent_state_dict().values():
            p.add_(0.05 * torch.randn_like(p))
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3)
    net(torch.randint(0, 256, (2, 3, 80, 64, 3), dtype=torch.uint8)).value.sum().backward()
    opt.step()
    run = tmp_path / "run"
    run.mkdir()
    save_agent(run / "checkpoint.safetensors", net, opt, cfg, step=40, update=5, extra=extra)
    return run


def _outputs(agent, obs):
    torch.manual_seed(3)  # an I2A samples its rollout actions: the same stream for both copies
    with torch.no_grad():
        out = agent.eval()(obs)
    return out.logits, out.value


@pytest.mark.parametrize("agent", ["model-free", "i2a"])
def test_bf16_export_halves_the_float_bytes_and_loads_back_close_to_float32(agent, tmp_path):
    run = _train_ckpt(tmp_path, agent)
    f32 = export_agent(run, tmp_path / f"f32{SUFFIX}")
    b16 = export_agent(run, tmp_path / f"b16{SUFFIX}", dtype="bfloat16")
    assert (f32["weights_dtype"], b16["weights_dtype"]) == ("float32", "bfloat16")
    assert float_bytes(tmp_path / f"b16{SUFFIX}") * 2 == float_bytes(tmp_path / f"f32{SUFFIX}") > 0
    assert (tmp_path / f"b16{SUFFIX}").stat().st_size < 0.55 * (tmp_path / f"f32{SUFFIX}").stat().st_size
    head = _header(tmp_path / f"b16{SUFFIX}")
    assert head and all(k.startswith("agent.") for k in head)  # weights only: no optimiser, no RNG
    assert {v["dtype"] for v in head.values()} == {"BF16"}
    assert b16["optimizer"] is None and b16["step"] == 40

    ref, *_ = load_agent(tmp_path / f"f32{SUFFIX}")
    got, _, meta, tensors = load_agent(tmp_path / f"b16{SUFFIX}")
    assert meta["weights_dtype"] == "bfloat16" and tensors["agent.policy.weight"].dtype == torch.bfloat16
    ours, theirs = ref.agent_state_dict(), got.agent_state_dict()
    for k, v in ours.items():  # float32 parameters holding exactly the bf16-rounded weights
        assert theirs[k].dtype == torch.float32
        assert torch.equal(theirs[k], v.to(torch.bfloat16).float()), k
    assert any(not torch.equal(theirs[k], v) for k, v in ours.items())  # bf16 did round something

    obs = torch.randint(0, 256, (4, 3, 80, 64, 3), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    (l32, v32), (l16, v16) = _outputs(ref, obs), _outputs(got, obs)
    scale = float(l32.abs().max())
    tol = 0.05 * scale + 1e-3  # bf16 keeps 8 significant bits: ~0.4% per weight, a few % through a network
    assert (l16 - l32).abs().max() <= tol and (v16 - v32).abs().max() <= 0.05 * float(v32.abs().max()) + 1e-3
    assert not torch.equal(l16, l32)  # the copies do differ: the test compares two things


def test_a_re_export_keeps_where_the_weights_came_from(tmp_path):
    run = _train_ckpt(tmp_path, "i2a")
    first = export_agent(run, tmp_path / f"a{SUFFIX}")
    assert first["exported_from"] == str(run / "checkpoint.safetensors") and "re_exported_from" not in first
    again = export_agent(tmp_path / f"a{SUFFIX}", tmp_path / f"b{SUFFIX}", dtype="bfloat16")
    assert again["exported_from"] == first["exported_from"]  # the training run, not the export
    assert again["re_exported_from"] == str(tmp_path / f"a{SUFFIX}")
    assert [(r["from"], r["from_dtype"], r["dtype"]) for r in again["re_exports"]] == [
        (str(tmp_path / f"a{SUFFIX}"), "float32", "bfloat16")]
    for k in ("step", "update", "config", "env_model_sha256", "game", "num_actions"):
        assert again[k] == first[k], k
    third = export_agent(tmp_path / f"b{SUFFIX}", tmp_path / f"c{SUFFIX}", dtype="bfloat16")
    assert third["exported_from"] == first["exported_from"] and len(third["re_exports"]) == 2
    assert third["re_exports"][1]["from_dtype"] == "bfloat16"
    assert json.loads((tmp_path / "c.json").read_text()) == third  # the sidecar says the same


def test_export_refuses_to_overwrite_without_overwrite_in_one_line(tmp_path, capsys):
    from ssmlib.__main__ import main

    run = _train_ckpt(tmp_path)
    dst = tmp_path / f"out{SUFFIX}"
    export_agent(run, dst)
    before = dst.read_bytes()
    with pytest.raises(SsmlibError, match="exists; pass --overwrite") as e:
        export_agent(run, dst, dtype="bfloat16")
    assert "\n" not in str(e.value) and dst.read_bytes() == before
    code = main(["agent", "export", "--checkpoint", str(run), "--out", str(dst), "--dtype", "bfloat16"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--overwrite" in err[0] and dst.read_bytes() == before
    assert main(["agent", "export", "--checkpoint", str(run), "--out", str(dst), "--dtype", "bfloat16",
                 "--overwrite"]) == 0
    assert read_meta(dst, kind="ssmlib-agent")["weights_dtype"] == "bfloat16"
    with pytest.raises(SsmlibError, match="choose float32 or bfloat16"):
        export_agent(run, tmp_path / f"x{SUFFIX}", dtype="float16")
    assert DTYPES == ("float32", "bfloat16")


def test_the_dtype_comparison_runs_on_real_frames_and_is_written_with_its_command(tmp_path):
    run = _train_ckpt(tmp_path)
    export_agent(run, tmp_path / f"f32{SUFFIX}")
    export_agent(run, tmp_path / f"b16{SUFFIX}", dtype="bfloat16")
    res = compare_dtypes(tmp_path / f"f32{SUFFIX}", tmp_path / f"b16{SUFFIX}", frames=6, frame_envs=2,
                         frame_every=2, games=1, game_envs=1, max_steps=10, seed=5, noise_baseline=True)
    assert res["frames"]["n"] == 6 and res["frames"]["shape"] == [3, 80, 64, 3]
    assert 0 < res["logits_max_abs_diff"] < 0.05 * res["logits_ref_abs_max"] + 1e-3
    assert 0.0 <= res["argmax_agree"] <= 1.0 and res["noise_baseline"]["logits_max_abs_diff"] == 0.0
    assert res["test"]["float_bytes"] * 2 == res["ref"]["float_bytes"]
    for side in ("games_ref", "games_test"):  # a 10-step game is cut short: its return so far is kept
        assert res[side]["max_steps"] == 10 and len(res[side]["partial_returns"]) == 1
    doc = write_comparison(tmp_path / "check.json", [res], "python -m ssmlib.agents.checkpoint ...", "a note")
    assert json.loads((tmp_path / "check.json").read_text()) == json.loads(json.dumps(doc))
    assert doc["command"].startswith("python -m ssmlib.agents.checkpoint") and doc["provenance"]["git_sha"]


@pytest.mark.parametrize("name", COMMITTED)
def test_the_committed_agents_are_bf16_exports_that_keep_their_source(name):
    path = AGENTS / f"{name}{SUFFIX}"
    meta = read_meta(path, kind="ssmlib-agent")
    assert meta["weights_dtype"] == "bfloat16" and meta["optimizer"] is None
    assert meta["exported_from"].startswith("runs/") and meta["re_exports"][-1]["dtype"] == "bfloat16"
    assert {v["dtype"] for v in _header(path).values()} == {"BF16"}
    assert json.loads(path.with_suffix(".json").read_text()) == meta  # the sidecar is of this file


def test_every_served_bf16_agent_has_its_float32_check():
    """The pilots' check is bf16-check.json; a kept campaign run's is its bf16 copy scored on the same starts."""
    from ssmlib.pretrained import SERVED_AGENTS, pretrained_agent_path

    checked = {r["test"]["path"].rsplit("/", 1)[-1].removesuffix(SUFFIX)
               for r in json.loads((AGENTS / "bf16-check.json").read_text())["results"]}
    for arm in SERVED_AGENTS:
        path = pretrained_agent_path("MsPacman", arm)
        meta = read_meta(path, kind="ssmlib-agent")
        if meta.get("weights_dtype") != "bfloat16":
            continue
        best = meta.get("campaign_best")
        assert path.stem in checked if best is None else best["stored_frozen_mean"] is not None, path


def test_the_committed_bf16_check_is_of_the_committed_files():
    doc = json.loads((AGENTS / "bf16-check.json").read_text())
    assert doc["command"].startswith("python -m ssmlib.agents.checkpoint")
    by_name = {r["test"]["path"].rsplit("/", 1)[-1].removesuffix(SUFFIX): r for r in doc["results"]}
    assert set(COMMITTED) <= set(by_name)
    for name in COMMITTED:
        r = by_name[name]
        meta = read_meta(AGENTS / f"{name}{SUFFIX}", kind="ssmlib-agent")
        assert r["test"]["tensors_sha256"] == meta["tensors_sha256"], f"{name} changed since bf16-check.json"
        assert r["ref"]["weights_dtype"] == "float32" and r["test"]["weights_dtype"] == "bfloat16"
        assert r["frames"]["n"] >= 128 and r["frames"]["shape"] == [3, 200, 160, 3]
        assert r["games_ref"]["max_steps"] == r["games_test"]["max_steps"]


def test_every_served_campaign_agents_bf16_copy_plays_like_its_float32_weights():
    """The served bf16 copy of a kept campaign run against its float32 weights on the same 64 starts: the 95%
    paired bootstrap interval of the per-game difference (stored - float32) must hold 0. A stored copy whose
    rounding changed how the agent plays fails it (its means alone, e.g. 1374.5 against 1247.8, say nothing)."""
    import numpy as np

    from ssmlib.config import RESULTS_DIR
    from ssmlib.pretrained import SERVED_AGENTS, pretrained_agent_path

    judged = 0
    for arm in SERVED_AGENTS:
        best = read_meta(pretrained_agent_path("MsPacman", arm), kind="ssmlib-agent").get("campaign_best")
        if best is None:
            continue  # a pilot: bf16-check.json checks it (above)
        run = RESULTS_DIR / "i2a" / "MsPacman" / "campaign" / best["run"]
        ref, stored = (np.asarray(json.loads((run / f).read_text())["returns"]) for f in ("eval.json", "eval-stored.json"))
        assert len(ref) == len(stored) == best["frozen_games"]
        assert (ref.mean(), stored.mean()) == pytest.approx((best["frozen_mean"], best["stored_frozen_mean"]))
        diff = stored - ref
        boot = diff[np.random.default_rng(0).integers(0, len(diff), (4000, len(diff)))].mean(1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        assert lo <= 0 <= hi, f"{best['run']}: bf16 minus float32 {diff.mean():+.1f} [{lo:.1f}, {hi:.1f}] per game"
        judged += 1
    assert judged >= 1  # the served model-free agent is a kept campaign run since 2026-12-05
