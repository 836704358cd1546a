"""OpenAI-compatible chat endpoints (OpenAI, ``vllm serve``, other servers) through the ``openai`` client.

Two layers:

- ``ChatClient``: async chat completions with bounded concurrency (a semaphore), a simple rate limiter
  (requests per minute, evenly spaced), retries with exponential backoff and jitter on 408, 409, 429, 5xx, timeouts
  and connection errors (honouring ``Retry-After`` up to the backoff cap), and token log-probabilities where the
  endpoint supports them (a server that refuses ``logprobs`` is asked again without them, once per client).
  The judge uses it directly.
- ``OpenAIBackend``: the generation ``Backend`` on top of it (API-served instruct baselines), cached through
  ``Backend.generate`` like every other backend.

The API key is read from the environment variable named in the config at the moment the client is built; it
is never stored on the object, logged, written into a cache key or value, a verdict or a manifest, and it is
scrubbed from error messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from harness.models.backends.base import Backend
from harness.core.errors import HarnessError
from harness.core.urls import redact_text, redact_url
from harness.models.prompts import Format, Prompt

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "EMPTY"  # what `vllm serve` and most local servers accept when they check no key


def resolve_base_url(base_url: str | None) -> str:
    """The endpoint actually used: the configured one, else $OPENAI_BASE_URL, else OpenAI's."""
    return (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL).rstrip("/")


def read_api_key(api_key_env: str, base_url: str) -> str:
    """The key from ``$api_key_env``. Required for OpenAI itself; a placeholder for other endpoints."""
    key = os.environ.get(api_key_env)
    if key:
        return key
    if base_url.startswith(OPENAI_DEFAULT_BASE_URL):
        raise HarnessError(f"no API key: set the environment variable {api_key_env} (the config names it in "
                           "'api_key_env'), or point base_url at another OpenAI-compatible endpoint")
    return PLACEHOLDER_KEY


