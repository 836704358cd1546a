"""Generation throughput by batch size: the evaluation responses of the first N TL;DR evaluation queries, greedy,
through the harness's hf backend (no cache), at each batch size; prints seconds, responses/s, the ratio to the
first batch size, and whether the greedy outputs are identical across batch sizes.

    python benchmarks/generation.py --model embedded --limit 16 --batch-sizes 8 16
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: F401  (puts the repository on sys.path, sets HF_HUB_OFFLINE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16])
    args = parser.parse_args()

    from harness.config import RunConfig
    from harness.flow.evaluate import evaluation_items, evaluation_responses
    from harness.models.backends import create_backend
    from harness.tasks import get_task

    config = RunConfig()
    config.model.name = args.model
    config.data.eval_limit = args.limit
    task = get_task("tldr")
    items = evaluation_items(task, config)
    outputs, first = {}, None
    for size in args.batch_sizes:
        backend = create_backend(config.model, config.generation.model_copy(update={"batch_size": size}))
        backend.model  # load before timing
        started = time.perf_counter()
        rows = evaluation_responses(task, items, backend, f"batch-{size}", config.generation.seed, cache=None)
        seconds = time.perf_counter() - started
        outputs[size] = [row["response"] for row in rows]
        first = first or seconds
        print(f"batch {size:>3}: {seconds:7.1f} s  {len(rows) / seconds:5.2f} responses/s  "
              f"speed-up {first / seconds:4.2f}x")
        backend.unload()
    same = len({tuple(v) for v in outputs.values()}) == 1
    print(f"greedy outputs identical across batch sizes: {same}")


if __name__ == "__main__":
    main()
