"""The compile warm-up's measurement (ssmlib.studies.compile_warmup): what a lease's log says, which call is which,
a lineage lease matched to its call's log, and the committed compile-warmup.json recomputed from results/."""

import gzip
import json

from ssmlib.config import RESULTS_DIR
from ssmlib.studies import compile_warmup as cw
from ssmlib.studies import zoo_campaign as zoo

WARMED = """compile warm-up: exit 0 (137: killed at its deadline, 240 s), waited 98 s after the data; its log's last lines:
started warm-sSSM-k1-prior: train --model sSSM --data /tmp/data/warm-compile --time-limit 120.0
compile warm-up of warm-dSSM-DET-k1-posterior, warm-sSSM-k1-prior in 191 s: exit codes {'a': 0}
collected in 212 s; each run trains 258 s
started dSSM-DET-s2: train --model dSSM-DET --time-limit 258.0
started sSSM-rp-s0: train --model sSSM --time-limit 258.0
stop: dSSM-DET-s2, sSSM-rp-s0 still running 263 s after the start: told their time is up
"""


def test_a_lease_log_gives_the_seconds_given_the_runs_and_the_warm_ups_wait():
    call = cw.parse_log(WARMED)
    assert call == {"collected_s": 212, "given_s": 258, "bare": None, "runs": ["dSSM-DET-s2", "sSSM-rp-s0"], "bounded": True,
                    "warm_up": {"exit": 0, "waited_s": 98, "wall_s": 191,
                                "runs": ["warm-dSSM-DET-k1-posterior", "warm-sSSM-k1-prior"], "left_out": []}}
    assert cw.call_kind(call) == "warm-up"
    plain = cw.parse_log("collected in 151 s; each run trains 319 s\nstarted AR-s0: train --model AR\n")
    assert plain["warm_up"] is None and plain["runs"] == ["AR-s0"] and cw.call_kind(plain) == "cold"
    assert not plain["bounded"]  # the runs' own clock bounded them: compiling was not in their seconds
    assert cw.call_kind(cw.parse_log("collected in 14 s; each run trains 446 s\n")) == "warm"
    assert cw.parse_log("no time left to train\n") is None
    killed = cw.parse_log(  # the line as gpu_campaign.sh writes it since WARM_WAIT: killed, its summary never printed
        "compile warm-up: exit 137 (137: killed at its deadline, 240 s, or WARM_WAIT=0 s after the data), waited 0 s "
        "after the data; its log's last lines:\ncollected in 120 s; each run trains 300 s\n")
    assert killed["warm_up"] == {"exit": 137, "waited_s": 0, "wall_s": None, "runs": [], "left_out": []}
    assert cw.call_kind(killed) == "warm-up cut"
    # a model the warm-up left out (WARM_SKIP): its runs compiled cold on that call, the others read the warm-up
    skipping = cw.parse_log("compile warm-up leaves out: sSSM\ncompile warm-up: exit 0 (137: ...), waited 0 s after "
                            "the data; its log's last lines:\ncollected in 120 s; each run trains 300 s\n")
    assert skipping["warm_up"]["left_out"] == ["sSSM"]
    assert (cw.call_kind(skipping, "sSSM"), cw.call_kind(skipping, "dSSM-DET")) == ("cold", "warm-up")
    # since the data's workers a bare machine's collection may be short: its log says what it was
    quick_bare = cw.parse_log("bare machine (no compile cache): yes\ncollected in 45 s; each run trains 400 s\n")
    assert quick_bare["bare"] is True and cw.call_kind(quick_bare) == "cold"
    assert cw.call_kind(cw.parse_log("bare machine (no compile cache): no\ncollected in 70 s; each run trains 4 s\n")) \
        == "warm"
    assert cw.log_time("2026-12-05-0217-h200.log.gz") == cw.log_time("2026-12-05-0216-h200.log") + 60
    assert cw.log_time("README.md") is None


def _campaign(results, leases: dict[str, list[dict]]) -> None:
    zoo.init(zoo.CampaignConfig(game="MsPacman", profile="quick",
                                runs=[{"name": n, "model": n.split("-")[0] if n.startswith("sSSM") else n[:-3], "seed": 0,
                                      "jump": 1} for n in leases]),
             results=results)
    for run, les in leases.items():
        d = zoo.campaign_dir("MsPacman", results) / run
        d.mkdir(parents=True)
        (d / "lineage.json").write_text(json.dumps({"leases": les, "curve": [], "finished": False}))


