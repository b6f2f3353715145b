"""The campaigns' outlook: the zoo's pick order, its replay call by call, the I2A lane, and the committed file."""

import json
import math

import pytest

from ssmlib.config import REPO_ROOT
from ssmlib.errors import SsmlibError
from ssmlib.studies import campaign_outlook as outlook
from ssmlib.studies import zoo_campaign as zoo

RUNS = [{"name": "sSSM-s0", "model": "sSSM", "seed": 0, "jump": 1},
        {"name": "dSSM-DET-s0", "model": "dSSM-DET", "seed": 0, "jump": 1},
        {"name": "sSSM-k2-s0", "model": "sSSM", "seed": 0, "jump": 2}]


def _campaign(tmp_path, frames: dict[str, int], finished=()):
    zoo.init(zoo.CampaignConfig(game="MsPacman", runs=RUNS, frame_cap=100), results=tmp_path)
    for name, f in frames.items():
        d = zoo.campaign_dir("MsPacman", tmp_path) / name
        d.mkdir(parents=True)
        (d / "lineage.json").write_text(json.dumps({
            "run": name, "leases": [{"frames_start": 0, "frames_end": f, "compile": True}],
            "curve": [{"frames": f, "excess": 10.0}], "finished": name in finished, "why": ""}))
    return zoo.load_config("MsPacman", tmp_path)


def test_pick_order_puts_first_runs_first_then_fewest_matched_env_steps(tmp_path):
    cfg = _campaign(tmp_path, {"sSSM-s0": 40, "dSSM-DET-s0": 60, "sSSM-k2-s0": 25}, finished=())
    # the k=2 run's 25 frames are 50 env steps: after sSSM-s0's 40, before dSSM-DET's 60
    assert zoo.pick_order(cfg, {"sSSM-s0": 40, "dSSM-DET-s0": 60, "sSSM-k2-s0": 25}) == \
        ["sSSM-s0", "sSSM-k2-s0", "dSSM-DET-s0"]
    assert [r.name for r in zoo.pick_runs(cfg, 2, tmp_path)] == ["sSSM-s0", "sSSM-k2-s0"]
    zoo.amend_pick_order("MsPacman", ["dSSM-DET-s0"], "the I2A campaign waits for it.", results=tmp_path)
    cfg = zoo.load_config("MsPacman", tmp_path)
    assert cfg.first_runs == ["dSSM-DET-s0"]
    assert "pick order: first_runs dSSM-DET-s0 (was none" in cfg.design_changes[-1]
    assert "the I2A campaign waits for it." in cfg.design_changes[-1]
    assert [r.name for r in zoo.pick_runs(cfg, 2, tmp_path)] == ["dSSM-DET-s0", "sSSM-s0"]
    with pytest.raises(SsmlibError, match="already dSSM-DET-s0"):
        zoo.amend_pick_order("MsPacman", ["dSSM-DET-s0"], "again", results=tmp_path)
    with pytest.raises(SsmlibError, match="not runs of the MsPacman campaign: RAR-s9"):
        zoo.amend_pick_order("MsPacman", ["RAR-s9"], "typo", results=tmp_path)


def test_finished_runs_are_not_picked(tmp_path):
    cfg = _campaign(tmp_path, {"sSSM-s0": 40, "dSSM-DET-s0": 60}, finished=("sSSM-s0",))
    assert [r.name for r in zoo.pick_runs(cfg, 3, tmp_path)] == ["sSSM-k2-s0", "dSSM-DET-s0"]  # 0 frames first


