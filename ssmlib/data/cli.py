"""``python -m ssmlib collect``: ALE frames into a dataset folder."""

from __future__ import annotations

import json

from ..config import get_profile
from .collect import collect, config_with


def _cli_collect(args) -> None:
    cfg = config_with(get_profile(args.profile).data, game=args.game, height=args.height, width=args.width,
                      num_envs=args.envs, seed=args.seed, steps_per_shard=args.steps_per_shard)
    factory = None
    if args.policy_agent:  # a trained agent (e.g. the model-free one) with some epsilon, fresh per shard
        from ..agents.envs import AgentPolicy
        from .ale import action_meanings
        from .collect import EpsilonPolicy

        n = len(action_meanings(cfg.game))
        AgentPolicy(args.policy_agent)  # fail early, with one line, on a bad checkpoint

        def factory():
            return EpsilonPolicy(AgentPolicy(args.policy_agent), n, args.epsilon)
    ds = collect(cfg, args.out, args.steps, policy_factory=factory, resume=args.resume, overwrite=args.overwrite,
                 progress=not args.no_progress)
    print(json.dumps(ds.summary()))


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("collect", help="collect ALE frames (random policy, or a trained agent) into a dataset folder")
    p.add_argument("--game", default=None, help="ALE game by short name (default: the profile's, MsPacman)")
    p.add_argument("--steps", type=int, required=True, help="agent steps in all (rounded up to whole shards)")
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument("--profile", default="quick", choices=("quick", "paper"))
    p.add_argument("--height", type=int, help="frame height, a multiple of 8 (profile: quick 80, paper 200)")
    p.add_argument("--width", type=int, help="frame width, a multiple of 8 (profile: quick 64, paper 160)")
    p.add_argument("--envs", type=int, help="environments stepped together")
    p.add_argument("--steps-per-shard", type=int, help="agent steps per env in one shard")
    p.add_argument("--seed", type=int)
    p.add_argument("--policy-agent", default=None, metavar="CHECKPOINT",
                   help="collect with a trained agent (ssmlib agent checkpoint) instead of random actions")
    p.add_argument("--epsilon", type=float, default=0.05, help="with --policy-agent: random-action probability")
    p.add_argument("--resume", action="store_true", help="continue an interrupted collection in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli_collect)
