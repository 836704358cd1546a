"""vLLM backend: the offline ``vllm.LLM`` engine on GPUs, behind the same interface as ``hf``.

vLLM is imported only when this backend is used (``pip install 'sami-harness[vllm]'``, needs a CUDA GPU). Prompts
render exactly as in the ``hf`` backend (the tokenizer's chat template, or the paper's format-only base prompt),
and the model identity is the same (``resolve_model``), so the cache never mixes models. Each prompt gets its own
seed (``SamplingParams(seed=...)``), so a sampled answer does not depend on the batch it ran in. ``score`` reads
the log-probs of a (context, continuation) pair from vLLM's ``prompt_logprobs``, with the context masked.
"""

from __future__ import annotations

from functools import cached_property

from harness.models.backends.base import LocalModelBackend
from harness.core.errors import HarnessError
from harness.models.logprobs import encode_context
from harness.models.prompts import Prompt

INSTALL_HINT = "pip install 'sami-harness[vllm]'"


def import_vllm():
    """The ``vllm`` module, or a HarnessError with the install command when it is not installed."""
    try:
        import vllm
    except ImportError as exc:
        raise HarnessError(f"the 'vllm' backend needs vLLM, which is not installed ({exc}); install it with: "
                           f"{INSTALL_HINT} (needs a CUDA GPU), or use --backend hf") from None
    return vllm


class VLLMBackend(LocalModelBackend):
    name = "vllm"

    def __init__(self, model_config, generation_config):
        super().__init__(model_config, generation_config)
        import_vllm()  # fail at once, before any data or cache work, when vLLM is missing

    @cached_property
    def llm(self):
        vllm = import_vllm()
        config = self.model_config
        return vllm.LLM(model=self.resolved.load_path, revision=config.revision,
                        tensor_parallel_size=self.generation_config.tensor_parallel_size, dtype=config.dtype,
                        seed=self.generation_config.seed, trust_remote_code=config.trust_remote_code)

    @cached_property
    def tokenizer(self):
        """The engine's tokenizer when the engine is up; otherwise the same tokenizer loaded by transformers,
        so a fully cached request renders its prompts without starting vLLM."""
        if "llm" in self.__dict__:
            return self.llm.get_tokenizer()
        from harness.models.loading import load_tokenizer

        return load_tokenizer(self.resolved, self.model_config)

    def _sampling_params(self, seed: int | None, stop: list[str], **extra):
        vllm = import_vllm()
        config = self.generation_config
        sampling = config.temperature > 0
        return vllm.SamplingParams(temperature=config.temperature, top_p=config.top_p if sampling else 1.0,
                                   max_tokens=config.max_new_tokens, stop=stop or None,
                                   seed=seed if sampling else None, **extra)

    def _token_prompt(self, ids: list[int]) -> dict:
        return {"prompt_token_ids": ids}

    def _generate(self, prompts: list[Prompt], rendered: list[str], seeds: list[int], stop: list[str]) -> list[str]:
        llm = self.llm
        tokenizer = llm.get_tokenizer()
        # Token ids as in the hf backend: a chat template that already starts with BOS gets no second one.
        inputs = [self._token_prompt(encode_context(tokenizer, text)) for text in rendered]
        params = [self._sampling_params(seed, stop) for seed in seeds]
        outputs = llm.generate(inputs, params, use_tqdm=len(inputs) > 1)
        return [output.outputs[0].text for output in outputs]

    def score(self, contexts: list[str], continuations: list[str]) -> list[dict]:
        """Per-sequence response log-probs ``{"sum", "mean", "tokens"}`` from vLLM's prompt log-probs.

        Context and continuation are tokenized separately and concatenated (as in ``harness.models.logprobs``), so the
        response tokens are exactly the continuation's; only those positions are summed.
        """
        llm = self.llm
        tokenizer = llm.get_tokenizer()
        inputs, boundaries = [], []
        for context, continuation in zip(contexts, continuations, strict=True):
            context_ids = encode_context(tokenizer, context)
            response_ids = tokenizer(continuation, add_special_tokens=False).input_ids
            inputs.append(self._token_prompt(context_ids + response_ids))
            boundaries.append(len(context_ids))
        vllm = import_vllm()
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = llm.generate(inputs, params, use_tqdm=len(inputs) > 1)
        results = []
        for request, output, start in zip(inputs, outputs, boundaries):
            ids = request["prompt_token_ids"]
            logprobs = output.prompt_logprobs
            if logprobs is None:
                raise HarnessError("vLLM returned no prompt log-probs; this vLLM version cannot score responses")
            first = max(start, 1)  # the very first token of a sequence has no log-prob (as in harness.models.logprobs)
            total = 0.0
            for position in range(first, len(ids)):
                value = logprobs[position][ids[position]]
                total += float(getattr(value, "logprob", value))
            tokens = len(ids) - first
            results.append({"sum": total, "mean": total / max(tokens, 1), "tokens": tokens})
        return results
