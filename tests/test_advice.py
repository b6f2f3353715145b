"""Every piece of advice an error message gives works when followed.

Each test makes the error happen as a user would, checks it is one ``ssmlib: error:`` line, then does
exactly what the line says -- where it prints a command, that command, parsed from the message -- and
checks the result. Placeholders in printed commands (``N``, ``PATH``) are the only things filled in.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil

import numpy as np
import pytest
import torch

from ssmlib.__main__ import main
from ssmlib.checkpoint import save_checkpoint
from ssmlib.config import get_profile
from ssmlib.data import store
from ssmlib.data.store import episode_in_test, open_dataset
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model

torch.set_num_threads(1)
SMALL = ["--envs", "2", "--steps-per-shard", "50", "--no-progress"]


def run(capsys, *argv) -> tuple[int, list[str]]:
    """``python -m ssmlib argv`` in this process: (exit code, stderr lines other than warnings)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own refusals and --help
        code = e.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, [line for line in err if not line.startswith("ssmlib: warning:")]


def one_line(code, err) -> str:
    assert code == 2 and len(err) == 1 and err[0].startswith("ssmlib: error:"), err
    return err[0]


def command_in(message: str, **fill) -> list[str]:
    """The ``python -m ssmlib ...`` command a message prints, as argv, placeholders filled in."""
    m = re.search(r"python -m ssmlib (.+?)(?=\s*\(|;|\)|$)", message)
    assert m, f"no command in: {message}"
    return [str(fill.get(tok, tok)) for tok in shlex.split(m.group(1))]


def shard_digests(root) -> list[dict]:
    return [s["files"] for s in json.loads((root / "manifest.json").read_text())["shards"]]


# ----- collect ----------------------------------------------------------------------------------------


def test_existing_output_use_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "d"
    assert run(capsys, "collect", "--out", out, "--steps", 100, *SMALL)[0] == 0
    msg = one_line(*run(capsys, "collect", "--out", out, "--steps", 200, *SMALL))
    assert "use --resume to continue it or --overwrite to replace it" in msg
    assert run(capsys, "collect", "--out", out, "--steps", 200, *SMALL, "--resume")[0] == 0
    assert len(open_dataset(out).manifest["shards"]) == 2  # continued: one more shard
    assert run(capsys, "collect", "--out", out, "--steps", 100, *SMALL, "--overwrite")[0] == 0
    assert len(open_dataset(out).manifest["shards"]) == 1  # replaced


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete the shard folder", "delete a file"])
def test_a_damaged_shard_is_named_with_its_checksum_and_the_printed_command_repairs_it(tmp_path, capsys, damage):
    out = tmp_path / "d"
    assert run(capsys, "collect", "--out", out, "--steps", 300, *SMALL)[0] == 0
    before = shard_digests(out)
    path = out / "shard-00001" / "frames.npy"
    if damage == "flip a byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "delete the shard folder":  # what the old advice said to do
        shutil.rmtree(path.parent)
    else:
        path.unlink()
    with pytest.raises(SsmlibError) as e:
        open_dataset(out)
    msg = str(e.value)
    assert "shard-00001" in msg
    if damage in ("flip a byte", "truncate"):  # the README's promise: the checksum is named
        assert f"the manifest lists {before[1]['frames.npy']}" in msg and re.search(r"sha256 [0-9a-f]{64}", msg)
    code, err = run(capsys, *command_in(msg))
    assert code == 0, err
    assert shard_digests(out) == before  # shard 1 collected again from seed (seed, 1): the same bytes
    assert open_dataset(out).manifest["complete"]


def test_resume_on_a_complete_dataset_verifies_it(tmp_path, capsys):
    # a corrupt shard in a dataset marked complete: --resume no longer exits 0 leaving it corrupt
    out = tmp_path / "d"
    assert run(capsys, "collect", "--out", out, "--steps", 200, *SMALL)[0] == 0
    before = shard_digests(out)
    (out / "shard-00000" / "rewards.npy").write_bytes(b"junk")
    main(["collect", "--out", str(out), "--resume"])
    assert "shard 0 of" in capsys.readouterr().err  # said what it repaired
    assert shard_digests(out) == before and open_dataset(out).manifest["complete"]


