"""Trainer variants for sweeps: ``NAME@key=value,key=value`` names a trainer with overridden settings.

``sami@lr=1e-6`` is SAMI at learning rate 1e-6; ``dpo@beta=0.1,loss=ipo`` is DPO with IPO at beta 0.1. Each
variant trains on the same shared generations and becomes its own leaderboard row, so tuned and budget-matched
results can both be reported. ``train.learning_rate_sweep`` adds one variant of the primary trainer per rate.
"""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from harness.config import RunConfig, validation_error
from harness.core.errors import ConfigError

# Short key -> dotted config field it overrides.
KEYS = {"lr": "train.learning_rate", "beta": "dpo.beta", "loss": "dpo.loss_type", "gamma": "dpo.simpo_gamma"}


def base_name(spec: str) -> str:
    return spec.split("@", 1)[0]


def overrides(spec: str) -> dict[str, str]:
    """The dotted-field overrides of a variant name; malformed names raise one clear error."""
    if "@" not in spec:
        return {}
    result = {}
    for part in spec.split("@", 1)[1].split(","):
        key, _, value = part.partition("=")
        if key not in KEYS or not value:
            raise ConfigError("trainer variant", spec, f"expected NAME@key=value with keys {', '.join(KEYS)}")
        result[KEYS[key]] = value
    return result


def variant_config(config: RunConfig, spec: str) -> RunConfig:
    """``config`` with the variant's overrides applied, validated like any config."""
    changes = overrides(spec)
    if not changes:
        return config
    tree = config.model_dump(mode="json")
    for dotted, value in changes.items():
        section, field = dotted.split(".")
        tree[section][field] = yaml.safe_load(value)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise validation_error(f"trainer variant {spec}", exc) from None


def trainer_specs(config: RunConfig) -> list[str]:
    """Every trainer (variant) a run trains: the primary, the compared ones, and the learning-rate sweep."""
    specs = [config.trainer, *config.compare_trainers]
    specs += [f"{config.trainer}@lr={lr:g}" for lr in config.train.learning_rate_sweep]
    return list(dict.fromkeys(specs))
