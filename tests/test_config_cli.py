"""Settings documented where they are defined: every config field has a docstring, and
``python -m ssmlib config`` lists them (generated, never typed twice)."""

import dataclasses

import pytest

from ssmlib.studies.zoo_campaign import CampaignConfig, CampaignRun
from ssmlib.config import AgentConfig, DataConfig, ModelConfig, TrainConfig, describe, field_docs, get_profile
from ssmlib.config_cli import SECTIONS, format_settings, settings
from ssmlib.errors import SsmlibError
from ssmlib.studies.i2a_campaign import Arm, I2ACampaignConfig


@pytest.mark.parametrize("cls", [DataConfig, ModelConfig, TrainConfig, AgentConfig, CampaignConfig, CampaignRun,
                                 I2ACampaignConfig, Arm], ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls):
    docs = field_docs(cls)
    missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert not missing, f"{cls.__name__}: fields without a docstring: {missing}"


def test_field_docs_reads_the_literal_under_each_field():
    @dataclasses.dataclass
    class Toy:
        a: int = 1
        """The first."""
        b: int = 2
        c: str = "x"
        """The third,
        on two lines."""

    assert field_docs(Toy) == {"a": "The first.", "c": "The third, on two lines."}
    assert describe(Toy()) == [("a", 1, "The first."), ("b", 2, ""), ("c", "x", "The third, on two lines.")]


def test_config_lists_the_profile_values():
    table = settings("paper")
    assert tuple(table) == SECTIONS
    train = {name: value for name, value, _ in table["train"]}
    assert train["batch_size"] == get_profile("paper").train.batch_size
    quick = {name: value for name, value, _ in settings("quick", ("model",))["model"]}
    assert quick["height"] == get_profile("quick").model.height
    text = format_settings(settings("quick", ("train",)))
    assert text.startswith("[train]") and "lr_warmup_steps = 0" in text and "Linear warm-up of the learning" in text
    with pytest.raises(SsmlibError, match="unknown section"):
        settings("paper", ("trian",))


def test_set_keys_may_name_their_section():
    from ssmlib.config import parse_sets

    assert parse_sets(["train.lr=1e-3", "horizon=5", "agent.num-envs=4"]) == {"lr": "1e-3", "horizon": "5",
                                                                             "num_envs": "4"}
    with pytest.raises(SsmlibError, match="expected key=value"):
        parse_sets(["train.lr"])