def test_an_interrupted_collection_continues_with_the_printed_command(tmp_path, capsys, monkeypatch):
    import ssmlib.data.collect as C

    real = C.collect_shard

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    out = tmp_path / "d"
    monkeypatch.setattr(C, "collect_shard", interrupted)  # Ctrl-C during the first shard
    msg = one_line(*run(capsys, "collect", "--out", out, "--steps", 200, *SMALL))
    assert "interrupted: 0 of 2 shards" in msg
    with pytest.raises(SsmlibError) as e:
        open_dataset(out)
    assert "has no complete shard yet" in str(e.value)
    monkeypatch.setattr(C, "collect_shard", real)
    assert command_in(str(e.value)) == command_in(msg)  # both say the same thing
    code, err = run(capsys, *command_in(msg))
    assert code == 0, err
    assert len(open_dataset(out).manifest["shards"]) == 2


def test_no_dataset_collect_one(tmp_path, capsys):
    from ssmlib.data.store import read_manifest

    with pytest.raises(SsmlibError) as e:
        read_manifest(tmp_path / "none")
    argv = command_in(str(e.value), N=100)
    assert run(capsys, *argv, *SMALL)[0] == 0 and open_dataset(tmp_path / "none").manifest["complete"]


def test_a_corrupt_manifest_collect_again(tmp_path, capsys):
    out = tmp_path / "d"
    assert run(capsys, "collect", "--out", out, "--steps", 100, *SMALL)[0] == 0
    before = shard_digests(out)
    (out / "manifest.json").write_text("{half a manifest")
    with pytest.raises(SsmlibError) as e:
        open_dataset(out)
    assert "and its other settings" in str(e.value)
    assert run(capsys, *command_in(str(e.value), N=100), *SMALL)[0] == 0  # with its other settings
    assert shard_digests(out) == before


def test_steps_are_needed_unless_resuming(tmp_path, capsys):
    msg = one_line(*run(capsys, "collect", "--out", tmp_path / "d", *SMALL))
    assert "collect needs --steps N" in msg
    assert run(capsys, "collect", "--out", tmp_path / "d", *SMALL, "--steps", 100)[0] == 0


def test_other_settings_on_resume_are_named(tmp_path, capsys):
    out = tmp_path / "d"
    assert run(capsys, "collect", "--out", out, "--steps", 100, *SMALL)[0] == 0
    msg = one_line(*run(capsys, "collect", "--out", out, "--steps", 200, *SMALL, "--seed", 5, "--resume"))
    assert "seed: 0 there, 5 here" in msg
    assert run(capsys, "collect", "--out", out, "--steps", 200, *SMALL, "--seed", 0, "--resume")[0] == 0


def test_unknown_game_did_you_mean(tmp_path, capsys):
    msg = one_line(*run(capsys, "collect", "--out", tmp_path / "d", "--steps", 100, *SMALL, "--game", "Bowlng"))
    game = re.search(r"did you mean (\w+)", msg).group(1)  # the closest first
    assert run(capsys, "collect", "--out", tmp_path / "d", "--steps", 100, *SMALL, "--game", game)[0] == 0
    assert open_dataset(tmp_path / "d").game == "Bowling"


def test_out_of_range_and_argparse_refusals(tmp_path, capsys):
    msg = one_line(*run(capsys, "collect", "--out", tmp_path / "d", "--steps", 100, *SMALL, "--envs", 0))
    low = re.search(r"must be at least (\d+)", msg).group(1)
    assert run(capsys, "collect", "--out", tmp_path / "d", "--steps", 100, *SMALL, "--envs", low)[0] == 0
    msg = one_line(*run(capsys, "collect", "--out", tmp_path / "e", "--envs", "two"))
    assert command_in(msg) == ["collect", "--help"]  # "(see: python -m ssmlib collect --help)"
    with pytest.raises(SystemExit) as e:
        main(command_in(msg))
    assert e.value.code == 0 and "--envs ENVS" in capsys.readouterr().out  # collect's usage, flags and all


