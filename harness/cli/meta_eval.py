"""``harness meta-eval``: a judge's agreement with reference verdicts, and its biases.

    harness meta-eval --judge local --limit 100
    harness meta-eval --judge robust --reference ../shared/reference/tldr/oai1b_judged.csv

Re-judges the GPT-4-judged TL;DR pairs of ``oai1b_judged.csv`` (a 1B policy's summary vs the human reference)
with the given judge, in the same positions as the reference (and, unless --same-position-only, also swapped),
and reports raw agreement with and without ties, Cohen's kappa, item-level agreement, position consistency,
first-position preference, tie and parse-failure rates. Writes OUT/verdicts.jsonl and OUT/meta_eval.json.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.core.cache import ContentCache
from harness.cli.judge import add_judge_arguments, judge_overrides
from harness.judging import load_judge


def register(subparsers) -> None:
    parser = subparsers.add_parser("meta-eval", help="measure a judge's agreement with reference verdicts (GPT-4 on TL;DR)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", help="oai1b_judged.csv (default: ../shared/reference/tldr/oai1b_judged.csv "
                        "beside the repository)")
    parser.add_argument("--task", default="tldr", help="task whose evaluation principles the judge sees (default tldr)")
    parser.add_argument("--same-position-only", action="store_true",
                        help="judge each pair only in the reference's position (no position consistency)")
    add_judge_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.cli.common import limit_threads
    from harness.judging.meta_eval import meta_evaluate, render_text

    limit_threads()
    judge = load_judge(args.judge, judge_overrides(args.judge_set))
    result = meta_evaluate(judge, args.reference, args.out, task_name=args.task, limit=args.limit, seed=args.seed,
                           both_orders=not args.same_position_only, cache=ContentCache(),
                           retry_failures=args.retry_failures, progress=not args.no_progress)
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(render_text(result))
    rate = result["judge_diagnostics"]["parse_failure_rate"]
    if rate is not None and rate > args.max_parse_failure_rate:
        print(f"error: judge parse-failure rate {rate:.1%} above --max-parse-failure-rate "
              f"{args.max_parse_failure_rate:g}", file=sys.stderr)
        return 3
    return 0
