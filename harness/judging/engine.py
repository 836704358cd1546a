"""Running a judge over pairs of responses: prompts, cache, backends, verdict lines.

Every judge call is cached under a content hash of (judge hash, backend identity, rendered prompt, order, seed),
and written to the cache as soon as it finishes, so a rerun is free and an interrupted run resumes. Parse
failures (after the re-asks) are cached like any answer (``retry_failures`` asks again); transport failures are
not cached: they are recorded with an ``error`` and retried by the next run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from tqdm import tqdm

from harness.core.cache import ContentCache
from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.judging.config import Judge
from harness.judging.parsing import REASK, get_parser, soft_preference
from harness.judging.prompting import orders_for, render_prompt, shuffled_principles
from harness.judging.responses import Pair, words

CACHE_VERSION = 1
UNUSABLE_AFTER = 20  # this many answers in a row from the start of a run, all unparsable: the judge is unusable


@dataclass
class JudgeCall:
    pair: Pair
    order: str
    prompt: str  # the exact text the judge model reads (local: chat template and answer prefix included)
    key: str = ""
    api_seed: int = 0

    @property
    def first(self) -> str:
        return self.pair.candidate if self.order == "candidate_first" else self.pair.baseline

    @property
    def second(self) -> str:
        return self.pair.baseline if self.order == "candidate_first" else self.pair.candidate


@dataclass
class RunCounts:
    calls: int = 0
    cached: int = 0
    judged: int = 0
    errors: int = 0
    parse_failures: int = 0
    http_requests: int = 0
    retries: int = 0
    forward_passes: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class OpenAIJudgeBackend:
    """Chat judge over an OpenAI-compatible endpoint: parse the final line, re-ask on garbage, soft preference
    from the verdict token's log-probs where the endpoint returns them."""

    def __init__(self, judge: Judge, log: Callable[[str], None] | None = None):
        from harness.models.backends.openai_backend import ChatClient, ClientSettings

        config, runtime = judge.config, judge.config.runtime
        self.judge = judge
        self.parse = get_parser(config.parser.name, config.parser.version)
        self.client = ChatClient(config.model, ClientSettings(
            base_url=config.base_url, api_key_env=runtime.api_key_env, concurrency=runtime.concurrency,
            requests_per_minute=runtime.requests_per_minute, timeout_s=runtime.timeout_s,
            max_retries=runtime.max_retries, backoff_s=runtime.backoff_s, backoff_max_s=runtime.backoff_max_s), log)

    def identity(self) -> dict:
        return {"backend": "openai", **self.client.identity()}

    def full_text(self, prompt: str, noun: str) -> str:
        return prompt

    def _params(self, seed: int) -> dict:
        d = self.judge.config.decoding
        params: dict[str, Any] = {"temperature": d.temperature, "max_tokens": d.max_tokens, "seed": seed}
        if d.top_p < 1.0:
            params["top_p"] = d.top_p
        if d.logprobs:
            params["logprobs"] = True
            if d.top_logprobs:
                params["top_logprobs"] = d.top_logprobs
        return params

    def run(self, calls: list[JudgeCall], noun: str, on_done: Callable[[int, dict], None]) -> None:
        from harness.models.backends.openai_backend import ChatRequest, RequestFailed

        config = self.judge.config

        async def work(complete, call: JudgeCall) -> dict:
            messages = ([{"role": "system", "content": config.system}] if config.system else [])
            messages.append({"role": "user", "content": call.prompt})
            raws: list[str] = []
            for attempt in range(1, config.max_reasks + 2):
                result = await complete(ChatRequest(list(messages), self._params(call.api_seed)))
                raws.append(result.text)
                letter = self.parse(result.text)
                if letter is not None:
                    return {"choice": letter, "p_a": soft_preference(result.logprobs, letter), "attempts": attempt,
                            "raw": result.text, "raw_attempts": raws[:-1]}
                messages += [{"role": "assistant", "content": result.text},
                             {"role": "user", "content": REASK.format(noun=noun)}]
            return {"choice": None, "p_a": None, "attempts": len(raws), "raw": raws[-1], "raw_attempts": raws[:-1]}

        def done(index: int, result: Any) -> None:
            if isinstance(result, RequestFailed):
                result = {"choice": None, "p_a": None, "attempts": 0, "raw": "", "error": str(result)}
            on_done(index, result)

        self.client.map(calls, work, done)

    def counts(self) -> dict:
        return {"http_requests": self.client.http_requests, "retries": self.client.retries}


class LocalJudgeBackend:
    def __init__(self, judge: Judge):
        from harness.judging.local import LocalScorer

        self.scorer = LocalScorer(judge)
        self.judge = judge

    def identity(self) -> dict:
        return self.scorer.identity()

    def full_text(self, prompt: str, noun: str) -> str:
        return self.scorer.full_text(prompt, noun)

    def run(self, calls: list[JudgeCall], noun: str, on_done: Callable[[int, dict], None]) -> None:
        size = self.judge.config.runtime.batch_size * 4
        for start in range(0, len(calls), size):
            chunk = calls[start:start + size]
            for offset, outcome in enumerate(self.scorer.score([c.prompt for c in chunk])):
                on_done(start + offset, outcome)

    def counts(self) -> dict:
        return {"forward_passes": self.scorer.forward_passes}


def make_backend(judge: Judge, log: Callable[[str], None] | None = None):
    return OpenAIJudgeBackend(judge, log) if judge.config.backend == "openai" else LocalJudgeBackend(judge)


