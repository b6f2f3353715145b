"""The open-loop sample-count study: the K-sample estimate against known answers, its monotonicity in K, the
per-window sampling on a real (tiny) sSSM, the paired readings and the order flips they report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ssmlib import evaluate as ev
from ssmlib.config import CONTEXT, ModelConfig
from ssmlib.data.store import open_dataset
from ssmlib.data.windows import WindowSampler
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model
from ssmlib.studies import open_loop_samples as ols
from ssmlib.studies.common import read_json


def _logmeanexp(x, axis=0):
    m = x.max(axis, keepdims=True)
    return (m + np.log(np.exp(x - m).mean(axis, keepdims=True))).squeeze(axis)


def test_estimates_at_one_and_at_k_max_are_the_mean_and_the_logmeanexp():
    rng = np.random.default_rng(0)
    log_p = rng.normal(-100, 30, size=(16, 5, 3))
    est = ols.estimates_by_k(log_p, (1, 4, 16))
    np.testing.assert_allclose(est[1], log_p.mean(0))
    np.testing.assert_allclose(est[16], _logmeanexp(log_p))
    # K = 4: four disjoint groups of consecutive samples, averaged
    groups = [_logmeanexp(log_p[4 * g:4 * g + 4]) for g in range(4)]
    np.testing.assert_allclose(est[4], np.mean(groups, 0))


def test_estimates_never_fall_as_k_doubles():
    """Nested groups: logmeanexp of a union is at least the mean of its halves' (concavity of log)."""
    rng = np.random.default_rng(1)
    log_p = rng.normal(0, 50, size=(64, 200))
    est = ols.estimates_by_k(log_p, ols.KS)
    for k in ols.KS[:-1]:
        assert np.all(est[2 * k] >= est[k] - 1e-9)
    assert np.mean(est[64] - est[1]) > 10  # and with spread samples the gap is large


def test_estimates_approach_the_true_log_likelihood():
    """Samples whose likelihoods u ~ Exp(1) have mean 1, so log p = 0: K = 1 gives E log u = -0.5772
    (Euler's gamma), and the estimate rises towards 0 with K."""
    rng = np.random.default_rng(2)
    log_p = np.log(rng.exponential(1.0, size=(64, 20000)))
    est = {k: v.mean() for k, v in ols.estimates_by_k(log_p, (1, 4, 64)).items()}
    assert est[1] == pytest.approx(-0.5772, abs=0.02)
    assert est[1] < est[4] < est[64] < 0
    assert est[64] > -0.03


@pytest.mark.parametrize("ks", [(3,), (0, 4), (128,)])
def test_a_k_that_does_not_divide_k_max_is_refused_with_advice_that_works(ks):
    with pytest.raises(SsmlibError, match="must divide K_max = 64") as err:
        ols.check_ks(ks, 64)
    advice = str(err.value).split("--ks ")[1]
    assert ols.check_ks(advice.split(","), 64)  # the suggested list is accepted


def _sampler(quick_dataset, jump=1):
    ds = open_dataset(quick_dataset)
    return ds, WindowSampler(ds, split="test", context=CONTEXT, horizon=3, jump=jump, device="cpu", seed=0)


