"""``harness judge``: an LLM judge compares a candidate's responses with a baseline's, item by item.

    harness judge --task tldr --candidate sami/responses.jsonl --baseline base/responses.jsonl
    harness judge --task tldr --candidate iteration-3-....json --baseline base-....json --judge local --limit 40
    harness judge ... --judge robust --judge-set model=gpt-4o-mini --judge-set base_url=http://localhost:8000/v1

Inputs: the harness's responses.jsonl or the SAMI paper's released responses JSON. Items are matched by id and
must share their query; the judge sees the candidate file's principles for each item (shuffled per item).
Writes OUT/verdicts.jsonl (one line per judge call), OUT/manifest.json and OUT/summary.json, then prints the
statistics of the judge's protocol (``harness stats`` reads the same file). Every call is cached under the
judge's content hash: a rerun is free and an interrupted run resumes. Exit 3 when the robust parse-failure
rate is above --max-parse-failure-rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from harness import stats
from harness.core.cache import ContentCache
from harness.core.errors import ConfigError
from harness.core.locks import folder_lock
from harness.judging import DEFAULT_JUDGE, load_judge

PARSE_FAILURE_EXIT = 3


def judge_overrides(items: list[str]) -> dict:
    """``--judge-set field=value`` (value read as YAML) -> {dotted field: value}."""
    overrides = {}
    for text in items:
        if "=" not in text:
            raise ConfigError("--judge-set", text, "expected field=value, e.g. model=gpt-4o-mini")
        key, raw = text.split("=", 1)
        try:
            overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            overrides[key.strip()] = raw
    return overrides


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--judge", default=DEFAULT_JUDGE,
                        help=f"judge name (`harness ls judges`) or path to a judge YAML (default {DEFAULT_JUDGE})")
    parser.add_argument("--judge-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a judge field, e.g. model=gpt-4o-mini, base_url=http://localhost:8000/v1, "
                        "runtime.concurrency=4 (repeatable; changes the judge hash unless it is a runtime field)")
    parser.add_argument("--limit", type=int, help="only the first N items")
    parser.add_argument("--seed", type=int, default=0, help="seed of the A/B orders, principle orders and bootstraps")
    parser.add_argument("--out", help="output folder (default runs/<command>-...)")
    parser.add_argument("--retry-failures", action="store_true", help="ask again where the cached answer was a parse failure")
    parser.add_argument("--max-parse-failure-rate", type=float, default=stats.DEFAULT_MAX_PARSE_FAILURE_RATE,
                        help="robust: exit 3 above this share of failed judge calls (default 0.05)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="summary format")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    parser = subparsers.add_parser("judge", help="judge a candidate's responses against a baseline's (pairwise LLM judge)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="tldr, dialogue or heldout: sets the response noun and the "
                        "fallback evaluation principles")
    parser.add_argument("--candidate", required=True, metavar="RESPONSES", help="candidate responses file")
    parser.add_argument("--baseline", required=True, metavar="RESPONSES", help="baseline responses file")
    parser.add_argument("--principles", metavar="FILE", help="principles file whose checks the verifier judge runs "
                        "(default: the task's own)")
    parser.add_argument("--candidate-name", help="system name in verdicts (default: the file's model or name)")
    parser.add_argument("--baseline-name", help="system name in verdicts (default: the file's model or name)")
    add_judge_arguments(parser)
    parser.set_defaults(func=run)


def check_judge_arguments(args: argparse.Namespace) -> None:
    """Option values argparse cannot check: --limit must be a positive count (0 or -5 is not "all")."""
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit", "limit", f"must be a positive number of items, got {args.limit}")
    if not 0.0 <= args.max_parse_failure_rate <= 1.0:
        raise ConfigError("--max-parse-failure-rate", "rate", f"must be between 0 and 1, got {args.max_parse_failure_rate}")


def output_folder(args: argparse.Namespace, judge) -> Path:
    """The folder ``judge_files`` writes to: --out, else its default name (from the files' hashes), for the lock."""
    from harness.core.hashing import content_hash, file_hash
    from harness.tasks import get_task

    if args.out:
        return Path(args.out)
    task = get_task(args.task)
    hashes = [file_hash(Path(p)) if Path(p).is_file() else str(p) for p in (args.candidate, args.baseline)]
    return Path("runs") / f"judge-{task.name}-{content_hash([*hashes, judge.hash, args.seed, args.limit], 10)}"


def print_summary(summary: dict, fmt: str) -> None:
    from harness.cli.stats import render_text

    if fmt == "json":
        print(json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(render_text(summary))


def run(args: argparse.Namespace) -> int:
    from harness.cli.common import limit_threads
    from harness.judging.files import judge_files

    limit_threads()
    check_judge_arguments(args)
    judge = load_judge(args.judge, judge_overrides(args.judge_set))
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    with folder_lock(output_folder(args, judge)):  # a second judge on the same output exits with the holder's PID
        result = judge_files(args.task, args.candidate, args.baseline, judge, args.out, limit=args.limit,
                             seed=args.seed, cache=ContentCache(), candidate_name=args.candidate_name,
                             baseline_name=args.baseline_name, retry_failures=args.retry_failures,
                             max_parse_failure_rate=args.max_parse_failure_rate, progress=not args.no_progress,
                             principles_file=args.principles, log=log)
    counts = result.manifest["counts"]
    log(f"judge {judge.name} ({judge.hash}): {counts['calls']} calls, {counts['cached']} from the cache, "
        f"{counts['judged']} judged in {counts['seconds']:.1f} s; wrote {result.out / 'verdicts.jsonl'}")
    print_summary(result.summary, args.format)
    if counts["errors"]:
        log(f"warning: {counts['errors']} judge calls failed at the endpoint (recorded as parse failures with an "
            "'error', not cached); run the same command again to retry them")
    if result.summary.get("parse_failure_exceeded"):
        log(f"error: judge parse-failure rate above --max-parse-failure-rate {args.max_parse_failure_rate:g}; fix "
            "the judge prompt or parser (or --retry-failures) before trusting these numbers")
        return PARSE_FAILURE_EXIT
    return 0
