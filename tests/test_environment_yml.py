"""conda cannot run on these machines, so environment.yml is checked statically against requirements.txt."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"unpinned requirement {line!r}"
            pins[name.lower()] = version
    return pins


def test_environment_yml_mirrors_the_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_section) == _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert "-e ." in pip_section


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert _pins((ROOT / "requirements.txt").read_text().splitlines())["torch"] == "2.13.0"
