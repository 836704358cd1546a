"""``harness leaderboard``: merge runs into per-task tables (Markdown, CSV, JSON), plots and a browsable site."""

from __future__ import annotations

from pathlib import Path

from harness.core.artifacts import atomic_write_text, read_jsonl
from harness.flow.leaderboard import load_rows, read_results
from harness.core.run_layout import RunLayout
from harness.flow.publish import write_leaderboard
from harness.site import write_site

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "leaderboards"


def register(subparsers) -> None:
    parser = subparsers.add_parser("leaderboard", help="build leaderboards from run directories",
                                   description="Merge the results.json of one or more runs into per-task tables. "
                                   "With --publish, write them into leaderboards/<task>/ with an index page, and "
                                   "rebuild the site leaderboards/site/ from every published run.")
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/leaderboard for one run, else "
                        "./leaderboard); a static site is written to OUT/site")
    parser.add_argument("--publish", action="store_true", help="write into the repository's leaderboards/ folder")
    parser.set_defaults(func=run)


def run(args) -> int:
    rows = load_rows(args.runs)
    default_out = RunLayout(args.runs[0]).leaderboard_dir if len(args.runs) == 1 else Path("leaderboard")
    out_root = PUBLISHED_DIR if args.publish else (args.out or default_out)
    notes_by_task: dict[str, list[str]] = {}
    for run_dir in args.runs:
        results = read_results(run_dir)
        for row in results["rows"]:
            notes_by_task.setdefault(row["task"], [])
            for note in results["notes"]:
                if note not in notes_by_task[row["task"]]:
                    notes_by_task[row["task"]].append(note)
    written = []
    for task in sorted({r["task"] for r in rows}):
        task_rows = [r for r in rows if r["task"] == task]
        runs = [d for d in args.runs if any(r["run_id"] == d.name for r in task_rows)]
        metrics = []
        for run_dir in runs:
            metrics_file = RunLayout(run_dir).metrics_file
            if metrics_file.is_file():
                metrics += [{**m, "trainer": f"{m['trainer']} ({run_dir.name})"} if len(runs) > 1 else m
                            for m in read_jsonl(metrics_file)]
        written += write_leaderboard(task_rows, out_root / task, f"Leaderboard: {task}", notes_by_task[task],
                                     metrics)
    if args.publish:
        write_index(out_root, sorted({r["task"] for r in rows}), notes_by_task)
        published = sorted(d for d in out_root.glob("*/runs/*") if RunLayout(d).results_file.is_file())
        written.append(write_site(out_root / "site", published, "Published leaderboards"))
    else:
        written.append(write_site(out_root / "site", args.runs, "Leaderboards"))
    for path in written:
        print(Path(path).resolve())
    return 0


def write_index(root: Path, tasks: list[str], notes_by_task: dict[str, list[str]]) -> None:
    existing = sorted(p.parent.name for p in root.glob("*/leaderboard.md"))
    lines = ["# Published leaderboards", "",
             "Each table was produced by `harness leaderboard --publish` from real runs; every row links to its "
             "run id, config hash, judge hash and commit. Read the notes under each task: they say which model "
             "and judge produced the numbers.", ""]
    for task in sorted(set(existing) | set(tasks)):
        lines.append(f"## [{task}]({task}/leaderboard.md)")
        lines += [f"- {note}" for note in notes_by_task.get(task, [])]
        lines.append("")
    atomic_write_text(root / "README.md", "\n".join(lines))