def test_replay_by_hand(tmp_path):
    cfg = _campaign(tmp_path, {})
    frames = {"sSSM-s0": 0, "dSSM-DET-s0": 0, "sSSM-k2-s0": 0}
    gain = {"sSSM-s0": 50, "dSSM-DET-s0": 50, "sSSM-k2-s0": 50}
    # one run a call, fewest env steps first (ties in the config's order), cap 100 training frames:
    # 1 s0 50 | 2 DET 50 | 3 k2 50 (100 env steps) | 4 s0 100 done | 5 DET done | 6 k2 done
    assert outlook.replay_zoo(cfg, frames, gain, 1, []) == {"sSSM-s0": 4, "dSSM-DET-s0": 5, "sSSM-k2-s0": 6}
    # DET first: 1, 2 DET done | 3 s0 50 | 4 k2 50 | 5 s0 done | 6 k2 done
    assert outlook.replay_zoo(cfg, frames, gain, 1, ["dSSM-DET-s0"]) == {"dSSM-DET-s0": 2, "sSSM-s0": 5,
                                                                         "sSSM-k2-s0": 6}
    assert outlook.replay_zoo(cfg, frames, gain, 2, [], frame_cap=50) == {"sSSM-s0": 1, "dSSM-DET-s0": 1,
                                                                          "sSSM-k2-s0": 2}
    with pytest.raises(SsmlibError, match="positive gain"):
        outlook.replay_zoo(cfg, frames, {**gain, "sSSM-s0": 0}, 1, [])


def _run(name, left, cost=1.0, gate=0, open_=False):
    return {"name": name, "left": left, "cost": cost, "gate": gate, "open": open_}


def test_i2a_lane_by_hand():
    mf = lambda call: 100  # noqa: E731  model-free agent steps a call
    runs = [_run("a-s0", 200), _run("b-s0", 300), _run("a-s1", 200)]
    assert outlook.i2a_lane(runs, max_open=1, runs_per_call=2, model_free_steps=mf) == 7  # one open: 2 + 3 + 2
    assert outlook.i2a_lane(runs, max_open=2, runs_per_call=2, model_free_steps=mf) == 4  # a-s0,b-s0 | .. | a-s1 at 3
    # a's gate opens after call 5: b-s0 in calls 1-3, nothing in 4-5, a-s0 in 6-7, a-s1 in 8-9
    gated = [_run("a-s0", 200, gate=5), _run("b-s0", 300), _run("a-s1", 200, gate=5)]
    assert outlook.i2a_lane(gated, 1, 1, mf) == 9
    # a run twice model-free's cost takes twice the calls; an open run continues before a new one starts
    assert outlook.i2a_lane([_run("a-s0", 200, cost=2.0), _run("b-s0", 100, open_=True)], 1, 1, mf) == 1 + 4
    # a run at its budget still to be evaluated takes one call; the pace may change with the call
    assert outlook.i2a_lane([_run("a-s0", 0, open_=True)], 1, 1, mf) == 1
    assert outlook.i2a_lane([_run("a-s0", 1000)], 1, 1, lambda call: 100 if call <= 2 else 800) == 3
    with pytest.raises(SsmlibError, match="room for one open run"):
        outlook.i2a_lane(runs, max_open=0, runs_per_call=1, model_free_steps=mf)


def test_several_first_runs_go_fewest_frames_first_among_them(tmp_path):
    cfg = _campaign(tmp_path, {})
    zoo.amend_pick_order("MsPacman", ["sSSM-k2-s0", "dSSM-DET-s0"], "both first.", results=tmp_path)
    cfg = zoo.load_config("MsPacman", tmp_path)
    # k2's 30 frames are 60 env steps: after DET's 50, though it is named first; sSSM-s0 (10) after both
    assert zoo.pick_order(cfg, {"sSSM-s0": 10, "dSSM-DET-s0": 50, "sSSM-k2-s0": 30}) == \
        ["dSSM-DET-s0", "sSSM-k2-s0", "sSSM-s0"]


def _copy_campaigns(tmp_path):
    import shutil

    from ssmlib.config import RESULTS_DIR

    for sub in ("model_zoo/MsPacman/campaign", "i2a/MsPacman/campaign"):
        shutil.copytree(RESULTS_DIR / sub, tmp_path / sub, ignore=shutil.ignore_patterns("logs", "branches"))
    return tmp_path


