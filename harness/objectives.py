"""SAMI's objective over the C x C log-prob matrix, shared by ``trainers/sami.py`` (the loss it minimises) and
``harness/flow/score.py`` (the mutual-information metric it reports).

Franken et al., NeurIPS 2024 (arXiv 2404.14313), section 3, eq. 3-4: for one query with C constitutions and the C
responses generated under them, L[i, j] = per-token mean log pi(y_j | prompt(x, c_i)), and

    L_SAMI = 1/2 [ (1/C) sum_i -log softmax_j(L[i, :])[i]   +   (1/C) sum_j -log softmax_i(L[:, j])[j] ],

whose ``log C - L_SAMI`` is the InfoNCE lower bound on I(Y; C | X) in nats (Oord et al. 2018; Poole et al. 2019).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.flow.generate import QueryGroup
from harness.models.prompts import Format, render_for_scoring
from harness.tasks import Task

ESTIMATOR = "InfoNCE lower bound on I(Y;C|X), log C - L_SAMI"


# --- the objective --------------------------------------------------------------------------------------

def _as_batch(logprobs: torch.Tensor) -> torch.Tensor:
    if logprobs.dim() == 2:
        logprobs = logprobs.unsqueeze(0)
    if logprobs.dim() != 3 or logprobs.shape[-1] != logprobs.shape[-2]:
        raise ValueError(f"expected a (C, C) or (B, C, C) log-prob matrix, got shape {tuple(logprobs.shape)}")
    return logprobs


def sami_loss_per_query(logprobs: torch.Tensor) -> torch.Tensor:
    """The SAMI loss of each query: shape (B,) for a (B, C, C) input (a (C, C) input counts as B = 1).

    Row i is a C-way classification of which response was generated under constitution i, column j of which
    constitution generated response j; both use the raw log-probs as logits (no temperature), target = diagonal.
    """
    L = _as_batch(logprobs)
    B, C, _ = L.shape
    target = torch.arange(C, device=L.device).expand(B, C)
    rows = F.cross_entropy(L.reshape(B * C, C), target.reshape(-1), reduction="none").view(B, C).mean(-1)
    cols = F.cross_entropy(L.transpose(1, 2).reshape(B * C, C), target.reshape(-1), reduction="none")
    return (rows + cols.view(B, C).mean(-1)) / 2


def sami_loss(logprobs: torch.Tensor) -> torch.Tensor:
    """SAMI's contrastive loss (Franken et al. 2024, eq. 3-4): the mean of the row-wise and the column-wise
    cross-entropy of ``logprobs`` against its diagonal, averaged over the batch.

    ``logprobs`` has shape (C, C) or (B, C, C); ``logprobs[..., i, j]`` is the per-token mean log-probability of
    response j under constitution i. Returns a scalar; for equal log-probs it is log C (ln 2 ~ 0.693 at C = 2).
    """
    return sami_loss_per_query(logprobs).mean()


def infonce_estimate(loss, n_constitutions: int):
    """``log C - loss``: the InfoNCE lower bound on I(Y; C | X) in nats (at most log C)."""
    return math.log(n_constitutions) - loss


def diagonal_gap(logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query: (mean diagonal log-prob, mean off-diagonal log-prob)."""
    L = _as_batch(logprobs)
    C = L.shape[-1]
    eye = torch.eye(C, dtype=torch.bool, device=L.device)
    diagonal = L[:, eye].mean(-1)
    off = L[:, ~eye].mean(-1) if C > 1 else torch.zeros_like(diagonal)
    return diagonal, off


# --- the log-prob matrix ---------------------------------------------------------------------------------

def scoring_pairs(task: Task, groups: list[QueryGroup], tokenizer, fmt: Format,
                  principles_in_system: bool = False) -> tuple[list[str], list[str]]:
    """(context, continuation) for every (query, constitution i, response j), in that nesting order.

    Contexts use the task's TRAINING prompt (the paper trains on a shorter prompt than it generates with)."""
    contexts, continuations = [], []
    for group in groups:
        prompts = [task.training_prompt(group.query, c.text) for c in group.constitutions]
        for prompt in prompts:
            for response in group.responses:
                context, continuation = render_for_scoring(prompt, response, fmt, tokenizer, principles_in_system)
                contexts.append(context)
                continuations.append(continuation)
    return contexts, continuations


def group_size(groups: list[QueryGroup]) -> int:
    sizes = {len(g.constitutions) for g in groups} | {len(g.responses) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"every query needs the same number C of constitutions and responses, got {sorted(sizes)}")
    return sizes.pop()
