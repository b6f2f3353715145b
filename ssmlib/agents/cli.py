"""``python -m ssmlib agent train | eval | export | report | bench``: the argparse wiring of the agents."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..config import AGENTS, PROFILES, ROLLOUT_POLICIES, AgentConfig, agent_profile, with_sets
from .a2c import train_agent
from .checkpoint import evaluate_checkpoint, export_agent
from ..studies.i2a import VARIANTS, bench, report


def _config_from_args(args) -> AgentConfig:
    cfg = agent_profile(args.profile)
    changes = {"agent": args.agent, "rollout_policy": args.rollout_policy, "game": args.game, "seed": args.seed}
    if args.env_model:
        changes["env_model"] = args.env_model
    if args.total_steps:
        changes["total_steps"] = args.total_steps
    cfg = dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
    return with_sets(cfg, args.set)


def _cli_train(args) -> int:
    cfg = _config_from_args(args)
    s = train_agent(cfg, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device,
                    time_limit=args.time_limit, progress=not args.no_progress, init_from=args.init_from)
    print(json.dumps({k: s[k] for k in ("status", "step", "wall_s", "return_mean_100")}))
    return 0


def _cli_eval(args) -> int:
    res = evaluate_checkpoint(args.checkpoint, args.episodes, args.num_envs, args.seed, args.env_threads,
                              args.device, args.out, args.overwrite)
    print(f"{res['agent']}: mean return {res['return_mean']} over {res['episodes']} episodes")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("agent", help="train or evaluate an actor-critic agent (model-free, I2A, copy)")
    sub = p.add_subparsers(dest="agent_command", required=True)
    _add_train(sub)
    _add_eval(sub)
    _add_export(sub)
    _add_report(sub)
    _add_bench(sub)


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="A2C training, checkpoints and --resume")
    t.add_argument("--agent", choices=AGENTS, default=None)
    t.add_argument("--rollout-policy", choices=ROLLOUT_POLICIES, default=None)
    t.add_argument("--env-model", default=None, help="checkpoint of the frozen environment model (I2A, copy)")
    t.add_argument("--game", default=None)
    t.add_argument("--profile", choices=PROFILES, default="quick")
    t.add_argument("--total-steps", type=int, default=None, help="agent steps over all environments")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--out", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start from another agent's weights (same architecture), fresh optimiser")
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--device", default=None)
    t.add_argument("--time-limit", type=float, default=None, help="seconds, then a clean stop with a checkpoint")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any AgentConfig field (all of them, with values and meanings: python -m ssmlib config --section agent)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cli_train)


def _add_eval(sub) -> None:
    e = sub.add_parser("eval", help="episode returns of a trained agent (policy sampling only)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--num-envs", type=int, default=8)
    e.add_argument("--seed", type=int, default=1_000_000)
    e.add_argument("--env-threads", type=int, default=0, help="emulator threads (0: one per env up to the CPUs)")
    e.add_argument("--device", default=None)
    e.add_argument("--out", default=None, help="write the returns as JSON here")
    e.add_argument("--overwrite", action="store_true")
    e.set_defaults(func=_cli_eval)


def _add_export(sub) -> None:
    x = sub.add_parser("export", help="weights-only copy of an agent checkpoint (small, for committing)")
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--overwrite", action="store_true")
    x.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="storage dtype of the weights (bfloat16: half the bytes)")
    x.set_defaults(func=lambda a: (export_agent(a.checkpoint, a.out, a.overwrite, a.dtype), 0)[1])


def _add_report(sub) -> None:
    r = sub.add_parser("report", help="the I2A study's summary from its run folders")
    r.add_argument("--runs", required=True)
    r.add_argument("--results", required=True)
    r.add_argument("--bench", nargs="*", default=[], help="bench files of `agent bench` (the cost of imagination)")
    r.add_argument("--frozen", default=None, help="folder of lr=0 continuations from each run's final weights")
    r.set_defaults(func=lambda a: (report(Path(a.runs), Path(a.results), a.bench, a.frozen), 0)[1])


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="agent steps/s of each variant's training loop, alone, in one run")
    b.add_argument("--variants", default=",".join(VARIANTS))
    b.add_argument("--profile", default="quick")
    b.add_argument("--env-model", default=None)
    b.add_argument("--seconds", type=float, default=30.0)
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="any AgentConfig field (all of them, with values and meanings: python -m ssmlib config --section agent)")
    b.add_argument("--device", default=None)
    b.add_argument("--out", required=True)
    b.set_defaults(func=lambda a: (bench([v.strip() for v in a.variants.split(",") if v.strip()], a.profile,
                                         a.env_model, a.seconds, Path(a.out), a.device, a.set), 0)[1])