def test_samples_of_a_real_ssm_are_repeatable_and_match_the_evaluator(quick_dataset):
    ds, sampler = _sampler(quick_dataset)
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="sSSM", height=ds.height, width=ds.width, num_actions=ds.num_actions,
                                    channel_scale=0.25, z_channels=16)).eval()
    a = ols.sample_log_likelihoods(model, sampler, k_max=8, max_windows=6, batch_size=4, chunk=4, seed=3)
    b = ols.sample_log_likelihoods(model, sampler, k_max=8, max_windows=6, batch_size=4, chunk=4, seed=3)
    assert a["log_p"].shape == (8, 6, 3) and a["floor"].shape == (6, 3) and len(a["episode"]) == 6
    np.testing.assert_array_equal(a["log_p"], b["log_p"])
    assert np.all(a["log_p"] <= a["floor"][None] + 1e-6)  # no sample beats the exact floor
    assert a["log_p"].std(0).mean() > 0  # the prior samples differ
    assert not np.allclose(a["log_p"][:4], a["log_p"][4:])  # and the second chunk is not the first drawn again
    # one chunk of all 8 samples is the evaluator's own rollout, window for window, from the same seed
    windows = next(iter(sampler.iterate(4, max_windows=6)))
    T = windows["frames"].shape[1] - CONTEXT
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(3)
        s0 = model.initial_state(windows["frames"][:, :CONTEXT])
        direct = ev.sample_log_likelihoods(ev.prior_sample_logits(
            model, s0, windows["actions"][:, CONTEXT - 1:CONTEXT - 1 + T], 8), windows["frames"][:, CONTEXT:], 8)
    one_chunk = ols.sample_log_likelihoods(model, sampler, k_max=8, max_windows=6, batch_size=4, chunk=8, seed=3)
    np.testing.assert_allclose(one_chunk["log_p"][:, :4], direct.double().numpy(), rtol=1e-6)
    # the evaluator's open-loop LL is the same estimator: with the same K its mean lies where the study's does
    res = ev.evaluate(model, sampler, batch_size=4, num_samples=8, max_windows=6, n_boot=0)
    est = ols.estimates_by_k(a["log_p"], (8,))[8]
    per_h = np.asarray(res["per_horizon"]["ll_open_loop_nats"])
    assert np.all(np.abs(per_h - est.mean(0)) < 0.05 * np.abs(per_h))
    rows = ols.excess_rows(a, (1, 2, 8))
    assert set(rows["excess"]) == {"1", "2", "8"} and np.asarray(rows["excess"]["8"]).shape == (6, 3)
    assert np.all(np.asarray(rows["excess"]["8"]) <= np.asarray(rows["excess"]["1"]) + 0.1)


def test_a_deterministic_model_gives_its_exact_likelihood_at_every_k(quick_dataset):
    ds, sampler = _sampler(quick_dataset)
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="dSSM-DET", height=ds.height, width=ds.width, num_actions=ds.num_actions,
                                    channel_scale=0.25)).eval()
    a = ols.sample_log_likelihoods(model, sampler, k_max=4, max_windows=4, batch_size=2, chunk=4)
    est = ols.estimates_by_k(a["log_p"], (1, 2, 4))
    np.testing.assert_allclose(est[1], est[4])
    res = ev.evaluate(model, sampler, batch_size=2, num_samples=1, max_windows=4, n_boot=0)
    np.testing.assert_allclose(est[4].mean(0), res["per_horizon"]["ll_open_loop_nats"], rtol=1e-5)


def _doc(excess_by_run: dict[str, dict[int, np.ndarray]], episodes: np.ndarray) -> dict:
    return {"checkpoints": {name: {"frames": 1_000_000, "windows": {
        "episode": episodes.tolist(), "start": list(range(len(episodes))),
        "excess": {str(k): np.asarray(v).reshape(len(episodes), -1).tolist() for k, v in by_k.items()}}}
        for name, by_k in excess_by_run.items()}}


