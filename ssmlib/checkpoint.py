"""Checkpoints: one ``.safetensors`` file (tensors + JSON metadata in its header) and a ``.json`` sidecar.

What one file holds:

* ``model.*``  -- the model's ``state_dict``;
* ``optim.*``  -- the optimiser's tensors (AdamW moments, step counts);
* ``rng.*``    -- torch CPU/CUDA generator states as uint8 tensors, and any other tensors a caller
  adds (``extra_tensors``);
* header metadata ``"ssmlib"`` -- a JSON document: ``kind``, ``format_version``, the model's name and
  ``ModelConfig``, the ``TrainConfig``, the step, the optimiser's non-tensor state (param groups), the
  data manifest's sha256, the git sha, and a sha256 of the tensor bytes.

The same JSON is written next to it as a human-readable sidecar (``checkpoint.json``); the copy in the
``.safetensors`` header is the one that counts. Both are written atomically.

Loading never unpickles anything: safetensors holds only raw tensors and strings. Every way a file can
be wrong -- missing, truncated, corrupt, not ours, another model, another game -- is refused with one
clear :class:`~ssmlib.errors.SsmlibError` line.

Non-tensor state (the optimiser's param groups, a sampler's RNG state) is stored as JSON in which every
tensor or array is replaced by a reference ``{"__tensor__": key}``; :func:`pack_state` and
:func:`unpack_state` do this for any nested dict/list/tuple, so optimisers and samplers round-trip
exactly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import MODEL_NAMES, ModelConfig, TrainConfig, from_dict, to_dict
from .errors import SsmlibError
from .io import atomic_write_bytes, atomic_write_json, git_sha

KIND = "ssmlib-env-model"
FORMAT_VERSION = 1
META_KEY = "ssmlib"
SUFFIX = ".safetensors"


# --------------------------------------------------------------------------------------------------
# nested state <-> (JSON, tensors)


def pack_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-ready copy of ``obj`` whose tensors/arrays are moved into ``tensors`` under ``prefix.*``.

    Dicts keep their key types (optimiser state is keyed by int), tuples stay tuples.
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        tensors[prefix] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: pack_state(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, pack_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [pack_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [pack_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unpack_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__items__" in obj:
            return {k: unpack_state(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(unpack_state(v, tensors) for v in obj["__tuple__"])
        return {k: unpack_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack_state(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, torch.Tensor]:
    """Torch's CPU generator state, and each CUDA device's, as uint8 tensors."""
    out = {"rng.torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.torch_cuda.{i}"] = s
    return out


def set_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where the device exists)."""
    if "rng.torch_cpu" in tensors:
        torch.set_rng_state(tensors["rng.torch_cpu"].to("cpu", torch.uint8))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            key = f"rng.torch_cuda.{i}"
            if key in tensors:
                torch.cuda.set_rng_state(tensors[key].to("cpu", torch.uint8), i)


# --------------------------------------------------------------------------------------------------
# saving


def sidecar_path(path) -> Path:
    """``run/checkpoint.safetensors`` -> ``run/checkpoint.json``."""
    return Path(path).with_suffix(".json")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


