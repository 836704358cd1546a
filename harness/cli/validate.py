"""``harness validate``: check a run config (and the names and files it refers to) without running anything."""

from __future__ import annotations

import json
from pathlib import Path

from harness.models.backends import backends
from harness.cli.common import add_config_arguments, config_from_args
from harness.core.errors import ConfigError, HarnessError
from harness.flow.filters import filters
from harness.tasks import get_task


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="check a config without running it",
                                   description="Validate a run config: fields, names (task, trainer, backend, "
                                   "filters) and the principles file. Prints the effective config on success.")
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="YAML run config")
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def check(config, source: str = "command line") -> None:
    """Raise a ConfigError naming ``source`` and the field for the first problem a run would hit before doing
    any work: unknown names (task, trainers, backend, judge, filters), principles, the step schedule."""
    from harness.judging import load_judge
    from harness.flow.judge import with_default_judge
    from harness.flow.train import base_name, trainer_specs, trainers, variant_config

    def named(field: str, lookup) -> object:
        try:
            return lookup()
        except ConfigError:
            raise
        except HarnessError as exc:
            raise ConfigError(source, field, str(exc)) from None

    task = named("task", lambda: get_task(config.task))
    for name in trainer_specs(config):
        named("trainer", lambda: trainers.get(base_name(name)))
        variant_config(config, name)
    named("generation.backend", lambda: backends.get(config.generation.backend))
    named("eval.judge", lambda: load_judge(with_default_judge(config).eval.judge))
    for name in config.filters or task.default_filters:
        named("filters", lambda: filters.get(name))
    from harness.models.loading import check_model_source

    named("model.name", lambda: check_model_source(config.model))
    if config.data.source not in ("demo", "hub"):  # a local file: read it as a run would (exists, parses, not empty)
        named("data.source", lambda: task.read_file(Path(config.data.source)))
    principles = task.principles(config.principles.file)
    if config.principles.file and principles.task != task.name:
        raise ConfigError(config.principles.file, "task",
                          f"this principles file is for task '{principles.task}', not '{task.name}'")
    if principles.sampling.scheme == "diverse" and \
            config.principles.constitutions_per_query > 2 ** principles.sampling.per_constitution:
        raise ConfigError(source, "principles.constitutions_per_query",
                          "exceeds the sign patterns of the principles per constitution")
    for iteration in range(1, config.train.iterations + 1):
        try:
            config.train.steps_at(iteration)
        except ConfigError as exc:  # name the config file, not "config"
            raise ConfigError(source, exc.field, exc.problem) from None


def run(args) -> int:
    if args.config_file and not args.config:
        args.config = args.config_file
    from harness.flow.judge import with_default_judge

    config = config_from_args(args)
    check(config, args.config or "command line")
    config = with_default_judge(config)  # the judge a run would use, so the hash is the run's
    print(json.dumps(config.model_dump(mode="json"), indent=2))
    print(f"ok: config is valid (hash {config.hash()})")
    return 0