@dataclass
class ClientSettings:
    """Transport settings; none of them changes an answer, so none enters a cache key."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    requests_per_minute: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass
class ChatResult:
    """One completion: its text, the log-probs of its tokens (``[(token, logprob, {alt: logprob})]``, or None
    when the endpoint gave none), the finish reason, and how many HTTP attempts it took."""

    text: str
    logprobs: list[tuple[str, float, dict[str, float]]] | None
    finish_reason: str | None
    http_attempts: int


@dataclass
class ChatRequest:
    messages: list[dict]
    params: dict = field(default_factory=dict)  # model-call parameters: temperature, max_tokens, seed, stop, ...


class FatalRequestError(HarnessError):
    """A request the endpoint refuses for good (bad key, unknown model, ...): the whole run stops."""


class RequestFailed(Exception):
    """One request failed after its retries, or was refused as malformed; other requests go on."""


class RateLimiter:
    """Spaces request starts at least 60 / requests_per_minute seconds apart (None: no limit)."""

    def __init__(self, requests_per_minute: float | None):
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


def _scrub(text: str, secret: str | None) -> str:
    if secret and secret != PLACEHOLDER_KEY and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _token_logprobs(choice: Any) -> list[tuple[str, float, dict[str, float]]] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    tokens = []
    for entry in content:
        alternatives = {alt.token: float(alt.logprob) for alt in (entry.top_logprobs or [])}
        tokens.append((entry.token, float(entry.logprob), alternatives))
    return tokens


class ChatClient:
    """Async chat completions against one OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(self, model: str, settings: ClientSettings, log: Callable[[str], None] | None = None):
        self.model = model
        self.settings = settings
        self.base_url = resolve_base_url(settings.base_url)
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.logprobs_supported = True
        self.http_requests = 0  # every HTTP attempt, retries included (telemetry and tests)
        self.retries = 0
        self._rng = random.Random(0)  # backoff jitter only; never affects an answer

    def identity(self) -> dict:
        """What identifies the answers: the model name and the endpoint (no key, and no credentials the URL
        itself carries: ``user:key@`` and ``?api-key=`` are redacted)."""
        return {"model": self.model, "base_url": redact_url(self.base_url)}

    @property
    def safe_url(self) -> str:
        """The endpoint as it may be printed or written."""
        return redact_url(self.base_url) or ""

    def _clean(self, text: str, key: str) -> str:
        return redact_text(_scrub(text, key), self.base_url)

    def _client(self):
        import openai

        key = read_api_key(self.settings.api_key_env, self.base_url)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0,
                                  timeout=self.settings.timeout_s), key

    def _delay(self, attempt: int, exc: Exception | None) -> float:
        backoff = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** attempt)
        delay = backoff * (0.5 + 0.5 * self._rng.random())
        hinted = _retry_after(exc) if exc is not None else None
        if hinted is not None:
            delay = max(delay, min(hinted, self.settings.backoff_max_s))
        return delay

    async def _complete(self, client, key: str, limiter: RateLimiter, request: ChatRequest) -> ChatResult:
        import openai

        attempt = 0
        while True:
            params = {"model": self.model, "messages": request.messages, **request.params}
            if not self.logprobs_supported:
                params.pop("logprobs", None)
                params.pop("top_logprobs", None)
            await limiter.wait()
            self.http_requests += 1
            attempt += 1
            try:
                response = await client.chat.completions.create(**params)
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError) as exc:
                retryable: Exception = exc
            except openai.APIStatusError as exc:
                message = self._clean(str(exc), key)
                if exc.status_code >= 500 or exc.status_code in (408, 409):
                    retryable = exc
                elif exc.status_code in (400, 422) and "logprob" in message.lower() and params.get("logprobs"):
                    self.logprobs_supported = False
                    self.log(f"note: {self.safe_url} refuses log-probs ({message.splitlines()[0][:160]}); "
                             "asking without them (verdicts fall back to the parsed letter)")
                    continue
                elif exc.status_code in (401, 403, 404):
                    raise FatalRequestError(f"{self.safe_url} refused the request (HTTP {exc.status_code}): "
                                            f"{message.splitlines()[0][:300]}") from None
                else:
                    raise RequestFailed(f"HTTP {exc.status_code}: {message.splitlines()[0][:300]}") from None
            else:
                if not response.choices:
                    raise RequestFailed("the endpoint returned no choices")
                choice = response.choices[0]
                return ChatResult(text=choice.message.content or "", logprobs=_token_logprobs(choice),
                                  finish_reason=choice.finish_reason, http_attempts=attempt)
            if attempt > self.settings.max_retries:
                raise RequestFailed(f"gave up after {attempt} attempts: {type(retryable).__name__}: "
                                    f"{(self._clean(str(retryable), key).splitlines() or [''])[0][:300]}")
            self.retries += 1
            await asyncio.sleep(self._delay(attempt - 1, retryable))

    async def map_async(self, jobs: Sequence[Any], work: Callable[[Callable[[ChatRequest], Awaitable[ChatResult]], Any],
                                                                   Awaitable[Any]],
                        on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Run ``work(complete, job)`` for every job, at most ``concurrency`` requests in flight.

        ``complete(request)`` sends one chat request (retrying as configured); a job may call it several times
        (e.g. to re-ask after a garbage answer). ``on_done(index, result)`` runs as each job finishes (e.g. to
        write it to the cache, so an interrupted run keeps its work). A job that raises ``RequestFailed`` yields
        that exception as its result; ``FatalRequestError`` cancels the rest and propagates.
        """
        client, key = self._client()
        semaphore = asyncio.Semaphore(self.settings.concurrency)
        # at most `concurrency` jobs in flight, each holding its slot from its first request to its last: a job's
        # re-ask goes out as soon as its previous answer is in, instead of queueing behind every other job's first
        # attempt, so jobs finish (and reach on_done, e.g. the cache) one by one from the start of the run
        job_slots = asyncio.Semaphore(self.settings.concurrency)
        limiter = RateLimiter(self.settings.requests_per_minute)

        async def complete(request: ChatRequest) -> ChatResult:
            async with semaphore:
                return await self._complete(client, key, limiter, request)

        async def run_one(index: int, job: Any) -> Any:
            async with job_slots:
                try:
                    result = await work(complete, job)
                except RequestFailed as exc:
                    result = exc
            if on_done is not None:
                on_done(index, result)
            return result

        try:
            tasks = [asyncio.ensure_future(run_one(i, job)) for i, job in enumerate(jobs)]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            await client.close()

    def map(self, jobs: Sequence[Any], work, on_done=None) -> list[Any]:
        """Synchronous wrapper of ``map_async`` (runs its own event loop, in a thread if one is running)."""
        return run_sync(self.map_async(jobs, work, on_done))

    def complete_many(self, requests: Sequence[ChatRequest], on_done=None) -> list[ChatResult | RequestFailed]:
        """One completion per request, concurrently."""

        async def work(complete, request):
            return await complete(request)

        return self.map(requests, work, on_done)


def run_sync(coroutine: Awaitable[Any]) -> Any:
    """``asyncio.run``, also from code that already runs inside an event loop (e.g. a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class OpenAIBackend(Backend):
    """Generation through an OpenAI-compatible chat endpoint (e.g. an API-served instruct baseline).

    ``model.name`` is the served model id; ``generation.base_url``, ``generation.api_key_env`` and
    ``generation.max_concurrency`` pick the endpoint, the key's variable and the concurrency. Chat APIs cannot
    be made to continue a forced prefix (TL;DR's "The post"), so the request asks for it and a response that
    starts with it has it removed before ``Backend.generate`` puts it back.
    """

    name = "openai"

    def __init__(self, model_config, generation_config):
        super().__init__(model_config, generation_config)
        self.client = ChatClient(model_config.name, ClientSettings(
            base_url=generation_config.base_url, api_key_env=generation_config.api_key_env,
            concurrency=generation_config.max_concurrency))

    def identity(self) -> dict:
        return {"name": self.model_config.name, "base_url": redact_url(self.client.base_url)}

    @property
    def prompt_format(self) -> Format:
        return "chat"

    def messages(self, prompt: Prompt) -> list[dict]:
        messages = prompt.messages(self.model_config.principles_in == "system")
        if prompt.response_prefix:
            last = dict(messages[-1])
            last["content"] += f'\n\nBegin your answer with "{prompt.response_prefix}".'
            messages[-1] = last
        return messages

    def render(self, prompt: Prompt) -> str:
        return json.dumps(self.messages(prompt), ensure_ascii=False, sort_keys=True)

    def _generate(self, prompts: list[Prompt], rendered: list[str], seeds: list[int], stop: list[str]) -> list[str]:
        g = self.generation_config
        requests = []
        for prompt, seed in zip(prompts, seeds):
            params: dict[str, Any] = {"max_tokens": g.max_new_tokens, "temperature": g.temperature}
            if g.temperature > 0:
                params.update(top_p=g.top_p, seed=seed)
            if stop:
                params["stop"] = stop[:4]  # the API takes at most 4; the rest are cut by Backend.generate
            requests.append(ChatRequest(self.messages(prompt), params))
        results = self.client.complete_many(requests)
        failed = [(i, r) for i, r in enumerate(results) if isinstance(r, RequestFailed)]
        if failed:
            raise HarnessError(f"{len(failed)} of {len(results)} generation requests failed (first: {failed[0][1]}); "
                               "finished ones are cached, run again to retry the rest")
        outputs = []
        for prompt, result in zip(prompts, results):
            text = result.text.lstrip()
            if prompt.response_prefix and text.startswith(prompt.response_prefix):
                text = text[len(prompt.response_prefix):]
            elif prompt.response_prefix:
                text = " " + text
            outputs.append(text)
        return outputs
