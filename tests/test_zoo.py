"""The model-zoo study runner, the export of pretrained checkpoints and the committed checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from ssmlib.errors import SsmlibError
from ssmlib.pretrained import available, export, load_pretrained
from ssmlib.studies.common import format_table, parse_models
from ssmlib.studies.zoo import TABLE_COLUMNS, load_study, report, train_all

TINY = ["channel_scale=0.25", "horizon=3", "batch_size=2", "steps=3", "log_every=1", "eval_every=0"]


@pytest.fixture(scope="module")
def tiny_zoo(quick_dataset, tmp_path_factory):
    runs = tmp_path_factory.mktemp("zoo") / "runs"
    codes = train_all(quick_dataset, runs, ["dSSM-DET", "sSSM"], "quick", sets=TINY, device="cpu")
    assert codes == {"dSSM-DET": 0, "sSSM": 0}
    return runs


def test_zoo_report_writes_the_study(quick_dataset, tiny_zoo, tmp_path):
    results = tmp_path / "results"
    summary = report(quick_dataset, tiny_zoo, results, ["dSSM-DET", "sSSM"], samples=2, max_windows=8, device="cpu")
    assert [r["model"] for r in summary["rows"]] == ["dSSM-DET", "sSSM", "copy previous frame",
                                                    "copy last context frame"]
    models = [r for r in summary["rows"] if r["kind"] == "model"]
    for row in models:
        assert row["train_steps"] == 3 and row["ll_nats_per_frame"] < 0
        assert row["ll_nats_sequence"] == pytest.approx(row["ll_nats_per_frame"] * row["horizon"], rel=1e-6)
        # the headline: excess over the exact floor of the same frames, with its episode interval
        assert row["excess_open_loop_nats_per_frame"] == pytest.approx(
            row["floor_nats_per_frame"] - row["ll_open_loop_nats_per_frame"], rel=1e-6)
        lo, hi = row["excess_open_loop_ci"]
        assert lo <= row["excess_open_loop_nats_per_frame"] <= hi
    prev, ctx = summary["rows"][2:]
    assert prev["excess_joint_nats_per_frame"] > 0 and ctx["excess_open_loop_nats_per_frame"] > 0
    assert summary["evaluation"]["same_windows"] and summary["evaluation"]["windows"] == 8
    for f in ("summary.json", "table.md", "rollouts.png", "sSSM/eval.json", "sSSM/metrics.jsonl", "sSSM/config.json"):
        assert (results / f).stat().st_size > 0, f
    assert {"git_sha", "device", "versions"} <= set(summary["provenance"])
    study = load_study("MsPacman", results)
    assert study["evals"]["sSSM"]["latent"] and len(study["curves"]["dSSM-DET"]) >= 3
    table = format_table(summary["rows"], TABLE_COLUMNS)
    assert "| dSSM-DET |" in table and "| copy last context frame |" in table
    assert "per_episode" in study["evals"]["sSSM"]


def test_rescore_of_exported_weights_keeps_the_training_files(quick_dataset, tiny_zoo, tmp_path):
    from ssmlib.studies.zoo import evaluate_checkpoints

    results = tmp_path / "results"
    report(quick_dataset, tiny_zoo, results, ["dSSM-DET"], samples=2, max_windows=4, device="cpu")
    before = (results / "dSSM-DET" / "metrics.jsonl").read_text()
    export(tiny_zoo / "dSSM-DET", tmp_path / "w" / "dSSM-DET.safetensors")
    summary = evaluate_checkpoints({"dSSM-DET": tmp_path / "w" / "dSSM-DET.safetensors"}, quick_dataset, results,
                                   samples=2, max_windows=6, device="cpu", panel=False, n_boot=50)
    assert (results / "dSSM-DET" / "metrics.jsonl").read_text() == before
    assert summary["rows"][0]["train_steps"] == 3 and summary["rows"][0]["test_windows"] == 6
    doc = json.loads((results / "dSSM-DET" / "eval.json").read_text())
    assert doc["checkpoint"]["sha256"] and doc["eval"]["windows"] == 6
    with pytest.raises(SsmlibError, match="no checkpoint"):
        evaluate_checkpoints({"sSSM": tmp_path / "nothing.safetensors"}, quick_dataset, results, device="cpu")


def test_zoo_train_resumes_rather_than_restarting(quick_dataset, tiny_zoo):
    codes = train_all(quick_dataset, tiny_zoo, ["dSSM-DET"], "quick", sets=[s.replace("steps=3", "steps=5") for s in TINY],
                      device="cpu")
    assert codes == {"dSSM-DET": 0}
    assert json.loads((tiny_zoo / "dSSM-DET" / "summary.json").read_text())["step"] == 5


def test_unknown_model_names_are_refused():
    with pytest.raises(SsmlibError, match="unknown model"):
        parse_models("sSSM,ssm")
    assert parse_models("all")[0] == "AR"


def test_export_drops_training_state_and_keeps_weights(tiny_zoo, tmp_path):
    from ssmlib.checkpoint import load_checkpoint, load_model

    dst = tmp_path / "sSSM.safetensors"
    meta = export(tiny_zoo / "sSSM", dst)
    assert meta["optimizer"] is None and meta["exported_from"]["step"] == 3
    _, tensors = load_checkpoint(dst)
    assert not any(k.startswith("optim.") for k in tensors)
    a, b = load_model(tiny_zoo / "sSSM" / "checkpoint.safetensors"), load_model(dst)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(SsmlibError, match="exists"):
        export(tiny_zoo / "sSSM", dst)


def test_committed_checkpoints_load_and_are_small():
    pairs = available()
    assert ("MsPacman", "dSSM-DET") in pairs and ("MsPacman", "sSSM") in pairs
    model = load_pretrained("MsPacman", "sSSM")
    assert (model.cfg.height, model.cfg.width, model.cfg.num_actions) == (200, 160, 9)
    from ssmlib.pretrained import pretrained_path

    for game, name in pairs:
        assert pretrained_path(game, name).stat().st_size < 10 * 2**20
    with pytest.raises(SsmlibError, match="no pretrained"):
        load_pretrained("MsPacman", "nope")
    with pytest.raises(SsmlibError, match="holds a"):
        from ssmlib.checkpoint import load_model

        load_model(pretrained_path("MsPacman", "sSSM"), expect_model="dSSM-DET")


def test_a_campaign_game_is_served_by_its_best_seeds_and_others_by_the_first_zoo():
    from ssmlib.config import CHECKPOINTS_DIR, MODEL_NAMES
    from ssmlib.pretrained import pretrained_path
    from ssmlib.studies.zoo_campaign import best_run

    from ssmlib.config import RESULTS_DIR

    campaign = RESULTS_DIR / "model_zoo" / "MsPacman" / "campaign"
    design = json.loads((campaign / "config.json").read_text())["runs"]
    for name in MODEL_NAMES:  # MsPacman has a campaign with an evaluated run of every model
        # by hand from the lineages: the design's one-frame seeds of the model, lowest latest open-loop excess
        latest = {}
        for r in design:
            if r["model"] == name and r.get("jump", 1) == 1 and r.get("reward_state", "posterior") == "posterior":
                curve = json.loads((campaign / r["name"] / "lineage.json").read_text())["curve"]
                if curve:
                    latest[r["name"]] = curve[-1]["excess"]
        best = min(latest, key=latest.get)
        assert pretrained_path("MsPacman", name) == CHECKPOINTS_DIR / "campaign" / "MsPacman" / f"{best}.safetensors"
        assert best_run("MsPacman", name)["run"] == best
        assert pretrained_path("Bowling", name) == CHECKPOINTS_DIR / "Bowling" / f"{name}.safetensors"
    assert load_pretrained("MsPacman", "sSSM").cfg.reward_head == "categorical"  # not the first zoo's bits head
    assert pretrained_path("MsPacman", "nope") == CHECKPOINTS_DIR / "MsPacman" / "nope.safetensors"  # no run: fallback


def test_init_from_starts_a_new_run_from_exported_weights(quick_dataset, tiny_zoo, tmp_path):
    from ssmlib.checkpoint import load_model
    from ssmlib.train import train

    src = tmp_path / "start.safetensors"
    exported = export(tiny_zoo / "dSSM-DET", src)
    out = tmp_path / "continued"
    summary = train("dSSM-DET", quick_dataset, out, overrides={"steps": 1, "eval_every": 0}, init_from=str(src),
                    progress=False, device="cpu", time_limit=0.0)  # stops before its first step
    assert summary["step"] == 0
    a, b = load_model(src), load_model(out / "checkpoint.safetensors")
    assert a.cfg == b.cfg  # the architecture (channel_scale 0.25) came with the weights
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert json.loads((out / "config.json").read_text())["init_from"]["step"] == exported["step"] > 0
    with pytest.raises(SsmlibError, match="holds a dSSM-DET"):
        train("sSSM", quick_dataset, tmp_path / "x", init_from=str(src), progress=False, device="cpu")
