"""The model-zoo campaign: the stop rule, the fixed config, and leases that continue each other."""

import json

import pytest

from ssmlib.io import atomic_write_json
from ssmlib.studies import zoo_campaign as campaign
from ssmlib.studies.common import read_json
from ssmlib.errors import SsmlibError


def _curve(*pts):
    return [{"frames": f, "excess": e} for f, e in pts]


def test_stop_rule_passes_and_fails():
    rule = dict(stop_improvement=0.03, frame_cap=1000)
    assert campaign.stop_rule_holds([], **rule)[0] is False
    # no point at half the frames of the last one yet
    assert campaign.stop_rule_holds(_curve((100, 300.0), (150, 250.0)), **rule)[0] is False
    # 300 -> 200 over a doubling: 33% better, still improving
    done, why = campaign.stop_rule_holds(_curve((100, 300.0), (200, 200.0)), **rule)
    assert not done and "still improving" in why
    # 300 -> 295: under 3% over the doubling: finished
    done, why = campaign.stop_rule_holds(_curve((100, 300.0), (150, 297.0), (200, 295.0)), **rule)
    assert done and "1.7% < 3%" in why
    # the reference is the point at or just below half the frames (150 -> 320 is not a doubling)
    done, _ = campaign.stop_rule_holds(_curve((100, 400.0), (150, 300.0), (320, 299.0)), **rule)
    assert done  # 300 (at 150 <= 160) -> 299: 0.3%
    done, _ = campaign.stop_rule_holds(_curve((100, 400.0), (170, 300.0), (320, 299.0)), **rule)
    assert not done  # reference 400 at 100 (170 > 160): 25% better
    assert campaign.stop_rule_holds(_curve((100, 300.0), (1000, 299.0)), **rule) == (True, "reached the cap of 1,000 frames")
    # the two compared points' intervals are reported beside the verdict (the rule itself ignores them)
    pts = [{"frames": 100, "excess": 300.0, "excess_ci": [290.0, 310.0]},
           {"frames": 200, "excess": 295.0, "excess_ci": [285.0, 305.0]}]
    done, why = campaign.stop_rule_holds(pts, **rule)
    assert done and why.endswith("95% CIs [290.0, 310.0] and [285.0, 305.0] overlap")
    pts[1].update(excess=200.0, excess_ci=[195.0, 205.0])
    done, why = campaign.stop_rule_holds(pts, **rule)
    assert not done and why.endswith("do not overlap")


def test_config_is_written_once_with_its_rule(tmp_path):
    cfg = campaign.CampaignConfig(game="MsPacman")
    path = campaign.init(cfg, results=tmp_path)
    saved = json.loads(path.read_text())
    assert "3%" in saved["stop_rule"] and "100,000,000" in saved["stop_rule"]
    names = [r["name"] for r in saved["runs"]]
    assert names.count("sSSM-s2") == 1 and "sSSM-k4-s0" in names and "RAR-s0" in names and len(names) == 13
    with pytest.raises(SsmlibError, match="fixed once it has started"):
        campaign.init(campaign.CampaignConfig(game="MsPacman", stop_improvement=0.5), results=tmp_path)
    with pytest.raises(SsmlibError, match="no campaign for Bowling"):
        campaign.load_config("Bowling", results=tmp_path)


def test_two_leases_continue_one_run(quick_dataset, tmp_path):
    results, ckpts, runs = tmp_path / "results", tmp_path / "ckpts", tmp_path / "runs"
    cfg = campaign.CampaignConfig(game="MsPacman", profile="quick", eval_windows=4, eval_samples=1,
                                  runs=[{"name": "dSSM-DET-s0", "model": "dSSM-DET", "seed": 0, "jump": 1},
                                        {"name": "sSSM-k2-s0", "model": "sSSM", "seed": 0, "jump": 2}])
    campaign.init(cfg, results=results)
    # lease 1: only the run with the fewest frames (both 0: the config's order), then lease 2 picks the other one
    first = campaign.lease("MsPacman", quick_dataset, 3.0, runs / "a", max_runs=1, device="cpu", results=results,
                           checkpoints=ckpts, parallel=False)
    assert first["trained"] == ["dSSM-DET-s0"]
    lin = campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)
    f1 = lin["leases"][0]["frames_end"]
    assert f1 > 0 and lin["leases"][0]["optimiser"] == "new run" and lin["curve"][0]["excess"] > 0
    assert campaign.weights_path("MsPacman", "dSSM-DET-s0", ckpts).exists()
    # a later process in this folder that crashed leaves the recorded summary behind: nothing new, not appended
    from ssmlib.data.store import open_dataset

    folder = runs / "a" / "dSSM-DET-s0"
    summary = json.loads((folder / "summary.json").read_text())
    assert campaign.recorded_at(folder, 1) == {"step": summary["step"], "wall_s": summary["wall_s"]}
    assert summary["step"] > 0 and campaign.recorded_at(folder, 2) == {"step": 0, "wall_s": 0.0}
    again = campaign._record(cfg, campaign.CampaignRun(**cfg.runs[0]), folder, open_dataset(quick_dataset),
                             campaign.read_lineage("MsPacman", "dSSM-DET-s0", results), "cpu", results, ckpts)
    assert again is None and len(campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)["leases"]) == 1
    assert json.loads(campaign.weights_path("MsPacman", "dSSM-DET-s0", ckpts).with_suffix(".json").read_text()
                      )["weights_dtype"] == "bfloat16"
    second = campaign.lease("MsPacman", quick_dataset, 3.0, runs / "b", max_runs=1, device="cpu", results=results,
                            checkpoints=ckpts, parallel=False)
    assert second["trained"] == ["sSSM-k2-s0"]
    # lease 3 on a bare machine (new runs folder): both runs, fewest env steps first (what 3 s of training made
    # of each depends on the machine's load); the DET run starts from its committed weights, fresh AdamW
    k2_steps = campaign.read_lineage("MsPacman", "sSSM-k2-s0", results)["leases"][-1]["frames_end"] * 2
    order = [n for n, _ in sorted((("dSSM-DET-s0", f1), ("sSSM-k2-s0", k2_steps)), key=lambda t: t[1])]
    legacy = results / "model_zoo" / "MsPacman" / "campaign" / "dSSM-DET-s0" / "eval.json"
    legacy.write_text("{}")  # as evaluations were stored before 2026-12-03: the next one replaces it
    third = campaign.lease("MsPacman", quick_dataset, 3.0, runs / "c", max_runs=2, device="cpu", results=results,
                           checkpoints=ckpts, parallel=False)
    assert third["trained"] == order
    lin = campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)
    assert len(lin["leases"]) == 2 and lin["leases"][1]["frames_start"] == f1
    assert lin["leases"][1]["frames_end"] > f1 and "fresh AdamW" in lin["leases"][1]["optimiser"]
    run_dir = results / "model_zoo" / "MsPacman" / "campaign" / "dSSM-DET-s0"  # the latest evaluation only
    assert read_json(run_dir / campaign.EVAL_FILE)["lease"] == 2 and not list(run_dir.glob("eval-lease*"))
    assert not (run_dir / "eval.json").exists()  # stored compressed only: the plain one written above is gone
    cmd = json.loads((runs / "c" / "dSSM-DET-s0" / "config.json").read_text())["init_from"]
    assert cmd["path"].endswith("dSSM-DET-s0.safetensors")
    rows = {r["run"]: r for r in campaign.table("MsPacman", results=results)}
    table_md = (run_dir.parent / "table.md").read_text()
    assert "| dSSM-DET-s0 | dSSM-DET | 1 | 2 |" in table_md  # rewritten each lease
    # its reward section: a run trained now stores its class weights, so its readings are calibrated
    assert "## Reward head" in table_md and "| dSSM-DET-s0 | calibrated |" in table_md
    assert lin["curve"][-1]["reward_calibrated"] is True
    assert rows["dSSM-DET-s0"]["leases"] == 2 and rows["sSSM-k2-s0"]["env_steps"] == 2 * rows["sSSM-k2-s0"]["frames"]
    # another dataset (e.g. collected by an agent whose weights changed) is refused before any training
    lin = campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)
    assert campaign.check_fingerprint("MsPacman", quick_dataset, results) == lin["leases"][0]["data_fingerprint"]
    lin["leases"][0]["data_fingerprint"] = "0" * 64
    (run_dir / "lineage.json").write_text(json.dumps(lin))
    with pytest.raises(SsmlibError, match="the campaign's dataset changed"):
        campaign.lease("MsPacman", quick_dataset, 3.0, runs / "d", max_runs=1, device="cpu", results=results,
                       checkpoints=ckpts, parallel=False)
    assert not (runs / "d").exists()


