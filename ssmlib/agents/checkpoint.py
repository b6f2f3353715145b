"""An agent from its configuration or from its checkpoint, and agent checkpoints (safetensors + JSON;
never a pickle): the agent's own weights, the optimiser's state and the RNG state, with the config
and the sha256 of the frozen environment model the agent was trained with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint as ckpt
from ..config import REPO_ROOT, AgentConfig, check_config, env_model_path, from_dict, resolve_env_model, to_dict
from ..errors import SsmlibError
from ..io import git_sha, sha256_file
from .model_api import LatentModel
from .networks import I2AAgent, ModelFreeAgent

KIND = "ssmlib-agent"
CHECKPOINT = "checkpoint.safetensors"


def build_agent(cfg: AgentConfig, num_actions: int, device="cpu", env_model: LatentModel | None = None):
    """The agent of ``cfg`` (I2A/copy load and freeze ``cfg.env_model`` unless ``env_model`` is given)."""
    if env_model is None:
        cfg = resolve_env_model(cfg)
    check_config(cfg)
    if cfg.agent == "model-free":
        return ModelFreeAgent(num_actions, cfg.height, cfg.width, cfg.mf_pool, cfg.hidden).to(device)
    if env_model is None:
        env_model = ckpt.load_model(env_model_path(cfg.env_model), device=device)
    mc = env_model.cfg
    if (mc.height, mc.width) != (cfg.height, cfg.width):
        raise SsmlibError(f"the environment model is for {mc.height}x{mc.width} frames, the agent's are "
                          f"{cfg.height}x{cfg.width} (pass --set height={mc.height} --set width={mc.width})")
    return I2AAgent(env_model, num_actions, cfg.height, cfg.width, rollout_policy=cfg.rollout_policy,
                    depth=cfg.rollout_depth, pool=cfg.mf_pool, hidden=cfg.hidden, lstm=cfg.lstm,
                    tau=cfg.gumbel_tau, copy=cfg.agent == "copy").to(device)


def agent_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The agent's own weights of a checkpoint's tensors (its ``agent.*`` entries, without the prefix)."""
    return {k[len("agent."):]: v for k, v in tensors.items() if k.startswith("agent.")}


