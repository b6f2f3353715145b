"""Profiles (issue #16): the config dataclasses' defaults are the paper profile, ``quick`` is a table of
overrides applied by the same code as ``--set``. ``SNAPSHOT`` is every field of both profiles as the code
built them before that refactor (generated from it, then frozen here): the refactor changed no value."""

from __future__ import annotations

from ssmlib.agents.config import agent_profile
from ssmlib.config import get_profile, to_dict

SNAPSHOT = {
    "quick": {
        "data": {"game": "MsPacman", "height": 80, "width": 64, "frameskip": 4, "sticky_actions": 0.25,
                 "num_envs": 4, "steps_per_shard": 1000, "mean_action_repeat": 4.0, "test_fraction": 0.1,
                 "max_episode_steps": 27000, "seed": 0},
        "model": {"model": "sSSM", "height": 80, "width": 64, "num_actions": 9, "channel_scale": 0.5,
                  "state_channels": 64, "z_channels": 16, "min_std": 0.01, "reward_head": "categorical",
                  "reward_values": (), "reward_classes": 8, "reward_bits": 12, "ar_frames": 3, "jump": 1},
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
                  "state_channels": 64, "z_channels": 32, "min_std": 0.01, "reward_head": "categorical",
                  "reward_values": (), "reward_classes": 8, "reward_bits": 12, "ar_frames": 3, "jump": 1},
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