def test_curves_read_the_lineages(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = tmp_path / "results"
    cfg = campaign.CampaignConfig(game="MsPacman", profile="quick",
                                  runs=[{"name": "sSSM-s0", "model": "sSSM", "seed": 0, "jump": 1},
                                        {"name": "sSSM-k2-s0", "model": "sSSM", "seed": 0, "jump": 2},
                                        {"name": "AR-s0", "model": "AR", "seed": 0, "jump": 1}])
    campaign.init(cfg, results=results)
    for run, jump, pts in (("sSSM-s0", 1, [(100, 50.0), (200, 40.0)]), ("sSSM-k2-s0", 2, [(100, 60.0)])):
        d = campaign.campaign_dir("MsPacman", results) / run
        d.mkdir(parents=True)
        curve = [{"frames": f, "env_steps": f * jump, "excess": e, "excess_ci": [e - 1, e + 1],
                  **({"reward_auc_open_loop": 0.6, "excess_joint": e / 2, "excess_joint_ci": [e / 2 - 2, e / 2 + 2]}
                     if jump == 1 else {})} for f, e in pts]
        (d / "lineage.json").write_text(json.dumps({"leases": [{}] * len(pts), "curve": curve, "finished": False}))
    c = campaign.curves("MsPacman", results)
    assert set(c) == {"sSSM-s0", "sSSM-k2-s0"}  # AR-s0 has not started
    assert c["sSSM-s0"]["excess"] == [50.0, 40.0] and c["sSSM-s0"]["lo"] == [49.0, 39.0]
    assert c["sSSM-k2-s0"]["env_steps"] == [200] and c["sSSM-k2-s0"]["jump"] == 2
    assert c["sSSM-s0"]["excess_joint"] == [25.0, 20.0] and c["sSSM-s0"]["joint_hi"] == [27.0, 22.0]
    assert c["sSSM-k2-s0"]["excess_joint"] == [None]  # not scored: no joint line for it
    fig, ax = plt.subplots()
    campaign.plot_curves(ax, "MsPacman", results, y="excess_joint")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sSSM"]
    assert list(ax.get_lines()[0].get_ydata()) == [25.0, 20.0] and "joint" in ax.get_ylabel()
    plt.close(fig)
    fig, ax = plt.subplots()
    campaign.plot_curves(ax, "MsPacman", results)
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["sSSM", "sSSM k=2"]
    plt.close(fig)
    assert c["sSSM-s0"]["reward_auc"] == [0.6, 0.6] and c["sSSM-k2-s0"]["reward_auc"] == [None]
    fig, ax = plt.subplots()
    campaign.plot_curves(ax, "MsPacman", results, y="reward_auc")  # a run without a scored AUC has no line
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sSSM"]
    plt.close(fig)


def test_best_run_is_the_lowest_latest_excess_of_the_model(tmp_path):
    results = tmp_path / "results"
    runs = [{"name": f"sSSM-s{s}", "model": "sSSM", "seed": s, "jump": 1} for s in range(3)]
    runs += [{"name": "sSSM-k2-s0", "model": "sSSM", "seed": 0, "jump": 2},
             {"name": "sSSM-rp-s0", "model": "sSSM", "seed": 0, "jump": 1, "reward_state": "prior"}]
    campaign.init(campaign.CampaignConfig(game="MsPacman", profile="quick", runs=runs), results=results)
    with pytest.raises(SsmlibError, match="no evaluated sSSM run"):
        campaign.best_run("MsPacman", "sSSM", results=results)
    # s0's latest point is worse than s1's although its earlier one was the best of all; s2 never ran; the
    # reward-from-the-prior variant has the lowest excess but is another variant
    for run, pts in (("sSSM-s0", [(100, 10.0), (200, 60.0)]), ("sSSM-s1", [(100, 50.0)]), ("sSSM-k2-s0", [(100, 1.0)]),
                     ("sSSM-rp-s0", [(100, 2.0)])):
        d = campaign.campaign_dir("MsPacman", results) / run
        d.mkdir(parents=True)
        curve = [{"frames": f, "env_steps": f, "excess": e} for f, e in pts]
        (d / "lineage.json").write_text(json.dumps({"leases": [{}] * len(pts), "curve": curve, "finished": False}))
    best = campaign.best_run("MsPacman", "sSSM", results=results)
    assert best["run"] == "sSSM-s1" and best["weights"].name == "sSSM-s1.safetensors"
    assert campaign.best_run("MsPacman", "sSSM", jump=2, results=results)["run"] == "sSSM-k2-s0"
    assert campaign.best_run("MsPacman", "sSSM", results=results, reward_state="prior")["run"] == "sSSM-rp-s0"
    summary = campaign.model_summary_markdown("MsPacman", results)
    assert "| sSSM * | 2/3 |" in summary and "| sSSM, reward from the prior * | 1/1 |" in summary
    assert "scored with 4 prior samples per window" in summary
    assert "| sSSM * | 2/3 | 0 | sSSM-s1 | 100 | 50 | - | 0.0 |" in summary  # no study, no column; no joint excess
    assert "samples on" not in summary
    # the sample-count study scored the best seed's weights (named by the frames they scored): its largest K
    study = {"config": {"ks": [1, 256], "windows": 2}, "checkpoints": {"sSSM-s1@0.00M": {"windows": {
        "episode": [0, 1], "start": [5, 9], "excess": {"1": [[30.0, 30.0], [50.0, 50.0]],
                                                     "256": [[10.0, 10.0], [20.0, 20.0]]}}}}}
    (results / "open_loop_samples").mkdir()
    (results / "open_loop_samples" / "MsPacman-campaign.json").write_text(json.dumps(study))
    summary = campaign.model_summary_markdown("MsPacman", results)
    assert "| sSSM * | 2/3 | 0 | sSSM-s1 | 100 | 50 | 15 [10, 20] | - |" in summary
    assert "the same weights with 256 samples on 2 of the test windows" in summary
    # the claims and the I2A campaign's choice of environment model see the design's seeds only
    from ssmlib.claims import campaign_tables
    from ssmlib.studies.i2a_campaign import choose_env_model

    _, claim_runs, _ = campaign_tables("MsPacman", results)
    assert [r["run"] for r in claim_runs["sSSM"]] == ["sSSM-s0", "sSSM-s1", "sSSM-s2"]
    _, why = choose_env_model("MsPacman", "sSSM", results, tmp_path / "ckpts")
    assert "sSSM-s0, sSSM-s1, sSSM-s2 have not met" in why


def test_a_run_added_later_is_on_the_record_and_trains_with_its_reward_state(tmp_path):
    """``add_run``: the config gains the run and a dated line in ``design_changes``; the stop rule and the other
    runs stay; a name already used, an unknown model or reward state is refused and nothing is written."""
    path = campaign.init(campaign.CampaignConfig(game="MsPacman"), results=tmp_path)
    before = json.loads(path.read_text())
    run = campaign.CampaignRun("sSSM-rp-s0", "sSSM", 0, 1, "prior")
    campaign.add_run("MsPacman", run, "the head read the reward off the posterior's frame", tmp_path)
    after = json.loads(path.read_text())
    assert after["runs"][:-1] == before["runs"] and after["stop_rule"] == before["stop_rule"]
    assert after["runs"][-1] == {"name": "sSSM-rp-s0", "model": "sSSM", "seed": 0, "jump": 1, "reward_state": "prior"}
    (line,) = after["design_changes"]
    assert "added run sSSM-rp-s0" in line and "posterior's frame" in line and line[:4].isdigit()
    for bad in (run, campaign.CampaignRun("x-s0", "SSM"), campaign.CampaignRun("y-s0", "sSSM", reward_state="next"),
                campaign.CampaignRun("z-s0", "dSSM-DET", reward_state="prior"), campaign.CampaignRun("w-s0", "sSSM", jump=0)):
        with pytest.raises(SsmlibError):
            campaign.add_run("MsPacman", bad, "why", tmp_path)
    assert json.loads(path.read_text()) == after
    cfg = campaign.load_config("MsPacman", tmp_path)
    cmd = campaign._train_command(cfg, campaign.CampaignRun(**cfg.runs[-1]), tmp_path / "data",
                                  tmp_path / "runs" / "sSSM-rp-s0", 60, 1, tmp_path / "ckpts")
    assert "reward_state=prior" in cmd
    first = campaign._train_command(cfg, campaign.CampaignRun(**cfg.runs[0]), tmp_path / "data",
                                    tmp_path / "runs" / "sSSM-s0", 60, 1, tmp_path / "ckpts")
    assert not any(a.startswith("reward_state") for a in first)  # the runs written before: as they trained


def test_latest_metrics_is_the_highest_lease_number(tmp_path):
    results = tmp_path / "results"
    campaign.init(campaign.CampaignConfig(game="MsPacman"), results=results)
    d = campaign.campaign_dir("MsPacman", results) / "sSSM-s0"
    with pytest.raises(SsmlibError, match="no metrics log"):
        campaign.latest_metrics("MsPacman", "sSSM-s0", results)
    d.mkdir(parents=True)
    for n in (1, 2, 10):
        (d / f"metrics-lease{n}.jsonl").write_text("")
    assert campaign.latest_metrics("MsPacman", "sSSM-s0", results).name == "metrics-lease10.jsonl"  # not lease2
    # leases recorded since 2026-12-04 store their log compressed; the numbers still decide
    from ssmlib.io import atomic_write_text
    from ssmlib.runs import read_metrics

    atomic_write_text(d / "metrics-lease3.jsonl.gz", '{"step": 3}\n')
    assert campaign.latest_metrics("MsPacman", "sSSM-s0", results).name == "metrics-lease10.jsonl"
    atomic_write_text(d / "metrics-lease11.jsonl.gz", '{"step": 11}\n')
    latest = campaign.latest_metrics("MsPacman", "sSSM-s0", results)
    assert latest.name == "metrics-lease11.jsonl.gz" and read_metrics(latest) == [{"step": 11}]


def test_train_command_warm_resume_cold_init_and_compile(tmp_path):
    """A warm folder resumes exactly (no new seed, no --init-from); a bare machine starts from the committed
    weights with a seed per lease; ``compile`` reaches the train command either way (an engine setting)."""
    run = campaign.CampaignRun(name="sSSM-k2-s0", model="sSSM", seed=0, jump=2)
    cfg = campaign.CampaignConfig(game="MsPacman", profile="paper")
    ckpts = tmp_path / "ckpts"
    weights = campaign.weights_path("MsPacman", run.name, ckpts)
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    cold = campaign._train_command(cfg, run, tmp_path / "data", tmp_path / "runs" / run.name, 60, 3, ckpts, True)
    assert "--init-from" in cold and "seed=3" in cold and "jump=2" in cold and "compile=true" in cold
    folder = tmp_path / "runs" / run.name
    folder.mkdir(parents=True)
    (folder / "checkpoint.safetensors").write_bytes(b"")
    warm = campaign._train_command(cfg, run, tmp_path / "data", folder, 60, 3, ckpts, False)
    assert "--init-from" not in warm and not any(a.startswith("seed=") for a in warm) and "compile=false" in warm


def test_readme_block_is_rewritten_and_the_repository_readme_is_current(tmp_path):
    """``campaign table`` rewrites the README's per-model block; the committed README matches results/ (run
    ``python -m ssmlib campaign table`` after unpacking a lease's results)."""
    from ssmlib.config import REPO_ROOT

    start, end = campaign.README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{start}\nstale\n{end}\nrest\n")
    assert campaign.update_readme("MsPacman", readme)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith(f"{end}\nrest\n")
    assert "| model | seeds started |" in text
    (tmp_path / "other.md").write_text("no block\n")
    assert not campaign.update_readme("MsPacman", tmp_path / "other.md")
    committed = (REPO_ROOT / "README.md").read_text().split(start, 1)[1].split(end, 1)[0]
    real = campaign.model_summary_markdown("MsPacman")
    assert "| dSSM-DET | " in real and "| dSSM-VAE * | " in real  # the mark: the models whose futures are sampled
    assert committed == "\n" + campaign.model_summary_markdown("MsPacman"), \
        "README's campaign table is stale: run python -m ssmlib campaign table"


def test_a_lineage_lost_on_the_way_back_keeps_every_frame(quick_dataset, tmp_path):
    """Two warm leases on one machine; the second's lineage never comes back (the call was cut after the lease
    recorded), so the third lease (still warm) starts from the first lineage: it must count the frames and the
    wall time of both the lost lease and its own, each once."""
    import shutil

    results, ckpts, runs = tmp_path / "results", tmp_path / "ckpts", tmp_path / "runs"
    cfg = campaign.CampaignConfig(game="MsPacman", profile="quick", eval_windows=4, eval_samples=1,
                                  runs=[{"name": "dSSM-DET-s0", "model": "dSSM-DET", "seed": 0, "jump": 1}])
    campaign.init(cfg, results=results)

    def lease():
        campaign.lease("MsPacman", quick_dataset, 2.0, runs, max_runs=1, device="cpu", results=results,
                       checkpoints=ckpts, parallel=False)
        return campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)

    first = lease()
    run_dir = results / "model_zoo" / "MsPacman" / "campaign" / "dSSM-DET-s0"
    kept = tmp_path / "kept"
    shutil.copytree(run_dir, kept)
    lease()  # recorded on the machine, then 'lost'
    shutil.rmtree(run_dir)
    shutil.copytree(kept, run_dir)
    third = lease()
    folder = runs / "dSSM-DET-s0"
    summary = json.loads((folder / "summary.json").read_text())
    per_step = first["leases"][0]["frames_end"] // first["leases"][0]["end_step"]
    assert len(third["leases"]) == 2 and third["leases"][1]["frames_end"] == summary["step"] * per_step
    # wall time since the first lease (the summary's is cumulative over the folder's resumes)
    assert third["leases"][1]["train_wall_s"] == summary["wall_s"] - first["leases"][0]["train_wall_s"]