def test_summary_finds_an_order_that_more_samples_overturn():
    """'late' looks worse than 'early' with one sample (a looser estimate) but is better with 16."""
    rng = np.random.default_rng(4)
    episodes = np.repeat(np.arange(12), 5)
    noise = lambda: rng.normal(0, 3, size=60)  # noqa: E731
    tie = 450 + noise()  # at K = 4 the two agree window by window
    early = {1: 500 + noise(), 4: tie, 16: 420 + noise()}
    late = {1: 560 + noise(), 4: tie, 16: 380 + noise()}
    doc = _doc({"early": early, "late": late}, episodes)
    s = ols.summarise(doc, n_boot=300)
    assert s["ks"] == [1, 4, 16]
    assert s["excess"]["late"][16].point == pytest.approx(380, abs=2)
    assert s["drop"]["late"][1].point == pytest.approx(180, abs=3) and s["drop"]["late"][1].lo > 150
    d = s["difference"][("early", "late")]
    assert ols.sign(d[1]) == "-" and ols.sign(d[4]) == "?" and ols.sign(d[16]) == "+"
    assert ols.ordering_flips(s, 1) == [("early", "late")]
    assert ols.ordering_flips(s, 4) == []  # undecided at K = 4: nothing to overturn
    md = ols.markdown(s, doc)
    assert "| late | 1.00M |" in md and "| early - late |" in md
    assert "a minus b" not in ols.markdown(s, doc, pairs=[])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for c in doc["checkpoints"].values():
        c["model"] = "sSSM"
    doc["checkpoints"]["early"]["frames"] = 500_000  # an earlier point of the same run
    doc["checkpoints"] = {f"run@{n}": c for n, c in doc["checkpoints"].items()}
    s = ols.summarise(doc, n_boot=50)
    fig, ax = plt.subplots()
    ols.plot(ax, s, doc, colour=lambda m: "C0")
    assert [ln.get_linestyle() for ln in ax.get_lines()] == ["--", "-"]  # the earlier point dashed
    plt.close(fig)
    doc["checkpoints"]["run@late"]["jump"] = 4
    asked = []
    fig, ax = plt.subplots()
    ols.plot(ax, s, doc, colour=lambda m: asked.append(m) or "C0")
    assert set(asked) == {"sSSM", "sSSM-k4"}  # a jumpy checkpoint in its own shade
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([s["excess"]["run@late"][k].point for k in (1, 4, 16)])
    plt.close(fig)


def test_checkpoints_on_other_windows_are_not_paired():
    episodes = np.repeat(np.arange(4), 3)
    doc = _doc({"a": {1: np.ones(12), 2: np.ones(12)}, "b": {1: np.ones(12), 2: np.ones(12)}}, episodes)
    doc["checkpoints"]["b"]["windows"]["start"] = list(range(1, 13))
    assert ols.summarise(doc, n_boot=50)["difference"] == {}


