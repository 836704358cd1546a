"""``harness principles``: list, inspect and write principle files.

    harness principles list                          the shipped principle files and their tasks
    harness principles show tldr --sample 4          a task's (or a file's) principles and sampled c+/c- pairs
    harness principles write --task tldr --writer M  have an LLM write principles and antitheses
    harness principles headroom --task tldr --principles F  how far each checkable principle moves the model

``show`` reads our YAML files and the paper's released formats (a folder of positive/negative JSON files, or a
``{name: {definition, antithesis}}`` JSON).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.tasks.principles import (ConstitutionSampler, PrincipleSet, available_principle_files,
                                default_principles_path, load_principles)


def register(subparsers) -> None:
    parser = subparsers.add_parser("principles", help="list, show or (with an LLM) write principle files",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="the principle files shipped under principles/ and their tasks")
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="print principles and sampled contrastive constitution pairs",
                              description="Print a principle set (definitions, antitheses, sampling scheme, split) "
                              "and N sampled constitution sets, to eyeball the c+/c- scheme.")
    show.add_argument("source", metavar="FILE_OR_TASK",
                      help="a task name (its shipped file), a YAML file, or one of the paper's JSON formats")
    show.add_argument("--sample", type=int, default=3, metavar="N", help="constitution sets to draw (default 3)")
    show.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    show.add_argument("--constitutions", type=int, default=2, metavar="C",
                      help="constitutions per set (default 2: c+ and c-)")
    show.set_defaults(func=run_show)

    headroom = actions.add_parser(
        "headroom", help="measure how far each checkable principle moves the untrained model",
        description="For each principle with check and antithesis_check: generate on N training queries under "
        "c+ = [principle] and c- = [antithesis] and report adherence (definition check pass rate) under both, "
        "headroom = the difference with a 95% paired bootstrap CI over queries, the antithesis check's pass rate "
        "under c-, and whether the CI excludes 0 (moves).")
    headroom.add_argument("--task", help="tldr, dialogue or heldout (default: the principles file's task, else tldr)")
    headroom.add_argument("--principles", metavar="FILE", help="principles file (default: the task's own)")
    headroom.add_argument("--limit", type=int, default=16, metavar="N",
                          help="training queries per principle (default 16)")
    headroom.add_argument("--model", default="embedded", help="model to measure (default embedded)")
    headroom.add_argument("--data", help="'demo' (default), 'hub', or a local data file")
    headroom.add_argument("--config", metavar="YAML", help="a run config (decoding, backend, data)")
    headroom.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                          help="override a config field, e.g. --set generation.max_new_tokens=64 (repeatable)")
    headroom.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    headroom.add_argument("--out", metavar="FILE.json", help="also write the rows (and responses) as JSON")
    headroom.set_defaults(func=run_headroom)

    write = actions.add_parser(
        "write", help="ask an LLM to write principles and antitheses for a task",
        description="Ask a model (any generation backend) to 'write two principles for <task>, with definitions, "
        "and their antitheses' in a strict NAME/DEFINITION/ANTITHESIS format; parse and validate the answer, "
        "re-ask with a new seed on malformed output, and write a principles YAML with the writer's provenance.")
    write.add_argument("--task", required=True, help="tldr, dialogue or heldout: its description and sampling scheme")
    write.add_argument("--writer", required=True, metavar="MODEL",
                       help="'embedded', a hub id, a local folder, or an API model name (with --backend openai)")
    write.add_argument("--backend", default="hf", help="generation backend: hf (default), openai, vllm")
    write.add_argument("--base-url", help="openai backend: an OpenAI-compatible endpoint")
    write.add_argument("--out", metavar="FILE", help="output YAML (default: principles-<task>-<writer>.yaml here)")
    write.add_argument("--max-attempts", type=int, default=3, help="re-asks on malformed output (default 3)")
    write.add_argument("--count", type=int, help="number of principles (default: as in the task's shipped file)")
    write.add_argument("--description", help="task description given to the writer (default: the task's)")
    write.add_argument("--max-new-tokens", type=int, default=400, help="writer answer length (default 400)")
    write.add_argument("--seed", type=int, default=0, help="seed of the attempts (default 0)")
    write.add_argument("--force", action="store_true", help="overwrite an existing output file")
    write.set_defaults(func=run_write)


def resolve_source(source: str) -> Path:
    """A task name means its shipped principles file; anything else is a path."""
    from harness.tasks import tasks

    if source in tasks:
        return default_principles_path(source)
    path = Path(source)
    if not path.exists():
        raise HarnessError(f"no task or file named '{source}'; tasks: {', '.join(tasks.names())}")
    return path


def run_list(args) -> int:
    rows = []
    for task, path in available_principle_files().items():
        principles = load_principles(path)
        split = f", {len(principles.split.train)} train / {len(principles.split.heldout)} held out" \
            if principles.split else ""
        rows.append((f"{task}/{path.name}", principles.task, f"{principles.sampling.scheme} scheme, {len(principles.principles)} "
                     f"principles{split}: {', '.join(p.name for p in principles.principles)}"))
    width = max((len(name) for name, _, _ in rows), default=0)
    task_width = max((len(task) for _, task, _ in rows), default=0)
    for name, task, text in rows:
        print(f"{name:<{width}}  {task:<{task_width}}  {text}")
    print("(any of the paper's formats also load: --set principles.file=PATH)", file=sys.stderr)
    return 0


def describe(principles: PrincipleSet) -> list[str]:
    lines = [f"task: {principles.task}", f"description: {principles.description.strip()}",
             f"writer: {principles.writer.model}", f"sampling: {principles.sampling.scheme}"
             + (f" (c- negates one of {principles.sampling.negate})" if principles.sampling.negate else "")
             + (f", {principles.sampling.per_constitution} principles per constitution"
                if principles.sampling.scheme == "diverse" else ""), "", "principles:"]
    heldout = set(principles.split.heldout) if principles.split else set()
    for index, principle in enumerate(principles.principles):
        tags = [t for t in (f"subset {principle.subset}" if principle.subset else "",
                            "held out" if principle.name in heldout else "") if t]
        lines.append(f"  [{index}] {principle.name}" + (f" ({', '.join(tags)})" if tags else ""))
        lines.append(f"      + {principle.definition.strip()}")
        lines.append(f"      - {principle.antithesis.strip()}")
    return lines


def sample_lines(principles: PrincipleSet, n: int, seed: int, n_constitutions: int = 2) -> list[str]:
    """N sampled constitution sets (and one evaluation constitution), rendered as the model sees them."""
    sampler = ConstitutionSampler(principles, n_constitutions)
    subsets = sorted({p.subset for p in principles.principles if p.subset})
    lines = []
    for draw in range(n):
        subset = subsets[draw % len(subsets)] if principles.sampling.scheme == "subset" else None
        group = sampler.sample(random.Random(derived_seed("principles-show", seed, draw)), subset)
        lines.append(f"--- sample {draw + 1}" + (f" (query subset {subset})" if subset else ""))
        for index, constitution in enumerate(group):
            label = "c+" if index == 0 and principles.sampling.scheme != "diverse" else f"c{index + 1}"
            if index == 1 and principles.sampling.scheme != "diverse":
                label = "c-"
            lines.append(f"{label}: [{', '.join(constitution.identifiers)}]")
            lines += [f"    {line}" for line in constitution.text.splitlines()]
    rng = random.Random(derived_seed("principles-show-eval", seed))
    lines.append("--- evaluation constitution")
    lines += [f"    {line}" for line in sampler.evaluation(rng).text.splitlines()]
    if principles.split:
        lines.append("--- evaluation constitution (held-out principles)")
        lines += [f"    {line}" for line in sampler.evaluation(rng, heldout=True).text.splitlines()]
    return lines


def run_show(args) -> int:
    if args.sample < 0:
        raise HarnessError("--sample must be >= 0")
    path = resolve_source(args.source)
    principles = load_principles(path)
    print(f"file: {path}")
    print("\n".join(describe(principles)))
    if args.sample:
        print()
        print("\n".join(sample_lines(principles, args.sample, args.seed, args.constitutions)))
    return 0


def headroom_report(args) -> tuple[dict, list]:
    """Measure the table the ``headroom`` arguments ask for: a JSON-ready report (rows with responses) and the
    ``HeadroomRow``s."""
    from harness.cli.common import limit_threads
    from harness.config import load_config
    from harness.core.cache import ContentCache
    from harness.models.backends import create_backend
    from harness.tasks import get_task, tasks
    from harness.tasks.headroom import measure_headroom

    if args.limit is not None and args.limit < 1:
        raise HarnessError("--limit must be >= 1")
    path = Path(args.principles) if args.principles else None
    if path is not None and not path.exists():
        raise HarnessError(f"no principles file {path}")
    task_name = args.task or (load_principles(path).task if path is not None else "tldr")
    if task_name not in tasks:
        raise HarnessError(f"the principles' task '{task_name}' is not a task; pass --task "
                           f"({', '.join(tasks.names())})")
    # all training queries are loaded, so a principle tied to a subset (dialogue) gets N queries of that subset
    config = load_config(args.config, {"task": task_name, "model.name": args.model, "data.source": args.data},
                         args.set)
    config.data.train_limit = None
    task = get_task(config.task)
    path = path or task.principles_file
    principles = task.principles(str(path))
    queries = task.load_queries(config.data, "train")
    if not queries:
        raise HarnessError(f"task '{task.name}' has no training queries with data.source={config.data.source!r}")
    limit_threads()
    backend = create_backend(config.model, config.generation)
    try:
        rows, skipped = measure_headroom(task, principles, backend, queries, config.generation.seed, ContentCache(),
                                         args.limit, args.resamples, log=lambda line: print(line, file=sys.stderr))
        identity, decoding = backend.identity(), backend.decoding()
    finally:
        backend.unload()
    return {"task": task.name, "principles_file": str(path), "model": config.model.name, "model_identity": identity,
            "decoding": decoding, "data_source": config.data.source, "split": "train", "limit": args.limit,
            "ci": "95% paired percentile bootstrap over queries", "resamples": args.resamples,
            "skipped_uncheckable": skipped, "rows": [row.to_json() for row in rows]}, rows


def run_headroom(args) -> int:
    from harness.core.artifacts import write_json
    from harness.tasks.headroom import markdown_table

    report, rows = headroom_report(args)
    table = markdown_table(rows)
    report["markdown"] = table
    print(f"task {report['task']}, {report['principles_file']}, model {report['model']}, training queries "
          f"(limit {report['limit']} per principle)")
    print(table)
    if report["skipped_uncheckable"]:
        print(f"(skipped, no checks: {', '.join(report['skipped_uncheckable'])})")
    if args.out:
        write_json(Path(args.out), report)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def run_write(args) -> int:
    from harness.models.backends import create_backend
    from harness.core.cache import ContentCache
    from harness.cli.common import limit_threads
    from harness.config import GenerationConfig, ModelConfig
    from harness.tasks.principle_writer import dump_principles, request_for_task, write_principles
    from harness.tasks.principles import _slug
    from harness.tasks import tasks

    tasks.get(args.task)
    out = Path(args.out or f"principles-{args.task}-{_slug(Path(args.writer).name or args.writer)}.yaml")
    if out.exists() and not args.force:
        raise HarnessError(f"{out} exists; choose another --out or add --force")
    request = request_for_task(args.task, args.count, args.description)
    limit_threads()
    generation = GenerationConfig(backend=args.backend, base_url=args.base_url,
                                  max_new_tokens=max(args.max_new_tokens, 60 * request.count))
    backend = create_backend(ModelConfig(name=args.writer), generation)
    principles = write_principles(backend, request, args.max_attempts, args.seed, ContentCache(),
                                  log=lambda line: print(line, file=sys.stderr))
    dump_principles(principles, out)
    print("\n".join(describe(principles)))
    print(f"wrote {out} (attempts: {principles.writer.attempts}); use it with --set principles.file={out}")
    return 0
