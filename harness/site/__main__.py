"""``python -m harness.site OUT_DIR RUN_DIR...``: write the static leaderboard site and print its index path."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.site import write_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.site", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--title", default="Leaderboards")
    args = parser.parse_args(argv)
    print(write_site(args.out, args.runs, args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