def _script():
    import importlib.util

    from ssmlib.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("open_loop_samples_script", REPO_ROOT / "scripts" / "open_loop_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_checkpoint_arguments_keep_an_at_sign_in_the_path():
    parse = _script().parse_checkpoint
    assert parse("a@1M=.carry/a@1M.safetensors@1000000") == ("a@1M", Path(".carry/a@1M.safetensors"), 1000000)
    assert parse("b=x/b@v2.safetensors") == ("b", Path("x/b@v2.safetensors"), None)
    with pytest.raises(SsmlibError, match="NAME=PATH"):
        parse("no-equals-sign")


def test_the_script_writes_resumes_and_refuses_another_configuration(quick_dataset, tmp_path, capsys):
    import dataclasses
    import json

    from ssmlib.checkpoint import save_checkpoint
    from ssmlib.config import get_profile

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "s.safetensors", build_model(dataclasses.replace(
        get_profile("quick").model, model="sSSM", channel_scale=0.25, z_channels=16)))
    script, out = _script(), tmp_path / "out.json"
    args = ["--data", str(quick_dataset), "--checkpoint", f"early={tmp_path / 's.safetensors'}@1000",
            "--k-max", "4", "--ks", "1,2,4", "--windows", "4", "--chunk", "4", "--out", str(out)]
    assert script.main(args) == 0
    assert "| early | 0.00M |" in capsys.readouterr().out  # the table of what this call scored
    doc = json.loads(out.read_text())
    row = doc["checkpoints"]["early"]
    assert row["frames"] == 1000 and row["model"] == "sSSM" and row["jump"] == 1 and np.asarray(row["windows"]["excess"]["4"]).shape == (4, 10)
    assert doc["config"]["data"]["seed"] == 3 and row["provenance"]["git_sha"] and (row["chunk"], row["batch_size"]) == (4, 8)
    # a second call skips what is there (an interrupted study resumes), and has no table to print
    assert script.main(args) == 0
    printed = capsys.readouterr().out
    assert "early: in" in printed and "| early |" not in printed
    assert json.loads(out.read_text())["checkpoints"]["early"] == row
    # another K_max on the same file is refused in one line that names the way out
    assert script.main([*args[:-6], "--k-max", "8", "--ks", "1,2,4", "--windows", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "another configuration" in err and "another --out" in err
    # a source that is neither a file nor <commit>:<path> says what it takes
    assert script.main(["--data", str(quick_dataset), "--checkpoint", f"x={tmp_path / 'missing'}",
                        "--out", str(tmp_path / "o2.json")]) == 2
    assert "<commit>:<path>" in capsys.readouterr().err


def test_jumpy_ratio_matches_env_steps_and_pairs_by_episode():
    """A jump-2 model whose chunk j has excess 10 (j + 1) against a one-step model whose horizon h has excess 5 h:
    at env steps 2 and 4 (of T = 4) the ratio is (10 + 20) / (10 + 20) = 1 at every K; columns off by one would
    give (10 + 20) / (5 + 15) = 1.5."""
    episodes = np.repeat(np.arange(6), 2)
    one = np.tile(5.0 * np.arange(1, 5), (12, 1))
    jumpy = np.tile(np.array([10.0, 20.0, 30.0, 40.0]), (12, 1))
    doc = _doc({"k1": {1: one, 2: one + 3}, "k2": {1: jumpy, 2: jumpy + 3}}, episodes)
    doc["checkpoints"]["k2"]["windows"]["start"] = list(range(100, 112))  # other windows, same episodes
    r = ols.jumpy_ratio(doc, "k2", "k1", jump=2, n_boot=100)
    assert r[1].point == pytest.approx(1.0) and r[2].point == pytest.approx(36 / 36)
    for c in doc["checkpoints"].values():  # a study asked without K = 1
        c["windows"]["excess"].pop("1")
    assert list(ols.jumpy_ratio(doc, "k2", "k1", jump=2, n_boot=50)) == [2]
    doc = _doc({"k1": {1: one, 2: one + 3}, "k2": {1: jumpy, 2: jumpy + 3}}, episodes)
    # an episode only the one-step model has (the jumpy model's windows need longer episodes): the bootstrap
    # resamples the union of episodes, and the point estimate is each model's own mean
    doc["checkpoints"]["k1"]["windows"]["episode"][-2:] = [9, 9]
    doc["checkpoints"]["k1"]["windows"]["excess"]["1"][-2:] = [[50.0] * 4] * 2
    r = ols.jumpy_ratio(doc, "k2", "k1", jump=2, n_boot=200)
    base = (10 * (10 + 20) / 2 + 2 * 50) / 12  # k1's mean over its 12 windows of horizons 2 and 4
    assert r[1].point == pytest.approx(15 / base) and r[1].episodes == 7
    with pytest.raises(SsmlibError, match="no matched step"):
        ols.jumpy_ratio(doc, "k2", "k1", jump=8)


def test_what_the_readme_says_of_the_committed_studies_holds():
    """README.md quotes the campaign-window study (GPU, K up to 256) and the first CPU study (K up to 64): the
    spans of K = 4's and K = 64's overstatement, sSSM-s0's gap at its two points, its rise at K = 4 and at
    K = 256, and claim 3's ratio at both K; the CPU study's K = 4 to K = 64 span and the orders K = 4 decides
    but K = 64 does not (sSSM-s0's two points and dSSM-DET-s0's lead)."""
    import json

    from ssmlib.config import REPO_ROOT, SAMPLING_MODELS

    readme = " ".join((REPO_ROOT / "README.md").read_text().split())

    def span(summary, doc, k):
        drops = [summary["drop"][n][k].point for n in summary["drop"] if doc["checkpoints"][n]["model"] in SAMPLING_MODELS]
        return f"{min(drops):.0f}-{max(drops):.0f}"

    camp = read_json(ols.results_file("MsPacman", "campaign"))
    # the weights as committed on 2026-12-03 (later leases add theirs to the file; the README quotes these)
    first = ["dSSM-VAE-s0@14.75M", "dSSM-VAE-s1@14.78M", "dSSM-VAE-s2@15.07M", "sSSM-k2-s0@9.87M", "sSSM-k4-s0@10.93M",
             "sSSM-rp-s0@15.27M", "sSSM-s0@10.29M", "sSSM-s0@16.93M", "sSSM-s1@14.02M", "sSSM-s2@13.87M"]
    c = ols.summarise(camp, n_boot=2000, names=first, pairs=[("sSSM-s0@10.29M", "sSSM-s0@16.93M")])
    assert set(c["difference"]) == {("sSSM-s0@10.29M", "sSSM-s0@16.93M")}  # only the pair asked for
    assert f"K = 4 lies {span(c, camp, 4)} nats/frame above K = 256" in readme
    assert f"(K = 64 lies {span(c, camp, 64)} above it)" in readme
    assert "every curve still falls at 256" in readme and all(c["drop"][n][128].point > 0 for n in first)
    gaps = [c["drop"][n][4] for n in ("sSSM-s0@10.29M", "sSSM-s0@16.93M")]
    assert f"for sSSM-s0 it is {gaps[0].point:.1f} nats/frame at 10.29M frames and {gaps[1].point:.1f} at 16.93M" in readme
    rise = c["difference"][("sSSM-s0@10.29M", "sSSM-s0@16.93M")]
    assert f"{rise[4]:.1f} at K = 4, is {rise[256]:.1f} at K = 256" in readme
    r = ols.jumpy_ratio(camp, "sSSM-k4-s0@10.93M", "sSSM-s0@16.93M", jump=4)
    assert f"is {r[4]:.2f} at K = 4 and {r[256]:.2f} at K = 256" in readme
    assert all(iv.lo < 1 < iv.hi for iv in (r[4], r[256]))  # "stays undecided": either model may be ahead

    cpu = read_json(ols.results_file("MsPacman"))
    s = ols.summarise(cpu, n_boot=300)
    assert f"K = 4 lies {span(s, cpu, 4)} nats/frame above K = 64" in readme
    flips = {frozenset(p) for p in ols.ordering_flips(s, 4)}
    assert flips == {frozenset({"sSSM-s0@10.29M", "sSSM-s0@16.93M"}), frozenset({"dSSM-DET-s0@11.07M", "sSSM-s0@10.29M"}),
                     frozenset({"dSSM-DET-s0@11.07M", "sSSM-s0@16.93M"})}


def test_the_sampling_models_are_the_ones_that_imagine_stochastically():
    from ssmlib.config import MODEL_NAMES, SAMPLING_MODELS

    stochastic = [n for n in MODEL_NAMES if build_model(ModelConfig(
        model=n, height=16, width=16, num_actions=9, channel_scale=0.25)).stochastic]
    assert sorted(stochastic) == sorted(SAMPLING_MODELS)


def test_plot_training_draws_each_run_scored_twice_at_both_ends_of_k():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def ckpt(frames, low, high):  # two windows of two horizons, excess `low` at K = 4 and `high` at K = 1
        w = {"episode": [0, 1], "start": [3, 3], "excess": {"1": [[high] * 2] * 2, "4": [[low] * 2] * 2}}
        return {"model": "sSSM", "jump": 1, "frames": frames, "windows": w}

    doc = {"config": {"ks": [1, 4]}, "checkpoints": {
        "a@2.00M": ckpt(2_000_000, 30.0, 90.0), "a@1.00M": ckpt(1_000_000, 50.0, 80.0), "b@1.00M": ckpt(1_000_000, 1, 2)}}
    assert ols.runs_of(doc) == {"a": ["a@1.00M", "a@2.00M"], "b": ["b@1.00M"]}  # by run, in order of frames
    fig, ax = plt.subplots()
    assert ols.plot_training(ax, doc, (1, 4), colour=lambda m: "C0", n_boot=20) == ["a"]  # b has one point
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"a, K = 1", "a, K = 4"} and lines["a, K = 1"].get_linestyle() == ":"
    assert list(lines["a, K = 4"].get_xdata()) == [1_000_000, 2_000_000]  # sorted by frames
    assert list(lines["a, K = 4"].get_ydata()) == [50.0, 30.0] and list(lines["a, K = 1"].get_ydata()) == [80.0, 90.0]
    plt.close(fig)
    fig, ax = plt.subplots()
    assert ols.plot_training(ax, {"config": {}, "checkpoints": {"b@1.00M": doc["checkpoints"]["b@1.00M"]}},
                             (1, 4), colour=lambda m: "C0") == []
    assert ax.texts[0].get_text() == "no run scored at two points yet"
    plt.close(fig)