def test_each_run_is_matched_to_its_calls_log_and_a_folded_lease_is_left_out(tmp_path):
    _campaign(tmp_path, {
        "dSSM-DET-s2": [{"time": "2026-12-05T02:16:50+0000", "train_wall_s": 235.7, "compile": True},
                        {"time": "2026-12-05T03:30:00+0000", "train_wall_s": 500.0, "compile": True},
                        {"time": "2026-12-05T04:00:00+0000", "train_wall_s": 290.0, "compile": True}],
        "sSSM-rp-s0": [{"time": "2026-12-05T02:07:30+0000", "train_wall_s": 280.0, "compile": True},  # the call before
                       {"time": "2026-12-05T02:16:54+0000", "train_wall_s": 231.8, "compile": True}]})
    logs = zoo.campaign_dir("MsPacman", tmp_path) / "logs"
    logs.mkdir()
    stop = "stop: x still running 305 s after the start: told their time is up\n"
    (logs / "2026-12-05-0208-h200.log").write_text(  # 9 minutes before: its lease is not the next call's
        "collected in 10 s; each run trains 300 s\nstarted sSSM-rp-s0: train --model sSSM\n" + stop)
    (logs / "2026-12-05-0217-h200.log.gz").write_bytes(gzip.compress(WARMED.encode()))
    (logs / "2026-12-05-0331-h200.log").write_text(  # dSSM-DET-s2's lease of 03:30 trained longer than given
        "collected in 100 s; each run trains 300 s\nstarted dSSM-DET-s2: train --model dSSM-DET\n" + stop)
    (logs / "2026-12-05-0401-h200.log").write_text(  # no lease stop: the runs' own clock, compiling left out
        "collected in 100 s; each run trains 300 s\nstarted dSSM-DET-s2: train --model dSSM-DET\n")
    rows, left_out = cw.scan("MsPacman", tmp_path)
    assert left_out == [{"log": "2026-12-05-0331-h200.log", "kind": "cold", "run": "dSSM-DET-s2", "given_s": 300,
                         "trained_s": 500.0, "first_step_s": None,
                         "why": "more than one call's training: a lineage lease that folded calls together "
                                "(lease_start.sh)"}]
    assert [(r["log"][:15], r["run"], r["kind"], r["overhead_s"], r["wait_s"], r["lost_s"]) for r in rows] == [
        ("2026-12-05-0208", "sSSM-rp-s0", "warm", 20.0, 0, 20.0),
        ("2026-12-05-0217", "dSSM-DET-s2", "warm-up", 22.3, 98, 120.3),
        ("2026-12-05-0217", "sSSM-rp-s0", "warm-up", 26.2, 98, 124.2)]
    assert rows[1]["share"] == round(235.7 / (258 + 98), 3)
    s = cw.summary(rows)
    assert s["warm-up / dSSM-DET"]["runs"] == 1 and s["warm-up / sSSM"]["lost_s"]["median"] == 124.2


def test_the_committed_measurement_is_what_the_code_computes_from_results():
    path = zoo.campaign_dir("MsPacman", RESULTS_DIR) / "compile-warmup.json"
    doc = json.loads(path.read_text())
    assert (doc["rows"], doc["left_out"]) == cw.scan("MsPacman", RESULTS_DIR)
    assert doc["summary"] == cw.summary(doc["rows"]) and doc["provenance"]["git_sha"]
    kinds = {r["kind"] for r in doc["rows"]}
    assert {"cold", "warm", "warm-up"} <= kinds <= {"cold", "warm", "warm-up", "warm-up cut"}
    cut = [r for r in doc["left_out"] if r["log"] == "2026-12-05-0457-h200.log.gz"]  # trained on past its TIME_UP
    assert [(r["run"], r["kind"], r["first_step_s"]) for r in cut] == [("sSSM-rp-s0", "warm-up cut", 69.2)]


def test_a_bare_leases_first_step_is_its_first_test_record_before_any_training_record(tmp_path):
    _campaign(tmp_path, {"sSSM-s0": []})
    d = zoo.campaign_dir("MsPacman", tmp_path) / "sSSM-s0"
    rows = [{"step": 1, "split": "test", "wall_s": 69.23}, {"step": 50, "split": "train", "wall_s": 80.0}]
    (d / "metrics-lease3.jsonl.gz").write_bytes(gzip.compress("\n".join(map(json.dumps, rows)).encode()))
    old = [{"step": 50, "split": "train", "wall_s": 20.0}, {"step": 1000, "split": "test", "wall_s": 143.0}]
    (d / "metrics-lease1.jsonl").write_text("\n".join(map(json.dumps, old)))
    assert cw.first_step_s("MsPacman", "sSSM-s0", {"lease": 3}, tmp_path) == 69.2
    assert cw.first_step_s("MsPacman", "sSSM-s0", {"lease": 3, "resumed_warm": True}, tmp_path) is None  # not its own
    assert cw.first_step_s("MsPacman", "sSSM-s0", {"lease": 1}, tmp_path) is None  # a test after training began
    assert cw.first_step_s("MsPacman", "sSSM-s0", {"lease": 2}, tmp_path) is None  # no metrics kept
