"""Checkpoints: exact round trip, and one clear refusal for every way a file can be wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ssmlib import checkpoint as ckpt
from ssmlib.config import ModelConfig, TrainConfig
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model


def tiny(name: str = "sSSM") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(model=name, height=16, width=16, num_actions=5, channel_scale=0.25, z_channels=8))


def trained_pair(name: str = "sSSM"):
    """A tiny model and an AdamW that has taken one step (so it has moments to save)."""
    model = tiny(name)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {"frames": torch.rand(2, 5, 3, 16, 16), "actions": torch.randint(5, (2, 4)),
             "rewards": torch.tensor([[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 50.0]])}
    model.loss(batch)["loss"].backward()
    opt.step()
    return model, opt


@pytest.fixture
def saved(tmp_path):
    model, opt = trained_pair("sSSM")
    path = tmp_path / "checkpoint.safetensors"
    ckpt.save_checkpoint(path, model, opt, step=7, train_cfg=TrainConfig(horizon=3),
                         extra_meta={"data_fingerprint": "abc"})
    return path, model, opt


def test_round_trip_is_exact(saved):
    path, model, opt = saved
    meta, tensors = ckpt.load_checkpoint(path, expect_model="sSSM")
    assert meta["kind"] == ckpt.KIND and meta["step"] == 7 and meta["model"] == "sSSM"
    assert meta["data_fingerprint"] == "abc" and ckpt.train_config(meta).horizon == 3
    # the sidecar is the header's metadata, human-readable
    assert json.loads(ckpt.sidecar_path(path).read_text()) == meta
    loaded = ckpt.load_model(path, expect_model="sSSM")
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    # optimiser state: moments, step counts and hyper-parameters restored exactly
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=0.5)
    ckpt.load_optimizer(opt2, meta, tensors)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i, st in s1["state"].items():
        for k, v in st.items():
            assert torch.equal(v, s2["state"][i][k])
    assert torch.equal(tensors["rng.torch_cpu"], tensors["rng.torch_cpu"].to(torch.uint8))


def test_resume_into_channels_last_model_matches_strides(saved):
    """A channels_last model (CUDA training) resumed from contiguous saved moments: fused AdamW refuses moments
    whose strides differ from their parameter's, so the loaded moments take the parameter's layout."""
    path, model, opt = saved
    meta, tensors = ckpt.load_checkpoint(path, expect_model="sSSM")
    loaded = ckpt.load_model(path, expect_model="sSSM").to(memory_format=torch.channels_last)
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1e-3)
    ckpt.load_optimizer(opt2, meta, tensors)
    conv = [p for p in loaded.parameters() if p.dim() == 4]
    assert conv and any(not p.is_contiguous() for p in conv)  # the model really is channels_last
    for p in loaded.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            moment = opt2.state[p][key]
            assert moment.stride() == p.stride(), key
    for i, st in opt.state_dict()["state"].items():  # the values are unchanged
        for k, v in st.items():
            assert torch.equal(v, opt2.state_dict()["state"][i][k])


def test_pack_state_round_trip():
    tensors: dict = {}
    state = {"generator": torch.arange(5, dtype=torch.uint8), 3: {"a": (1, 2.5)}, "x": [np.arange(3), None, "s"]}
    packed = ckpt.pack_state(state, "sampler", tensors)
    back = ckpt.unpack_state(json.loads(json.dumps(packed)), tensors)
    assert torch.equal(back["generator"], state["generator"]) and back[3] == {"a": (1, 2.5)}
    assert np.array_equal(back["x"][0], np.arange(3)) and back["x"][1:] == [None, "s"]


def test_refuses_another_model(saved):
    path, *_ = saved
    with pytest.raises(SsmlibError, match=r"holds a sSSM, not a dSSM-DET"):
        ckpt.load_model(path, expect_model="dSSM-DET")


def test_refuses_missing_file(tmp_path):
    with pytest.raises(SsmlibError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("cut", [0.5, 0.999, 4])
def test_refuses_truncated_file(saved, cut):
    path, *_ = saved
    data = path.read_bytes()
    n = int(len(data) * cut) if cut < 1 else cut
    path.write_bytes(data[:n])
    with pytest.raises(SsmlibError, match=r"truncated") as e:
        ckpt.load_model(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_refuses_corrupt_header(saved):
    path, *_ = saved
    data = bytearray(path.read_bytes())
    data[8:40] = b"\x00garbage, not json at all!!!!!!!"
    path.write_bytes(bytes(data))
    with pytest.raises(SsmlibError, match=r"corrupt.*header"):
        ckpt.load_checkpoint(path)


def test_refuses_corrupt_tensor_bytes(saved):
    path, *_ = saved
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(SsmlibError, match=r"corrupt .*sha256"):
        ckpt.load_checkpoint(path)


def test_refuses_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(SsmlibError, match="not an ssmlib checkpoint"):
        ckpt.load_checkpoint(path)
    path.write_bytes(b"\x80\x04\x95pickle data, not safetensors")
    with pytest.raises(SsmlibError, match="is not a safetensors file \\(it is a Python pickle\\)"):
        ckpt.load_checkpoint(path)
    torch.save({"w": torch.zeros(3)}, path)  # what a user may pass by mistake: never unpickled, named for what it is
    with pytest.raises(SsmlibError, match="not a safetensors file \\(it is a zip archive, as torch.save writes"):
        ckpt.load_checkpoint(path)
    save_file({"w": torch.zeros(3)}, str(path))
    path.write_bytes(path.read_bytes()[:12])  # a real safetensors file cut short stays "truncated"
    with pytest.raises(SsmlibError, match="truncated or corrupt"):
        ckpt.load_checkpoint(path)


def test_refuses_other_frame_size_or_actions(saved):
    path, *_ = saved
    with pytest.raises(SsmlibError, match=r"16x16 frames with 5 actions.*80x64 frames with 9 actions"):
        ckpt.load_model(path, dataset=SimpleNamespace(height=80, width=64, num_actions=9, game="MsPacman"))
    ckpt.load_model(path, dataset=SimpleNamespace(height=16, width=16, num_actions=5, game="MsPacman"))


def test_write_is_atomic_and_path_checked(tmp_path, saved):
    path, model, opt = saved
    before = path.read_bytes()
    with pytest.raises(TypeError):  # a failure mid-save leaves the old checkpoint untouched
        ckpt.save_checkpoint(path, model, opt, extra_meta={"bad": object()})
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(SsmlibError, match=r"must end in \.safetensors"):
        ckpt.save_checkpoint(tmp_path / "model.pt", model)


def test_no_pickle_loading_anywhere_in_ssmlib():
    """ssmlib never unpickles: no pickle.load(s), no torch.load without weights_only=True, no allow_pickle=True."""
    root = Path(ckpt.__file__).resolve().parent
    bad = []
    for f in sorted(root.rglob("*.py")):
        src = f.read_text()
        for m in re.finditer(r"\btorch\.load\s*\(", src):
            call = src[m.end():m.end() + 400]
            depth, end = 1, 0
            for end, ch in enumerate(call):  # the call's argument text, up to its closing parenthesis
                depth += (ch == "(") - (ch == ")")
                if depth == 0:
                    break
            if "weights_only=True" not in call[:end]:
                bad.append(f"{f.name}: torch.load without weights_only=True")
        for pat in (r"\bpickle\.loads?\s*\(", r"\bdill\.", r"\bcloudpickle\.", r"allow_pickle\s*=\s*True",
                    r"\bjoblib\.load\s*\("):
            if re.search(pat, src):
                bad.append(f"{f.name}: {pat}")
    assert not bad, bad


def test_results_files_ending_in_gz_are_compressed_byte_stable_and_read_back(tmp_path):
    import gzip
    import json

    from ssmlib.io import atomic_write_json, atomic_write_text, read_text
    from ssmlib.studies.common import read_json, read_jsonl

    doc = {"results": {"per_episode": [0.1234567] * 500}, "lease": 2}
    atomic_write_json(tmp_path / "eval.json.gz", doc, indent=None)
    first = (tmp_path / "eval.json.gz").read_bytes()
    assert first[4:8] == b"\0\0\0\0"  # the gzip header's time field is empty
    assert gzip.decompress(first) == json.dumps(doc, sort_keys=True).encode() and len(first) < 200
    atomic_write_json(tmp_path / "eval.json.gz", doc, indent=None)  # no time stamp: same contents, same bytes
    assert (tmp_path / "eval.json.gz").read_bytes() == first and read_json(tmp_path / "eval.json.gz") == doc
    atomic_write_text(tmp_path / "e.jsonl.gz", '{"step": 1}\n{"step": 2}\n')
    assert read_jsonl(tmp_path / "e.jsonl.gz") == [{"step": 1}, {"step": 2}]
    atomic_write_json(tmp_path / "plain.json", doc)  # any other name stays plain text
    assert json.loads((tmp_path / "plain.json").read_text()) == doc == json.loads(read_text(tmp_path / "plain.json"))


def test_a_results_file_compressed_by_the_script_reads_as_before_and_a_rewrite_replaces_it(tmp_path):
    import importlib.util
    import json

    from ssmlib.config import REPO_ROOT
    from ssmlib.io import stored_path
    from ssmlib.runs import read_metrics
    from ssmlib.studies.common import read_json, read_jsonl, save_run

    spec = importlib.util.spec_from_file_location("compress_results", REPO_ROOT / "scripts" / "compress_results.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    study = tmp_path / "results" / "zoo" / "sSSM"
    camp = tmp_path / "results" / "model_zoo" / "MsPacman" / "campaign" / "sSSM-s0"
    for d in (study, camp):
        d.mkdir(parents=True)
    rows = [{"step": i, "loss": 0.5 + i} for i in range(2000)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    for path in (study / "metrics.jsonl", camp / "metrics.jsonl", study / "cited.jsonl"):
        path.write_text(text)
    (study / "eval.json").write_text(json.dumps({"big": list(range(9000))}))
    (study / "small.json").write_text("{}")
    speed = tmp_path / "results" / "speed"  # a folder the book lists with *.json: left as it is
    speed.mkdir()
    (speed / "rollout-new.json").write_text(json.dumps({"big": list(range(9000))}))
    cited = "see results/zoo/sSSM/cited.jsonl"
    picked = script.compressible(tmp_path, cited=cited)
    # not the campaign's (its code writes it), not the cited one, not the small one
    assert picked == [study / "eval.json", study / "metrics.jsonl"]
    for p in picked:
        size = p.stat().st_size
        assert script.compress(p) == p.with_name(p.name + ".gz").stat().st_size < size / 2
    assert not (study / "metrics.jsonl").exists() and stored_path(study / "metrics.jsonl").name == "metrics.jsonl.gz"
    # every reader finds the compressed sibling under the old name
    assert read_jsonl(study / "metrics.jsonl") == rows == read_metrics(study / "metrics.jsonl") == read_metrics(study)
    assert read_json(study / "eval.json") == {"big": list(range(9000))}
    assert script.compressible(tmp_path, cited=cited) == []  # run again: nothing left to do
    (study / "metrics.jsonl").write_text('{"step": 0}\n')  # both forms: the plain one is read (a newer write)
    assert read_jsonl(study / "metrics.jsonl") == [{"step": 0}] and stored_path(study / "metrics.jsonl").suffix == ".jsonl"
    # a study written again writes plain files and drops the stale compressed ones
    run = tmp_path / "runs" / "sSSM"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    save_run(run, study, {"new": True})
    assert read_jsonl(study / "metrics.jsonl") == [{"step": 1}] and read_json(study / "eval.json") == {"new": True}
    assert not (study / "metrics.jsonl.gz").exists() and not (study / "eval.json.gz").exists()


def test_the_compression_record_matches_the_tree_and_the_readme():
    import json

    from ssmlib.config import REPO_ROOT, RESULTS_DIR

    rec = json.loads((RESULTS_DIR / "repo_size" / "compression.json").read_text())
    for f in rec["files"]:  # each file is stored compressed now (its bytes then are the record's: a campaign's
        # growing file, e.g. the open-loop sample study, has grown since, so today's size is not compared)
        assert not (REPO_ROOT / f["path"]).exists() and (REPO_ROOT / f"{f['path']}.gz").exists(), f["path"]
        assert 0 < f["bytes_after"] < f["bytes_before"]
    assert rec["bytes_before"] == sum(f["bytes_before"] for f in rec["files"]) > 4 * rec["bytes_after"]
    calls = [c["results_bytes"] for c in rec["results_bytes_at_campaign_calls"]]
    per_call = sorted(b - a for a, b in zip(calls, calls[1:]) if b - a < 200_000)  # (one call added a new study)
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert (f"{len(rec['files'])} files went from {rec['bytes_before']:,} to {rec['bytes_after']:,} bytes and the "
            f"tracked tree from {rec['tree_bytes_base'] / 2**20:.1f} to {rec['tree_bytes_head'] / 2**20:.1f} MiB, where a "
            f"campaign call had added {round(per_call[0] / 1000)}-{round(per_call[-1] / 1000)} kB") in readme


def test_the_repository_compressed_what_the_script_selects():
    import importlib.util

    from ssmlib.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("compress_results", REPO_ROOT / "scripts" / "compress_results.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    left = [str(p.relative_to(REPO_ROOT)) for p in script.compressible(REPO_ROOT)]
    assert not left, f"run python scripts/compress_results.py: {left}"
