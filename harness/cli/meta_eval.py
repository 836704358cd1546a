"""``harness meta-eval``: a judge's agreement with reference verdicts, and its biases.

    harness meta-eval --judge local --limit 100
    harness meta-eval --judge robust --reference ../shared/reference/tldr/oai1b_judged.csv
    harness meta-eval --judge local --against verifier --task tldr --candidate A.jsonl --baseline B.jsonl

Re-judges the GPT-4-judged TL;DR pairs of ``oai1b_judged.csv`` (a 1B policy's summary vs the human reference)
with the given judge, in the same positions as the reference (and, unless --same-position-only, also swapped),
and reports raw agreement with and without ties, Cohen's kappa, item-level agreement, position consistency,
first-position preference, tie and parse-failure rates. Writes OUT/verdicts.jsonl and OUT/meta_eval.json.

With --against verifier it instead audits the judge against the exact verdicts of the verifier judge on two
response files judged under verifiable principles (accuracy, Cohen's kappa, position consistency, first-position
preference, and a warning when the agreement is an artifact of position bias). Writes OUT/audit.json.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.core.cache import ContentCache
from harness.cli.judge import add_judge_arguments, check_judge_arguments, judge_overrides
from harness.judging import load_judge


def register(subparsers) -> None:
    parser = subparsers.add_parser("meta-eval", help="measure a judge's agreement with reference verdicts (GPT-4 on TL;DR)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", help="oai1b_judged.csv (default: ../shared/reference/tldr/oai1b_judged.csv "
                        "beside the repository)")
    parser.add_argument("--task", default="tldr", help="task whose evaluation principles the judge sees (default tldr)")
    parser.add_argument("--against", choices=("reference", "verifier"), default="reference",
                        help="reference: the GPT-4 verdicts of --reference; verifier: exact checks of verifiable "
                        "principles on --candidate/--baseline")
    parser.add_argument("--candidate", metavar="RESPONSES", help="--against verifier: candidate responses file")
    parser.add_argument("--baseline", metavar="RESPONSES", help="--against verifier: baseline responses file")
    parser.add_argument("--principles", metavar="FILE", help="--against verifier: principles file with checks "
                        "(default: the task's own)")
    parser.add_argument("--same-position-only", action="store_true",
                        help="judge each pair only in the reference's position (no position consistency)")
    add_judge_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.cli.common import limit_threads
    from harness.judging.meta_eval import meta_evaluate, render_text

    limit_threads()
    check_judge_arguments(args)
    judge = load_judge(args.judge, judge_overrides(args.judge_set))
    if args.against == "verifier":
        return run_audit(args, judge)
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


def run_audit(args: argparse.Namespace, judge) -> int:
    from harness.core.errors import HarnessError
    from harness.judging.audit import audit, render_audit

    if not (args.candidate and args.baseline):
        raise HarnessError("--against verifier needs --candidate and --baseline response files")
    out = args.out or f"runs/audit-{judge.name}-vs-verifier"
    result = audit(judge, args.task, args.candidate, args.baseline, out, principles_file=args.principles,
                   seed=args.seed, limit=args.limit, cache=ContentCache(), progress=not args.no_progress,
                   log=lambda message: print(message, file=sys.stderr))
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.format == "json" else render_audit(result))
    return 0
