"""Sweep variants: 'NAME@key=value' trains NAME with overridden settings, each variant its own row."""

import pytest

from harness.config import RunConfig
from harness.core.errors import ConfigError
from harness.flow.train import base_name, get_trainer, trainer_specs, variant_config


def test_variant_overrides_learning_rate_and_dpo_settings():
    config = RunConfig()
    variant = variant_config(config, "dpo@beta=0.1,loss=ipo,lr=1e-6")
    assert variant.dpo.beta == 0.1 and variant.dpo.loss_type == "ipo" and variant.train.learning_rate == 1e-6
    assert variant.hash() != config.hash() and config.dpo.beta is None  # the original is untouched
    assert variant_config(config, "sami") is config


def test_learning_rate_sweep_adds_variants_of_the_primary_trainer():
    config = RunConfig(trainer="sami", compare_trainers=["sft", "sami"], train={"learning_rate_sweep": [1e-6, 1e-5]})
    assert trainer_specs(config) == ["sami", "sft", "sami@lr=1e-06", "sami@lr=1e-05"]
    assert variant_config(config, "sami@lr=1e-06").train.learning_rate == 1e-6
    assert get_trainer("sami@lr=1e-06") is get_trainer("sami") and base_name("sami@lr=1e-06") == "sami"


@pytest.mark.parametrize("spec", ["sami@rate=1", "sami@lr", "sami@lr=-1", "dpo@loss=hinge"])
def test_malformed_variants_name_the_field(spec):
    with pytest.raises(ConfigError) as error:
        variant_config(RunConfig(), spec)
    assert spec.split("@")[0] in str(error.value)


def test_sweep_learning_rates_stay_exact_floats():
    config = RunConfig(train={"learning_rate_sweep": [1.23456789e-6, 1.23457e-6]})
    labels = trainer_specs(config)[1:]
    assert labels == ["sami@lr=1.23456789e-06", "sami@lr=1.23457e-06"]  # formatting only, never rounded together
    assert [variant_config(config, label).train.learning_rate for label in labels] == [1.23456789e-6, 1.23457e-6]
    assert all(type(variant_config(config, label).train.learning_rate) is float for label in labels)