def _serialize(tensors: dict[str, torch.Tensor], meta: dict) -> bytes:
    from safetensors.torch import save

    # Two passes: the data section does not depend on the header, so hash it first, then embed the hash.
    blob = save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    n = int.from_bytes(blob[:8], "little")
    meta = {**meta, "tensors_sha256": hashlib.sha256(blob[8 + n:]).hexdigest()}
    return save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def save_checkpoint(path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    step: int = 0, train_cfg: TrainConfig | None = None, extra_meta: dict | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None, dtype: torch.dtype | None = None) -> dict:
    """Write ``path`` (``.safetensors``) and its ``.json`` sidecar atomically; return the metadata.

    ``dtype`` (e.g. ``torch.bfloat16``): store the model's floating-point tensors in that dtype (half
    the bytes of float32; loading casts them back into the model's float32 parameters).
    ``extra_meta`` is merged into the metadata (for example ``data_fingerprint``, a sampler's
    packed state); ``extra_tensors`` are stored as given (keys must not start with ``model.`` or
    ``optim.``). Torch's RNG states are always stored under ``rng.*``.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise SsmlibError(f"checkpoint path {path} must end in {SUFFIX}")
    model = _unwrap(model)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu", copy=True).contiguous()
        tensors[f"model.{k}"] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    optim_meta = None
    if optimizer is not None:
        optim_meta = pack_state(optimizer.state_dict(), "optim", tensors)
    tensors.update(rng_state())
    for k, v in (extra_tensors or {}).items():
        if k.startswith(("model.", "optim.")) or k in tensors:
            raise ValueError(f"extra tensor name {k!r} clashes with the checkpoint's own")
        tensors[k] = v.detach().to("cpu", copy=True).contiguous()

    cfg: ModelConfig = model.cfg
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "model_cfg": to_dict(cfg),
        "train_cfg": to_dict(train_cfg) if train_cfg is not None else None,
        "step": int(step),
        "optimizer": optim_meta,
        "optimizer_class": type(optimizer).__name__ if optimizer is not None else None,
        "git_sha": git_sha(),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "weights_dtype": str(dtype or torch.float32).replace("torch.", ""),
    }
    meta.update(extra_meta or {})
    meta.setdefault("data_fingerprint", None)
    return write_file(path, tensors, meta)


def write_file(path, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Write tensors + JSON metadata (with the tensors' sha256 added) as ``path`` and its ``.json``
    sidecar, each atomically; return the metadata as stored. Any checkpoint kind (``meta["kind"]``)."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise SsmlibError(f"checkpoint path {path} must end in {SUFFIX}")
    blob = _serialize(tensors, meta)
    atomic_write_bytes(path, blob)
    n = int.from_bytes(blob[:8], "little")
    meta = json.loads(json.loads(blob[8:8 + n])["__metadata__"][META_KEY])
    atomic_write_json(sidecar_path(path), meta)
    return meta


# --------------------------------------------------------------------------------------------------
# loading


def read_meta(path, kind: str = KIND) -> dict:
    """The metadata of checkpoint ``path`` from its header, checked to be an ssmlib checkpoint of the
    right length. Reads only the header, so it is cheap; :func:`load_checkpoint` also verifies the
    tensor bytes against their sha256.
    """
    path = Path(path)
    _exists(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SsmlibError(f"checkpoint {path} is truncated or corrupt ({size} bytes, no safetensors header)")
        n = int.from_bytes(head, "little")
        first = f.read(1)
        if first != b"{" or n > 100 << 20:  # a safetensors header is JSON, at most 100 MB (safetensors' cap)
            raise SsmlibError(f"{path} is not a safetensors file{_looks_like(head)}; ssmlib reads only "
                              f"safetensors checkpoints (it never unpickles)")
        if n <= 0 or 8 + n > size:
            raise SsmlibError(f"checkpoint {path} is truncated or corrupt (header of {n} bytes, file of {size})")
        header = first + f.read(n - 1)
    doc = _parse_header(path, header)
    try:
        end = max((int(v["data_offsets"][1]) for k, v in doc.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, ValueError, IndexError):
        raise SsmlibError(f"checkpoint {path} is corrupt (its safetensors header has bad tensor offsets)") from None
    if 8 + n + end != size:
        what = "truncated" if 8 + n + end > size else "corrupt (trailing bytes)"
        raise SsmlibError(f"checkpoint {path} is {what}: {size} bytes, its header describes {8 + n + end}")
    return _parse_meta(path, doc, kind)


def _looks_like(head: bytes) -> str:
    """What a non-safetensors file seems to be, from its first bytes (for the refusal's message)."""
    if head[:4] == b"PK\x03\x04":
        return " (it is a zip archive, as torch.save writes: a pickle inside)"
    if head[:1] == b"\x80" and 2 <= head[1:2][0] <= 5:
        return " (it is a Python pickle)"
    return ""


def _exists(path: Path) -> None:
    if not path.exists():
        hint = f" (did you mean {path.with_suffix(SUFFIX)}?)" if path.suffix != SUFFIX and path.with_suffix(SUFFIX).exists() else ""
        raise SsmlibError(f"checkpoint {path} not found{hint}")
    if path.is_dir():
        cand = path / f"checkpoint{SUFFIX}"
        hint = f" (did you mean {cand}?)" if cand.exists() else ""
        raise SsmlibError(f"checkpoint {path} is a directory, not a file{hint}")


def _parse_header(path: Path, header: bytes) -> dict:
    try:
        doc = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SsmlibError(f"checkpoint {path} is corrupt (its safetensors header is not valid JSON)") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise SsmlibError(f"checkpoint {path} is corrupt (its safetensors header is not a JSON object of tensors)")
    return doc


def _parse_meta(path: Path, doc: dict, kind: str = KIND) -> dict:
    raw = (doc.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise SsmlibError(f"{path} is not an ssmlib checkpoint (a safetensors file without ssmlib metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise SsmlibError(f"checkpoint {path} is corrupt (its ssmlib metadata is not valid JSON)") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        have = meta.get("kind") if isinstance(meta, dict) else None
        what = "environment-model" if kind == KIND else kind.removeprefix("ssmlib-")
        raise SsmlibError(f"{path} is not an ssmlib {what} checkpoint (kind {have!r}, expected {kind!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SsmlibError(f"checkpoint {path} has format version {version!r}; this ssmlib reads up to "
                          f"{FORMAT_VERSION} (update ssmlib)")
    return meta


def check_meta(path, meta: dict, expect_model: str | None = None, dataset=None) -> None:
    """Refuse a checkpoint of another model, or one whose frames/actions differ from ``dataset``'s."""
    if expect_model is not None:
        if expect_model not in MODEL_NAMES:
            raise SsmlibError(f"unknown model {expect_model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if meta.get("model") != expect_model:
            raise SsmlibError(f"checkpoint {path} holds a {meta.get('model')}, not a {expect_model}")
    if dataset is not None:
        mc = meta.get("model_cfg") or {}
        want = (dataset.height, dataset.width, dataset.num_actions)
        have = (mc.get("height"), mc.get("width"), mc.get("num_actions"))
        if have != want:
            game = getattr(dataset, "game", "the data")
            raise SsmlibError(
                f"checkpoint {path} was trained on {have[0]}x{have[1]} frames with {have[2]} actions, "
                f"but the data ({game}) has {want[0]}x{want[1]} frames with {want[2]} actions")


def load_checkpoint(path, expect_model: str | None = None, map_location="cpu", dataset=None,
                    kind: str = KIND) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(meta, tensors)`` of checkpoint ``path``, verified; tensors on ``map_location``.

    Refuses (SsmlibError, one line): a missing file, a truncated or corrupt one (bad header, bad tensor
    bytes, checksum mismatch), a file that is not an ssmlib checkpoint, a checkpoint of a model other
    than ``expect_model``, and one whose frame size or action count differ from ``dataset``'s.
    """
    from safetensors.torch import load as st_load

    path = Path(path)
    meta = read_meta(path, kind)  # cheap header checks first: clear messages before reading gigabytes
    if kind == KIND:
        check_meta(path, meta, expect_model, dataset)
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    want = meta.get("tensors_sha256")
    if want is not None and hashlib.sha256(blob[8 + n:]).hexdigest() != want:
        raise SsmlibError(f"checkpoint {path} is corrupt (tensor bytes do not match their sha256; "
                          f"truncated or damaged file)")
    try:
        tensors = st_load(blob)
    except Exception as e:  # safetensors_rust.SafetensorError and friends
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SsmlibError(f"checkpoint {path} is truncated or corrupt ({msg})") from None
    del blob
    if map_location is not None and str(map_location) != "cpu":
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    return meta, tensors


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``model.*`` tensors as a state_dict."""
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


# What checkpoints written before a field existed were trained with (not today's defaults).
LEGACY_MODEL_FIELDS = {"reward_head": "bits", "reward_classes": 8, "reward_values": (),  # the last two: unread by bits
                       "reward_class_weights": (),  # read raw: exported before the weights were kept
                       "reward_state": "posterior"}  # trained before the choice existed: the ELBO's state
LEGACY_TRAIN_FIELDS = {"kl_balance": 0.5, "kl_free_nats": 0.0, "channels_last": False, "lr_warmup_steps": 0,
                       "reward_weight": 1.0, "check_every": 0}


def model_config(meta: dict) -> ModelConfig:
    """The checkpoint's ModelConfig."""
    cfg = from_dict(ModelConfig, {**LEGACY_MODEL_FIELDS, **meta["model_cfg"]})
    cfg.reward_values = tuple(cfg.reward_values)
    cfg.reward_class_weights = tuple(cfg.reward_class_weights)
    return cfg


def train_config(meta: dict) -> TrainConfig | None:
    """The checkpoint's TrainConfig, or None if it was saved without one."""
    return from_dict(TrainConfig, {**LEGACY_TRAIN_FIELDS, **meta["train_cfg"]}) if meta.get("train_cfg") else None


def build_from_checkpoint(path, meta: dict, tensors: dict[str, torch.Tensor], device="cpu"):
    """Build the model described by ``meta`` and load its weights strictly."""
    from .models import build_model

    model = build_model(model_config(meta))
    try:
        model.load_state_dict(model_state(tensors), strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise SsmlibError(f"checkpoint {path} does not fit this ssmlib's {meta.get('model')} "
                          f"({' '.join(s.strip() for s in first[:2])[:300]})") from None
    return model.to(device)


def load_model(path, expect_model: str | None = None, device="cpu", dataset=None):
    """The environment model stored in checkpoint ``path``, on ``device``, in eval mode."""
    meta, tensors = load_checkpoint(path, expect_model=expect_model, map_location="cpu", dataset=dataset)
    model = build_from_checkpoint(path, meta, tensors, device=device)
    model.eval()
    return model


def load_optimizer(optimizer: torch.optim.Optimizer, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Restore the optimiser state saved by :func:`save_checkpoint` (exactly)."""
    if meta.get("optimizer") is None:
        raise SsmlibError("checkpoint holds no optimizer state (cannot resume training from it)")
    if meta.get("optimizer_class") not in (None, type(optimizer).__name__):
        raise SsmlibError(f"checkpoint optimizer is {meta['optimizer_class']}, not {type(optimizer).__name__}")
    optimizer.load_state_dict(unpack_state(meta["optimizer"], tensors))
    # the saved moments are contiguous; a channels_last model's parameters are not, and fused AdamW refuses
    # moments whose strides differ from their parameter's ("must have same dtype, device, and layout")
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def export(src: str | Path, dst: str | Path, overwrite: bool = False, dtype: str = "float32") -> dict:
    """Copy the weights of a training checkpoint (file or run folder) into a small inference checkpoint.

    The metadata keeps the model config, the step, the data fingerprint and where it came from
    (the source's git sha, device and wall time); optimiser and RNG state are dropped. ``dtype``
    ``bfloat16`` stores the weights in half the bytes (what is stored is what must be evaluated).
    """
    if dtype not in ("float32", "bfloat16"):
        raise SsmlibError(f"--dtype {dtype}: choose float32 or bfloat16")
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        src = src / "checkpoint.safetensors"
    if dst.exists() and not overwrite:
        raise SsmlibError(f"{dst} exists; pass --overwrite to replace it")
    meta, tensors = load_checkpoint(src)
    model = build_from_checkpoint(src, meta, tensors)
    run_config = src.parent / "config.json"
    source = {"checkpoint": str(src), "git_sha": meta.get("git_sha"), "step": meta.get("step"),
              "wall_s": meta.get("wall_s")}
    if run_config.exists():
        cfg = json.loads(run_config.read_text())
        source.update(device=cfg.get("provenance", {}).get("device"), data=cfg.get("data"))
    if meta.get("exported_from"):  # re-exporting an export (e.g. to bf16): keep where it came from
        source = {**meta["exported_from"], "re_exported_from": str(src)}
    return save_checkpoint(dst, model, step=meta.get("step", 0), train_cfg=train_config(meta),
                           extra_meta={"data_fingerprint": meta.get("data_fingerprint"), "exported_from": source,
                                       "profile": meta.get("profile"), "frames_seen": meta.get("frames_seen")},
                           dtype=getattr(torch, dtype))


__all__ = [
    "KIND", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "load_model", "read_meta",
    "check_meta", "load_optimizer", "model_state", "model_config", "train_config", "pack_state",
    "unpack_state", "rng_state", "set_rng_state", "sidecar_path", "build_from_checkpoint", "export",
]