def test_a_test_split_too_small_is_warned_at_collect_and_the_advice_fixes_it(tmp_path, capsys):
    # a seed whose first shard (episodes 0, 1 of 2 envs) has no test episode but whose second has:
    # then "collect more" (twice the steps, as the warning prints) gives a test split
    seed = next(s for s in range(1000)
                if not any(episode_in_test(s, e, 0.1) for e in (0, 1, 2, 3))
                and all(episode_in_test(s, e, 0.1) for e in (100_000,)))
    out = tmp_path / "d"
    main(["collect", "--out", str(out), "--steps", "200", "--envs", "2", "--steps-per-shard", "100",
          "--seed", str(seed), "--no-progress"])
    warning = [x for x in capsys.readouterr().err.splitlines() if x.startswith("ssmlib: warning:")]
    assert len(warning) == 1 and "no test episode" in warning[0] and "`eval` refuses" in warning[0]
    assert store.split_problem(open_dataset(out), "test", 13) is not None
    main(command_in(warning[0]) + ["--no-progress"])
    assert not [x for x in capsys.readouterr().err.splitlines() if x.startswith("ssmlib: warning:")]
    assert store.split_problem(open_dataset(out), "test", 13) is None


# ----- checkpoints and exports ------------------------------------------------------------------------


def quick_model(name="dSSM-DET", **changes):
    torch.manual_seed(0)
    return build_model(dataclasses.replace(get_profile("quick").model, model=name, **changes)).eval()


def test_checkpoint_did_you_mean_and_export_overwrite(tmp_path, capsys):
    save_checkpoint(tmp_path / "m.safetensors", quick_model())
    msg = one_line(*run(capsys, "export", "--checkpoint", tmp_path / "m", "--out", tmp_path / "e.safetensors"))
    suggested = re.search(r"did you mean (\S+)\?", msg).group(1)
    assert run(capsys, "export", "--checkpoint", suggested, "--out", tmp_path / "e.safetensors")[0] == 0
    msg = one_line(*run(capsys, "export", "--checkpoint", suggested, "--out", tmp_path / "e.safetensors"))
    assert "pass --overwrite to replace it" in msg
    assert run(capsys, "export", "--checkpoint", suggested, "--out", tmp_path / "e.safetensors", "--overwrite")[0] == 0


AGENT = ["--total-steps", 10, "--set", "num_envs=2", "--set", "env_threads=1", "--no-progress"]


def test_agent_run_folder_hints(tmp_path, capsys):
    out = tmp_path / "a"
    assert run(capsys, "agent", "train", "--agent", "model-free", "--out", out, *AGENT)[0] == 0
    msg = one_line(*run(capsys, "agent", "train", "--agent", "model-free", "--out", out, *AGENT))
    assert "pass --resume to continue that run or --overwrite to start it again" in msg
    assert run(capsys, "agent", "train", "--agent", "model-free", "--out", out, *AGENT[:1], 20, *AGENT[2:],
               "--resume")[0] == 0
    assert json.loads((out / "summary.json").read_text())["step"] == 20
    assert run(capsys, "agent", "train", "--agent", "model-free", "--out", out, *AGENT, "--overwrite")[0] == 0
    assert json.loads((out / "summary.json").read_text())["step"] == 10
    # a run folder is exported from its checkpoint; an existing export is refused with advice that works
    assert run(capsys, "agent", "export", "--checkpoint", out, "--out", tmp_path / "x.safetensors")[0] == 0
    msg = one_line(*run(capsys, "agent", "export", "--checkpoint", out, "--out", tmp_path / "x.safetensors"))
    assert "pass --overwrite to replace it" in msg
    assert run(capsys, "agent", "export", "--checkpoint", out, "--out", tmp_path / "x.safetensors",
               "--overwrite")[0] == 0
    # a path that is neither a checkpoint nor a run folder holding one: one line, naming what was looked for
    assert one_line(*run(capsys, "agent", "export", "--checkpoint", tmp_path / "nothing", "--out", tmp_path / "y.safetensors"))


