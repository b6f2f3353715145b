"""The play widget's engine without a browser: the real side restored from the demo episode reproduces it
frame for frame, the model side equals ``imagine`` on the same actions, re-sync, resample, model
switches, keys and buttons, and the ipywidgets front end driven from Python."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ssmlib.config import ModelConfig
from ssmlib.data.ale import action_meanings, preprocess
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model
from ssmlib.viz.play import (KEY_ACTIONS, KEYBOARD_JS, PlaySession, key_action, play_widget, record_demo,
                             reward_value)

START = 60


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: timings and results as on a 1-thread laptop


def tiny(name: str, jump: int = 1, seed: int = 0, num_actions: int = 9):
    """A small untrained model at 80x64 (MsPacman's 9 actions)."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(model=name, height=80, width=64, num_actions=num_actions, channel_scale=0.25,
                                   z_channels=16, reward_bits=6, jump=jump)).eval()


@pytest.fixture(scope="module")
def demo():
    return record_demo("MsPacman", seed=7, steps=150)


@pytest.fixture(scope="module")
def models():
    return {"sSSM": tiny("sSSM"), "dSSM-DET": tiny("dSSM-DET"), "RAR": tiny("RAR"), "jumpy": tiny("dSSM-DET", jump=2)}


def test_keys_and_buttons_map_to_the_games_action_set():
    names = action_meanings("MsPacman")
    assert names == ["NOOP", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT"]
    assert key_action("ArrowUp", names) == 1 and key_action("ArrowRight", names) == 2
    assert key_action("ArrowLeft", names) == 3 and key_action("ArrowDown", names) == 4
    assert [key_action(k, names) for k in "qezc"] == [6, 5, 8, 7]
    assert key_action(" ", names) == 0  # no FIRE in Ms. Pac-Man: space is the no-op
    assert key_action(" ", ["NOOP", "FIRE", "UP"]) == 1
    assert key_action("x", names) is None and key_action("ArrowUp", ["NOOP", "FIRE"]) is None
    # every key presses an action of Ms. Pac-Man's set, and the browser's key table is this one
    assert all(key_action(k, names) is not None for k in KEY_ACTIONS)
    table = json.loads(KEYBOARD_JS[KEYBOARD_JS.index("var KEYS = ") + 11: KEYBOARD_JS.index(";\n  window.add")])
    assert table == {k: list(v) for k, v in KEY_ACTIONS.items()}


def test_the_demo_episode_is_reproducible_and_restoring_replays_it_frame_for_frame(demo, models):
    assert demo.sticky_actions == 0.25 and demo.length == 151 and len(demo.states) == demo.length
    again = record_demo("MsPacman", seed=7, steps=150, cache=False)  # played anew: the same episode
    assert np.array_equal(again.actions, demo.actions) and all(np.array_equal(a, b) for a, b in zip(again.screens, demo.screens))
    s = PlaySession(model=models["dSSM-DET"], demo=demo, start=START)
    # drive the emulator away from the recording first, then restart: the restore must undo it
    s.play([(int(a) + 4) % 9 for a in demo.actions[START:START + 20]])
    assert not all(np.array_equal(x, y) for x, y in zip(s.real_screens[START + 1:], demo.screens[START + 1:START + 21]))
    s.reset(START)
    assert len(s.real_screens) == START + 1 and not s.steps
    steps = s.play(demo.actions[START:])
    assert len(steps) == demo.length - 1 - START
    for i, step in enumerate(steps):  # sticky actions included: the emulator's RNG was restored too
        np.testing.assert_array_equal(s.real_screens[START + 1 + i], demo.screens[START + 1 + i])
        np.testing.assert_array_equal(step.real, preprocess(demo.screens[START + 1 + i], 80, 64))
        assert step.real_reward == demo.rewards[START + i]
    assert s.real_score == float(demo.rewards[START:].sum())
    # the context the model got: the preprocessed demo frames before the start
    np.testing.assert_array_equal(PlaySession(model=models["dSSM-DET"], demo=demo, start=START).context_frames(),
                                  preprocess(np.stack(demo.screens[START - 2:START + 1]), 80, 64))
    s.close()


def _imagine(model, context: np.ndarray, actions, seed: int, jump: int = 1):
    ctx = torch.from_numpy(context).permute(0, 3, 1, 2).float().div(255)[None]
    acts = torch.tensor([actions])
    if jump > 1:
        acts = acts[..., None].repeat(1, 1, jump)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model.imagine(model.initial_state(ctx), acts, decode=True, sample=True)


@pytest.mark.parametrize("name", ["sSSM", "dSSM-DET", "RAR", "jumpy"])
def test_the_model_side_equals_imagine_on_the_same_actions(demo, models, name):
    model, jump = models[name], models[name].cfg.jump
    s = PlaySession(model=model, demo=demo, start=START, seed=3)
    context = s.context_frames()
    actions = [3, 3, 1, 1, 2, 2, 4, 0]
    logits = []
    for a in actions:
        step = s.press(a)
        logits.append(s.last_frame_logits[0])
        assert step.jump == jump
    roll = _imagine(model, context, actions, seed=3, jump=jump)
    torch.testing.assert_close(torch.stack(logits), roll.frame_logits[0], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose([st.predicted_reward for st in s.steps], reward_value(model, roll.reward_logits[0]),
                               rtol=1e-5, atol=1e-6)
    mean = (torch.sigmoid(roll.frame_logits[0]).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert max(np.abs(st.imagined.astype(int) - m).max() for st, m in zip(s.steps, mean)) <= 1
    assert s.env_steps() == jump * len(actions)
    # the comparison can fail: other actions (and, for the sSSM, another seed) give other logits
    other = _imagine(model, context, [(a + 1) % 9 for a in actions], seed=3, jump=jump)
    assert (torch.stack(logits) - other.frame_logits[0]).abs().max() > 1e-3
    if model.stochastic:
        reseeded = _imagine(model, context, actions, seed=4, jump=jump)
        assert (torch.stack(logits) - reseeded.frame_logits[0]).abs().max() > 1e-3
    s.close()


def test_resync_resample_and_switching_models(demo, models):
    s = PlaySession(model=models["sSSM"], demo=demo, start=START, seed=1)
    s.play([3] * 5)
    before = [st.imagined.copy() for st in s.steps]
    real_before = [st.real.copy() for st in s.steps]
    s.resample()  # same actions, another seed: other imagined frames, the same real ones
    assert s.segments[-1].seed == 2 and [st.action for st in s.steps] == [3] * 5
    assert any(not np.array_equal(a, st.imagined) for a, st in zip(before, s.steps))
    assert all(np.array_equal(a, st.real) for a, st in zip(real_before, s.steps))
    # re-sync: the model restarts from the last 3 real frames; the next press equals imagine from there
    s.resync()
    assert len(s.segments) == 2 and s.segments[-1].first == 5
    context = s.context_frames()
    np.testing.assert_array_equal(context, preprocess(np.stack(s.real_screens[-3:]), 80, 64))
    s.press(1)
    roll = _imagine(models["sSSM"], context, [1], seed=2)
    torch.testing.assert_close(s.last_frame_logits[0], roll.frame_logits[0, 0], atol=1e-4, rtol=1e-4)
    assert s.steps[-1].segment == 1
    # a deterministic model's resample changes nothing
    d = PlaySession(model=models["dSSM-DET"], demo=demo, start=START)
    d.play([2, 2, 2])
    kept = [st.imagined.copy() for st in d.steps]
    d.resample()
    assert all(np.array_equal(a, st.imagined) for a, st in zip(kept, d.steps))
    # switch to a jumpy model mid-play: it starts from the real frames 2 apart and advances 2 steps a press
    n_env = s.env_steps()
    s.set_model(models["jumpy"])
    assert len(s.segments) == 3 and s.model_label == "dSSM-DET k=2"
    np.testing.assert_array_equal(s.context_frames(), preprocess(np.stack(s.real_screens[-5::2]), 80, 64))
    s.press(4)
    assert s.env_steps() == n_env + 2 and s.steps[-1].jump == 2 and len(s.steps) == 7
    # a model of another action set is refused, and the session keeps its model
    with pytest.raises(SsmlibError, match="takes 4 actions, MsPacman has 9"):
        s.set_model(tiny("dSSM-DET", num_actions=4))
    assert s.model is models["jumpy"]
    with pytest.raises(SsmlibError, match="no action 'FIRE'"):
        s.press("FIRE")
    with pytest.raises(SsmlibError, match="action must be 0..8"):
        s.press(9)
    s.close(), d.close()


def test_pictures_and_gif(demo, models, tmp_path):
    from PIL import Image

    s = PlaySession(model=models["RAR"], demo=demo, start=START)
    assert s.picture().shape[2] == 3  # before any press: the last context frame
    s.play([3, 3, 1])
    s.set_model(models["jumpy"])
    s.play([1, 1])
    pics = s.pictures()
    assert len(pics) == 5 and len({p.shape for p in pics}) == 1
    path = s.export_gif(tmp_path / "play.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (pics[0].shape[1], pics[0].shape[0])
    with pytest.raises(SsmlibError, match="must end in .gif"):
        s.export_gif(tmp_path / "play.png")
    s.close()


def _find(widget, cls, description=None):
    out = []
    stack = [widget]
    while stack:
        w = stack.pop()
        if isinstance(w, cls) and (description is None or getattr(w, "description", None) == description):
            out.append(w)
        stack.extend(getattr(w, "children", ()))
    return out


def test_widget_builds_headless_and_its_buttons_drive_the_session(demo, models):
    import ipywidgets as W

    s = PlaySession(model=models["dSSM-DET"], demo=demo, start=START)
    box = play_widget(session=s, models=[], extra_models={"dSSM-DET": models["dSSM-DET"], "sSSM": models["sSSM"],
                                                          "dSSM-DET k=2": models["jumpy"]})
    assert box.session is s and "ssm-play" in box._dom_classes
    names = s.action_meanings
    assert sorted(box.buttons) == sorted(names)
    for n, b in box.buttons.items():  # the class the keyboard script looks for
        assert f"ssm-act-{n}" in b._dom_classes
    (picture,) = _find(box, W.Image)
    first = bytes(picture.value)
    assert first.startswith(b"\x89PNG")
    box.buttons["LEFT"].click()
    box.buttons["UP"].click()
    assert [st.action for st in s.steps] == [names.index("LEFT"), names.index("UP")]
    assert bytes(picture.value) != first
    (status,) = [h for h in _find(box, W.HTML) if "presses" in h.value]
    assert "2 presses" in status.value and "error" not in status.value
    (resync,) = _find(box, W.Button, "re-sync")
    resync.click()
    assert len(s.segments) == 2
    (model_w,) = _find(box, W.Dropdown, "model")
    model_w.value = "sSSM"
    assert s.model is models["sSSM"] and not _find(box, W.Button, "resample future")[0].disabled
    model_w.value = "dSSM-DET k=2"
    box.buttons["RIGHT"].click()
    assert s.steps[-1].jump == 2 and s.env_steps() == 4
    (start_w,) = _find(box, W.IntSlider, "start frame")
    start_w.value = START + 10
    assert s.start == START + 10 and not s.steps
    (keys,) = [o for o in _find(box, W.Output) if o.outputs]
    assert keys.outputs[0]["data"]["application/javascript"] == KEYBOARD_JS
    s.close()


def test_bench_play_reports_each_model(tmp_path):
    """The benchmark's structure (its numbers are measured by `python -m ssmlib bench play`, not here)."""
    from ssmlib.viz.play import bench_play

    r = bench_play(models=(("dSSM-DET", 1), ("sSSM", 2)), presses=2, warmup=0)
    assert r["threads"] == 1 and [(x["model"], x["jump"]) for x in r["rows"]] == [("dSSM-DET", 1), ("sSSM", 2)]
    for row in r["rows"]:
        assert row["frame"] == [200, 160] and row["model_ms_median"] > 0 and row["press_ms_median"] >= row["model_ms_median"]
    assert "fresh paper-profile" in r["rows"][1]["weights"] and r["provenance"]["torch_threads"] == 1
