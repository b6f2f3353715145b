"""Profiles (issue #16): the config dataclasses' defaults are the paper profile, ``quick`` is a table of
overrides applied by the same code as ``--set``. ``SNAPSHOT`` is every field of both profiles as the code
built them before that refactor (generated from it, then frozen here): the refactor changed no value."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ssmlib import checkpoint as ckpt
from ssmlib.__main__ import main
from ssmlib.agents.checkpoint import KIND as AGENT_KIND
from ssmlib.config import (PROFILE_SETS, PROFILES, QUICK, REPO_ROOT, SECTIONS, AgentConfig, ModelConfig, TrainConfig,
                           agent_profile, apply_sets, from_dict, get_profile, parse_sets, profile_config, profile_sets,
                           to_dict, with_sets)
from ssmlib.config_cli import CLASSES, format_settings, overridden, settings
from ssmlib.errors import SsmlibError

SNAPSHOT = {
    "quick": {
        "data": {"game": "MsPacman", "height": 80, "width": 64, "frameskip": 4, "sticky_actions": 0.25,
                 "num_envs": 4, "steps_per_shard": 1000, "mean_action_repeat": 4.0, "test_fraction": 0.1,
                 "max_episode_steps": 27000, "seed": 0},
        "model": {"model": "sSSM", "height": 80, "width": 64, "num_actions": 9, "channel_scale": 0.5,
                  "state_channels": 64, "z_channels": 16, "min_std": 0.01, "reward_head": "categorical", "reward_state": "posterior",
                  "reward_values": (), "reward_classes": 8, "reward_class_weights": (), "reward_bits": 12,
                  "ar_frames": 3, "jump": 1},
        "train": {"context": 3, "horizon": 5, "batch_size": 8, "steps": 200, "lr": 0.001, "weight_decay": 1e-05,
                  "grad_clip": 1.0, "kl_warmup_steps": 50, "lr_warmup_steps": 0, "reward_weight": 100.0,
                  "kl_balance": 0.8, "kl_free_nats": 4.0, "channels_last": True, "check_every": 0, "log_every": 10,
                  "eval_every": 100, "ckpt_every": 100, "amp": True, "compile": False, "seed": 0},
        "agent": {"agent": "i2a", "rollout_policy": "distill", "env_model": "", "game": "MsPacman", "height": 80,
                  "width": 64, "num_envs": 8, "num_steps": 5, "total_steps": 400, "lr": 0.0007, "gamma": 0.99,
                  "gae_lambda": 0.95, "ent_coef": 0.01, "vf_coef": 0.5, "distill_coef": 1.0, "max_grad_norm": 0.5,
                  "rollout_depth": 2, "gumbel_tau": 1.0, "mf_pool": 1, "hidden": 128, "lstm": 64,
                  "sticky_actions": 0.25, "noop_max": 30, "amp": True, "env_threads": 0, "seed": 0, "log_every": 5,
                  "ckpt_every": 120.0},
    },
    "paper": {
        "data": {"game": "MsPacman", "height": 200, "width": 160, "frameskip": 4, "sticky_actions": 0.25,
                 "num_envs": 64, "steps_per_shard": 1000, "mean_action_repeat": 4.0, "test_fraction": 0.1,
                 "max_episode_steps": 27000, "seed": 0},
        "model": {"model": "sSSM", "height": 200, "width": 160, "num_actions": 9, "channel_scale": 1.0,
                  "state_channels": 64, "z_channels": 32, "min_std": 0.01, "reward_head": "categorical", "reward_state": "posterior",
                  "reward_values": (), "reward_classes": 8, "reward_class_weights": (), "reward_bits": 12,
                  "ar_frames": 3, "jump": 1},
        "train": {"context": 3, "horizon": 10, "batch_size": 256, "steps": 20000, "lr": 0.0014,
                  "weight_decay": 1e-05, "grad_clip": 1.0, "kl_warmup_steps": 1000, "lr_warmup_steps": 1000,
                  "reward_weight": 100.0, "kl_balance": 0.8, "kl_free_nats": 4.0, "channels_last": True,
                  "check_every": 0, "log_every": 50, "eval_every": 1000, "ckpt_every": 1000, "amp": True,
                  "compile": False, "seed": 0},
        "agent": {"agent": "i2a", "rollout_policy": "distill", "env_model": "auto", "game": "MsPacman",
                  "height": 200, "width": 160, "num_envs": 64, "num_steps": 5, "total_steps": 10000000,
                  "lr": 0.0007, "gamma": 0.99, "gae_lambda": 0.95, "ent_coef": 0.01, "vf_coef": 0.5,
                  "distill_coef": 1.0, "max_grad_norm": 0.5, "rollout_depth": 3, "gumbel_tau": 1.0, "mf_pool": 2,
                  "hidden": 256, "lstm": 256, "sticky_actions": 0.25, "noop_max": 30, "amp": True, "env_threads": 0,
                  "seed": 0, "log_every": 20, "ckpt_every": 120.0},
    },
}


def profile_dicts(name: str) -> dict:
    p = get_profile(name)
    return {"data": to_dict(p.data), "model": to_dict(p.model), "train": to_dict(p.train),
            "agent": to_dict(agent_profile(name))}


def test_profiles_hold_exactly_the_values_of_the_snapshot():
    for name, expected in SNAPSHOT.items():
        got = profile_dicts(name)
        assert got == expected, name
        # and the same types (1000 is not 1000.0 in a JSON config)
        types = {s: {k: type(v) for k, v in d.items()} for s, d in got.items()}
        assert types == {s: {k: type(v) for k, v in d.items()} for s, d in expected.items()}, name


# --------------------------------------------------------------------------------------------------
# the defaults are the paper profile, quick is a table applied as --set is

def test_the_paper_profile_is_the_dataclasses_defaults():
    assert profile_sets("paper") == {}
    assert profile_dicts("paper") == {s: to_dict(cls()) for s, cls in CLASSES.items()}


def test_profiles_come_from_the_override_table():
    assert PROFILES == tuple(PROFILE_SETS) == ("quick", "paper")
    with pytest.raises(SsmlibError, match="unknown profile 'fast'"):
        get_profile("fast")
    with pytest.raises(SsmlibError, match="unknown profile 'fast'"):
        agent_profile("fast")


def test_every_quick_row_names_a_field_and_changes_its_paper_value():
    for key, value in QUICK.items():
        section, name = key.split(".", 1)
        assert section in SECTIONS, key
        paper = getattr(CLASSES[section](), name)  # AttributeError: no such field
        assert type(value) is type(paper), f"{key}: {value!r} is not a {type(paper).__name__}"
        assert value != paper, f"{key}: the paper's value already; not an override"
    # and what the table does not name is the paper's value
    quick, paper = profile_dicts("quick"), profile_dicts("paper")
    changed = {f"{s}.{k}" for s in SECTIONS for k in quick[s] if quick[s][k] != paper[s][k]}
    assert changed == set(QUICK)


def test_the_quick_table_given_as_set_strings_builds_the_same_configs():
    # the table and --set go through one function (apply_sets): the table written as --set items agrees
    for section, cls in CLASSES.items():
        items = [f"{section}.{k}={v}" for k, v in profile_sets("quick", section).items()]
        assert apply_sets(cls(), parse_sets(items)) == profile_config("quick", section, cls), section
    items = [f"{k}={v}" for k, v in QUICK.items() if k.startswith("agent.")]
    assert with_sets(AgentConfig(), items) == agent_profile("quick")


def test_apply_sets_refuses_unknown_fields_and_other_types():
    cfg = apply_sets(TrainConfig(), {"lr": "2e-3", "steps": "50", "amp": "off", "kl_free_nats": 0})
    assert (cfg.lr, cfg.steps, cfg.amp, cfg.kl_free_nats) == (2e-3, 50, False, 0.0)
    assert type(cfg.kl_free_nats) is float and TrainConfig().lr == 1.4e-3  # a copy: the input is not changed
    with pytest.raises(SsmlibError, match=r"--set lrr: no such TrainConfig field \(did you mean lr\?\)"):
        apply_sets(TrainConfig(), {"lrr": "1"})
    with pytest.raises(SsmlibError, match="expected a int"):
        apply_sets(TrainConfig(), {"steps": "1.5"})
    with pytest.raises(SsmlibError, match=r"profile quick: train\.steps=1\.5: expected a int"):
        apply_sets(TrainConfig(), {"steps": 1.5}, source="profile quick: train.")
    with pytest.raises(SsmlibError, match="expected a bool"):
        apply_sets(TrainConfig(), {"amp": 1})


def test_config_marks_what_the_quick_table_overrides():
    text = format_settings(settings("quick", ("data", "agent")), marks=overridden("quick", ("data", "agent")))
    lines = text.splitlines()
    assert "  height = 80    [quick; paper: 200]" in lines and "  num_envs = 4    [quick; paper: 64]" in lines
    assert "  mf_pool = 1    [quick; paper: 2]" in lines and "  env_model = ''    [quick; paper: 'auto']" in lines
    assert "  frameskip = 4" in lines  # not in the table: unmarked
    assert sum("[quick; paper:" in line for line in lines) == sum(k.split(".")[0] in ("data", "agent") for k in QUICK)
    assert overridden("paper") == {s: {} for s in SECTIONS}
    assert "[paper" not in format_settings(settings("paper"), marks=overridden("paper"), profile="paper")


def test_the_config_command_marks_quick_overrides(capsys):
    assert main(["config", "--profile", "quick", "--section", "train"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  lr = 0.001    [quick; paper: 0.0014]" in out and "  batch_size = 8    [quick; paper: 256]" in out
    assert "  lr_warmup_steps = 0    [quick; paper: 1000]" in out and "  weight_decay = 1e-05" in out


# --------------------------------------------------------------------------------------------------
# configs stored in checkpoints and results read the same: every field is stored, no default is read

COMMITTED = sorted([*(REPO_ROOT / "checkpoints").rglob("*.safetensors"),
                    *(REPO_ROOT / "checkpoints").rglob("*.safetensors.xz")])  # the I2A campaign's open runs' state


def _names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _agent_meta(path) -> dict | None:
    """An agent checkpoint's metadata (checkpoints/agents/, the I2A campaign's state and kept weights, ...), told by
    its header's kind; None for an environment model."""
    from ssmlib.studies.i2a_campaign import read_state_meta

    try:
        return read_state_meta(path)  # compressed or not
    except SsmlibError:
        return None


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO_ROOT / "checkpoints")))
def test_committed_checkpoints_store_every_field(path):
    meta = _agent_meta(path)
    if meta is not None:
        assert _names(AgentConfig) <= set(meta["config"])
        assert to_dict(from_dict(AgentConfig, meta["config"])) == meta["config"]
        return
    meta = ckpt.read_meta(path)
    assert _names(ModelConfig) <= set(meta["model_cfg"]) | set(ckpt.LEGACY_MODEL_FIELDS)
    assert _names(TrainConfig) <= set(meta["train_cfg"]) | set(ckpt.LEGACY_TRAIN_FIELDS)
    model, train = to_dict(ckpt.model_config(meta)), to_dict(ckpt.train_config(meta))
    assert {k: model[k] for k in meta["model_cfg"]} == {k: (tuple(v) if isinstance(v, list) else v)
                                                        for k, v in meta["model_cfg"].items()}
    assert {k: train[k] for k in meta["train_cfg"]} == meta["train_cfg"]


