"""``python -m ssmlib collect``: ALE frames into a dataset folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import PROFILES, get_profile
from ..errors import SsmlibError
from .collect import collect, config_from_manifest, config_with

DEFAULT_EPSILON = 0.05


@dataclass(frozen=True)
class AgentPolicies:
    """The policy factory of a collection with a trained agent: a fresh agent per shard, taking a uniform random
    action with probability ``epsilon``, on a ``share`` of the envs (the others random; None: all of them).
    A dataclass, not a closure: ``collect``'s worker processes are sent it."""

    checkpoint: str
    device: str
    num_actions: int
    epsilon: float
    share: float | None
    mean_repeat: float

    @classmethod
    def for_data(cls, checkpoint: str, cfg, epsilon: float, share: float | None) -> "AgentPolicies":
        """For a collection with ``cfg`` (a DataConfig): its game's actions and random envs' action repeat, the agent
        on CUDA where there is one."""
        import torch

        from .ale import action_meanings

        return cls(str(checkpoint), "cuda" if torch.cuda.is_available() else "cpu", len(action_meanings(cfg.game)),
                   epsilon, share, cfg.mean_action_repeat)

    def __call__(self):
        from ..agents.policy import AgentPolicy
        from .collect import EpsilonPolicy, RandomPolicy, SplitPolicy

        agent = EpsilonPolicy(AgentPolicy(self.checkpoint, device=self.device), self.num_actions, self.epsilon)
        if self.share is None:
            return agent
        return SplitPolicy(agent, RandomPolicy(self.num_actions, self.mean_repeat), self.share)


def _cli_collect(args) -> None:
    out = Path(args.out)
    manifest = None
    if args.resume and (out / "manifest.json").exists():
        from .store import read_manifest

        manifest = read_manifest(out)
    if args.steps is None and manifest is None:
        raise SsmlibError("collect needs --steps N (agent steps in all)"
                          + (f"; {out} has no collection to resume" if args.resume else ""))
    # --resume continues with the dataset's own settings; flags given with it must agree (collect checks)
    base = config_from_manifest(manifest) if manifest is not None and args.profile is None else \
        get_profile(args.profile or "quick").data
    cfg = config_with(base, game=args.game, height=args.height, width=args.width, num_envs=args.envs,
                      seed=args.seed, steps_per_shard=args.steps_per_shard)
    agent_ckpt, epsilon, share = args.policy_agent, args.epsilon, args.agent_share
    saved = (manifest or {}).get("policy") or {}
    if manifest is not None and agent_ckpt is None and saved.get("name") == "split":  # agent envs + random envs
        share = saved["share"] if share is None else share
        saved = saved.get("first") or {}
    if manifest is not None and agent_ckpt is None and saved.get("name") == "epsilon":
        inner = saved.get("policy") or {}
        if inner.get("name") == "agent":  # collected with a trained agent: the same one, with the same epsilon
            agent_ckpt = inner["checkpoint"]
            epsilon = saved["epsilon"] if epsilon is None else epsilon
    if share is not None and agent_ckpt is None:
        raise SsmlibError("--agent-share applies to --policy-agent only")
    if epsilon is not None and agent_ckpt is None:
        raise SsmlibError("--epsilon applies to --policy-agent only (the random policy is uniform)")
    factory = None
    if agent_ckpt:  # a trained agent (e.g. the model-free one) with some epsilon, fresh per shard
        from ..agents.policy import AgentPolicy

        AgentPolicy(agent_ckpt)  # fail early, with one line, on a bad checkpoint
        factory = AgentPolicies.for_data(agent_ckpt, cfg, DEFAULT_EPSILON if epsilon is None else epsilon, share)
    ds = collect(cfg, out, args.steps, policy_factory=factory, resume=args.resume, overwrite=args.overwrite,
                 progress=not args.no_progress, workers=args.workers)
    print(json.dumps(ds.summary()))
    if ds.manifest.get("collect_phases_s"):  # where this call's time went (the writer thread overlaps the rest)
        workers = ds.manifest.get("collect_workers", 1)
        print("collect phases (s) of the call that collected the last shard"
              + (f", summed over its {workers} worker processes" if workers > 1 else "") + ": "
              + json.dumps(ds.manifest["collect_phases_s"]))


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("collect", help="collect ALE frames (random policy, or a trained agent) into a dataset folder")
    p.add_argument("--game", default=None, help="ALE game by short name (default: the profile's, MsPacman)")
    p.add_argument("--steps", type=int, default=None,
                   help="agent steps in all, rounded up to whole shards (required unless --resume)")
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument("--profile", default=None, choices=PROFILES,
                   help="settings of a new dataset (default quick); with --resume: the dataset's own")
    p.add_argument("--height", type=int, help="frame height, a multiple of 8 (profile: quick 80, paper 200)")
    p.add_argument("--width", type=int, help="frame width, a multiple of 8 (profile: quick 64, paper 160)")
    p.add_argument("--envs", type=int, help="environments stepped together")
    p.add_argument("--steps-per-shard", type=int, help="agent steps per env in one shard")
    p.add_argument("--seed", type=int)
    p.add_argument("--policy-agent", default=None, metavar="CHECKPOINT",
                   help="collect with a trained agent (ssmlib agent checkpoint) instead of random actions")
    p.add_argument("--epsilon", type=float, default=None,
                   help=f"with --policy-agent: random-action probability (default {DEFAULT_EPSILON})")
    p.add_argument("--agent-share", type=float, default=None, metavar="F",
                   help="with --policy-agent: the share of the envs the agent plays (the others play randomly)")
    p.add_argument("--resume", action="store_true",
                   help="continue the collection in --out with its own settings; re-collects missing or corrupt shards")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--workers", type=int, default=1,
                   help="shards collected at once, each in its own process with its share of the cores (the same "
                        "bytes as one at a time)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli_collect)