def _folded(end_step: int, wall: float, excess: float) -> dict:
    """A lineage as a warm call returned it when its tree had lost the previous calls' lineage."""
    return {"run": "r", "leases": [{"lease": 1, "start_step": 0, "end_step": end_step, "frames_start": 0,
                                     "frames_end": end_step * 10, "train_wall_s": wall, "frames_per_s_steady": 1.0,
                                     "compile": True, "optimiser": "new run"}],
            "curve": [{"frames": end_step * 10, "excess": excess}], "finished": False}


def test_folded_snapshots_join_into_one_lease_per_call():
    log = [{"step": s, "split": "train", "frames_per_s": fps} for s, fps in
           [(50, 1.0), (100, 10.0), (150, 12.0), (200, 2.0), (250, 20.0), (300, 22.0), (350, 24.0)]]
    snaps = [_folded(150, 100.0, 900.0), _folded(350, 250.0, 800.0)]
    lin, own = campaign.join_snapshots(snaps, [log[:3], log], campaign.CampaignConfig(frame_cap=10**9), "why")
    first, second = lin["leases"]
    assert (first["start_step"], first["end_step"], first["train_wall_s"]) == (0, 150, 100.0)
    assert (second["lease"], second["start_step"], second["frames_start"], second["frames_end"]) == (2, 150, 1500, 3500)
    assert second["train_wall_s"] == 150.0 and second["optimiser"].startswith("resumed exactly")
    assert first["frames_per_s_steady"] == 12.0  # median after the lease's first interval (steps 100, 150)
    assert second["frames_per_s_steady"] == 22.0  # its own steps 250..350, the compile interval (200) dropped
    assert [p["excess"] for p in lin["curve"]] == [900.0, 800.0] and lin["note"] == "why"
    assert [[m["step"] for m in rows] for rows in own] == [[50, 100, 150], [200, 250, 300, 350]]
    assert lin["finished"] is False  # 900 -> 800 is 11% over the doubling
    with pytest.raises(SsmlibError, match="not after"):
        campaign.join_snapshots(snaps[::-1], [log, log], campaign.CampaignConfig(frame_cap=10**9), "why")


