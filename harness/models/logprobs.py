"""Response log-probabilities of (context, continuation) pairs, batched, prompt and padding masked.

For a sequence with context tokens x and response tokens y_1..y_T this computes
sum_t log pi(y_t | x, y_<t) and the per-token mean (the SAMI paper's length-normalised score), with
gradients when called inside autograd (``response_logprobs``: SAMI, DPO). Scoring without gradients (the
mutual-information metric's C x C matrices, where each context meets C responses) runs each distinct context
once and reuses its key/value cache for every response (``shared_context_logprobs``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch


@dataclass
class EncodedBatch:
    input_ids: torch.Tensor       # (N, T) right-padded
    attention_mask: torch.Tensor  # (N, T)
    response_mask: torch.Tensor   # (N, T) 1 on response tokens only


def encode_context(tokenizer, text: str) -> list[int]:
    """Token ids of a rendered context; special tokens are added unless the text already starts with BOS."""
    bos = tokenizer.bos_token
    add_special = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=add_special).input_ids


def encode_pairs(tokenizer, contexts: list[str], continuations: list[str], max_context_tokens: int = 1024,
                 max_response_tokens: int = 1024) -> EncodedBatch:
    """Tokenize context and continuation separately and concatenate (the response tokens are exactly the
    tokens of the continuation); long contexts are truncated from the left, long responses from the right."""
    rows, masks = [], []
    for context, continuation in zip(contexts, continuations, strict=True):
        context_ids = encode_context(tokenizer, context)[-max_context_tokens:]
        response_ids = tokenizer(continuation, add_special_tokens=False).input_ids[:max_response_tokens]
        rows.append(context_ids + response_ids)
        masks.append([0] * len(context_ids) + [1] * len(response_ids))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    response = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, mask) in enumerate(zip(rows, masks)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        response[i, : len(row)] = torch.tensor(mask)
    return EncodedBatch(input_ids, attention, response)


def response_window(batch: EncodedBatch) -> int:
    """How many trailing positions need logits: from the position before the earliest first response token of
    any row to the end (rows are right-padded). Only those positions predict response tokens, so the LM head
    and the log-softmax over the vocabulary skip every other context position (``logits_to_keep``)."""
    width = batch.input_ids.shape[1]
    has_response = batch.response_mask.any(dim=1)
    if not bool(has_response.any()):
        return width
    first_response = batch.response_mask[has_response].float().argmax(dim=1).min().item()
    return min(width, width - int(first_response) + 1)


def window_logits(model, batch: EncodedBatch, keep: int) -> torch.Tensor:
    """Logits at the last ``keep`` positions but the final one, i.e. the predictions of the last ``keep - 1``
    tokens (``window_targets``)."""
    device = next(model.parameters()).device
    output = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                   logits_to_keep=keep)
    return output.logits[:, :-1, :]


def window_targets(batch: EncodedBatch, keep: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, response mask) of the last ``keep - 1`` positions, aligned with ``window_logits``."""
    start = batch.input_ids.shape[1] - keep + 1
    return batch.input_ids[:, start:].to(device), batch.response_mask[:, start:].to(device)


def window_token_logprobs(model, batch: EncodedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(logits, token log-probs, response mask, ``keep``) over the response window (``response_window``); the
    logits are returned for callers that need more than the log-probs (SAMI's KL to the base model)."""
    keep = response_window(batch)
    logits = window_logits(model, batch, keep)
    targets, mask = window_targets(batch, keep, logits.device)
    token_logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logits, token_logprobs, mask.to(token_logprobs.dtype), keep


def response_logprobs(model, batch: EncodedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob, response token count) per row; differentiable."""
    _, token_logprobs, mask, _ = window_token_logprobs(model, batch)
    return (token_logprobs * mask).sum(-1), mask.sum(-1)


@torch.no_grad()
def shared_context_logprobs(model, tokenizer, contexts: list[str], continuations: list[str],
                            max_context_tokens: int = 1024, max_response_tokens: int = 1024
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob, response token count) per pair, as ``response_logprobs(encode_pairs(...))`` gives, with
    each distinct context encoded once: the contexts run left-padded (positions counted from each one's first
    token) and keep their cache; every continuation then runs on a copy of its context's cache, and its first
    token is scored by the context's last logits."""
    encoded = {context: tuple(encode_context(tokenizer, context)[-max_context_tokens:]) for context in set(contexts)}
    pairs = []
    for context, continuation in zip(contexts, continuations, strict=True):
        context_key = encoded[context]
        response = tokenizer(continuation, add_special_tokens=False).input_ids[:max_response_tokens]
        if not context_key:  # nothing predicts the first token: it becomes the context, unscored (as encode_pairs)
            context_key, response = tuple(response[:1]), response[1:]
        pairs.append((context_key, response))
    unique = list(dict.fromkeys(key for key, _ in pairs if key))
    if not unique:  # only empty contexts with at most one token each: nothing to score
        return torch.zeros(len(pairs)), torch.zeros(len(pairs), dtype=torch.long)
    row_of = {key: row for row, key in enumerate(unique)}
    context_ids = [list(key) for key in unique]
    response_ids = [response for _, response in pairs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device

    width = max(len(ids) for ids in context_ids)
    context_input = torch.tensor([[pad] * (width - len(ids)) + ids for ids in context_ids], device=device)
    context_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in context_ids], device=device)
    context_out = model(input_ids=context_input, attention_mask=context_mask,
                        position_ids=(context_mask.cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1)
    rows = torch.tensor([row_of.get(key, 0) for key, _ in pairs], device=device)  # key () has no response left
    cache = getattr(context_out, "cache", None) or context_out.past_key_values
    cache.batch_select_indices(rows)

    span = max(1, max(len(ids) for ids in response_ids))
    response_input = torch.tensor([ids + [pad] * (span - len(ids)) for ids in response_ids], device=device)
    response_mask = torch.tensor([[1] * len(ids) + [0] * (span - len(ids)) for ids in response_ids], device=device)
    starts = torch.tensor([len(context_ids[row]) for row in rows.tolist()], device=device)
    logits = model(input_ids=response_input, attention_mask=torch.cat([context_mask[rows], response_mask], dim=1),
                   position_ids=starts[:, None] + torch.arange(span, device=device), **{_cache_argument(model): cache}
                   ).logits
    logits = torch.cat([context_out.logits[rows, -1:], logits[:, :-1]], dim=1).float()
    token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, response_input.unsqueeze(-1)).squeeze(-1)
    token_logprobs = torch.where(response_mask.bool(), token_logprobs, torch.zeros_like(token_logprobs))
    return token_logprobs.sum(-1), response_mask.sum(-1)


def _cache_argument(model) -> str:
    """transformers 5.x renames ``past_key_values`` to ``cache`` (the old name goes in 5.40)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def mean_logprobs(model, batch: EncodedBatch) -> torch.Tensor:
    """Per-token mean response log-prob (SAMI's length-normalised score); empty responses give 0."""
    total, count = response_logprobs(model, batch)
    return total / count.clamp(min=1)