def test_the_committed_msPacman_sssm_and_agents_load_with_their_stored_sizes():
    from ssmlib.pretrained import pretrained_path

    meta = json.loads(pretrained_path("MsPacman", "sSSM").with_suffix(".json").read_text())
    model = from_dict(ModelConfig, {**ckpt.LEGACY_MODEL_FIELDS, **meta["model_cfg"]})
    assert (model.height, model.width) == (meta["model_cfg"]["height"], meta["model_cfg"]["width"])
    train = ckpt.train_config(meta)
    assert (train.batch_size, train.lr) == (meta["train_cfg"]["batch_size"], meta["train_cfg"]["lr"])
    from ssmlib.pretrained import SERVED_AGENTS, pretrained_agent_path

    for arm in SERVED_AGENTS:  # the pilots' files until the I2A campaign keeps a run of the arm
        stored = ckpt.read_meta(pretrained_agent_path("MsPacman", arm), kind=AGENT_KIND)["config"]
        cfg = from_dict(AgentConfig, stored)
        assert (cfg.mf_pool, cfg.height, cfg.num_envs) == (stored["mf_pool"], stored["height"], stored["num_envs"])


def test_the_i2a_campaign_designs_store_every_shared_setting():
    from ssmlib.studies.i2a_campaign import VARIES

    for path in (REPO_ROOT / "results/i2a").glob("*/campaign/config.json"):
        hp = json.loads(path.read_text())["hyper_parameters"]
        assert _names(AgentConfig) - set(hp) <= set(VARIES), path  # agent_config gives those


def test_train_set_goes_through_apply_sets():
    """``train --set`` routes each key to TrainConfig or ModelConfig and types it as the profiles' table is."""
    from ssmlib.config import get_profile
    from ssmlib.train import apply_overrides

    p = get_profile("quick")
    t, m = apply_overrides(p.train, p.model, {"lr": "2e-3", "channel_scale": "0.75", "steps": 7})
    assert (t.lr, t.steps, m.channel_scale) == (2e-3, 7, 0.75)
    assert p.train.lr != 2e-3 and p.model.channel_scale != 0.75  # copies: the profile is untouched
    with pytest.raises(SsmlibError, match=r"--set batch_size=2\.5: expected a int"):
        apply_overrides(p.train, p.model, {"batch_size": 2.5})
    with pytest.raises(SsmlibError, match=r"--set lrr: no such TrainConfig or ModelConfig field \(did you mean lr\?\)"):
        apply_overrides(p.train, p.model, {"lrr": 1})
    with pytest.raises(SsmlibError, match="come from the data"):
        apply_overrides(p.train, p.model, {"height": 10})
