"""The rollout explorer without a browser: its cache, its action modes, samples, GIF export, bad input,
and the ipywidgets front end driven from Python (no kernel needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssmlib.config import ModelConfig
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model
from ssmlib.viz.explorer import RolloutExplorer, explore


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: timings and results as on a 1-thread laptop


def tiny(name: str, seed: int = 0):
    """A small untrained model at the quick dataset's frame size (80x64, MsPacman's 9 actions)."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(model=name, height=80, width=64, num_actions=9, channel_scale=0.25,
                                   z_channels=16, reward_bits=6)).eval()


@pytest.fixture(scope="module")
def models():
    return {name: tiny(name) for name in ("sSSM", "dSSM-DET")}


def make(models, quick_dataset, name="sSSM", **kw):
    return RolloutExplorer(model=models[name], data=quick_dataset, horizon=kw.pop("horizon", 4), **kw)


def test_rollout_is_cached_and_recomputed_only_when_an_input_changes(models, quick_dataset):
    ex = make(models, quick_dataset)
    r = ex.rollout()
    assert ex.computes == 1 and r.imagined.shape == (1, 4, 80, 64, 3) and r.real.shape == (4, 80, 64, 3)
    assert ex.rollout() is r and ex.computes == 1
    # the timeline: a slider move only draws (then reuses) a picture of the cached rollout
    assert ex.update(t=2) is False
    png = ex.png()
    assert png.startswith(b"\x89PNG") and ex.png(2) is png and ex.computes == 1
    # switching to per-step actions starts from the current (recorded) ones: same rollout
    recorded = ex.recorded_actions()
    assert ex.update(action_mode="per step") is False
    assert ex.rollout() is r and ex.step_actions == recorded.tolist()
    # changing one action recomputes, with exactly that action
    new = (int(recorded[1]) + 1) % 9
    assert ex.set_step_action(1, new) is True
    r2 = ex.rollout()
    assert ex.computes == 2 and r2.actions[1] == new and not r2.follows_recording
    assert not np.array_equal(r2.imagined[0, 1:], r.imagined[0, 1:]), "another action, same imagined frames"
    np.testing.assert_array_equal(r2.imagined[0, 0], r.imagined[0, 0])  # step 1 used the same action
    # repeat one action
    other = (int(recorded[0]) + 1) % 9  # an action that is not the recorded one at step 1
    ex.update(action_mode="repeat", repeat_action=other)
    r3 = ex.rollout()
    assert ex.computes == 3 and (r3.actions == other).all()
    # back to recorded: recomputed once, the recorded actions again
    ex.update(action_mode="recorded")
    assert np.array_equal(ex.rollout().actions, recorded) and ex.computes == 4
    # start and episode move the window
    ex.update(start=ex.start + 1)
    assert ex.computes == 4 and ex.rollout() is not None and ex.computes == 5
    assert ex.update(start=10**6) is True and ex.start == ex.max_start()  # clamped to the episode


def test_samples_differ_for_sssm_and_are_identical_for_dssm_det(models, quick_dataset):
    s = make(models, quick_dataset, "sSSM", samples=3)
    rs = s.rollout()
    assert rs.imagined.shape[0] == 3 and not rs.samples_identical()
    assert not np.array_equal(rs.imagined[0], rs.imagined[1])
    # the seed chooses the samples: the same seed gives the same ones, another seed others
    again = make(models, quick_dataset, "sSSM", samples=3).rollout()
    np.testing.assert_array_equal(again.imagined, rs.imagined)
    s.update(seed=1)
    assert not np.array_equal(s.rollout().imagined, rs.imagined)
    d = make(models, quick_dataset, "dSSM-DET", samples=3).rollout()
    assert d.imagined.shape[0] == 3 and d.samples_identical()
    # the spread over samples: zero where the futures agree (dSSM-DET), positive where they differ
    spread = rs.sample_spread()
    assert spread.shape == (4, 80, 64) and spread.max() > 0
    np.testing.assert_allclose(spread[0], (rs.imagined.astype(np.float32) / 255).std(0)[0].mean(-1), atol=1e-6)
    assert d.sample_spread().max() == 0
    from ssmlib.viz.explorer import spread_figure

    fig = spread_figure({"sSSM": rs, "dSSM-DET": d}, steps=(1, 4))
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 4 and titles[2].endswith("spread 0.0000") and not titles[0].endswith("spread 0.0000")


def test_gif_export_writes_a_valid_gif(models, quick_dataset, tmp_path):
    from PIL import Image

    ex = make(models, quick_dataset, samples=2, horizon=5)
    path = ex.export_gif(tmp_path / "sub" / "rollout.gif")
    assert path.exists() and not list(path.parent.glob(".*.tmp"))
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 5
        assert im.size == (ex.frame(0).shape[1], ex.frame(0).shape[0])
    with pytest.raises(SsmlibError, match=r"\.gif"):
        ex.export_gif(tmp_path / "rollout.png")


