"""Arguments shared by the commands that build a RunConfig."""

from __future__ import annotations

import argparse
import os

from harness.config import RunConfig, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="a run config file (see configs/)")
    parser.add_argument("--task", help="tldr, dialogue or heldout (`harness ls tasks`)")
    parser.add_argument("--model", help="'embedded' (default), a hub id, or a local model folder")
    parser.add_argument("--data", help="'demo' (default), 'hub', or a path to a local data file")
    parser.add_argument("--backend", help="generation backend: hf (default), vllm, openai")
    parser.add_argument("--out", help="run directory")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override any config field, e.g. --set train.learning_rate=1e-6 (repeatable)")


def config_from_args(args: argparse.Namespace, **extra) -> RunConfig:
    overrides = {"task": args.task, "model.name": args.model, "data.source": args.data,
                 "generation.backend": args.backend, "out": args.out, **extra}
    return load_config(args.config, overrides, args.set)


def limit_threads() -> None:
    """On small CPUs, one intra-op thread per core avoids oversubscription (SPEC section 6)."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
