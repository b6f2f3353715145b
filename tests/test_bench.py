"""The speed benchmarks run on CPU at the quick profile and write well-formed files (no timing assertions)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ssmlib", *args], capture_output=True, text=True, cwd=ROOT)


def test_bench_rollout_writes_rows_with_ratios(tmp_path):
    out = tmp_path / "rollout.json"
    r = _cli("bench", "rollout", "--profile", "quick", "--batches", "2", "--horizon", "4", "--repeats", "1",
             "--models", "RAR,sSSM,sSSM:2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    rows = {(x["model"], x["jump"], x["decode"]): x for x in result["rows"]}
    assert set(rows) == {(m, k, d) for m, k in (("RAR", 1), ("sSSM", 1), ("sSSM", 2)) for d in (False, True)}
    for x in rows.values():
        assert x["variant"] == "fp32-eager" and x["ms_per_rollout"] > 0 and x["env_steps"] == 4
        assert x["env_steps_per_s"] > 0 and x["speedup_vs_RAR"] > 0
    assert rows[("sSSM", 2, False)]["transitions"] == 2
    assert rows[("RAR", 1, False)]["speedup_vs_RAR"] == 1.0
    assert {"git_sha", "device"} <= set(result["provenance"])


def test_bench_train_and_bad_models(tmp_path):
    out = tmp_path / "train.json"
    r = _cli("bench", "train", "--profile", "quick", "--models", "dSSM-DET,sSSM", "--variants",
             "b32-compile,b128-compile-cl", "--seconds", "0.2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    rows = {(x["model"], x["variant"]): x for x in res["rows"]}
    assert set(rows) == {(m, v) for m in ("dSSM-DET", "sSSM") for v in ("b32-compile", "b128-compile-cl")}
    for x in rows.values():  # the loop's own step ran and was timed; FLOPs were counted
        assert x["frames_per_s"] > 0 and x["steps_timed"] >= 10 and x["flops_per_step"] > 0
    assert rows[("sSSM", "b32-compile")]["speedup_vs_b32-compile"] == 1.0
    assert {"git_sha", "device"} <= set(res["provenance"])
    bad_variant = _cli("bench", "train", "--variants", "b64", "--out", str(tmp_path / "y.json"))
    assert bad_variant.returncode == 2 and "unknown variant(s) b64" in bad_variant.stderr
    bad = _cli("bench", "rollout", "--models", "sSM", "--out", str(tmp_path / "x.json"))
    assert bad.returncode == 2 and "unknown model 'sSM'" in bad.stderr