def test_calibrate_adds_the_class_weights_train_used_and_rescores(quick_dataset, tmp_path):
    """Weights exported before checkpoints kept the class weights get them (as train computes them from the
    campaign's data) and a re-score; weights that have them are left alone."""
    from ssmlib.checkpoint import load_checkpoint, read_meta, write_file
    from ssmlib.data.store import open_dataset
    from ssmlib.checkpoint import model_config
    from ssmlib.train import reward_classes

    results, ckpts = tmp_path / "results", tmp_path / "ckpts"
    cfg = campaign.CampaignConfig(game="MsPacman", profile="quick", eval_windows=4, eval_samples=1,
                                  runs=[{"name": "dSSM-DET-s0", "model": "dSSM-DET", "seed": 0, "jump": 1}])
    campaign.init(cfg, results=results)
    campaign.lease("MsPacman", quick_dataset, 2.0, tmp_path / "runs", max_runs=1, device="cpu", results=results,
                   checkpoints=ckpts, parallel=False)
    path = campaign.weights_path("MsPacman", "dSSM-DET-s0", ckpts)
    trained = read_meta(path)["model_cfg"]["reward_class_weights"]
    assert len(trained) == len(read_meta(path)["model_cfg"]["reward_values"])  # train stores them now
    meta, tensors = load_checkpoint(path)
    del meta["model_cfg"]["reward_class_weights"]  # as the campaign's weights were exported before
    write_file(path, tensors, meta)
    run_dir = results / "model_zoo" / "MsPacman" / "campaign" / "dSSM-DET-s0"
    leased = read_json(run_dir / campaign.EVAL_FILE)["results"]["total"]  # scored with the weights
    auc_before = campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)["curve"][-1]["reward_auc_open_loop"]
    atomic_write_json(run_dir / campaign.EVAL_FILE, {})
    assert campaign.calibrate_rewards("MsPacman", quick_dataset, "cpu", results, ckpts) == ["dSSM-DET-s0"]
    meta = read_meta(path)
    assert meta["model_cfg"]["reward_class_weights"] == pytest.approx(trained)
    _, expect = reward_classes(open_dataset(quick_dataset), model_config(meta))
    assert meta["model_cfg"]["reward_class_weights"] == pytest.approx(expect)
    lin = campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)
    assert lin["curve"][-1]["reward_calibrated"] is True and "reward_auc_open_loop_uncalibrated" in lin["curve"][-1]
    assert read_json(run_dir / campaign.EVAL_FILE)["results"]["total"]["excess_open_loop_nats_per_frame"]
    rescored = read_json(run_dir / campaign.EVAL_FILE)["results"]["total"]
    # the re-score reads the weights again: what the lease's own (calibrated) evaluation said, and the curve
    # keeps the reading it replaced
    assert rescored["reward_nll_open_loop"] == pytest.approx(leased["reward_nll_open_loop"], rel=1e-4)
    assert lin["curve"][-1]["reward_auc_open_loop"] == pytest.approx(rescored["reward_auc_open_loop"])
    assert lin["curve"][-1]["reward_auc_open_loop_uncalibrated"] == auc_before
    assert campaign.calibrate_rewards("MsPacman", quick_dataset, "cpu", results, ckpts) == []  # once only
    # the reward's two paths: dSSM-DET's s_t never sees a frame, so filtering and imagination agree
    (row,) = campaign.reward_paths("MsPacman", results)
    assert row["run"] == "dSSM-DET-s0" and row["base_rate"] > 0
    assert row["teacher"] == pytest.approx(row["open_loop"], rel=1e-4)
    assert (row["teacher"], row["open_loop"]) == (rescored["reward_nll_teacher"], rescored["reward_nll_open_loop"])
    assert row["leak"] is False
    by_h = read_json(run_dir / campaign.EVAL_FILE)["results"]["per_horizon"]  # h = 1 is the first of each list
    assert by_h["h"][0] == 1 and row["open_loop_h1"] == by_h["reward_nll_open_loop"][0]
    assert row["base_rate_h1"] == by_h["reward_nll_base_rate"][0]
    # these test windows hold no reward at h = 1, so there is no base rate to judge a leak against: no verdict (the
    # verdicts with a base rate are test_the_h1_leak_reading_tells_a_leak_from_an_honest_head_whose_rollout_drifts's)
    assert row["base_rate_h1"] == 0 and row["leak_h1"] is None


