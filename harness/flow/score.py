"""The mutual-information metric: SAMI's InfoNCE lower bound on I(Y; C | X), on held-out queries.

For each held-out evaluation query x the policy generates one response under each of C constitutions
(default C = 4: both principles crossed with their antitheses, ``train.mi_constitutions``). A *scorer* model
fills the C x C matrix L[i, j] = per-token mean log p(y_j | training prompt(x, c_i)) and the estimate is

    I_hat = log C - L_SAMI(L)          (nats; bits = nats / ln 2; at most log C)

where L_SAMI is the loss of ``harness.objectives.sami_loss`` averaged over queries. It is reported twice per
iteration: scored by the trained policy itself, and by the fixed base model. The first is the quantity SAMI
optimises and can rise simply because the policy sharpens its own likelihoods; the second asks whether the
responses carry more information about the constitution to an observer that did not train (SPEC section 2).

The interval is a seeded 95% percentile bootstrap over queries (``harness.stats.bootstrap``: the query is the
resampling unit, ``train.mi_resamples`` >= 2,000 resamples). Changes against iteration 0 use a paired bootstrap
over the same queries (the bootstrap of the per-query loss differences). (The paper's MI figures used summed log-probs minus their mean over constitutions, which is not a
bounded estimator; we do not report that.)

Log-probs are cached in the content cache, keyed on the scorer's identity (weights hash), the rendered context
and the continuation. Results: ``run_dir/metrics.jsonl`` (one line per iteration x scorer, updated in place on
reruns) and ``run_dir/mutual_information/iter-<t>-<trainer>/`` (per-query values and a stage marker).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.config import ModelConfig, RunConfig
from harness.core.artifacts import read_json, read_jsonl, write_json, write_jsonl
from harness.core.cache import ContentCache
from harness.core.hashing import content_hash, derived_seed
from harness.core.run_layout import RunLayout
from harness.core.stages import Stage
from harness.flow.generate import QueryGroup, generate_groups, sample_constitutions
from harness.models.backends import create_backend
from harness.models.loading import model_identity
from harness.objectives import ESTIMATOR, group_size, sami_loss_per_query, scoring_pairs
from harness.stats.bootstrap import bootstrap_mean_ci
from harness.tasks import Task, get_task
from harness.tasks.loaders import Query, fingerprint
from harness.tasks.principles import ConstitutionSampler

SCORE_CACHE_VERSION = 1
LN2 = math.log(2.0)


# --- statistics ----------------------------------------------------------------------------------------------

def infonce_summary(per_query_loss: np.ndarray, n_constitutions: int, resamples: int = 10_000, seed: int = 0,
                    level: float = 0.95) -> dict:
    """Point estimate ``log C - mean loss`` (nats and bits) with a percentile bootstrap CI over queries (the
    interval of the mean loss, mapped through ``log C - x``)."""
    losses = np.asarray(per_query_loss, dtype=np.float64)
    if losses.ndim != 1 or len(losses) == 0:
        raise ValueError("need one loss per query")
    log_c = math.log(n_constitutions)
    estimate = log_c - losses.mean()
    loss_low, loss_high = _percentile_interval(losses, resamples, seed, level)
    low, high = log_c - loss_high, log_c - loss_low
    return {"estimator": ESTIMATOR, "C": n_constitutions, "log_C": log_c, "n_queries": int(len(losses)),
            "loss": float(losses.mean()), "mi_nats": float(estimate), "mi_bits": float(estimate / LN2),
            "ci95_nats": [float(low), float(high)], "ci95_bits": [float(low / LN2), float(high / LN2)],
            "interval": f"{level:.0%} percentile bootstrap over queries, {resamples} resamples, seed {seed}"}


def paired_change(before: np.ndarray, after: np.ndarray, resamples: int = 10_000, seed: int = 0,
                  level: float = 0.95) -> dict:
    """MI(after) - MI(before) on the same queries (= mean of loss_before - loss_after), paired bootstrap CI."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if before.shape != after.shape:
        raise ValueError("paired change needs the same queries on both sides")
    differences = before - after
    low, high = _percentile_interval(differences, resamples, seed, level)
    return {"nats": float(differences.mean()), "bits": float(differences.mean() / LN2),
            "ci95_nats": [float(low), float(high)], "ci95_bits": [float(low / LN2), float(high / LN2)],
            "interval": f"{level:.0%} paired percentile bootstrap over queries, {resamples} resamples, seed {seed}"}


