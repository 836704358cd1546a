"""The local judge: a transformers model (the embedded SmolLM2 or any causal LM) read as a pairwise judge.

The prompt ends with an answer prefix (e.g. "Preferred summary:"); the judge's preference is the next-token
distribution over the verdict tokens (default " A" and " B"): p(A) = P(A) / (P(A) + P(B)), summing over the
listed variants of each letter. The winner is A when p(A) > 0.5 + tie_margin, B when p(A) < 0.5 - tie_margin,
and a tie in between. Nothing is parsed, so the only failures are degenerate probabilities (both zero or not
finite) and prompts longer than ``max_prompt_tokens``.
"""

from __future__ import annotations

import math
from functools import cached_property

from harness.config import ModelConfig
from harness.core.errors import ConfigError
from harness.judging.config import Judge
from harness.models.loading import LazyModel


class LocalScorer(LazyModel):
    def __init__(self, judge: Judge):
        self.judge = judge
        self.settings = judge.config.local
        self.model_config = ModelConfig(name=judge.config.model, dtype=self.settings.dtype)
        self.forward_passes = 0

    def identity(self) -> dict:
        return {"backend": "local", **self.resolved.identity}

    @cached_property
    def verdict_token_ids(self) -> tuple[list[int], list[int]]:
        ids = []
        for field, variants in (("local.a_tokens", self.settings.a_tokens), ("local.b_tokens", self.settings.b_tokens)):
            letter_ids = []
            for variant in variants:
                encoded = self.tokenizer(variant, add_special_tokens=False).input_ids
                if len(encoded) != 1:
                    raise ConfigError(self.judge.source, field, f"{variant!r} is {len(encoded)} tokens for this "
                                      "tokenizer; list single-token variants")
                letter_ids.append(encoded[0])
            ids.append(sorted(set(letter_ids)))
        if set(ids[0]) & set(ids[1]):
            raise ConfigError(self.judge.source, "local.b_tokens", "shares a token with local.a_tokens")
        return ids[0], ids[1]

    def full_text(self, prompt: str, noun: str) -> str:
        """The exact text whose next token is read: the prompt, then the answer prefix (in the chat template's
        assistant turn when ``chat_template`` is set)."""
        prefix = self.settings.answer_prefix.format(noun=noun, Noun=noun[:1].upper() + noun[1:])
        if self.settings.chat_template:
            chat = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt.strip()}], tokenize=False,
                                                      add_generation_prompt=True)
            return chat + prefix
        return prompt.rstrip() + "\n" + prefix

    def score(self, texts: list[str]) -> list[dict]:
        """One outcome per text (see ``harness.judging.engine``): choice A/B/tie or None, p(A), raw description."""
        import torch

        from harness.models.logprobs import encode_context

        a_ids, b_ids = self.verdict_token_ids
        encoded = [encode_context(self.tokenizer, text) for text in texts]
        outcomes: dict[int, dict] = {}
        ready = []
        for index, ids in enumerate(encoded):
            if len(ids) > self.settings.max_prompt_tokens:
                outcomes[index] = {"choice": None, "p_a": None, "attempts": 1,
                                   "raw": f"prompt of {len(ids)} tokens exceeds local.max_prompt_tokens "
                                          f"{self.settings.max_prompt_tokens}"}
            else:
                ready.append(index)
        ready.sort(key=lambda i: len(encoded[i]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch_size = self.judge.config.runtime.batch_size
        model = self.model
        device = next(model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(ready), batch_size):
                chunk = ready[start:start + batch_size]
                width = max(len(encoded[i]) for i in chunk)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, index in enumerate(chunk):  # left padding: the last position is every row's next token
                    input_ids[row, width - len(encoded[index]):] = torch.tensor(encoded[index])
                    attention[row, width - len(encoded[index]):] = 1
                positions = (attention.cumsum(-1) - 1).clamp(min=0)
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                               position_ids=positions.to(device), logits_to_keep=1).logits
                self.forward_passes += 1
                logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
                log_a = torch.logsumexp(logprobs[:, a_ids], dim=-1).tolist()
                log_b = torch.logsumexp(logprobs[:, b_ids], dim=-1).tolist()
                for index, la, lb in zip(chunk, log_a, log_b):
                    outcomes[index] = self._outcome(la, lb)
        return [outcomes[i] for i in range(len(texts))]

    def _outcome(self, log_a: float, log_b: float) -> dict:
        raw = f"P(A)={math.exp(log_a):.4g} P(B)={math.exp(log_b):.4g}"
        if not (math.isfinite(log_a) or math.isfinite(log_b)) or math.isnan(log_a) or math.isnan(log_b):
            return {"choice": None, "p_a": None, "attempts": 1, "raw": raw + " (degenerate: no probability on "
                    "either verdict token)"}
        p_a = 1.0 / (1.0 + math.exp(min(700.0, max(-700.0, log_b - log_a))))
        margin = self.settings.tie_margin
        choice = "tie" if abs(p_a - 0.5) < margin else ("A" if p_a > 0.5 else "B")
        return {"choice": choice, "p_a": p_a, "attempts": 1, "raw": f"{raw} p(A)={p_a:.4f}"}
