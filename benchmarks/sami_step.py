"""Throughput of one SAMI optimizer step vs a plain causal-LM fine-tuning step over the same padded tokens.

Both steps see identical micro-batches (the C x C (training prompt, response) sequences of each query, right-
padded), take a forward and backward pass per micro-batch with gradient accumulation, and one AdamW step:

- SAMI: ``trainers.sami.optimizer_step`` (per-token-mean response log-probs -> C x C matrix -> contrastive loss);
- plain: ``model(input_ids, attention_mask, labels=...)`` with the prompt and padding masked (-100), i.e. SFT
  on the response tokens, the cheapest loss over the same forward.

Steps alternate (plain, SAMI, plain, SAMI, ...) after a warm-up of each, so drift in a shared machine's load hits
both equally; the medians are compared. Target: SAMI / plain tokens/s >= 0.9.

    OMP_NUM_THREADS=2 python benchmarks/sami_step.py                      # tiny random llama (seconds)
    OMP_NUM_THREADS=2 python benchmarks/sami_step.py --model embedded     # SmolLM2-135M (minutes)
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import benchmark_model, build_groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="'tiny' (random 2-layer llama), 'embedded', or a folder")
    parser.add_argument("--queries", type=int, default=2, help="queries per optimizer step")
    parser.add_argument("--micro", type=int, default=1, help="queries per micro-batch")
    parser.add_argument("--constitutions", type=int, default=2, help="C")
    parser.add_argument("--response-words", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps of each kind (after one warm-up each)")
    args = parser.parse_args(argv)

    with benchmark_model(args.model) as loaded:
        compare(args, *loaded)
    return 0


def compare(args, model_config, resolved, tokenizer, model) -> None:
    import torch

    from harness.config import TrainConfig
    from harness.models.prompts import resolve_format
    from harness.tasks import get_task
    from trainers.common import make_accelerator, micro_batches
    from trainers.sami import SamiBatcher, optimizer_step

    task = get_task("tldr")
    groups = build_groups(task, args.queries, args.constitutions, args.response_words)
    train = TrainConfig(queries_per_step=args.queries, micro_batch_queries=args.micro, learning_rate=1e-6,
                        max_prompt_tokens=1024)
    batcher = SamiBatcher(task, tokenizer, resolve_format(model_config.prompt_format, tokenizer),
                          max_prompt_tokens=1024, max_response_tokens=512)
    chunks = micro_batches(groups, args.micro)
    encoded = [batcher.encode(chunk) for chunk in chunks]
    tokens = sum(int(b.attention_mask.sum()) for b in encoded)
    padded = sum(b.input_ids.numel() for b in encoded)
    accelerator = make_accelerator(train, len(chunks))
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.learning_rate)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    def plain_step() -> float:
        started = time.perf_counter()
        for batch in encoded:
            with accelerator.accumulate(model):
                labels = batch.input_ids.masked_fill(batch.response_mask == 0, -100)
                loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    def sami_step() -> float:
        return optimizer_step(model, optimizer, accelerator, batcher, groups, args.micro, args.queries).seconds

    plain_step(), sami_step()  # warm-up
    plain_times, sami_times = [], []
    for _ in range(args.repeats):
        plain_times.append(plain_step())
        sami_times.append(sami_step())
    plain_s, sami_s = statistics.median(plain_times), statistics.median(sami_times)
    print(f"model: {resolved.identity.get('name')}  threads: {torch.get_num_threads()}  queries/step: {args.queries}  "
          f"C: {args.constitutions}  sequences/step: {args.queries * args.constitutions ** 2}  "
          f"tokens/step: {tokens} (padded {padded})")
    print(f"plain causal-LM step: {plain_s:8.3f} s  {tokens / plain_s:10.1f} tokens/s   (runs: "
          f"{', '.join(f'{t:.3f}' for t in plain_times)})")
    print(f"SAMI step:            {sami_s:8.3f} s  {tokens / sami_s:10.1f} tokens/s   (runs: "
          f"{', '.join(f'{t:.3f}' for t in sami_times)})")
    print(f"ratio SAMI/plain tokens/s: {plain_s / sami_s:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    raise SystemExit(main())