def test_the_reward_leak_rule_flags_a_head_that_reads_the_frame_and_nothing_else():
    from ssmlib.rules import REWARD_LEAK_TEACHER

    base = 0.30
    row = lambda teacher, open_loop: {"teacher": teacher, "open_loop": open_loop, "base_rate": base}  # noqa: E731
    # the jumpy sSSM's pattern: near-perfect through the posterior, worse than the frequencies in imagination
    assert campaign.reward_leak(row(0.006, 2.5)) is True
    # an honest head, better through filtering than in imagination, is not a leak
    assert campaign.reward_leak(row(0.11, 0.43)) is False
    # equal paths (a dSSM), good or bad, are not a leak
    assert campaign.reward_leak(row(0.17, 0.17)) is False and campaign.reward_leak(row(0.30, 0.30)) is False
    # the teacher threshold is strict and a share of the base rate's NLL
    assert campaign.reward_leak(row(REWARD_LEAK_TEACHER * base, 1.0)) is False
    assert campaign.reward_leak(row(REWARD_LEAK_TEACHER * base * 0.99, 1.0)) is True
    # imagination at the base rate is not worse than knowing nothing
    assert campaign.reward_leak(row(0.01, base)) is False
    # an evaluation without the teacher path cannot say
    assert campaign.reward_leak({"teacher": None, "open_loop": 1.0, "base_rate": base}) is None


def test_the_h1_leak_reading_tells_a_leak_from_an_honest_head_whose_rollout_drifts():
    """``RULES['reward.leak.h1']`` (2026-12-05): the sSSM-rp-s0 pattern (a head that cannot see the frame, good one
    step ahead, worse than the frequencies averaged over 10 imagined steps) meets the first rule but not this one;
    the posterior sSSM's pattern (lost one step into imagination) meets both."""
    from ssmlib.rules import REWARD_LEAK_TEACHER

    def row(teacher, open_loop, h1, base=0.30, base_h1=0.31):
        return {"teacher": teacher, "open_loop": open_loop, "base_rate": base, "open_loop_h1": h1, "base_rate_h1": base_h1}

    drifts, reads = row(0.052, 0.96, 0.027), row(0.005, 2.14, 2.46)
    assert campaign.reward_leak(drifts) is True and campaign.reward_leak_h1(drifts) is False
    assert campaign.reward_leak(reads) is True and campaign.reward_leak_h1(reads) is True
    assert campaign.reward_leak_h1(row(0.17, 0.17, 0.06)) is False  # a dSSM: equal paths
    # both parts are needed, each strict: the teacher threshold as in the first rule, h = 1 against its own base rate
    assert campaign.reward_leak_h1(row(REWARD_LEAK_TEACHER * 0.30, 2.0, 2.0)) is False
    assert campaign.reward_leak_h1(row(0.01, 2.0, 0.31)) is False and campaign.reward_leak_h1(row(0.01, 2.0, 0.32)) is True
    assert campaign.reward_leak_h1({**reads, "open_loop_h1": None}) is None  # an evaluation without per-horizon NLL


def test_stop_rule_with_confirmations_needs_the_test_at_consecutive_points():
    rule = dict(stop_improvement=0.03, frame_cap=10_000)
    # the AR branch of 2026-12-03: a first doubling that got much worse ends the run under one confirmation ...
    branch = _curve((6, 702.0), (12, 1486.0))
    assert campaign.stop_rule_holds(branch, **rule)[0] is True
    # ... but not under two: the point before has no reference at half its frames
    done, why = campaign.stop_rule_holds(branch, **rule, confirmations=2)
    assert not done and "not yet at 2 in a row" in why and "no point at half the frames yet" in why
    # a plateau seen at two points in a row ends it
    plateau = _curve((100, 400.0), (200, 300.0), (400, 299.0), (800, 298.0))
    done, why = campaign.stop_rule_holds(plateau, **rule, confirmations=2)
    assert done and why.endswith("(and at the point before: 2 in a row)")
    # one flat point after an improving one does not
    late = _curve((100, 400.0), (200, 300.0), (400, 200.0), (800, 199.0))
    done, why = campaign.stop_rule_holds(late, **rule, confirmations=2)
    assert not done and "still improving: 33.3%" in why
    assert campaign.stop_rule_holds(late, **rule, confirmations=1)[0] is True
    # three in a row: holding at the last two is not enough, and the reason says which point failed
    two = _curve((100, 400.0), (200, 300.0), (400, 299.0), (800, 298.0))
    done, why = campaign.stop_rule_holds(two, **rule, confirmations=3)
    assert not done and why.startswith("holds at the last 2 points but not yet at 3 in a row")
    assert "at the point before them: still improving: 25.0%" in why
    done, why = campaign.stop_rule_holds([*two, {"frames": 1600, "excess": 297.0}], **rule, confirmations=3)
    assert done and why.endswith("(and at the 2 points before: 3 in a row)")
    # the cap needs no confirmation
    assert campaign.stop_rule_holds(_curve((100, 400.0), (10_000, 100.0)), **rule, confirmations=3)[0] is True


