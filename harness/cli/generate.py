"""``harness generate``: a model's responses on a task's evaluation set, under the evaluation constitution."""

from __future__ import annotations

import time
from pathlib import Path

from harness.core.artifacts import write_json, write_jsonl
from harness.models.backends import create_backend
from harness.core.cache import ContentCache
from harness.cli.common import add_config_arguments, config_from_args, limit_threads
from harness.flow.evaluate import evaluation_items, evaluation_responses
from harness.tasks.loaders import fingerprint
from harness.core.provenance import manifest
from harness.tasks import get_task


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate responses on a task's evaluation set",
                                   description="Write OUT/responses.jsonl (one line per item) and OUT/manifest.json. "
                                   "Generations are cached: an identical second run does no model work.")
    add_config_arguments(parser)
    parser.add_argument("--limit", type=int, help="only the first N evaluation items")
    parser.add_argument("--heldout-principles", action="store_true",
                        help="heldout task: evaluate under held-out principles instead of training principles")
    parser.set_defaults(func=run)


def run(args) -> int:
    limit_threads()
    config = config_from_args(args, **{"data.eval_limit": args.limit})
    task = get_task(config.task)
    items = evaluation_items(task, config, heldout=args.heldout_principles)
    backend = create_backend(config.model, config.generation)
    out = Path(config.out or f"runs/generate-{config.task}-{config.hash()}")
    started = time.time()
    rows = evaluation_responses(task, items, backend, config.model.name, config.generation.seed, ContentCache())
    write_jsonl(out / "responses.jsonl", rows)
    write_json(out / "manifest.json", manifest(
        config, stage="generate", data_source=config.data.source, data_fingerprint=fingerprint([q for q, _ in items]),
        model_identity=backend.identity(), backend=backend.name, decoding=backend.decoding(),
        prompt_format=backend.prompt_format, heldout_principles=args.heldout_principles, n_items=len(rows)))
    print(f"wrote {len(rows)} responses to {out / 'responses.jsonl'} in {time.time() - started:.1f} s "
          f"({'model passes: ' + str(backend.generate_calls)})")
    return 0