class JudgeRunner:
    """Judges pairs (candidate vs baseline) with one judge under one seed, through the cache."""

    def __init__(self, judge: Judge, cache: ContentCache | None, *, noun: str, query_label: str, seed: int = 0,
                 backend=None, progress: bool = True, log: Callable[[str], None] | None = None):
        self.judge = judge
        self.cache = cache
        self.noun = noun
        self.query_label = query_label
        self.seed = seed
        self._backend = backend
        self.progress = progress
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.counts = RunCounts()

    @cached_property
    def backend(self):
        return self._backend or make_backend(self.judge, self.log)

    def build_calls(self, pairs: list[Pair], orders: dict[Any, list[str]] | None = None) -> list[JudgeCall]:
        """One call per (pair, order): the protocol's orders, or ``orders[item]`` where given (meta-evaluation)."""
        calls = []
        identity = self.backend.identity()
        for pair in pairs:
            principles = shuffled_principles(pair.constitution or "", pair.item, self.seed,
                                             self.judge.config.shuffle_principles)
            item_orders = orders[pair.item] if orders is not None else orders_for(pair.item, self.seed, self.judge.protocol)
            for order in item_orders:
                first, second = (pair.candidate, pair.baseline) if order == "candidate_first" else (pair.baseline, pair.candidate)
                text = render_prompt(self.judge.template, principles=principles, query=pair.query, response_a=first,
                                     response_b=second, noun=self.noun, query_label=self.query_label)
                call = JudgeCall(pair, order, self.backend.full_text(text, self.noun),
                                 api_seed=derived_seed("judge", pair.item, order, self.seed))
                call.key = ContentCache.key("judgment", {
                    "version": CACHE_VERSION, "judge": self.judge.hash, "backend": identity, "prompt": call.prompt,
                    "order": order, "seed": self.seed})
                calls.append(call)
        return calls

    def _unusable(self, answers: list[dict]) -> None:
        parser = self.judge.config.parser
        raw = next((o.get("raw") for o in answers if o.get("raw")), "")
        raise HarnessError(
            f"judge '{self.judge.name}' is unusable: its first {len(answers)} answers all failed to parse with "
            f"parser '{parser.name}' (version {parser.version}); one raw reply: {str(raw)[:240]!r}; fix the judge's "
            "prompt, parser or endpoint (the failed answers are cached; --retry-failures asks again)")

    def run(self, calls: list[JudgeCall], retry_failures: bool = False) -> list[dict]:
        """Outcomes (``choice`` A/B/tie/None, ``p_a``, ``raw``, ``attempts``, maybe ``error``), one per call."""
        import time

        started = time.time()
        found = self.cache.get_many([c.key for c in calls]) if self.cache else {}
        if retry_failures:
            found = {k: v for k, v in found.items() if v.get("choice") is not None}
        outcomes: list[dict | None] = [found.get(c.key) for c in calls]
        missing = [i for i, o in enumerate(outcomes) if o is None]
        self.counts.calls += len(calls)
        self.counts.cached += len(calls) - len(missing)
        if missing:
            bar = tqdm(total=len(missing), desc=f"judging ({self.judge.name})", unit="call", disable=not self.progress,
                       leave=False)

            failed: list[dict] = []  # this run's answers (transport errors aside) while none has parsed
            check = {"open": True}

            def on_done(position: int, outcome: dict) -> None:
                index = missing[position]
                outcomes[index] = outcome
                if "error" not in outcome and self.cache:
                    self.cache.put_many("judgment", {calls[index].key: outcome})  # saved as it finishes
                bar.update(1)
                if "error" not in outcome and check["open"]:
                    if outcome.get("choice") is not None:
                        check["open"] = False  # one answer parsed: the judge works
                    else:
                        failed.append(outcome)
                        if len(failed) >= UNUSABLE_AFTER:
                            self._unusable(failed)

            try:
                self.backend.run([calls[i] for i in missing], self.noun, on_done)
            finally:
                bar.close()
            self.counts.judged += len(missing)
        for name, value in self.backend.counts().items():  # the backend's own running totals
            setattr(self.counts, name, value)
        self.counts.errors += sum("error" in o for o in outcomes)
        self.counts.parse_failures += sum(o["choice"] is None and "error" not in o for o in outcomes)
        self.counts.seconds += time.time() - started
        return outcomes  # type: ignore[return-value]


def winner_of(choice: str | None, order: str) -> str | None:
    if choice in (None, "tie"):
        return choice
    candidate_letter = "A" if order == "candidate_first" else "B"
    return "candidate" if choice == candidate_letter else "baseline"


def verdict_line(call: JudgeCall, outcome: dict, judge: Judge, candidate: str, baseline: str,
                 item: Any = None) -> dict:
    """One line of verdicts.jsonl (the schema ``harness.stats.verdicts`` reads, plus the judge's raw answer)."""
    p_a = outcome.get("p_a")
    p_candidate = None if p_a is None else (p_a if call.order == "candidate_first" else 1.0 - p_a)
    line = {
        "item": call.pair.item if item is None else item,
        "order": call.order,
        "winner": winner_of(outcome.get("choice"), call.order),
        "p_candidate": p_candidate,
        "candidate_length": words(call.pair.candidate),
        "baseline_length": words(call.pair.baseline),
        "candidate": candidate,
        "baseline": baseline,
        "judge": judge.name,
        "judge_hash": judge.hash,
        "attempts": outcome.get("attempts", 0),
        "raw": outcome.get("raw", ""),
    }
    if outcome.get("raw_attempts"):
        line["raw_attempts"] = outcome["raw_attempts"]
    if outcome.get("error"):
        line["error"] = outcome["error"]
    return line