def test_amending_the_stop_rule_is_on_the_record_stricter_only_and_rejudges_every_run(tmp_path):
    runs = [{"name": n, "model": "sSSM", "seed": s, "jump": 1} for s, n in enumerate(("sSSM-s0", "sSSM-s1", "sSSM-s2"))]
    campaign.init(campaign.CampaignConfig(game="MsPacman", runs=runs), results=tmp_path)
    curves = {"sSSM-s0": _curve((4, 825.0), (8, 868.0)),                          # finished by one point: re-opened
              "sSSM-s1": _curve((356, 811.0), (771, 912.0), (1260, 951.0), (1475, 856.0)),  # done at two: stays
              "sSSM-s2": _curve((3, 2578.0), (7, 746.0))}                          # improving: stays open
    for name, curve in curves.items():
        done, why = campaign.stop_rule_holds(curve, 0.03, 100_000_000)
        (tmp_path / "model_zoo" / "MsPacman" / "campaign" / name).mkdir(parents=True)
        (tmp_path / "model_zoo" / "MsPacman" / "campaign" / name / "lineage.json").write_text(
            json.dumps({"run": name, "leases": [{"frames_end": curve[-1]["frames"]}], "curve": curve,
                        "finished": done, "why": why}))
    changed = campaign.amend_stop_rule("MsPacman", 2, "one point can be an outlier.", results=tmp_path)
    assert changed == [("sSSM-s0", True, False), ("sSSM-s1", True, True), ("sSSM-s2", False, False)]
    assert [campaign.read_lineage("MsPacman", n, tmp_path)["finished"] for n in curves] == [False, True, False]
    assert [r["run"] for r in campaign.table("MsPacman", tmp_path) if not r["finished"]] == ["sSSM-s0", "sSSM-s2"]
    cfg = campaign.load_config("MsPacman", tmp_path)
    assert cfg.stop_confirmations == 2 and "last 2 curve points in a row" in cfg.stop_rule
    assert campaign.judge(cfg, curves["sSSM-s0"])[0] is False  # later leases and the table judge by the amendment
    assert "one point can be an outlier. Re-opened by it: sSSM-s0." in cfg.design_changes[-1]
    assert [r.name for r in campaign.pick_runs(cfg, 3, tmp_path)] == ["sSSM-s2", "sSSM-s0"]  # fewest frames first
    with pytest.raises(SsmlibError, match="only make it stricter .*--confirmations 3"):
        campaign.amend_stop_rule("MsPacman", 2, "again", results=tmp_path)


def _joint_curve(*pts):
    return [{"frames": f, "excess": e, "excess_joint": j} for f, e, j in pts]


def test_stop_rule_on_the_joint_excess_needs_both_to_stop_improving():
    rule = dict(stop_improvement=0.03, frame_cap=10_000)
    # dSSM-VAE-s0's curve (millions of frames): the open loop rose while the joint excess fell 76% over the doubling
    vae = _joint_curve((3.56, 811.2, 540.7), (7.71, 912.0, 199.1), (12.60, 950.7, 152.0), (14.75, 855.9, 130.4))
    assert campaign.stop_rule_holds(vae, **rule, confirmations=2)[0] is True  # as the rule stood
    done, why = campaign.stop_rule_holds(vae, **rule, confirmations=2, joint=True)
    assert not done and why == "joint: still improving: 75.9% over the last doubling of frames"
    # both flat: done, and the reason gives both comparisons
    flat = _joint_curve((100, 400.0, 200.0), (200, 390.0, 199.0))
    done, why = campaign.stop_rule_holds(flat, **rule, joint=True)
    assert done and why.startswith("open loop: excess 400.0 -> 390.0") and "; joint: excess 200.0 -> 199.0" in why
    # the open loop still improving, the joint flat: not done, and only the open loop's reason is given
    done, why = campaign.stop_rule_holds(_joint_curve((100, 400.0, 200.0), (200, 300.0, 199.0)), **rule, joint=True)
    assert not done and why == "open loop: still improving: 25.0% over the last doubling of frames"
    # a reason both tests share is said once; a point without a joint excess cannot end a run
    assert campaign.stop_rule_holds(flat[1:], **rule, joint=True) == (False, "no point at half the frames yet")
    done, why = campaign.stop_rule_holds([{"frames": 100, "excess": 400.0}, flat[1]], **rule, joint=True)
    assert not done and why == "joint: no excess_joint at 100 frames"
    assert campaign.stop_rule_holds([{"frames": 100, "excess": 400.0}, flat[1]], **rule)[0] is True


def test_amending_the_stop_rule_to_the_joint_excess_reopens_runs_ended_by_the_open_loop(tmp_path):
    runs = [{"name": n, "model": "sSSM", "seed": s, "jump": 1} for s, n in enumerate(("sSSM-s0", "sSSM-s1"))]
    campaign.init(campaign.CampaignConfig(game="MsPacman", runs=runs, stop_confirmations=2), results=tmp_path)
    curves = {"sSSM-s0": _joint_curve((100, 811.0, 541.0), (200, 912.0, 199.0), (400, 900.0, 130.0)),  # re-opened
              "sSSM-s1": _joint_curve((100, 500.0, 300.0), (200, 499.0, 299.0), (400, 498.0, 298.0))}  # stays done
    for name, curve in curves.items():
        done, why = campaign.stop_rule_holds(curve, 0.03, 100_000_000, confirmations=2)
        assert done
        (tmp_path / "model_zoo" / "MsPacman" / "campaign" / name).mkdir(parents=True)
        (tmp_path / "model_zoo" / "MsPacman" / "campaign" / name / "lineage.json").write_text(
            json.dumps({"run": name, "leases": [{}] * 3, "curve": curve, "finished": done, "why": why}))
    with pytest.raises(SsmlibError, match="nothing to amend: pass --confirmations N .* or --joint"):
        campaign.amend_stop_rule("MsPacman", None, "why", results=tmp_path)
    changed = campaign.amend_stop_rule("MsPacman", None, "K = 4 samples.", results=tmp_path, joint=True)
    assert changed == [("sSSM-s0", True, False), ("sSSM-s1", True, True)]
    cfg = campaign.load_config("MsPacman", tmp_path)
    assert cfg.stop_on_joint and cfg.stop_confirmations == 2
    assert cfg.stop_rule == campaign.rule_words(0.03, 100_000_000, 2, True)
    assert "last 2 curve points in a row" in cfg.stop_rule and cfg.stop_rule.endswith(
        "as well as on the open-loop excess.")
    assert "as well as on the open-loop excess: K = 4 samples. Re-opened by it: sSSM-s0." in cfg.design_changes[-1]
    assert "consecutive" not in cfg.design_changes[-1]  # the points in a row did not change
    lin = campaign.read_lineage("MsPacman", "sSSM-s0", tmp_path)
    assert not lin["finished"] and lin["why"].startswith("joint: still improving")
    # the rule as first written (one point, open loop alone) is still what the replay asks by default
    assert {r["run"] for r in campaign.stop_rule_replay("MsPacman", 1, tmp_path)} == {"sSSM-s0", "sSSM-s1"}
    assert {r["run"] for r in campaign.stop_rule_replay("MsPacman", 1, tmp_path, joint=True)} == {"sSSM-s1"}
    with pytest.raises(SsmlibError, match="already tests the joint excess: drop --joint .*--confirmations 3"):
        campaign.amend_stop_rule("MsPacman", None, "again", results=tmp_path, joint=True)
    with pytest.raises(SsmlibError, match="already tests the joint excess: drop --joint$"):
        campaign.amend_stop_rule("MsPacman", 3, "again", results=tmp_path, joint=True)
    campaign.amend_stop_rule("MsPacman", 3, "three.", results=tmp_path)  # following the advice works
    cfg = campaign.load_config("MsPacman", tmp_path)
    assert cfg.stop_on_joint and cfg.stop_confirmations == 3 and "consecutive" in cfg.design_changes[-1]
    assert "joint" not in cfg.design_changes[-1].split(":")[2]  # only what changed is named


