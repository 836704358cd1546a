"""Throughput of response log-prob scoring without gradients on the MI metric's C x C layout (each context
met by C responses), three ways over the same pairs:

- logits at every position (a plain ``model(...).logits`` over the padded batch): the baseline;
- logits at the response window only (``harness.models.logprobs.response_logprobs``: ``logits_to_keep`` trailing
  positions, the path SAMI and DPO train through);
- each distinct context run once and its cache shared by its C responses
  (``harness.models.logprobs.shared_context_logprobs``, what the ``hf`` backend's ``score`` does).

Runs alternate after a warm-up; medians are compared, and the largest difference from the baseline is printed.

    OMP_NUM_THREADS=2 python benchmarks/scoring.py                      # tiny random llama (seconds)
    OMP_NUM_THREADS=2 python benchmarks/scoring.py --model embedded     # SmolLM2-135M (a minute)
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import benchmark_model, build_groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="'tiny' (random 2-layer llama), 'embedded', or a folder")
    parser.add_argument("--queries", type=int, default=2, help="queries scored per batch")
    parser.add_argument("--constitutions", type=int, default=4, help="C (the MI metric uses 4)")
    parser.add_argument("--response-words", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    with benchmark_model(args.model) as loaded:
        compare(args, *loaded)
    return 0


def compare(args, model_config, resolved, tokenizer, model) -> None:
    import torch

    from harness.models.logprobs import response_logprobs, shared_context_logprobs
    from harness.models.prompts import resolve_format
    from harness.tasks import get_task
    from trainers.sami import SamiBatcher, scoring_pairs

    model.eval()
    task = get_task("tldr")
    groups = build_groups(task, args.queries, args.constitutions, args.response_words)
    prompt_format = resolve_format(model_config.prompt_format, tokenizer)
    batcher = SamiBatcher(task, tokenizer, prompt_format, max_prompt_tokens=1024, max_response_tokens=1024)
    batch = batcher.encode(groups)
    contexts, continuations = scoring_pairs(task, groups, tokenizer, prompt_format)
    tokens = int(batch.attention_mask.sum())

    def full_logits() -> torch.Tensor:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
        token_logprobs = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return (token_logprobs * batch.response_mask[:, 1:]).sum(-1)

    def windowed() -> torch.Tensor:
        return response_logprobs(model, batch)[0]

    def shared() -> torch.Tensor:
        return shared_context_logprobs(model, tokenizer, contexts, continuations)[0]

    def timed(score) -> tuple[float, torch.Tensor]:
        started = time.perf_counter()
        with torch.no_grad():
            result = score()
        return time.perf_counter() - started, result

    ways = {"logits at every position": full_logits, "logits at the response window": windowed,
            "context shared by its responses": shared}
    results = {name: timed(score)[1] for name, score in ways.items()}  # warm-up, and the values compared
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, score in ways.items():
            times[name].append(timed(score)[0])
    print(f"model: {resolved.identity.get('name')}  threads: {torch.get_num_threads()}  C: {args.constitutions}  "
          f"sequences: {batch.input_ids.shape[0]}  tokens: {tokens} (padded {batch.input_ids.numel()})")
    baseline_s = statistics.median(times["logits at every position"])
    for name in ways:
        seconds = statistics.median(times[name])
        difference = (results[name] - results["logits at every position"]).abs().max().item()
        print(f"{name:<33} {seconds:8.3f} s  {tokens / seconds:8.1f} tokens/s  speed-up {baseline_s / seconds:5.2f}x  "
              f"max |difference| {difference:.1e} nats")


if __name__ == "__main__":
    raise SystemExit(main())