def save_agent(path: Path, agent: ModelFreeAgent | I2AAgent, optimizer, cfg: AgentConfig, step: int, update: int,
               extra: dict) -> dict:
    tensors = {f"agent.{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in agent.agent_state_dict().items()}
    optim_meta = ckpt.pack_state(optimizer.state_dict(), "optim", tensors) if optimizer is not None else None
    tensors.update(ckpt.rng_state())
    meta = {"kind": KIND, "format_version": 1, "agent": cfg.agent, "config": to_dict(cfg), "step": int(step),
            "update": int(update), "optimizer": optim_meta, "torch": torch.__version__, **extra}
    return ckpt.write_file(path, tensors, meta)


def load_agent(path, device="cpu", env_model: LatentModel | None = None, num_actions: int | None = None):
    """``(agent, cfg, meta, tensors)`` of an agent checkpoint; the I2A's model is loaded from its path
    and checked against the sha256 recorded at training time."""
    meta, tensors = ckpt.load_checkpoint(path, kind=KIND)
    cfg = from_dict(AgentConfig, meta["config"])
    if cfg.env_model and not Path(cfg.env_model).exists() and (REPO_ROOT / cfg.env_model).exists():
        cfg = dataclasses.replace(cfg, env_model=str(REPO_ROOT / cfg.env_model))  # a path relative to the repo
    if env_model is None and cfg.agent != "model-free":
        want = meta.get("env_model_sha256")
        if want and Path(cfg.env_model).exists() and sha256_file(cfg.env_model) != want:
            raise SsmlibError(f"agent {path} was trained with another {cfg.env_model} (sha256 differs)")
    agent = build_agent(cfg, num_actions or meta["num_actions"], device, env_model)
    own = agent.state_dict()  # float32: weights stored in bf16 are cast back into them
    weights = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v
               for k, v in agent_weights(tensors).items()}
    missing, unexpected = agent.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.startswith("env_model.")]
    if missing or unexpected:
        raise SsmlibError(f"agent checkpoint {path} does not fit this ssmlib's {cfg.agent} "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return agent, cfg, meta, tensors


DTYPES = ("float32", "bfloat16")
"""Storage dtypes of an exported agent's floating-point weights."""


def export_agent(src, dst, overwrite: bool = False, dtype: str = "float32", extra_meta: dict | None = None) -> dict:
    """A weights-only copy of an agent checkpoint (no optimiser or RNG state): small, for committing.

    ``dtype`` ``bfloat16`` stores the floating-point weights in half the bytes (:func:`load_agent` casts
    them back into the agent's float32 parameters; what is stored is what must be evaluated). The
    metadata keeps where the weights came from: ``exported_from`` (the training checkpoint) is kept
    through re-exports, each of which is recorded in ``re_exported_from`` (the latest source) and
    appended to ``re_exports`` (source, dtype, git sha of the code that re-exported). ``extra_meta`` is added to
    the metadata (e.g. the I2A campaign's ``campaign_best``).
    """
    if dtype not in DTYPES:
        raise SsmlibError(f"--dtype {dtype}: choose {' or '.join(DTYPES)}")
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        src = src / CHECKPOINT
    if dst.exists() and not overwrite:
        raise SsmlibError(f"{dst} exists; pass --overwrite to replace it")
    if dst.suffix != ckpt.SUFFIX:
        raise SsmlibError(f"export path {dst} must end in {ckpt.SUFFIX}")
    meta, tensors = ckpt.load_checkpoint(src, kind=KIND)
    dt = getattr(torch, dtype)
    keep = {k: v.to(dt).contiguous() if v.is_floating_point() else v
            for k, v in tensors.items() if k.startswith("agent.")}
    meta = {k: v for k, v in meta.items() if k != "tensors_sha256"}
    if meta.get("exported_from"):  # re-exporting an export (e.g. to bf16): keep where it came from
        meta["re_exported_from"] = str(src)
        meta["re_exports"] = [*meta.get("re_exports", []),
                              {"from": str(src), "from_dtype": meta.get("weights_dtype", "float32"),
                               "dtype": dtype, "git_sha": git_sha()}]
    else:
        meta["exported_from"] = str(src)
    meta.update(optimizer=None, weights_dtype=dtype, **(extra_meta or {}))
    return ckpt.write_file(dst, keep, meta)


def float_bytes(path) -> int:
    """Bytes of the floating-point tensors of checkpoint ``path`` (from its header; nothing loaded)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        doc = json.loads(f.read(n))
    return sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in doc.items()
               if k != "__metadata__" and v["dtype"] in ("F64", "F32", "F16", "BF16"))


# ------------------------------------------------------------------ what storing in bf16 changes


class _RewardTally:
    """A vector env that also sums each sub-env's real rewards since reset (finished or not): the
    return of a game cut short by ``max_steps``."""

    def __init__(self, env):
        self.env, self.partial = env, np.zeros(env.num_envs)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, **kwargs):
        self.partial[:] = 0.0
        return self.env.reset(**kwargs)

    def step(self, actions):
        out = self.env.step(actions)
        self.partial += np.asarray(out[1], np.float64)
        return out


def _frames(cfg: AgentConfig, agent, n: int, num_envs: int, every: int, seed: int) -> torch.Tensor:
    """``n`` real observations ``(n, 3, H, W, 3)`` uint8: ``agent`` plays (sampled actions) in
    ``num_envs`` games of ``cfg.game`` seeded ``seed + i``, keeping every ``every``-th step."""
    from .envs import make_agent_env, reset_env

    env = make_agent_env(cfg.game, num_envs, cfg.height, cfg.width, sticky_actions=cfg.sticky_actions,
                         noop_max=cfg.noop_max)
    torch.manual_seed(seed)
    o, kept, t = torch.as_tensor(reset_env(env, seed)), [], 0
    with torch.no_grad():
        while sum(len(x) for x in kept) < n:
            if t % every == every - 1:
                kept.append(o.clone())
            a = torch.distributions.Categorical(logits=agent(o).logits.float()).sample()
            o = torch.as_tensor(env.step(a.numpy())[0])
            t += 1
    env.close()
    return torch.cat(kept)[:n]


@torch.no_grad()
def _outputs(agent, obs: torch.Tensor, seed: int, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy logits and values of ``obs``, float32, with the torch RNG (an I2A's sampled rollout
    actions) seeded ``seed`` so that two agents see the same random stream."""
    torch.manual_seed(seed)
    agent.eval()
    outs = [agent(obs[i:i + batch]) for i in range(0, len(obs), batch)]
    return torch.cat([o.logits.float() for o in outs]), torch.cat([o.value.float() for o in outs])


def compare_dtypes(ref_path, test_path, *, frames: int = 256, frame_envs: int = 8, frame_every: int = 4,
                   games: int = 4, game_envs: int = 4, max_steps: int = 27_000, seed: int = 1_000_000,
                   env_model_path=None, noise_baseline: bool = False, frames_agent=None) -> dict:
    """What storing an agent in another dtype changes: the policy logits, values and argmax actions of
    the two copies on ``frames`` real observations (played by the reference copy, or by the agent of
    checkpoint ``frames_agent``: a model-free one is much cheaper on a CPU than an I2A), and ``games`` frozen
    games of each (:func:`evaluate_agent`, same env seeds and the same sampling RNG seed for both, so
    that only the weights differ; ``max_steps`` cuts games short, then ``partial_returns`` holds each
    env's return so far). ``env_model_path``: the I2A's frozen model (both copies share it; default the
    one in its config). ``noise_baseline``: also the logit change between two passes of the reference
    with different rollout samples (an I2A's own sampling noise)."""
    import time

    from .envs import make_agent_env
    from .evaluation import evaluate_agent

    em = ckpt.load_model(env_model_path) if env_model_path else None
    ref, cfg, ref_meta, _ = load_agent(ref_path, env_model=em)
    test, _, test_meta, _ = load_agent(test_path, env_model=em)
    t0 = time.perf_counter()
    player = load_agent(frames_agent)[0] if frames_agent else ref
    obs = _frames(cfg, player, frames, frame_envs, frame_every, seed)
    lr, vr = _outputs(ref, obs, seed)
    lt, vt = _outputs(test, obs, seed)
    pr, pt = lr.softmax(-1), lt.softmax(-1)
    out = {
        "ref": {"path": str(ref_path), "weights_dtype": ref_meta.get("weights_dtype", "float32"),
                "bytes": Path(ref_path).stat().st_size, "float_bytes": float_bytes(ref_path),
                "tensors_sha256": ref_meta.get("tensors_sha256")},
        "test": {"path": str(test_path), "weights_dtype": test_meta.get("weights_dtype", "float32"),
                 "bytes": Path(test_path).stat().st_size, "float_bytes": float_bytes(test_path),
                 "tensors_sha256": test_meta.get("tensors_sha256")},
        "agent": cfg.agent, "rollout_policy": cfg.rollout_policy, "env_model": str(env_model_path or cfg.env_model),
        "frames": {"n": len(obs), "shape": list(obs.shape[1:]), "game": cfg.game, "envs": frame_envs,
                   "every": frame_every, "seed": seed,
                   "played_by": f"{frames_agent or 'ref'} (sampled actions)"},
        "logits_max_abs_diff": float((lr - lt).abs().max()),
        "logits_mean_abs_diff": float((lr - lt).abs().mean()),
        "logits_ref_abs_max": float(lr.abs().max()),
        "policy_prob_max_abs_diff": float((pr - pt).abs().max()),
        "value_max_abs_diff": float((vr - vt).abs().max()),
        "argmax_agree": float((lr.argmax(-1) == lt.argmax(-1)).float().mean()),
    }
    if noise_baseline:
        ln, _ = _outputs(ref, obs, seed + 1)
        out["noise_baseline"] = {"logits_max_abs_diff": float((lr - ln).abs().max()),
                                 "argmax_agree": float((lr.argmax(-1) == ln.argmax(-1)).float().mean())}
    out["compare_wall_s"] = time.perf_counter() - t0
    if games:
        for name, agent in (("ref", ref), ("test", test)):
            env = _RewardTally(make_agent_env(cfg.game, game_envs, cfg.height, cfg.width,
                                              sticky_actions=cfg.sticky_actions, noop_max=cfg.noop_max))
            torch.manual_seed(seed)
            res = evaluate_agent(agent, env, games, seed=seed, max_steps=max_steps, amp=cfg.amp)
            res["partial_returns"] = env.partial.tolist()
            res["max_steps"] = max_steps
            env.close()
            out[f"games_{name}"] = res
    return out


def write_comparison(path, results: list[dict], command: str, note: str = "") -> dict:
    """``path`` (JSON): ``results`` of :func:`compare_dtypes` with the command that made them (and
    ``note``: how its inputs were made)."""
    from ..io import atomic_write_json, provenance, round_floats

    doc = {"command": command, "note": note, "provenance": provenance("cpu"), "results": round_floats(results, 6)}
    atomic_write_json(path, doc)
    return doc


def main(argv=None) -> int:
    """``python -m ssmlib.agents.checkpoint --pair REF TEST [--pair ...] --out FILE``: :func:`compare_dtypes`
    of each pair (e.g. a float32 agent and its bf16 export), written with this command by
    :func:`write_comparison`."""
    import argparse
    import shlex
    import sys

    p = argparse.ArgumentParser(prog="python -m ssmlib.agents.checkpoint", description=main.__doc__)
    p.add_argument("--pair", nargs=2, action="append", required=True, metavar=("REF", "TEST"))
    p.add_argument("--env-model", default=None, help="the I2A's frozen model (default: its config's)")
    p.add_argument("--frames", type=int, nargs="+", default=[256], help="per pair (the last repeats)")
    p.add_argument("--games", type=int, nargs="+", default=[4])
    p.add_argument("--game-envs", type=int, nargs="+", default=[4])
    p.add_argument("--max-steps", type=int, nargs="+", default=[27_000])
    p.add_argument("--noise-baseline", action="store_true")
    p.add_argument("--frames-agent", nargs="+", default=[""], help="per pair: who plays for the frames ('': ref)")
    p.add_argument("--seed", type=int, default=1_000_000)
    p.add_argument("--out", required=True)
    p.add_argument("--note", default="", help="how the inputs were made (stored with the results)")
    a = p.parse_args(argv)
    pick = lambda xs, i: xs[min(i, len(xs) - 1)]  # noqa: E731
    results = []
    for i, (ref, test) in enumerate(a.pair):
        results.append(compare_dtypes(ref, test, frames=pick(a.frames, i), games=pick(a.games, i),
                                      game_envs=pick(a.game_envs, i), max_steps=pick(a.max_steps, i),
                                      seed=a.seed, env_model_path=a.env_model, noise_baseline=a.noise_baseline,
                                      frames_agent=pick(a.frames_agent, i) or None))
        print(json.dumps({k: v for k, v in results[-1].items() if not k.startswith("games_")}), flush=True)
        command = "python -m ssmlib.agents.checkpoint " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_comparison(a.out, results, command, a.note)
    return 0


def evaluate_checkpoint(checkpoint, episodes: int, num_envs: int, seed: int = 1_000_000, env_threads: int = 0,
                        device: str | None = None, out=None, overwrite: bool = False) -> dict:
    """``agent eval``: an agent checkpoint's frozen returns (:func:`evaluate_agent` on fresh envs), with what was
    scored and the provenance; written as JSON to ``out`` when given (an existing file only with ``overwrite``)."""
    from ..io import atomic_write_json, provenance
    from ..train import resolve_device
    from .envs import make_agent_env
    from .evaluation import evaluate_agent

    dev = resolve_device(device)
    agent, cfg, meta, _ = load_agent(checkpoint, device=dev)
    env = make_agent_env(cfg.game, num_envs, cfg.height, cfg.width, sticky_actions=cfg.sticky_actions,
                         noop_max=cfg.noop_max, num_threads=env_threads)
    res = evaluate_agent(agent, env, episodes, seed=seed, amp=cfg.amp)
    env.close()
    res.update({"checkpoint": str(checkpoint), "agent": cfg.agent, "rollout_policy": cfg.rollout_policy,
                "trained_steps": meta["step"], "provenance": provenance(str(dev))})
    if out:
        if Path(out).exists() and not overwrite:
            raise SsmlibError(f"{out} exists (use --overwrite)")
        atomic_write_json(out, res)
    return res


if __name__ == "__main__":
    raise SystemExit(main())