def test_the_committed_campaign_judges_every_run_by_its_amended_rule():
    """Every committed lineage's verdict is the config's rule (amendments included) applied to its curve."""
    from ssmlib.config import RESULTS_DIR

    cfg = campaign.load_config("MsPacman", RESULTS_DIR)
    assert cfg.stop_rule == campaign.rule_words(cfg.stop_improvement, cfg.frame_cap, cfg.stop_confirmations,
                                                cfg.stop_on_joint)
    for r in cfg.runs:
        lin = campaign.read_lineage("MsPacman", r["name"], RESULTS_DIR)
        if lin["curve"]:
            assert lin["finished"] == campaign.judge(cfg, lin["curve"])[0], r["name"]
    # the README's account of the second amendment: dSSM-VAE-s0's two points that ended it under the first rule
    from ssmlib.config import REPO_ROOT

    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    ref, last = [p for p in campaign.read_lineage("MsPacman", "dSSM-VAE-s0", RESULTS_DIR)["curve"]
                 if p["frames"] in (3_555_840, 14_753_280)]
    assert (f"dSSM-VAE-s0 had ended on a rise of that number ({ref['excess']:.1f} -> {last['excess']:.1f}) while its "
            f"joint excess fell from {ref['excess_joint']:.1f} to {last['excess_joint']:.1f}") in readme
    joint_amendment = [c for c in cfg.design_changes if "stop rule: the improvement test must hold on" in c]
    assert cfg.stop_on_joint and len(joint_amendment) == 1 and "Re-opened by it: dSSM-VAE-s0." in joint_amendment[0]


def test_record_left_records_what_a_killed_lease_left_once(quick_dataset, tmp_path, capsys):
    """A lease killed at its bound leaves a stopped run's summary and checkpoint unrecorded; ``record`` appends them
    to the lineage as a lease of their own, and a second call changes nothing."""
    from ssmlib.studies.common import run_commands, train_command

    results, ckpts, runs = tmp_path / "results", tmp_path / "ckpts", tmp_path / "runs"
    cfg = campaign.CampaignConfig(game="MsPacman", profile="quick", eval_windows=4, eval_samples=1,
                                  runs=[{"name": "dSSM-DET-s0", "model": "dSSM-DET", "seed": 0, "jump": 1}])
    campaign.init(cfg, results=results)
    campaign.lease("MsPacman", quick_dataset, 2.0, runs, max_runs=1, device="cpu", results=results, checkpoints=ckpts,
                   parallel=False)
    assert campaign.record_left("MsPacman", quick_dataset, runs, "cpu", results, ckpts) == []  # all recorded
    folder = runs / "dSSM-DET-s0"
    step = json.loads((folder / "summary.json").read_text())["step"]
    # the run trains on in its folder, as in a lease whose recording never happened
    more = train_command("dSSM-DET", quick_dataset, folder, "quick", device="cpu", sets=[f"steps={step + 3}"])
    assert run_commands({"more": more}, tmp_path) == {"more": 0}, (tmp_path / "more.log").read_text()[-2000:]
    assert campaign.record_left("MsPacman", quick_dataset, runs, "cpu", results, ckpts) == ["dSSM-DET-s0"]
    assert "recorded what the lease left: dSSM-DET-s0" in capsys.readouterr().out
    lin = campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)
    assert len(lin["leases"]) == 2 and lin["leases"][1]["end_step"] == step + 3 and len(lin["curve"]) == 2
    assert campaign.record_left("MsPacman", quick_dataset, runs, "cpu", results, ckpts) == []
    assert len(campaign.read_lineage("MsPacman", "dSSM-DET-s0", results)["leases"]) == 2


def test_replaying_the_first_stop_rule_shows_where_it_would_have_ended_each_run(tmp_path):
    runs = [{"name": n, "model": "sSSM", "seed": s, "jump": 1} for s, n in enumerate(("sSSM-s0", "sSSM-s1", "sSSM-s2"))]
    campaign.init(campaign.CampaignConfig(game="MsPacman", runs=runs), results=tmp_path)
    curves = {"sSSM-s0": _curve((4, 825.0), (8, 868.0), (14, 706.0)),   # ended by one point, then improved 19%
              "sSSM-s1": _curve((356, 811.0), (771, 912.0), (1475, 856.0), (3000, 855.0)),
              "sSSM-s2": _curve((3, 2578.0), (7, 746.0))}                # never ended by either rule
    for name, curve in curves.items():
        (tmp_path / "model_zoo" / "MsPacman" / "campaign" / name).mkdir(parents=True)
        (tmp_path / "model_zoo" / "MsPacman" / "campaign" / name / "lineage.json").write_text(
            json.dumps({"run": name, "leases": [{}] * len(curve), "curve": curve, "finished": False, "why": ""}))
    campaign.amend_stop_rule("MsPacman", 2, "one point can be an outlier.", results=tmp_path)
    rows = {r["run"]: r for r in campaign.stop_rule_replay("MsPacman", 1, tmp_path)}
    assert set(rows) == {"sSSM-s0", "sSSM-s1"}
    assert rows["sSSM-s0"]["stopped_at"] == 2 and rows["sSSM-s0"]["excess"] == (868.0, 706.0)
    assert rows["sSSM-s0"]["frames"] == (8, 14) and rows["sSSM-s0"]["finished_now"] is False
    assert rows["sSSM-s1"]["stopped_at"] == 2 and rows["sSSM-s1"]["finished_now"] is True  # 2 in a row at the end
    assert {r["run"] for r in campaign.stop_rule_replay("MsPacman", 2, tmp_path)} == {"sSSM-s1"}


def test_branch_pairs_put_a_discarded_continuation_beside_the_kept_lease(tmp_path):
    runs = [{"name": "AR-s0", "model": "AR", "seed": 0, "jump": 1}]
    campaign.init(campaign.CampaignConfig(game="MsPacman", runs=runs), results=tmp_path)
    root = tmp_path / "model_zoo" / "MsPacman" / "campaign"
    p1 = {"frames": 6, "excess": 702.0, "excess_ci": [671.0, 727.0], "excess_joint": 247.0}
    kept = {"leases": [{}, {}, {}], "curve": [p1, {"frames": 12, "excess": 658.0, "excess_ci": [613.0, 696.0],
                                                  "excess_joint": 191.0}, {"frames": 20, "excess": 600.0}]}
    branch = {"leases": [{}, {}], "curve": [p1, {"frames": 13, "excess": 1486.0, "excess_joint": 180.0}]}
    for folder, lin in ((root / "AR-s0", kept), (root / "branches" / "2026-12-03-0839-h200" / "AR-s0", branch)):
        folder.mkdir(parents=True)
        (folder / "lineage.json").write_text(json.dumps({"run": "AR-s0", "finished": False, **lin}))
    for call, lin in (("empty", {"leases": [], "curve": []}),  # no lease: skipped
                      ("ahead", {"leases": [{}] * 5, "curve": [p1] * 5})):  # more leases than the kept curve
        (root / "branches" / call / "AR-s0").mkdir(parents=True)
        (root / "branches" / call / "AR-s0" / "lineage.json").write_text(json.dumps(lin))
    (row,) = campaign.branch_pairs("MsPacman", tmp_path)
    # lease 2 of the branch against lease 2 of the kept lineage, not its latest point
    assert row["run"] == "AR-s0" and row["lease"] == 2 and row["frames"] == (13, 12) and row["excess"] == (1486.0, 658.0)
    md = campaign.branch_markdown([row])
    assert "| AR-s0, 2 | 13 | 1486.0 | 180.0 | 12 | 658.0 [613.0, 696.0] | 191.0 | +828.0 |" in md
    # the branches never count as runs: the table and the pick list know only the config's runs
    assert [r["run"] for r in campaign.table("MsPacman", tmp_path)] == ["AR-s0"]


