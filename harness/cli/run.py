"""``harness run``: the main job, from principles to leaderboard, resumable."""

from __future__ import annotations

import time

from harness.core.artifacts import read_json
from harness.cli.common import add_config_arguments, config_from_args, limit_threads
from harness.core.run_layout import RunLayout
from harness.tasks import get_task



def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="train with a trainer and evaluate against baselines (the main job)",
        description="Expert iteration (generate, filter, train from base) with the chosen trainer, then evaluation "
        "generations, LLM judging against baselines, win rates with CIs, the MI estimate, and a leaderboard. "
        "Rerunning the same command resumes a killed run and does no model work for a finished one.")
    add_config_arguments(parser)
    parser.add_argument("--trainer", help="sami (default), or another name from `harness ls trainers`")
    parser.add_argument("--judge", help="judge name (`harness ls judges`) or YAML path; default: local")
    parser.set_defaults(func=run)


def run(args) -> int:
    from harness.cli.validate import check
    from harness.pipeline import run_pipeline

    limit_threads()
    config = config_from_args(args, **{"trainer": args.trainer, "eval.judge": args.judge})
    check(config, args.config or "command line")
    started = time.time()
    run_dir = run_pipeline(config)
    if run_dir is not None:
        print_summary(RunLayout(run_dir), time.time() - started, config.task)
    return 0


def print_summary(layout: RunLayout, seconds: float, task: str) -> None:
    results = read_json(layout.results_file)
    invocations = read_json(layout.timings_file)["invocations"]
    earlier = "" if len(invocations) == 1 else \
        f" (invocation {len(invocations)}; the first took {invocations[0]['seconds']['total']:.0f} s)"
    print(f"\nRun {layout.root} finished in {seconds:.0f} s{earlier}.")
    print(f"{'system':<18} {'vs':<10} {'split':<8} {'win rate [95% CI]':<22} {'soft [95% CI]':<22} "
          f"{'adherence [95% CI]':<22} {'n':>4} {'MI nats (self/base)':>20}")
    for row in results["rows"]:
        hard = _with_ci(row.get("win_rate"), row.get("ci_low"), row.get("ci_high"))
        soft = _with_ci(row.get("soft_win_rate"), row.get("soft_ci_low"), row.get("soft_ci_high"))
        adherence = _with_ci(row.get("adherence"), row.get("adherence_ci_low"), row.get("adherence_ci_high"))
        mi = "/".join("–" if row.get(k) is None else f"{row[k]:.2f}" for k in ("mi_nats", "mi_nats_base_scorer"))
        print(f"{row['system']:<18} {row['baseline']:<10} {row['principle_split']:<8} {hard:<22} {soft:<22} "
              f"{adherence:<22} {row['n']:>4} {mi:>20}")
    for note in results["notes"]:
        print(f"- {note}")
    print(f"Leaderboard: {layout.leaderboard_dir / 'leaderboard.md'}; site: {layout.leaderboard_dir / 'site' / 'index.html'}")
    size = sum(f.stat().st_size for f in layout.root.rglob("*") if f.is_file())
    print(f"Run folder: {size / 2**20:.0f} MB (train.keep_checkpoints=all keeps every iteration's weights).")
    paper_config = get_task(task).paper_config
    if paper_config:
        print(f"Paper scale: harness run --config {paper_config} on GPUs (see README, 'Scaling up').")


def _with_ci(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" + ("" if low is None else f" [{100 * low:.1f}, {100 * high:.1f}]")
