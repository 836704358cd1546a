"""The ``harness`` command line: one sub-command module per job in ``harness/cli``."""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.core.errors import HarnessError

# Each module defines ``register(subparsers)`` which adds its parser and sets ``func``.
COMMAND_MODULES = [
    "harness.cli.run",
    "harness.cli.generate",
    "harness.cli.validate",
    "harness.cli.ls",
    "harness.cli.principles",
    "harness.cli.judge",
    "harness.cli.meta_eval",
    "harness.cli.stats",
    "harness.cli.leaderboard",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Train language models to follow principles (SAMI and baselines) and evaluate them "
        "with an LLM judge and honest statistics.",
        epilog="Start with: harness run --trainer sami --task tldr   (embedded model, CPU, minutes)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages are kept; run the same command again to resume", file=sys.stderr)
        return 130

