"""The I2A campaign's design (ssmlib.studies.i2a_campaign): written once, from the pilot's spread."""

import json

import pytest

from ssmlib.errors import SsmlibError
from ssmlib.stats import detectable_difference
from ssmlib.studies import i2a_campaign as ic


def pilot(root, per_variant):
    """A pilot I2A study: per variant, per seed, the frozen games' returns."""
    game = root / "i2a" / "MsPacman"
    rows = []
    for variant, seeds in per_variant.items():
        for s, returns in enumerate(seeds):
            run = f"{variant}-s{s}"
            (game / run).mkdir(parents=True)
            (game / run / "eval.json").write_text(json.dumps({"returns": returns, "trained_steps": 100}))
            rows.append({"run": run, "variant": variant})
    (game / "summary.json").write_text(json.dumps({"rows": rows}))
    return root


def test_design_pools_the_pilot_and_is_written_once(tmp_path):
    results = pilot(tmp_path, {"model-free": [[100.0, 300.0], [400.0, 400.0]],  # seed means 200, 400
                               "i2a-distill": [[500.0], [700.0]]})  # 500, 700
    cfg = ic.design("MsPacman", results, seeds=6)
    ps = cfg.power_statement
    sd = (2 * 100.0 ** 2 + 2 * 100.0 ** 2) ** 0.5 / 2 ** 0.5  # each pair of seeds: SS 2 * 100^2, 1 df
    assert ps["df"] == 2 and ps["sd_between_seeds"] == pytest.approx(sd)
    assert ps["detectable_difference"] == pytest.approx(detectable_difference(sd, 6))
    assert ps["seeds_needed"]["100"] > ps["seeds_needed"]["200"] >= 2
    # the arms every claim needs are required; the shared hyper-parameters leave out what varies per run
    required = [a["name"] for a in cfg.arms if a["required"]]
    assert required == ["model-free", "copy-distill", "i2a-distill-dSSM-DET", "i2a-distill-sSSM"]
    assert {5} <= set(next(a for a in cfg.arms if a["env_model"] == "sSSM")["claims"])
    assert not {"agent", "rollout_policy", "env_model", "seed", "total_steps"} & set(cfg.hyper_parameters)
    assert set(cfg.rules) == {"4", "5"} and all(cfg.rules.values())
    names = ic.run_names(cfg, required_only=True)
    assert len(names) == 4 * 6 and names[0] == "model-free-s0" and names[-1] == "i2a-distill-sSSM-s5"
    path = ic.init(cfg, results)
    with pytest.raises(SsmlibError, match="fixed"):
        ic.init(cfg, results)
    back = ic.load_config("MsPacman", results)
    assert back.power_statement == json.loads(path.read_text())["power_statement"]
    assert back.seeds == 6 and back.arms == cfg.arms


def test_design_refuses_a_pilot_without_spread_or_too_few_seeds(tmp_path):
    results = pilot(tmp_path, {"model-free": [[100.0]], "i2a-distill": [[200.0]]})
    with pytest.raises(SsmlibError, match="two seeds"):
        ic.design("MsPacman", results)
    with pytest.raises(SsmlibError):
        ic.design("MsPacman", results, seeds=1)
    with pytest.raises(SsmlibError, match="i2a-campaign init"):
        ic.load_config("MsPacman", tmp_path)


def test_committed_design_matches_the_pilot():
    """The committed design's power statement is what the committed pilot gives today."""
    cfg = ic.load_config("MsPacman")
    now = ic.power_statement(ic.pilot_seed_scores("MsPacman"), cfg.seeds, cfg.alpha, cfg.power)
    assert cfg.power_statement["sd_between_seeds"] == pytest.approx(now["sd_between_seeds"])
    assert cfg.power_statement["detectable_difference"] == pytest.approx(now["detectable_difference"])
    assert cfg.seeds >= 6 and cfg.total_steps >= 2_000_000
