"""transformers backend: batched, length-sorted, left-padded generation and batched response log-probs.

The model is loaded on first use, so a fully cached request never loads it.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from harness.models.backends.base import LocalModelBackend
from harness.core.hashing import derived_seed
from harness.models.logprobs import encode_context, shared_context_logprobs
from harness.models.prompts import Prompt


class HFBackend(LocalModelBackend):
    name = "hf"

    @torch.no_grad()
    def _generate(self, prompts: list[Prompt], rendered: list[str], seeds: list[int], stop: list[str]) -> list[str]:
        tokenizer, model, config = self.tokenizer, self.model, self.generation_config
        encoded = [encode_context(tokenizer, text) for text in rendered]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths share a batch
        outputs: dict[int, str] = {}
        device = next(model.parameters()).device
        for start in tqdm(range(0, len(order), config.batch_size), desc="generating", unit="batch", leave=False):
            chunk = order[start:start + config.batch_size]
            width = max(len(encoded[i]) for i in chunk)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in chunk], device=device)
            attention = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk],
                                     device=device)
            sampling = config.temperature > 0
            if sampling:
                torch.manual_seed(derived_seed([seeds[i] for i in chunk]))
            generated = model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=config.max_new_tokens,
                do_sample=sampling, temperature=config.temperature if sampling else None,
                top_p=config.top_p if sampling else None, top_k=None, pad_token_id=pad,
                stop_strings=stop or None, tokenizer=tokenizer)
            for row, index in enumerate(chunk):
                outputs[index] = tokenizer.decode(generated[row, width:], skip_special_tokens=True)
        return [outputs[i] for i in range(len(rendered))]

    @torch.no_grad()
    def score(self, contexts: list[str], continuations: list[str]) -> list[dict]:
        """Per-sequence response log-probs: ``{"sum", "mean", "tokens"}``; up to ``batch_size`` distinct contexts
        per forward pass, each run once for all of its continuations (``shared_context_logprobs``)."""
        unique = list(dict.fromkeys(contexts))
        results: dict[int, dict] = {}
        for start in range(0, len(unique), self.generation_config.batch_size):
            chunk_contexts = set(unique[start:start + self.generation_config.batch_size])
            chunk = [i for i, context in enumerate(contexts) if context in chunk_contexts]
            total, count = shared_context_logprobs(self.model, self.tokenizer, [contexts[i] for i in chunk],
                                                   [continuations[i] for i in chunk])
            for row, index in enumerate(chunk):
                tokens = int(count[row])
                results[index] = {"sum": float(total[row]), "mean": float(total[row]) / max(tokens, 1), "tokens": tokens}
        return [results[i] for i in range(len(contexts))]
