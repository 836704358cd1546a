"""The OpenAI-compatible client and generation backend against a fake endpoint on 127.0.0.1 (stdlib http.server
in a thread): retries on 429 / 5xx / timeouts are bounded, fatal errors stop, concurrency and rate are bounded,
log-probs are optional. No network beyond loopback.

``FakeOpenAI`` is also used by the judge tests."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from harness.models.backends.openai_backend import (ChatClient, ChatRequest, ClientSettings, FatalRequestError,
                                             RequestFailed)


def completion(text: str, logprobs: list[tuple[str, float, dict[str, float]]] | None = None) -> dict:
    """A chat.completion body; ``logprobs`` as [(token, logprob, {alternative: logprob})]."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                              "logprobs": None}
    if logprobs is not None:
        choice["logprobs"] = {"content": [
            {"token": token, "logprob": lp, "bytes": None,
             "top_logprobs": [{"token": alt, "logprob": alt_lp, "bytes": None} for alt, alt_lp in alts.items()]}
            for token, lp, alts in logprobs]}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def error(status: int, message: str, headers: dict | None = None) -> tuple:
    return status, {"error": {"message": message, "type": "fake", "code": status}}, headers or {}


class FakeOpenAI:
    """A tiny OpenAI-compatible server. ``responder(body, index)`` returns a completion dict, or a tuple
    (status, body, headers), or ("sleep", seconds, completion) to answer late (client timeouts)."""

    def __init__(self, responder: Callable[[dict, int], Any], latency: float = 0.0):
        self.responder = responder
        self.latency = latency
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with server.lock:
                    index = len(server.bodies)
                    server.bodies.append(body)
                    server.auth.append(self.headers.get("authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.latency:
                        time.sleep(server.latency)
                    answer = server.responder(body, index)
                    status, payload, headers = 200, answer, {}
                    if isinstance(answer, tuple) and answer[0] == "sleep":
                        time.sleep(answer[1])
                        payload = answer[2]
                    elif isinstance(answer, tuple):
                        status, payload, headers = answer
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def count(self) -> int:
        return len(self.bodies)


def fast_settings(url: str, **overrides) -> ClientSettings:
    values = dict(base_url=url, api_key_env="FAKE_OPENAI_KEY", concurrency=4, timeout_s=5.0, max_retries=3,
                  backoff_s=0.01, backoff_max_s=0.05)
    values.update(overrides)
    return ClientSettings(**values)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-fake-test-key-0123456789")


def ask(client: ChatClient, n: int = 1, **params) -> list:
    return client.complete_many([ChatRequest([{"role": "user", "content": f"q{i}"}], params) for i in range(n)])


def test_429_then_success_is_retried_and_the_key_is_sent():
    replies = [error(429, "slow down", {"retry-after": "0"}), completion("fine")]
    with FakeOpenAI(lambda body, i: replies[min(i, 1)]) as server:
        client = ChatClient("fake-model", fast_settings(server.url))
        (result,) = ask(client)
    assert result.text == "fine" and result.http_attempts == 2
    assert client.http_requests == 2 and client.retries == 1
    assert server.auth == ["Bearer sk-fake-test-key-0123456789"] * 2


def test_500_and_timeout_are_retried():
    replies = [error(500, "boom"), error(503, "unavailable"), ("sleep", 1.0, completion("late")), completion("ok")]
    with FakeOpenAI(lambda body, i: replies[min(i, 3)]) as server:
        client = ChatClient("fake-model", fast_settings(server.url, timeout_s=0.3))
        (result,) = ask(client)
    assert result.text == "ok" and result.http_attempts == 4 and client.retries == 3


def test_retries_are_bounded():
    with FakeOpenAI(lambda body, i: error(500, "always down")) as server:
        client = ChatClient("fake-model", fast_settings(server.url, max_retries=2))
        (result,) = ask(client)
    assert isinstance(result, RequestFailed) and "gave up after 3 attempts" in str(result)
    assert server.count == 3


def test_auth_failure_stops_the_run_and_hides_the_key():
    with FakeOpenAI(lambda body, i: error(401, "Incorrect API key provided: sk-fake-test-key-0123456789")) as server:
        client = ChatClient("fake-model", fast_settings(server.url))
        with pytest.raises(FatalRequestError) as caught:
            ask(client, n=3)
    assert "401" in str(caught.value) and "sk-fake-test-key" not in str(caught.value)
    assert server.count <= 3


def test_other_client_errors_fail_one_request_without_retry():
    with FakeOpenAI(lambda body, i: error(400, "context too long") if body["messages"][0]["content"] == "q0"
                    else completion("ok")) as server:
        results = ask(ChatClient("fake-model", fast_settings(server.url)), n=2)
    assert isinstance(results[0], RequestFailed) and results[1].text == "ok" and server.count == 2


def test_concurrency_is_bounded_and_throughput_reaches_the_bound():
    latency, concurrency, n = 0.2, 4, 16
    with FakeOpenAI(lambda body, i: completion("ok"), latency=latency) as server:
        client = ChatClient("fake-model", fast_settings(server.url, concurrency=concurrency))
        started = time.perf_counter()
        results = ask(client, n=n)
        elapsed = time.perf_counter() - started
    assert all(r.text == "ok" for r in results)
    assert server.max_in_flight == concurrency
    ratio = (n / elapsed) / (concurrency / latency)
    print(f"throughput {n / elapsed:.1f} req/s = {ratio:.0%} of concurrency/latency")
    assert ratio >= 0.7


def test_rate_limit_spaces_requests():
    with FakeOpenAI(lambda body, i: completion("ok")) as server:
        client = ChatClient("fake-model", fast_settings(server.url, concurrency=8, requests_per_minute=600))
        started = time.perf_counter()
        ask(client, n=5)
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.4  # 5 starts at least 0.1 s apart


def test_logprobs_are_returned_and_a_refusal_falls_back():
    tokens = [("Verdict", -0.1, {}), (":", -0.01, {}), (" A", math.log(0.7), {" A": math.log(0.7), " B": math.log(0.3)})]
    with FakeOpenAI(lambda body, i: completion("Verdict: A", tokens)) as server:
        (result,) = ask(ChatClient("fake-model", fast_settings(server.url)), logprobs=True, top_logprobs=5)
    assert server.bodies[0]["logprobs"] is True and server.bodies[0]["top_logprobs"] == 5
    assert result.logprobs[-1][0] == " A" and result.logprobs[-1][2][" B"] == pytest.approx(math.log(0.3))

    def refuses(body, i):
        return error(400, "logprobs is not supported by this model") if body.get("logprobs") else completion("Verdict: B")

    with FakeOpenAI(refuses) as server:
        client = ChatClient("fake-model", fast_settings(server.url))
        results = ask(client, n=2, logprobs=True, top_logprobs=5)
    assert [r.text for r in results] == ["Verdict: B"] * 2 and all(r.logprobs is None for r in results)
    assert client.logprobs_supported is False


def test_missing_key_is_an_error_only_for_openai_itself(monkeypatch):
    from harness.models.backends.openai_backend import PLACEHOLDER_KEY, read_api_key
    from harness.core.errors import HarnessError

    monkeypatch.delenv("FAKE_OPENAI_KEY")
    with pytest.raises(HarnessError, match="FAKE_OPENAI_KEY"):
        read_api_key("FAKE_OPENAI_KEY", "https://api.openai.com/v1")
    assert read_api_key("FAKE_OPENAI_KEY", "http://127.0.0.1:8000/v1") == PLACEHOLDER_KEY


def test_generation_backend_is_cached_and_keeps_the_forced_prefix(tmp_path):
    from harness.models.backends import create_backend
    from harness.core.cache import ContentCache
    from harness.config import GenerationConfig, ModelConfig
    from harness.models.prompts import Prompt

    def reply(body, i):
        user = body["messages"][-1]["content"]
        return completion("The post is about a cat." if "cat" in user else "A dog story.")

    with FakeOpenAI(reply) as server:
        backend = create_backend(ModelConfig(name="fake-model"), GenerationConfig(
            backend="openai", base_url=server.url, api_key_env="FAKE_OPENAI_KEY", max_concurrency=2))
        prompts = [Prompt("base cat", "Summarize.", "a cat post", response_prefix="The post"),
                   Prompt("base dog", "Summarize.", "a dog post", response_prefix="The post")]
        cache = ContentCache(tmp_path / "cache.sqlite")
        first = backend.generate(prompts, [1, 2], ["###"], cache=cache)
        again = backend.generate(prompts, [1, 2], ["###"], cache=cache)
        requests = server.count
    assert first == again == ["The post is about a cat.", "The post A dog story."]
    assert requests == 2 and backend.generate_calls == 1
    assert 'Begin your answer with "The post"' in server.bodies[0]["messages"][-1]["content"]
    assert backend.identity() == {"name": "fake-model", "base_url": server.url}
    assert b"sk-fake-test-key" not in (tmp_path / "cache.sqlite").read_bytes()