def test_agent_env_model_hints(tmp_path, capsys):
    # quick profile: an I2A needs a model (--env-model PATH)
    msg = one_line(*run(capsys, "agent", "train", "--agent", "i2a", "--out", tmp_path / "q", *AGENT))
    assert "--env-model PATH" in msg
    save_checkpoint(tmp_path / "q.safetensors", quick_model())
    assert run(capsys, "agent", "train", "--agent", "i2a", "--out", tmp_path / "q", *AGENT,
               "--env-model", tmp_path / "q.safetensors")[0] == 0
    # a model of another frame size: the message gives the --set flags that fit it
    save_checkpoint(tmp_path / "big.safetensors", quick_model(height=96, width=72))
    msg = one_line(*run(capsys, "agent", "train", "--agent", "i2a", "--out", tmp_path / "b", *AGENT,
                        "--env-model", tmp_path / "big.safetensors"))
    flags = re.search(r"pass (--set \S+ --set \S+)\)", msg).group(1).split()
    assert run(capsys, "agent", "train", "--agent", "i2a", "--out", tmp_path / "b", *AGENT,
               "--env-model", tmp_path / "big.safetensors", *flags)[0] == 0
    # paper profile, a game without a committed model: pass --env-model PATH
    msg = one_line(*run(capsys, "agent", "train", "--agent", "i2a", "--game", "Pong", "--profile", "paper",
                        "--out", tmp_path / "p", *AGENT))
    assert "pass --env-model PATH" in msg
    from ssmlib.data.ale import action_meanings

    pong = quick_model(height=200, width=160, num_actions=len(action_meanings("Pong")))
    save_checkpoint(tmp_path / "pong.safetensors", pong)
    assert run(capsys, "agent", "train", "--agent", "i2a", "--game", "Pong", "--profile", "paper",
               "--out", tmp_path / "p", *AGENT, "--set", "hidden=32", "--set", "lstm=16",
               "--env-model", tmp_path / "pong.safetensors")[0] == 0


def test_train_run_folder_hints(tmp_path, capsys, quick_dataset):
    out = tmp_path / "r"
    base = ["train", "--model", "dSSM-DET", "--data", quick_dataset, "--out", out, "--steps", 2, "--no-progress"]
    assert run(capsys, *base)[0] == 0
    msg = one_line(*run(capsys, *base))
    assert "pass --resume to continue that run or --overwrite to start it again" in msg
    assert run(capsys, *base[:-3], "--steps", 3, "--no-progress", "--resume")[0] == 0
    assert run(capsys, *base, "--overwrite")[0] == 0


# ----- the environments -------------------------------------------------------------------------------


def test_env_call_reset_and_render_mode_hints(quick_dataset):
    from ssmlib.agents import ImaginedVectorEnv
    from ssmlib.agents.imagined_env import ImaginedEnv

    ds = open_dataset(quick_dataset)
    vec = ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=2)
    with pytest.raises(SsmlibError, match=r"call reset\(\) before step\(\)"):
        vec.step(np.array([0, 0]))
    vec.reset()
    vec.step(np.array([0, 0]))
    env = ImaginedEnv(quick_model("sSSM"), ds, max_steps=2)
    with pytest.raises(SsmlibError, match=r"call reset\(\)"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(SsmlibError, match="needs decode=True"):
        ImaginedEnv(quick_model("sSSM"), ds, decode=False, render_mode="rgb_array")
    assert ImaginedEnv(quick_model("sSSM"), ds, decode=True, render_mode="rgb_array").render() is None
    with pytest.raises(SsmlibError, match=r"choose one of \['rgb_array'\] or None"):
        ImaginedEnv(quick_model("sSSM"), ds, render_mode="human")
    assert ImaginedEnv(quick_model("sSSM"), ds, render_mode=None).render() is None