def test_sampling_weights_are_the_committed_weights_of_the_sampling_runs_named_by_their_last_point(tmp_path):
    """What the sample-count study scores with --campaign: every sampling run with committed weights and a curve,
    named ``<run>@<frames>M`` after the last curve point (the point those weights scored); no other run."""
    results, ckpts = tmp_path / "results", tmp_path / "ckpts"
    runs = [{"name": n, "model": m, "seed": 0, "jump": j} for n, m, j in (
        ("sSSM-s0", "sSSM", 1), ("dSSM-VAE-s0", "dSSM-VAE", 1), ("dSSM-DET-s0", "dSSM-DET", 1),
        ("sSSM-k4-s0", "sSSM", 4), ("sSSM-s1", "sSSM", 1))]
    campaign.init(campaign.CampaignConfig(game="MsPacman", runs=runs), results=results)
    for name, frames in (("sSSM-s0", [3_970_560, 16_934_400]), ("dSSM-VAE-s0", [14_753_280]),
                         ("dSSM-DET-s0", [17_763_840]), ("sSSM-k4-s0", [10_926_080])):
        d = campaign.campaign_dir("MsPacman", results) / name
        d.mkdir(parents=True)
        (d / "lineage.json").write_text(json.dumps({"leases": [{}], "curve": [{"frames": f} for f in frames],
                                                    "finished": False}))
        if name != "sSSM-k4-s0":  # a sampling run whose weights are not committed is left out
            campaign.weights_path("MsPacman", name, ckpts).parent.mkdir(parents=True, exist_ok=True)
            campaign.weights_path("MsPacman", name, ckpts).write_bytes(b"w")
    got = campaign.sampling_weights("MsPacman", results, ckpts)
    assert [(n, f) for n, _, f in got] == [("sSSM-s0@16.93M", 16_934_400), ("dSSM-VAE-s0@14.75M", 14_753_280)]
    assert got[0][1] == campaign.weights_path("MsPacman", "sSSM-s0", ckpts)
    assert campaign.study_name("sSSM-s0", 10_293_760) == "sSSM-s0@10.29M"


def test_compile_warm_up_runs_the_leases_own_command_per_kind_on_other_data_and_records_nothing(quick_dataset,
                                                                                                 tmp_path):
    """``campaign warm``: one warm-up per kind of run the next lease picks (two seeds of a model compile the same
    graphs), each what the lease itself starts (same model, settings and committed start weights, compiled) with
    another dataset, a scratch folder, a few steps and a time limit; the lineages stay as they were, and a second
    warm-up on the same machine starts from the committed weights again (it does not resume the first)."""
    results, ckpts, runs_dir = tmp_path / "results", tmp_path / "ckpts", tmp_path / "runs"
    runs = [{"name": "dSSM-DET-s0", "model": "dSSM-DET", "seed": 0, "jump": 1},
            {"name": "dSSM-DET-s1", "model": "dSSM-DET", "seed": 1, "jump": 1},
            {"name": "sSSM-rp-s0", "model": "sSSM", "seed": 0, "jump": 1, "reward_state": "prior"}]
    cfg = campaign.CampaignConfig(game="MsPacman", profile="quick", eval_windows=4, eval_samples=1, runs=runs,
                                  first_runs=["dSSM-DET-s0"])
    campaign.init(cfg, results=results)
    first = campaign.lease("MsPacman", quick_dataset, 2.0, runs_dir, max_runs=1, device="cpu", results=results,
                           checkpoints=ckpts, parallel=False)  # committed weights for dSSM-DET-s0
    assert first["trained"] == ["dSSM-DET-s0"]
    cmds = campaign.warm_commands("MsPacman", quick_dataset, tmp_path / "warm", max_runs=3, results=results,
                                  checkpoints=ckpts)
    assert list(cmds) == ["warm-dSSM-DET-k1-posterior", "warm-sSSM-k1-prior"]  # the pick order, one per kind
    lease_cmds = {}
    for r in campaign.pick_runs(campaign.load_config("MsPacman", results), 3, results):  # what a lease would start
        lease_cmds.setdefault(f"warm-{r.model}-k{r.jump}-{r.reward_state}", campaign._train_command(
            cfg, r, quick_dataset, tmp_path / "bare" / r.name, 300, 2, ckpts, compile=True))  # a bare machine's
    for name, cmd in cmds.items():
        lease_cmd = lease_cmds[name]
        assert "compile=true" in cmd and cmd[cmd.index("--model") + 1] == lease_cmd[lease_cmd.index("--model") + 1]
        assert [a for a in cmd if "=" in a and not a.startswith("seed=")][:-1] == \
            [a for a in lease_cmd if "=" in a and not a.startswith("seed=")]  # the same settings, then steps=3
        assert cmd[-2:] == ["--set", f"steps={campaign.WARM_STEPS}"] and "--time-limit" in cmd
        assert ("--init-from" in cmd) == ("--init-from" in lease_cmd)
    assert "--init-from" in cmds["warm-dSSM-DET-k1-posterior"] and "reward_state=prior" in cmds["warm-sSSM-k1-prior"]
    # a model the lease will not wait for is left out (its runs compile for themselves); a misspelt one is refused
    assert list(campaign.warm_commands("MsPacman", quick_dataset, tmp_path / "warm", max_runs=3, results=results,
                                       checkpoints=ckpts, skip_models=["sSSM"])) == ["warm-dSSM-DET-k1-posterior"]
    with pytest.raises(SsmlibError, match="unknown model 'SSSM'; the models are"):
        campaign.warm_commands("MsPacman", quick_dataset, tmp_path / "warm", 3, results, ckpts, skip_models=["SSSM"])
    before = {r["name"]: campaign.read_lineage("MsPacman", r["name"], results) for r in runs}
    (tmp_path / "warm" / "other-run").mkdir(parents=True)  # not a warm-up's: left as it is
    for _ in range(2):  # the second call finds the first one's folder: emptied, so it starts again from the weights
        codes = campaign.warm("MsPacman", quick_dataset, tmp_path / "warm", max_runs=3, results=results,
                              checkpoints=ckpts)
        assert codes == {"warm-dSSM-DET-k1-posterior": 0, "warm-sSSM-k1-prior": 0}
        folder = tmp_path / "warm" / "warm-dSSM-DET-k1-posterior"
        assert read_json(folder / "summary.json")["step"] == campaign.WARM_STEPS  # the later --set steps wins
        assert read_json(folder / "config.json")["init_from"]["path"].endswith("dSSM-DET-s0.safetensors")
    assert {r["name"]: campaign.read_lineage("MsPacman", r["name"], results) for r in runs} == before
    assert (tmp_path / "warm" / "other-run").is_dir()
