"""Response log-probabilities of (context, continuation) pairs, batched, prompt and padding masked.

For a sequence with context tokens x and response tokens y_1..y_T this computes
sum_t log pi(y_t | x, y_<t) and the per-token mean (the SAMI paper's length-normalised score), with
gradients when called inside autograd. SAMI, the mutual-information metric, DPO and local judges share it.
"""

from __future__ import annotations

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


def response_logprobs(model, batch: EncodedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob, response token count) per row; differentiable."""
    keep = response_window(batch)
    logits = window_logits(model, batch, keep).float()
    targets, mask = window_targets(batch, keep, logits.device)
    token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = mask.to(token_logprobs.dtype)
    return (token_logprobs * mask).sum(-1), mask.sum(-1)


def mean_logprobs(model, batch: EncodedBatch) -> torch.Tensor:
    """Per-token mean response log-prob (SAMI's length-normalised score); empty responses give 0."""
    total, count = response_logprobs(model, batch)
    return total / count.clamp(min=1)