def test_a_frozen_model_opens_its_arms_now_and_keeps_their_work(tmp_path):
    results = _copy_campaigns(tmp_path)
    before = outlook.outlook("MsPacman", results)
    path = results / "i2a/MsPacman/campaign/config.json"
    doc = json.loads(path.read_text())
    doc["env_models"] = {"dSSM-DET": {"run": "dSSM-DET-s2", "path": "x", "sha256": "0"}}  # frozen
    path.write_text(json.dumps(doc))
    after = outlook.outlook("MsPacman", results)
    assert set(after["i2a"]["arms"]) == set(before["i2a"]["arms"])  # its arms' work is still counted
    assert after["i2a"]["arms"]["copy-distill"]["frozen"] and not after["i2a"]["arms"]["i2a-distill-sSSM"]["frozen"]
    assert set(after["gates"]) == {"sSSM"}
    for order in ("fewest-frames", "gates-first"):  # dSSM-DET's runs may start now: never later than before
        assert 0 < after["orders"][order]["i2a_gated_done_call"] <= before["orders"][order]["i2a_gated_done_call"]
    with pytest.raises(SsmlibError, match="holds no gated I2A run"):
        # a gated run's state: 7.2 MiB coded times the largest stored ratio (the leases' xz: 0.56-0.59 so far)
        outlook.outlook("MsPacman", results, state_budget_mib=1, checkpoints=tmp_path / "no-state")


def test_a_started_run_counts_only_its_steps_left(tmp_path):
    results = _copy_campaigns(tmp_path)
    d = results / "i2a/MsPacman/campaign/copy-distill-s0"
    d.mkdir()
    (d / "lineage.json").write_text(json.dumps({"run": "copy-distill-s0", "steps": 1_500_000, "finished": False,
                                                "leases": [{"lease": 1}]}))
    run = next(r for r in outlook.i2a_needs("MsPacman", results)["arms"]["copy-distill"]["runs"]
               if r["name"] == "copy-distill-s0")
    assert run == {"name": "copy-distill-s0", "left": 500_000, "open": True}


def test_the_committed_outlook_is_what_the_code_computes_from_results():
    path = zoo.campaign_dir("MsPacman") / "outlook.json"
    stored = json.loads(path.read_text())
    now = outlook.outlook("MsPacman")
    for key in ("orders", "runs", "gates", "lease_frames", "current_first_runs", "i2a"):
        assert json.loads(json.dumps(now[key])) == stored[key], f"{key}: python -m ssmlib outlook"
    assert json.loads(json.dumps(outlook.alternatives(now))) == stored["alternatives"]
    for order in stored["orders"].values():  # the replay's own consistency
        assert order["both_done_call"] == max(order["zoo_at_cap_call"], order["i2a_gated_done_call"])
        assert order["zoo_at_cap_call"] == max(order["run_at_cap_call"].values())
    fewest, first = stored["orders"]["fewest-frames"], stored["orders"]["gates-first"]
    assert all(first["gates_open_call"][m] <= fewest["gates_open_call"][m] for m in fewest["gates_open_call"])
    # the order moves work, it does not add any: every open run reaches the cap in both, and neither order can
    # finish before its run-leases fit into calls of zoo_runs_per_call (they may differ by how the last calls pack)
    open_runs = [r for r in stored["runs"] if not r["finished"]]
    leases = sum(math.ceil((stored["frame_cap"] - r["frames"]) / r["frames_per_lease"]) for r in open_runs)
    for order in (fewest, first):
        assert set(order["run_at_cap_call"]) == {r["run"] for r in open_runs}
        assert order["zoo_at_cap_call"] >= math.ceil(leases / stored["zoo_runs_per_call"])
    assert stored["current_first_runs"] == first["first_runs"]  # the campaign trains in the order amended to


def test_the_readme_block_is_the_committed_outlook(tmp_path):
    stored = json.loads((zoo.campaign_dir("MsPacman") / "outlook.json").read_text())
    readme = (REPO_ROOT / "README.md").read_text()
    start, end = outlook.README_MARKERS
    assert readme.split(start, 1)[1].split(end, 1)[0] == "\n" + outlook.markdown(stored) + "\n", \
        "python -m ssmlib outlook rewrites it"
    for order in ("fewest-frames", "gates-first"):
        r = stored["orders"][order]
        assert f"{r['both_done_call']} calls ({r['both_done_sessions']} sessions)" in readme, order
    copy = tmp_path / "README.md"  # the block is replaced, the rest kept
    copy.write_text(f"before\n{start}\nold\n{end}\nafter\n")
    from ssmlib.studies.common import rewrite_block

    assert rewrite_block(copy, outlook.README_MARKERS, "new\n")
    assert copy.read_text() == f"before\n{start}\nnew\n{end}\nafter\n"
    assert not rewrite_block(tmp_path / "README.md", ("<!-- x -->", "<!-- /x -->"), "y")


