"""Wall time and peak memory of one expert iteration of each trainer (sami, sft, dpo) on the same data.

Every trainer gets the same ``TrainingJob``: the same query groups (demo TL;DR posts, two sampled contrastive
constitutions each, one response per constitution), the same number of optimizer steps and queries per step, the
same train config. Each trainer runs in a FRESH Python process, so its peak resident memory (``ru_maxrss``) is its
own: imports + base-model load + training + checkpoint save. Reported per trainer:

- wall_s: the ``train(job)`` call (loads the base model, trains ``--steps`` optimizer steps, saves the checkpoint);
- steps_s: the optimizer steps alone (sum of the telemetry's ``step_time_s``), and tokens/s over them;
- ref_s: DPO's reference precompute (one no-grad pass of the base model over the scheduled pairs);
- rss_before_gib / peak_rss_gib: resident memory after imports and the process's peak;
- the 1-minute load average at the start and end of the call: on a shared 2-core machine, other processes'
  load slows every number down (compare trainers only within runs of similar load).

Responses are canned by default (deterministic, no generation cost): for each post the c+ response is a short
"The post ..." summary (``--short-words``) and the c- response a longer one (``--long-words``), both made of the
post's own words; ``--generate`` samples them from the model under the task's generation prompt instead.

    OMP_NUM_THREADS=2 python benchmarks/trainers_wall_time.py                   # embedded SmolLM2-135M (minutes)
    OMP_NUM_THREADS=1 python benchmarks/trainers_wall_time.py --model tiny      # tiny random llama (seconds)
    python benchmarks/trainers_wall_time.py --trainers sami,sft,dpo,dpo-ipo,dpo-simpo --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def rss_gib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def build_config(model: str, args):
    from harness.config import ModelConfig, RunConfig, TrainConfig

    model_config = ModelConfig(name=model, prompt_format="base" if args.model == "tiny" else "auto")
    train = TrainConfig(queries_per_step=args.queries_per_step, micro_batch_queries=args.micro,
                        learning_rate=args.lr, steps_per_iteration=[args.steps], iterations=1)
    return RunConfig(task="tldr", model=model_config, train=train)


def canned_groups(task, n_queries: int, short_words: int, long_words: int, seed: int):
    from harness.config import DataConfig
    from harness.flow.generate import QueryGroup, sample_constitutions
    from harness.tasks.principles import ConstitutionSampler

    queries = task.load_queries(DataConfig(), "train")[:n_queries]
    constitutions = sample_constitutions(ConstitutionSampler(task.principles(), 2), queries, seed, "benchmark")
    groups = []
    for query, pair in zip(queries, constitutions):
        words = query.text.split("POST:", 1)[-1].split()
        short = " ".join(["The post"] + words[:short_words]).rstrip(".,") + "."
        long = " ".join(["The post"] + (words * 4)[:long_words]).rstrip(".,") + "."
        groups.append(QueryGroup(query, pair, [short, long]))
    return groups


def generated_groups(task, config, n_queries: int, seed: int):
    from harness.models.backends import create_backend
    from harness.config import DataConfig
    from harness.flow.generate import filter_groups, generate_groups, sample_constitutions
    from harness.tasks.principles import ConstitutionSampler

    queries = task.load_queries(DataConfig(), "train")[:n_queries]
    constitutions = sample_constitutions(ConstitutionSampler(task.principles(), 2), queries, seed, "benchmark")
    backend = create_backend(config.model, config.generation)
    groups = generate_groups(task, backend, queries, constitutions, seed, cache=None, desc="generating")
    kept, dropped = filter_groups(groups, task.default_filters)
    print(f"generated {len(groups)} groups, kept {len(kept)} after filters ({dropped})", flush=True)
    return kept


def child(args) -> int:
    """Run one trainer on the pickled job data and print a JSON line with its measurements."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from harness.tasks import get_task
    from harness.flow.train import TrainingJob, get_trainer

    started = time.perf_counter()
    import accelerate  # noqa: F401  -- the same heavy imports in every child, outside the timed call
    import datasets  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401
    from transformers import AutoModelForCausalLM, LlamaForCausalLM  # noqa: F401

    import_s = time.perf_counter() - started
    payload = pickle.loads(Path(args.data).read_bytes())
    config = build_config(payload["model"], args)
    name, _, loss = args.child.partition("-")
    if loss:
        config.dpo.loss_type = loss
    job = TrainingJob.from_config(config, get_task("tldr"), payload["groups"], 1, args.steps,
                      Path(args.workdir) / args.child / "checkpoint",
                      Path(args.workdir) / args.child / "telemetry.jsonl")
    trainer = get_trainer(name)
    before, load_before = rss_gib(), os.getloadavg()[0]
    started = time.perf_counter()
    trainer(job)
    wall = time.perf_counter() - started
    lines = [json.loads(line) for line in job.telemetry_path.read_text().splitlines()]
    steps_s = sum(line["step_time_s"] for line in lines)
    tokens = sum(line["tokens"] for line in lines)
    print("RESULT " + json.dumps({
        "trainer": args.child, "wall_s": wall, "steps_s": steps_s, "tokens": tokens, "tokens_per_s": tokens / steps_s,
        "ref_s": lines[0].get("reference_precompute_s"), "steps": len(lines), "queries": [r["queries"] for r in lines],
        "loss": [round(r["loss"], 4) for r in lines], "rss_before_gib": before, "peak_rss_gib": rss_gib(),
        "import_s": import_s, "load_avg_1min": [load_before, os.getloadavg()[0]],
        "threads": torch.get_num_threads()}), flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded",
                        help="'embedded' (SmolLM2-135M), 'tiny' (random llama), or a folder")
    parser.add_argument("--trainers", default="sami,sft,dpo", help="comma list; dpo-ipo / dpo-simpo pick a DPO loss")
    parser.add_argument("--queries", type=int, default=8, help="demo TL;DR posts (query groups)")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps")
    parser.add_argument("--queries-per-step", type=int, default=4)
    parser.add_argument("--micro", type=int, default=1, help="queries per micro-batch")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--short-words", type=int, default=20, help="canned c+ response length in words")
    parser.add_argument("--long-words", type=int, default=60, help="canned c- response length in words")
    parser.add_argument("--generate", action="store_true", help="generate the responses with the model instead")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    from harness.tasks import get_task

    task = get_task("tldr")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model == "tiny":
            sys.path.insert(0, str(REPO / "tests"))
            from tiny_models import build_tiny_model

            model = str(build_tiny_model(Path(tmp) / "tiny", hidden=64))
        config = build_config(model, args)
        started = time.perf_counter()
        groups = (generated_groups(task, config, args.queries, args.seed) if args.generate
                  else canned_groups(task, args.queries, args.short_words, args.long_words, args.seed))
        data_s = time.perf_counter() - started
        data = Path(tmp) / "groups.pkl"
        data.write_bytes(pickle.dumps({"model": model, "groups": groups}))
        results = []
        for name in args.trainers.split(","):
            command = [sys.executable, __file__, "--child", name, "--data", str(data), "--workdir", tmp,
                       "--model", args.model, "--steps", str(args.steps), "--queries-per-step",
                       str(args.queries_per_step), "--micro", str(args.micro), "--lr", str(args.lr)]
            print(f"running {name} ...", flush=True)
            process = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
            if process.returncode != 0 or not lines:
                print(process.stderr[-3000:], file=sys.stderr)
                return 1
            results.append(json.loads(lines[-1][len("RESULT "):]))

    print(f"\nmodel: {args.model}  queries: {len(groups)} ({'generated' if args.generate else 'canned'} responses, "
          f"data {data_s:.1f} s)  steps: {args.steps} x {args.queries_per_step} queries  micro-batch: {args.micro}  "
          f"threads: {results[0]['threads']}")
    print("| trainer | wall s (train call) | optimizer steps s | tokens/s | ref precompute s | RSS after imports GiB "
          "| peak RSS GiB | 1-min load avg (start, end) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        ref = f"{r['ref_s']:.1f}" if r["ref_s"] else "-"
        print(f"| {r['trainer']} | {r['wall_s']:.1f} | {r['steps_s']:.1f} | {r['tokens_per_s']:.0f} | {ref} | "
              f"{r['rss_before_gib']:.2f} | {r['peak_rss_gib']:.2f} | "
              f"{r['load_avg_1min'][0]:.1f}, {r['load_avg_1min'][1]:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