def test_default_gif_goes_under_the_current_directory(models, quick_dataset, tmp_path, monkeypatch):
    from ssmlib.config import REPO_ROOT

    monkeypatch.chdir(tmp_path)
    ex = make(models, quick_dataset, horizon=2)
    path = ex.export_gif()
    assert path.parent == tmp_path / "ssmlib-explorer" and path.exists()
    assert REPO_ROOT not in path.parents  # never inside the package's checkout


def test_checkpoint_path_loads_and_bad_paths_are_one_line(models, quick_dataset, tmp_path):
    from ssmlib.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "run" / "checkpoint.safetensors", models["dSSM-DET"])
    ex = RolloutExplorer(model=str(tmp_path / "run"), data=quick_dataset, horizon=3)  # a run folder
    assert ex.model.name == "dSSM-DET" and ex.rollout().imagined.shape == (1, 3, 80, 64, 3)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    for bad, match in [(tmp_path / "missing.safetensors", "not found"), (tmp_path / "junk.safetensors", "not a safetensors file"),
                       ("ssm", "unknown model 'ssm'")]:
        with pytest.raises(SsmlibError, match=match) as err:
            RolloutExplorer(model=str(bad), data=quick_dataset)
        assert "\n" not in str(err.value)
    # a failed load keeps the explorer as it was
    with pytest.raises(SsmlibError):
        ex.set_model(str(tmp_path / "missing.safetensors"))
    assert ex.model.name == "dSSM-DET"
    # a model of another frame size than the data: refused, one line
    with pytest.raises(SsmlibError, match="reads 32x24 frames") as err:
        RolloutExplorer(model=build_model(ModelConfig(model="sSSM", height=32, width=24, num_actions=9,
                                                      channel_scale=0.25)), data=quick_dataset)
    assert "\n" not in str(err.value)


def test_bad_settings_are_refused(models, quick_dataset):
    ex = make(models, quick_dataset)
    for kw in ({"samples": 5}, {"episode": 999}, {"action_mode": "random"}, {"repeat_action": 9},
               {"step_actions": [0, 1]}, {"colour": 1}):
        with pytest.raises(SsmlibError):
            ex.update(**kw)


def _find(widget, cls, description=None):
    """Every descendant widget of class ``cls`` (and ``description``)."""
    import ipywidgets as W

    out = []
    if isinstance(widget, cls) and (description is None or getattr(widget, "description", None) == description):
        out.append(widget)
    if isinstance(widget, W.Box):
        for child in widget.children:
            out += _find(child, cls, description)
    return out


def test_widget_front_end(models, quick_dataset):
    """The ipywidgets box, driven from Python: controls change the explorer's state; the timeline and
    the step pictures are linked in the browser and never recompute."""
    import ipywidgets as W

    box = explore(model=models["sSSM"], data=quick_dataset, horizon=4, samples=1)
    ex = box.explorer
    (stack,) = _find(box, W.Stack)
    assert len(stack.children) == 4 and all(bytes(img.value).startswith(b"\x89PNG") for img in stack.children)
    (timeline,) = _find(box, W.SelectionSlider)
    timeline.index = 3
    assert ex.t == 3 and ex.computes == 1
    (samples,) = _find(box, W.IntSlider, "samples")
    before = stack.children[0].value
    samples.value = 2
    assert ex.samples == 2 and ex.computes == 2 and bytes(stack.children[0].value) != bytes(before)
    (mode,) = _find(box, W.ToggleButtons)
    mode.value = "repeat"
    (repeat,) = [d for d in _find(box, W.Dropdown) if d.description == "" and d.layout.display != "none"]
    repeat.value = 2
    assert ex.action_mode == "repeat" and (ex.rollout().actions == 2).all()
    steps = [d for d in _find(box, W.Dropdown) if d.description.startswith("t+")]
    assert [d.value for d in steps] == [2, 2, 2, 2]
    mode.value = "per step"
    n = ex.computes
    steps[0].value = 5
    assert ex.computes == n + 1 and ex.rollout().actions.tolist() == [5, 2, 2, 2]
    (status,) = [h for h in _find(box, W.HTML) if "rollouts computed" in h.value]
    assert "error" not in status.value
    (start,) = _find(box, W.IntSlider, "start frame")
    assert start.max == ex.max_start()
    n = ex.computes
    start.value = 0
    assert ex.start == 0 and ex.computes == n + 1
    # a bad checkpoint path typed into the box: one error line in the status, the explorer unchanged
    (path,) = [t for t in _find(box, W.Text) if "run folder" in t.placeholder]
    (load,) = _find(box, W.Button, "load checkpoint")
    path.value = "/nonexistent/model.safetensors"
    load.click()
    assert "ssmlib: error: checkpoint /nonexistent/model.safetensors not found" in status.value
    assert ex.model is models["sSSM"]
