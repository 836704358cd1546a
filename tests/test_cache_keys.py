"""Cache keys and identities: the dtype enters the log-prob (MI) key, a model folder's identity covers every file
(a custom-code .py, a chat template), hub ids are pinned or marked unpinned, and no credential inside a URL reaches
an identity, a manifest or an error line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.config import ModelConfig
from harness.core.cache import ContentCache
from harness.core.hashing import folder_hash
from harness.core.urls import redact_text, redact_url
from harness.models import loading


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    loading.hub_revision.cache_clear()


class FakeScorer:
    def __init__(self, dtype: str):
        self.model_config = ModelConfig(dtype=dtype)
        self.generation_config = SimpleNamespace(batch_size=1)
        self.tokenizer, self.prompt_format, self.calls = None, "chat", 0

    def identity(self) -> dict:
        return {"name": "tiny", "weights": "abc"}

    def score(self, contexts, continuations):
        self.calls += len(contexts)
        return [{"sum": -1.0, "mean": -0.5} for _ in contexts]


def test_dtype_enters_the_logprob_key(tmp_path, monkeypatch):
    from harness.flow import score

    monkeypatch.setattr(score, "group_size", lambda groups: 1)
    monkeypatch.setattr(score, "scoring_pairs", lambda *a, **k: (["context"], ["continuation"]))
    cache = ContentCache(tmp_path / "c.sqlite")
    first, again, other = FakeScorer("float32"), FakeScorer("float32"), FakeScorer("bfloat16")
    for backend in (first, again, other):
        score.score_matrix(None, backend, [object()], cache)
    assert (first.calls, again.calls, other.calls) == (1, 0, 1)  # same dtype: cached; another dtype: scored anew


def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    (folder / "modeling_custom.py").write_text("X = 1\n")
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    return folder


@pytest.mark.parametrize("name, change", [("modeling_custom.py", "X = 2\n"), ("chat_template.jinja", "{{ x }}"),
                                          ("tokenizer.model", "new file")])
def test_folder_identity_covers_every_file(tmp_path, name, change):
    folder = model_folder(tmp_path)
    before = folder_hash(folder)
    identity = loading.model_identity(ModelConfig(name=str(folder)))
    (folder / name).write_text(change)
    assert folder_hash(folder) != before
    assert loading.model_identity(ModelConfig(name=str(folder))) != identity
    (folder / ".DS_Store").write_text("noise")  # hidden files are not the model
    assert folder_hash(folder) == folder_hash(folder)


def test_hub_id_offline_is_marked_unpinned_or_pinned_from_the_local_cache(tmp_path):
    identity = loading.model_identity(ModelConfig(name="someone/some-model"))
    assert identity == {"name": "someone/some-model", "revision": "main", "pinned": False}
    from huggingface_hub import constants

    refs = tmp_path / "hf" / "hub" / "models--someone--cached" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    monkey_cache = constants.HF_HUB_CACHE
    try:
        constants.HF_HUB_CACHE = str(tmp_path / "hf" / "hub")
        pinned = loading.model_identity(ModelConfig(name="someone/cached"))
    finally:
        constants.HF_HUB_CACHE = monkey_cache
    assert pinned == {"name": "someone/cached", "revision": "a" * 40, "ref": "main"}
    commit = "b" * 40
    assert loading.model_identity(ModelConfig(name="someone/x", revision=commit))["revision"] == commit


@pytest.mark.parametrize("url, secret", [("http://user:sk-live-123456@127.0.0.1:9/v1", "sk-live-123456"),
                                         ("https://h.example/v1?api-key=sk-query-abcdef&v=1", "sk-query-abcdef"),
                                         ("https://h.example/v1?token=tok-998877", "tok-998877")])
def test_credentials_redacted_from_urls(url, secret):
    from harness.models.backends.openai_backend import ChatClient, ClientSettings

    assert secret not in redact_url(url)
    assert "127.0.0.1" in redact_url(url) or "h.example" in redact_url(url)
    assert secret not in redact_text(f"refused {url} (key {secret})", url)
    client = ChatClient("m", ClientSettings(base_url=url))
    assert secret not in str(client.identity()) and secret not in client.safe_url
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_judge_manifest_and_401_line_carry_no_url_key(tmp_path, monkeypatch, capsys):
    from test_judge_openai import judge_yaml, responses
    from test_openai_backend import FakeOpenAI, error

    from harness.cli import main

    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-env-key-000000")
    secret = "sk-url-key-424242"
    cand = responses(tmp_path, "cand", ["GOOD a."], "sami")
    base = responses(tmp_path, "base", ["meh a."], "base")
    with FakeOpenAI(lambda body, index: error(401, f"invalid api key {secret}")) as fake:
        url = fake.url.replace("http://", f"http://user:{secret}@") + f"?api-key={secret}"
        config = judge_yaml(tmp_path, f"'{url}'")
        status = main(["judge", "--task", "tldr", "--candidate", str(cand), "--baseline", str(base), "--judge",
                       str(config), "--out", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert status == 2 and "HTTP 401" in captured.err
    assert secret not in captured.err + captured.out
    assert not (tmp_path / "out").exists() or all(secret not in p.read_text() for p in (tmp_path / "out").rglob("*")
                                                  if p.is_file())