def test_the_model_free_pace_is_a_rate_times_a_full_calls_seconds_so_a_short_call_does_not_lower_it():
    beside = [{"steps": 360_000, "seconds": 200.0}, {"steps": 720_000, "seconds": 380.0},
              {"steps": 400_000, "seconds": 210.0}]
    short_alone = [{"steps": 160_000, "seconds": 60.0}] * 3  # a short call: a faster rate, fewer steps
    pace = outlook.model_free_pace({"beside": beside, "alone": short_alone})
    assert pace["seconds_per_call"] == 210.0 and pace["leases"] == {"beside": 3, "alone": 3}
    assert pace["steps_per_s"]["beside"] == pytest.approx(720_000 / 380)  # the median rate
    assert pace["steps_per_call"]["alone"] == pytest.approx(160_000 / 60 * 210)  # above beside's, as its rate is
    assert pace["steps_per_call"]["alone"] > pace["steps_per_call"]["beside"]
    assert outlook.model_free_pace({"beside": beside, "alone": []})["steps_per_call"]["alone"] is None
    with pytest.raises(SsmlibError, match="beside the zoo"):
        outlook.model_free_pace({"beside": [], "alone": short_alone})


def test_a_calls_frames_are_the_models_rate_times_the_median_calls_seconds_so_a_folded_lease_counts_once(tmp_path):
    _campaign(tmp_path, {})
    leases = {"dSSM-DET-s0": [(0, 2000, 100.0), (2000, 5000, 150.0)],  # 20 and 20 frames a second
              "sSSM-s0": [(0, 1000, 100.0), (1000, 3000, 200.0), (3000, 3100, 10.0)],  # 10, 10, 10
              "sSSM-k2-s0": [(0, 6000, 300.0)]}  # one lease that folded two calls: 20 a second, 300 s
    for name, les in leases.items():
        d = zoo.campaign_dir("MsPacman", tmp_path) / name
        d.mkdir(parents=True)
        (d / "lineage.json").write_text(json.dumps({"run": name, "curve": [], "finished": False, "why": "", "leases": [
            {"frames_start": a, "frames_end": b, "train_wall_s": s, "compile": True} for a, b, s in les]}))
    got = outlook.lease_frames("MsPacman", tmp_path)
    seconds = 125.0  # the median of 10, 100, 100, 150, 200, 300
    assert got["dSSM-DET"] == {"frames": 20 * seconds, "frames_per_s": 20.0, "seconds": seconds, "leases": 2}
    assert got["sSSM"]["frames"] == 10 * seconds and got["sSSM"]["leases"] == 3
    assert got["sSSM k=2"]["frames"] == 20 * seconds  # not its one lease's 6000


def test_a_later_rounds_lease_is_not_a_calls_pace(tmp_path):
    """A lease's later round trains only what its first round left: model_free_leases counts first rounds only."""
    results = _copy_campaigns(tmp_path)
    # an open model-free run (a short lease past a finished run's budget is not counted for another reason)
    path = min((p for p in (results / "i2a/MsPacman/campaign").glob("model-free-s*/lineage.json")
                if not json.loads(p.read_text())["finished"]), key=lambda p: json.loads(p.read_text())["steps"])
    lin = json.loads(path.read_text())
    before = outlook.model_free_leases("MsPacman", results)
    short = {**lin["leases"][-1], "steps_start": lin["steps"], "steps_end": lin["steps"] + 50_000, "train_wall_s": 20.0}
    for lease_round, counted in ((2, 0), (1, 1)):
        path.write_text(json.dumps({**lin, "leases": lin["leases"] + [{**short, "lease_round": lease_round}]}))
        after = outlook.model_free_leases("MsPacman", results)
        assert sum(map(len, after.values())) == sum(map(len, before.values())) + counted
