"""The ``harness`` command line: one sub-command module per job under ``harness/commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.errors import HarnessError

# Each module defines ``register(subparsers)`` which adds its parser and sets ``func``.
COMMAND_MODULES = [
    "harness.commands.run",
    "harness.commands.generate",
    "harness.commands.validate",
    "harness.commands.ls",
    "harness.commands.principles",
    "harness.commands.judge",
    "harness.commands.meta_eval",
    "harness.commands.stats",
    "harness.commands.leaderboard",
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


if __name__ == "__main__":
    sys.exit(main())
