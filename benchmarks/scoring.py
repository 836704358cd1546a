"""Throughput of response log-prob scoring (the MI metric's C x C matrices, DPO's reference pass) with logits
only at the response window vs logits at every position, on the same padded batch, without gradients.

``harness.logprobs.response_logprobs`` asks the model for ``logits_to_keep`` trailing positions: those from the
token before the earliest response token to the end. The baseline computes the LM head and log-softmax over every
position (what a plain ``model(...).logits`` does). Runs alternate after a warm-up; medians are compared.

    OMP_NUM_THREADS=2 python benchmarks/scoring.py                      # tiny random llama (seconds)
    OMP_NUM_THREADS=2 python benchmarks/scoring.py --model embedded     # SmolLM2-135M (a minute)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="'tiny' (random 2-layer llama), 'embedded', or a folder")
    parser.add_argument("--queries", type=int, default=2, help="queries scored per batch")
    parser.add_argument("--constitutions", type=int, default=4, help="C (the MI metric uses 4)")
    parser.add_argument("--response-words", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    from harness.config import ModelConfig
    from harness.logprobs import response_logprobs
    from harness.models import load_causal_lm, load_tokenizer, resolve_model
    from harness.prompts import resolve_format
    from harness.tasks import get_task
    from sami_step import build_groups
    from trainers.sami import SamiBatcher

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    folder = None
    if args.model == "tiny":
        sys.path.insert(0, str(REPO / "tests"))
        from tiny_models import build_tiny_model

        folder = tempfile.TemporaryDirectory()
        model_config = ModelConfig(name=str(build_tiny_model(Path(folder.name) / "tiny", hidden=64)), prompt_format="base")
    else:
        model_config = ModelConfig(name=args.model)
    resolved = resolve_model(model_config)
    tokenizer = load_tokenizer(resolved, model_config)
    model = load_causal_lm(resolved, model_config).eval()
    task = get_task("tldr")
    groups = build_groups(task, args.queries, args.constitutions, args.response_words)
    batcher = SamiBatcher(task, tokenizer, resolve_format(model_config.prompt_format, tokenizer),
                          max_prompt_tokens=1024, max_response_tokens=512)
    batch = batcher.encode(groups)
    tokens = int(batch.attention_mask.sum())

    def full_logits() -> torch.Tensor:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
        token_logprobs = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return (token_logprobs * batch.response_mask[:, 1:]).sum(-1)

    def windowed() -> torch.Tensor:
        return response_logprobs(model, batch)[0]

    def timed(score) -> tuple[float, torch.Tensor]:
        started = time.perf_counter()
        with torch.no_grad():
            result = score()
        return time.perf_counter() - started, result

    _, reference = timed(full_logits)
    _, candidate = timed(windowed)
    full_times, window_times = [], []
    for _ in range(args.repeats):
        full_times.append(timed(full_logits)[0])
        window_times.append(timed(windowed)[0])
    full_s, window_s = statistics.median(full_times), statistics.median(window_times)
    print(f"model: {resolved.identity.get('name')}  threads: {torch.get_num_threads()}  sequences: "
          f"{batch.input_ids.shape[0]}  tokens: {tokens} (padded {batch.input_ids.numel()})  "
          f"max |difference|: {(reference - candidate).abs().max().item():.2e} nats")
    print(f"logits at every position: {full_s:8.3f} s  {tokens / full_s:10.1f} tokens/s")
    print(f"logits at the response:   {window_s:8.3f} s  {tokens / window_s:10.1f} tokens/s")
    print(f"speed-up: {full_s / window_s:.2f}x")
    if folder is not None:
        folder.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