def _percentile_interval(values: np.ndarray, resamples: int, seed: int, level: float) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; a single query gives the degenerate interval at its value."""
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    low, high, _ = bootstrap_mean_ci(values, seed, resamples, method="percentile", level=level)
    return low, high


# --- data, generation and scoring --------------------------------------------------------------------------------

def mi_queries(task: Task, config: RunConfig) -> list[Query]:
    """The first ``eval.mi_queries`` evaluation queries (held out from training)."""
    queries = task.load_queries(config.data, "eval")
    return queries[: config.eval.mi_queries] if config.eval.mi_queries else queries


def mi_constitutions(task: Task, config: RunConfig, queries: list[Query]):
    sampler = ConstitutionSampler(task.principles(config.principles.file), config.train.mi_constitutions)
    return sample_constitutions(sampler, queries, config.seed, "mutual-information")


def scoring_backend(model: ModelConfig, config: RunConfig):
    """Scoring needs token log-probs: always the transformers backend."""
    return create_backend(model, config.generation.model_copy(update={"backend": "hf"}))


def score_matrix(task: Task, backend, groups: list[QueryGroup], cache: ContentCache | None, summed: bool = False,
                 principles_in_system: bool = False) -> np.ndarray:
    """The (B, C, C) matrix of response log-probs (per-token mean unless ``summed``), no gradients, cached."""
    from tqdm import tqdm

    C = group_size(groups)
    contexts, continuations = scoring_pairs(task, groups, backend.tokenizer, backend.prompt_format,
                                            principles_in_system)
    identity = backend.identity()
    # the weights' dtype changes the log-probs; float32 (the default) is left out so existing keys stay valid
    dtype = getattr(getattr(backend, "model_config", None), "dtype", "float32")
    keys = [ContentCache.key("logprob", {"version": SCORE_CACHE_VERSION, "model": identity, "context": context,
                                         "continuation": continuation,
                                         **({"dtype": dtype} if dtype != "float32" else {})})
            for context, continuation in zip(contexts, continuations)]
    found = cache.get_many(keys) if cache else {}
    missing = [i for i, key in enumerate(keys) if key not in found]
    chunk_size = max(1, backend.generation_config.batch_size) * 4
    for start in tqdm(range(0, len(missing), chunk_size), desc="scoring C x C", unit="chunk", leave=False,
                      disable=len(missing) <= chunk_size):
        chunk = missing[start:start + chunk_size]
        scores = backend.score([contexts[i] for i in chunk], [continuations[i] for i in chunk])
        new = {keys[i]: score for i, score in zip(chunk, scores)}
        found.update(new)
        if cache:
            cache.put_many("logprob", new)  # per chunk: an interrupted run keeps its work
    values = np.array([found[key]["sum" if summed else "mean"] for key in keys], dtype=np.float64)
    return values.reshape(len(groups), C, C)


def per_query_losses(matrix: np.ndarray) -> np.ndarray:
    import torch

    return sami_loss_per_query(torch.as_tensor(matrix, dtype=torch.float64)).numpy()


def measure(config: RunConfig, task: Task, policy: ModelConfig, scorers: dict[str, ModelConfig],
            cache: ContentCache | None) -> tuple[list[QueryGroup], dict[str, np.ndarray], dict]:
    """Generate with ``policy`` under C constitutions on the MI queries and score with each scorer.

    Returns the groups, per-query losses per scorer name, and the identities of the models involved."""
    queries = mi_queries(task, config)
    constitutions = mi_constitutions(task, config, queries)
    generator = create_backend(policy, config.generation)
    groups = generate_groups(task, generator, queries, constitutions, config.generation.seed, cache,
                             desc="MI: generating")
    identities = {"policy": generator.identity()}
    losses = {}
    in_system = config.model.principles_in == "system"
    for name, model in scorers.items():
        same = model.model_dump() == policy.model_dump() and generator.name == "hf"
        backend = generator if same else scoring_backend(model, config)
        identities[name] = backend.identity()
        losses[name] = per_query_losses(score_matrix(task, backend, groups, cache, config.train.summed_logprobs,
                                                     in_system))
        if not same:
            backend.unload()
    generator.unload()
    return groups, losses, identities


# --- per iteration, with markers and metrics.jsonl ------------------------------------------------------------

def _policy_model(config: RunConfig, layout: RunLayout, iteration: int, trainer: str) -> ModelConfig:
    if iteration == 0:
        return config.model
    folder = layout.checkpoint(iteration, trainer)
    if not folder.is_dir():
        raise FileNotFoundError(f"no checkpoint for {trainer} at iteration {iteration}: {folder}")
    return config.model.at_checkpoint(folder)


def _inputs(config: RunConfig, task: Task, policy_identity: dict, base_identity: dict) -> dict:
    queries = mi_queries(task, config)
    return {"policy": policy_identity, "base": base_identity, "queries": fingerprint(queries),
            "constitutions": content_hash([[c.text for c in g] for g in mi_constitutions(task, config, queries)]),
            "generation": config.generation.model_dump(mode="json"),
            "model": config.model.model_dump(mode="json", exclude={"name", "revision"}),
            "summed": config.train.summed_logprobs, "C": config.train.mi_constitutions,
            "resamples": config.train.mi_resamples, "seed": config.seed}


def iteration_mutual_information(config: RunConfig, layout: RunLayout, iteration: int,
                                 cache: ContentCache | None = None, trainer: str | None = None) -> list[dict]:
    """MI of one iteration's policy (0 = the base model), scored by the policy and by the base model.

    Skips the work when its marker is current; updates ``run_dir/metrics.jsonl`` (one line per scorer) and
    returns those lines. Each line names the estimator, the scorer, and the paired change vs iteration 0."""
    task = get_task(config.task)
    trainer = trainer or config.trainer
    folder = layout.mutual_information(iteration, trainer)
    policy = _policy_model(config, layout, iteration, trainer)
    policy_identity, base_identity = model_identity(policy), model_identity(config.model)
    stage = Stage(folder, "mutual_information", _inputs(config, task, policy_identity, base_identity))
    if not stage.done():
        scorers = {"policy": policy} if iteration == 0 else {"policy": policy, "base": config.model}
        groups, losses, identities = measure(config, task, policy, scorers, cache)
        if iteration == 0:
            losses["base"], identities["base"] = losses["policy"], identities["policy"]
        write_jsonl(folder / "generations.jsonl", [g.to_json() for g in groups])
        write_json(folder / "per_query.json", {"items": [g.query.id for g in groups],
                                               "loss": {k: v.tolist() for k, v in losses.items()},
                                               "identities": identities})
        stage.finish(iteration=iteration, trainer=trainer if iteration else "base", n_queries=len(groups))
    stored = read_json(folder / "per_query.json")
    baseline = None
    if iteration > 0:
        iteration_mutual_information(config, layout, 0, cache)  # measured once, skipped when current
        baseline = read_json(layout.mutual_information(0, trainer) / "per_query.json")
    C, R = config.train.mi_constitutions, config.train.mi_resamples
    records = []
    for scorer in ("policy", "base"):
        losses = np.asarray(stored["loss"][scorer])
        seed = derived_seed(config.seed, "mutual-information", iteration, scorer)
        record = {"iteration": iteration, "trainer": trainer if iteration else "base", "scorer": scorer,
                  "scorer_description": ("the policy of this iteration scores its own generations" if scorer == "policy"
                                         else "the fixed base model scores this iteration's generations"),
                  "scorer_model": stored["identities"][scorer], "policy_model": stored["identities"]["policy"],
                  "logprobs": "summed" if config.train.summed_logprobs else "per-token mean",
                  "prompt": "task training prompt", **infonce_summary(losses, C, R, seed)}
        if baseline is not None:
            if baseline["items"] != stored["items"]:
                raise ValueError("iteration 0 and this iteration were measured on different queries")
            record["change_vs_iteration_0"] = paired_change(np.asarray(baseline["loss"][scorer]), losses, R, seed)
        records.append(record)
    _upsert_metrics(layout.metrics_file, records)
    return records


def _upsert_metrics(path: Path, records: list[dict]) -> None:
    """Replace the lines of the same (iteration, trainer, scorer), keep the others, write atomically."""
    def key(row: dict) -> tuple:
        return row.get("iteration"), row.get("trainer"), row.get("scorer")

    rows = read_jsonl(path) if path.is_file() else []
    new_keys = {key(r) for r in records}
    rows = [r for r in rows if key(r) not in new_keys] + records
    rows.sort(key=lambda r: (r.get("iteration", 0), str(r.get("trainer")), str(r.get("scorer"))))
    write_jsonl(path, rows)


def record_mutual_information(config: RunConfig, layout: RunLayout, cache: ContentCache | None = None,
                              trainers: list[str] | None = None) -> list[dict]:
    """MI for iteration 0 (base) and the trained iterations of ``trainers`` (default: the primary trainer): every
    iteration with ``eval.mi_every_iteration``, else the last one."""
    records = iteration_mutual_information(config, layout, 0, cache)
    last = config.train.iterations
    iterations = range(1, last + 1) if config.eval.mi_every_iteration else [last]
    for trainer in trainers or [config.trainer]:
        for t in iterations:
            records += iteration_mutual_information(config, layout, t, cache, trainer)
    return records
