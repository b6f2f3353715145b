"""The agents the book serves (``ssmlib.pretrained``): the I2A campaign's kept best run of an arm once one has
finished, the pilot study's file until then; the pilot agent it supersedes leaves the repository at the unpack that
brings the kept run, unless a campaign pins it (the model-zoo campaign's data policy); the first zoo's dSSM-DET
stays (the default environment model of agent runs)."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from ssmlib.agents.checkpoint import KIND
from ssmlib.checkpoint import KIND as MODEL_KIND
from ssmlib.checkpoint import read_meta, write_file
from ssmlib.errors import SsmlibError
from ssmlib.pretrained import (SERVED_AGENTS, agent_source, pilot_agent_path, pretrained_agent_path, retirable_pilots,
                               retire_pilots)
from ssmlib.studies import zoo_campaign
from ssmlib.studies.i2a_campaign import best_weights_path
from ssmlib.studies.lease_files import unpack

GAME = "MsPacman"
I2A = "i2a-distill-dSSM-DET"


def _config(agent: str, env_model: str | None, seed: int = 0) -> dict:
    return {"agent": agent, "rollout_policy": "distill" if agent == "i2a" else "uniform", "env_model": env_model,
            "game": GAME, "seed": seed}


def _agent(path: Path, agent: str = "model-free", env_model: str | None = None, **meta) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, {"agent.w": torch.ones(3)}, {"kind": KIND, "format_version": 1, "step": 2_000_000,
                                                  "config": _config(agent, env_model), "weights_dtype": "bfloat16",
                                                  **meta})
    return path


def _model(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, {"w": torch.zeros(2)}, {"kind": MODEL_KIND, "format_version": 1, "model": "dSSM-DET"})
    return path


def _best(arm: str, run: str, frozen: float) -> dict:
    return {"campaign_best": {"run": run, "arm": arm, "seed": 6, "extra_seed": True, "steps": 2_000_000,
                              "frozen_mean": frozen, "frozen_games": 64}}


@pytest.fixture
def repo(tmp_path):
    """A repository like this one before the campaign keeps an I2A: the pilot agents (the model-free one's config
    names the default model too, as the committed one does), the first zoo's dSSM-DET the pilot I2A queries
    (relative path, as committed), a campaign model, and the model-zoo campaign's config (its default data policy:
    the pilot model-free agent)."""
    root = tmp_path / "repo"
    ck = root / "checkpoints"
    first_zoo = f"checkpoints/{GAME}/dSSM-DET.safetensors"
    _agent(pilot_agent_path(GAME, "model-free", ck), "model-free", first_zoo)
    _model(ck / GAME / "dSSM-DET.safetensors")
    _agent(pilot_agent_path(GAME, I2A, ck), "i2a", first_zoo)
    _model(ck / "campaign" / GAME / "dSSM-DET-s2.safetensors")
    zoo_campaign.init(zoo_campaign.CampaignConfig(game=GAME), results=root / "results")
    return root


def _keep(root: Path, arm: str, env_model: str | None = None) -> Path:
    agent = "model-free" if arm == "model-free" else "i2a"
    return _agent(best_weights_path(GAME, arm, root / "checkpoints"), agent, env_model,
                  **_best(arm, f"{arm}-s6", 1234.0))


def test_an_arm_is_served_by_its_pilot_until_the_campaign_keeps_a_run_then_by_that_run(repo):
    ck = repo / "checkpoints"
    for arm in SERVED_AGENTS:
        assert pretrained_agent_path(GAME, arm, ck) == pilot_agent_path(GAME, arm, ck)
    kept = _keep(repo, "model-free")
    assert pretrained_agent_path(GAME, "model-free", ck) == kept
    assert pretrained_agent_path(GAME, I2A, ck) == pilot_agent_path(GAME, I2A, ck)  # the other arm: still its pilot
    with pytest.raises(SsmlibError, match="choose one of model-free, i2a-distill-dSSM-DET"):
        pretrained_agent_path(GAME, "i2a-uniform-dSSM-DET", ck)


def test_nothing_is_retired_before_a_run_is_kept_and_the_pinned_data_policy_never(repo):
    assert retirable_pilots(GAME, repo / "checkpoints", repo / "results") == []
    _keep(repo, "model-free")  # the best model-free supersedes the pilot in the book, but the zoo collects with it
    assert retirable_pilots(GAME, repo / "checkpoints", repo / "results") == []


def test_a_kept_i2a_retires_the_pilot_i2a_only(repo):
    ck = repo / "checkpoints"
    _keep(repo, I2A, f"checkpoints/campaign/{GAME}/dSSM-DET-s2.safetensors")
    pilot = pilot_agent_path(GAME, I2A, ck)
    assert [p for p, _ in retirable_pilots(GAME, ck, repo / "results")] == [pilot]
    done = retire_pilots(GAME, ck, repo / "results")
    assert [line.split(" (")[0] for line in done] == [f"retired {pilot.name}"]
    assert not pilot.exists() and not pilot.with_suffix(".json").exists()  # the sidecar goes with it
    assert pilot_agent_path(GAME, "model-free", ck).exists()  # pinned
    assert (ck / GAME / "dSSM-DET.safetensors").exists()  # the default environment model of agent runs
    assert retire_pilots(GAME, ck, repo / "results") == []  # once


def test_without_a_zoo_campaign_nothing_is_pinned(repo):
    ck = repo / "checkpoints"
    (repo / "results/model_zoo" / GAME / "campaign/config.json").unlink()
    _keep(repo, "model-free")
    assert [p for p, _ in retirable_pilots(GAME, ck, repo / "results")] == [pilot_agent_path(GAME, "model-free", ck)]


def test_the_unpack_that_brings_a_kept_i2a_retires_the_pilots(repo, tmp_path):
    kept = tmp_path / "kept.safetensors"
    _agent(kept, "i2a", f"checkpoints/campaign/{GAME}/dSSM-DET-s2.safetensors", **_best(I2A, f"{I2A}-s0", 900.0))
    lineage = json.dumps({"run": f"{I2A}-s0", "leases": [{"lease": 1}]}).encode()
    back = tmp_path / "back" / "i2a"
    back.mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {f"results/i2a/{GAME}/campaign/{I2A}-s0/lineage.json": lineage,
                           f"checkpoints/i2a_campaign/{GAME}/best-{I2A}.safetensors": kept.read_bytes()}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_764_741_420
            tar.addfile(info, io.BytesIO(data))
    (back / "i2a_campaign.tar").write_bytes(buf.getvalue())
    done = unpack(back.parent, root=repo)
    assert any(line.startswith(f"retired {GAME}-i2a-distill.safetensors") for line in done), done
    assert not pilot_agent_path(GAME, I2A, repo / "checkpoints").exists()
    assert pretrained_agent_path(GAME, I2A, repo / "checkpoints") == best_weights_path(GAME, I2A, repo / "checkpoints")


def test_agent_source_says_which_run_serves(repo):
    ck = repo / "checkpoints"
    assert "pilot study's model-free-s0" in agent_source(pilot_agent_path(GAME, "model-free", ck))
    line = agent_source(_keep(repo, I2A))
    assert f"{I2A}-s6 (an extra seed)" in line and "frozen mean 1234 over 64 games" in line


def test_the_committed_tree_serves_every_arm_and_holds_no_pilot_it_could_retire():
    """What the chapters load exists, and every unpack retired what it could (else the tree carries dead MiB)."""
    for arm in SERVED_AGENTS:
        meta = read_meta(pretrained_agent_path(GAME, arm), kind=KIND)
        assert meta["config"]["game"] == GAME and (meta["agent"] == "model-free") == (arm == "model-free")
    assert retirable_pilots(GAME) == []


def test_model_source_reads_a_campaign_runs_frames_from_its_lineage_and_a_first_zoo_run_from_its_export():
    import json

    from ssmlib.checkpoint import read_meta
    from ssmlib.config import CHECKPOINTS_DIR, RESULTS_DIR
    from ssmlib.pretrained import model_source
    from ssmlib.studies.zoo_campaign import weights_path

    run = "dSSM-DET-s2"
    # the oracle: the committed lineage file as it lies, not the helper model_source calls
    leases = json.loads((RESULTS_DIR / "model_zoo" / GAME / "campaign" / run / "lineage.json").read_text())["leases"]
    frames = leases[-1]["frames_end"]
    assert model_source(weights_path(GAME, run)).endswith(f"run {run}, {frames / 1e6:.2f}M training frames")
    # the weights' own count is their last lease's only: the wrong number this reading avoids
    assert read_meta(weights_path(GAME, run))["frames_seen"] < frames
    assert model_source(CHECKPOINTS_DIR / GAME / "dSSM-DET.safetensors").startswith("the first zoo's dSSM-DET run, ")


def test_variant_name_inverts_variant_args():
    from ssmlib.studies.i2a import VARIANTS, variant_args, variant_name

    assert [variant_name(*variant_args(v)) for v in VARIANTS] == list(VARIANTS)
