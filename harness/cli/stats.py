"""``harness stats``: win rates with honest uncertainty from judge verdict files.

    harness stats VERDICTS.jsonl [--protocol robust|sami-paper] [--format text|json] [--seed 0]
    harness stats A.jsonl --compare B.jsonl       paired comparison, A and B vs the same baseline
    harness stats A.jsonl --agreement B.jsonl     agreement of two judges on the same calls
    harness stats --bt V1.jsonl V2.jsonl ...      Bradley-Terry scores over round-robin files

``--format json`` prints one JSON object. For a win rate it has a ``by_pair`` list with one result
per (candidate, baseline) pair in the file; with exactly one pair, that pair's keys are also at
the top level. Exit status 3 (the JSON is still printed) when a robust parse-failure rate is above
``--max-parse-failure-rate``; 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness import stats
from harness.core.errors import HarnessError
from harness.core.hashing import file_hash
from harness.stats.warnings import compute_warnings
from harness.stats.verdicts import Verdict, group_items, load_verdicts, split_by_pair

PARSE_FAILURE_EXIT = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="win rates, CIs, paired tests, Bradley-Terry and judge agreement from verdict files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("verdicts", nargs="+", metavar="VERDICTS.jsonl", help="judge verdict file(s), one call a line")
    parser.add_argument("--protocol", choices=stats.PROTOCOLS, default="robust",
                        help="robust (default): both orders, failures excluded, bootstrap over items; "
                        "sami-paper: the paper's arithmetic (one order, tie/failure = 0.5, p ± 1.96·SEM)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstraps and of the sami-paper order draw")
    parser.add_argument("--resamples", type=int, default=stats.DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples for win rates and differences (>= {stats.DEFAULT_RESAMPLES})")
    parser.add_argument("--fit-resamples", type=int, default=stats.DEFAULT_FIT_RESAMPLES,
                        help="bootstrap resamples for the model fits: length-controlled win rate, Bradley-Terry "
                        f"(default {stats.DEFAULT_FIT_RESAMPLES})")
    parser.add_argument("--max-parse-failure-rate", type=float, default=stats.DEFAULT_MAX_PARSE_FAILURE_RATE,
                        help="robust: exit 3 when more judge calls than this failed to parse (default 0.05)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--compare", metavar="OTHER.jsonl",
                      help="paired comparison: the first file's candidate vs this file's, same baseline")
    mode.add_argument("--agreement", metavar="OTHER.jsonl", help="agreement between two judges on the same calls")
    mode.add_argument("--bt", action="store_true", help="Bradley-Terry scores over all given round-robin files")
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    if args.resamples < stats.DEFAULT_RESAMPLES:
        raise HarnessError(f"--resamples must be at least {stats.DEFAULT_RESAMPLES}: fewer leave the ends of a "
                           "95% interval noisy")
    if args.fit_resamples < 1000:
        raise HarnessError("--fit-resamples must be at least 1000")
    if not 0.0 <= args.max_parse_failure_rate <= 1.0:
        raise HarnessError("--max-parse-failure-rate must be in [0, 1]")
    if args.protocol == "sami-paper" and (args.bt or args.compare or args.agreement):
        raise HarnessError("--protocol sami-paper scores a single win rate; --compare, --agreement and --bt use "
                           "robust item scores")
    if not args.bt and len(args.verdicts) != 1:
        raise HarnessError("give one verdict file (several only with --bt)")


def _bradley_terry(all_verdicts: list[list[Verdict]], args: argparse.Namespace) -> dict[str, Any]:
    """Round-robin files -> (item, candidate, baseline, robust item score) comparisons -> BT."""
    comparisons = []
    calls = failed = 0
    for path, verdicts in zip(args.verdicts, all_verdicts):
        for (candidate, baseline), pair_verdicts in split_by_pair(verdicts).items():
            if candidate is None or baseline is None:
                raise HarnessError(f"{path}: --bt needs 'candidate' and 'baseline' names on every verdict line")
            records = group_items(pair_verdicts, path)
            kept, scores = stats.robust_item_scores(records)
            comparisons += [(r.item, candidate, baseline, float(s)) for r, s in zip(kept, scores)]
            calls += len(pair_verdicts)
            failed += sum(v.winner is None for v in pair_verdicts)
    result = stats.bradley_terry(comparisons, seed=args.seed, n_resamples=args.fit_resamples)
    result["parse_failure_rate"] = failed / calls
    result["max_parse_failure_rate"] = args.max_parse_failure_rate
    result["parse_failure_exceeded"] = result["parse_failure_rate"] > args.max_parse_failure_rate
    return result


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """The result object for the parsed command line."""
    _check_options(args)
    all_verdicts = [load_verdicts(path) for path in args.verdicts]
    if args.bt:
        result = _bradley_terry(all_verdicts, args)
        inputs = list(args.verdicts)
    elif args.compare:
        result = stats.paired_comparison(
            all_verdicts[0], load_verdicts(args.compare), seed=args.seed, n_resamples=args.resamples,
            max_parse_failure_rate=args.max_parse_failure_rate,
        )
        inputs = [args.verdicts[0], args.compare]
    elif args.agreement:
        result = stats.judge_agreement(all_verdicts[0], load_verdicts(args.agreement))
        inputs = [args.verdicts[0], args.agreement]
    elif args.protocol == "robust":
        result = stats.win_rates(
            all_verdicts[0], "robust", seed=args.seed, n_resamples=args.resamples,
            fit_resamples=args.fit_resamples, max_parse_failure_rate=args.max_parse_failure_rate,
        )
        inputs = list(args.verdicts)
    else:
        result = stats.win_rates(all_verdicts[0], "sami-paper", seed=args.seed)
        inputs = list(args.verdicts)
    result["inputs"] = [{"path": str(path), "sha256": file_hash(path)} for path in inputs]
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{_pct(low)}, {_pct(high)}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _win_rate_text(result: dict[str, Any]) -> str:
    pairs = result["by_pair"]
    if pairs[0]["protocol"] == "sami-paper":
        header = ["candidate", "baseline", "n", "win rate", "SEM", "95% CI (normal)", "length-balanced", "ties",
                  "parse fail"]
        rows = [[r["candidate"] or "-", r["baseline"] or "-", str(r["n"]), _pct(r["win_rate"]), _pct(r["sem"]),
                 _ci(r["ci_low"], r["ci_high"]), _pct(r["balanced_win_rate"]), _pct(r["tie_rate"]),
                 _pct(r["parse_failure_rate"])] for r in pairs]
        title = f"protocol sami-paper (seed {pairs[0]['seed']}: order drawn per item; tie and parse failure = 0.5)"
    else:
        header = ["candidate", "baseline", "n", "win rate", "95% CI", "soft", "soft 95% CI", "LC win rate",
                  "LC 95% CI", "ties", "parse fail", "pos. consistency", "1st-pos pref"]
        rows = [[r["candidate"] or "-", r["baseline"] or "-", str(r["n"]), _pct(r["win_rate"]),
                 _ci(r["ci_low"], r["ci_high"]), _pct(r["soft_win_rate"]), _ci(r["soft_ci_low"], r["soft_ci_high"]),
                 _pct(r["lc_win_rate"]), _ci(r["lc_ci_low"], r["lc_ci_high"]),
                 _pct(r["tie_rate"]), _pct(r["parse_failure_rate"]), _pct(r["position_consistency"]),
                 _pct(r["first_position_preference"])] for r in pairs]
        methods = sorted({str(r["ci_method"]) for r in pairs})
        title = (f"protocol robust (bootstrap over items, {pairs[0]['n_resamples']} resamples, "
                 f"{'/'.join(methods)}, seed {pairs[0]['seed']}; parse failures excluded)")
    notes = [f"{r['candidate']} vs {r['baseline']}: {r['note']}" for r in pairs]
    warnings = [f"warning: {r['candidate']} vs {r['baseline']}: {w.detail}" for r in pairs for w in compute_warnings(r)]
    return "\n".join([title, _table(header, rows), *notes, *warnings])


def _paired_text(r: dict[str, Any]) -> str:
    return "\n".join([
        f"paired comparison vs {r['baseline']} on {r['n_shared']} shared items "
        f"({r['n_only_a']} only in the first file, {r['n_only_b']} only in the second)",
        f"  {r['candidate_a']}: {_pct(r['win_rate_a'])}   {r['candidate_b']}: {_pct(r['win_rate_b'])}",
        f"  difference {_pct(r['difference'])}  95% CI {_ci(r['ci_low'], r['ci_high'])} "
        f"(paired bootstrap, {r['n_resamples']} resamples, {r['ci_method']})",
        f"  sign test p = {r['sign_test_p']:.4g} ({r['n_a_better']} items better, {r['n_b_better']} worse); "
        f"permutation test p = {r['permutation_p'] if r['permutation_p'] is None else format(r['permutation_p'], '.4g')}",
        f"  {r['note']}",
    ])


def _bt_text(r: dict[str, Any]) -> str:
    rows = [[s["system"], f"{s['log_strength']:+.3f}", f"[{s['log_strength_ci_low']:+.3f}, {s['log_strength_ci_high']:+.3f}]",
             _pct(s["win_rate"]), _ci(s["ci_low"], s["ci_high"])] for s in r["systems"]]
    header = ["system", "log-strength", "95% CI", "win rate vs average", "95% CI"]
    return "\n".join([
        f"Bradley-Terry over {r['n']} items, {r['n_comparisons']} comparisons "
        f"(percentile bootstrap over items, {r['n_resamples']} resamples, seed {r['seed']})",
        _table(header, rows), r["note"],
    ])


def _agreement_text(r: dict[str, Any]) -> str:
    kappa = "-" if r["cohen_kappa"] is None else f"{r['cohen_kappa']:.3f}"
    return "\n".join([
        f"judge agreement on {r['n']} matched calls ({r['n_parse_failures_excluded']} with a parse failure excluded; "
        f"{r['n_only_first']} only in the first file, {r['n_only_second']} only in the second)",
        f"  raw agreement (ties included) {_pct(r['raw_agreement'])}",
        f"  agreement where neither said tie {_pct(r['non_tie_agreement'])} ({r['n_non_tie']} calls)",
        f"  Cohen's kappa over candidate/baseline/tie {kappa}",
    ])


def render_text(result: dict[str, Any]) -> str:
    """A short readable table for the terminal."""
    protocol = result["protocol"]
    if protocol == "paired":
        return _paired_text(result)
    if protocol == "bradley-terry":
        return _bt_text(result)
    if protocol == "agreement":
        return _agreement_text(result)
    return _win_rate_text(result)


def run(args: argparse.Namespace) -> int:
    result = compute(args)
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(render_text(result))
    if result.get("parse_failure_exceeded"):
        if "by_pair" in result:
            rates = ", ".join(f"{r['candidate']} vs {r['baseline']}: {_pct(r['parse_failure_rate'])}"
                              for r in result["by_pair"])
        elif "parse_failure_rate_a" in result:
            rates = f"{_pct(result['parse_failure_rate_a'])} and {_pct(result['parse_failure_rate_b'])}"
        else:
            rates = _pct(result["parse_failure_rate"])
        print(f"error: judge parse-failure rate above --max-parse-failure-rate "
              f"{args.max_parse_failure_rate:g} ({rates}); fix the judge prompt or parser, or retry the failed "
              "calls, before trusting these numbers", file=sys.stderr)
        return PARSE_FAILURE_EXIT
    return 0
