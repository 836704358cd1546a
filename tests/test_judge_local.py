"""The local judge on a tiny random transformers model: p(A) from the verdict tokens' next-token probabilities, in
[0, 1], winners consistent with p and the tie margin, cached like any judge; and meta-evaluation end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.core.cache import ContentCache
from harness.core.errors import ConfigError
from harness.judging import JUDGES_DIR, load_judge
from harness.judging.engine import JudgeRunner
from harness.judging.responses import Pair

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
OAI1B_JUDGED = REFERENCE / "tldr" / "oai1b_judged.csv"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer llama with the embedded model's tokenizer (skipped when the embedded model is absent)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from harness.models.embedded import embedded_model_dir

        source = embedded_model_dir()
    except Exception as exc:  # not installed: no tokenizer to copy
        pytest.skip(f"embedded model not available: {exc}")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-judge")
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.normal_(0.0, 1.0)  # non-trivial next-token distributions
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def local_judge(tmp_path: Path, model: Path, **changes) -> Path:
    text = (JUDGES_DIR / "local" / "config.yaml").read_text().replace("model: embedded", f"model: {model}")
    text = text.replace("prompt: prompt.txt", "prompt: local.txt")
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "local.yaml").write_text(text)
    shutil.copy(JUDGES_DIR / "local" / "prompt.txt", tmp_path / "local.txt")
    return tmp_path / "local.yaml"


def pairs(n: int) -> list[Pair]:
    return [Pair(str(i), f"POST: I need advice about thing {i}.", "1. Be brief.\n2. Be complete.",
                 f"The post asks about thing {i}.", f"The post is a long story about thing {i} and more.") for i in range(n)]


def test_local_judge_reads_verdict_token_probabilities(tmp_path, tiny_model):
    judge = load_judge(local_judge(tmp_path, tiny_model))
    cache = ContentCache(tmp_path / "cache.sqlite")
    runner = JudgeRunner(judge, cache, noun="summary", query_label="Forum post", progress=False)
    calls = runner.build_calls(pairs(6))
    assert all(call.prompt.rstrip().endswith("Preferred summary:") for call in calls)
    outcomes = runner.run(calls)
    margin = judge.config.local.tie_margin
    for outcome in outcomes:
        p = outcome["p_a"]
        assert 0.0 <= p <= 1.0 and outcome["attempts"] == 1
        expected = "tie" if abs(p - 0.5) < margin else ("A" if p > 0.5 else "B")
        assert outcome["choice"] == expected and "p(A)=" in outcome["raw"]
    assert runner.counts.judged == 12 and runner.backend.counts()["forward_passes"] >= 3
    # batched and single scoring agree; a rerun is served by the cache without loading the model again
    single = runner.backend.scorer.score([calls[0].prompt])[0]
    assert single["p_a"] == pytest.approx(outcomes[0]["p_a"], abs=1e-4)
    again = JudgeRunner(load_judge(local_judge(tmp_path, tiny_model)), cache, noun="summary", query_label="Forum post",
                        progress=False)
    assert again.run(again.build_calls(pairs(6))) == outcomes and again.counts.cached == 12
    assert "model" not in again.backend.scorer.__dict__  # never loaded
    # a wide tie margin turns every call into a tie; never a parse failure
    wide = JudgeRunner(load_judge(local_judge(tmp_path, tiny_model, **{"tie_margin: 0.02": "tie_margin: 0.499"})),
                       None, noun="summary", query_label="Forum post", progress=False)
    assert {o["choice"] for o in wide.run(wide.build_calls(pairs(2)))} == {"tie"}


def test_verdict_tokens_must_be_single_tokens(tmp_path, tiny_model):
    judge = load_judge(local_judge(tmp_path, tiny_model, **{'a_tokens: [" A"]': 'a_tokens: [" A", " Alpha-centauri"]'}))
    runner = JudgeRunner(judge, None, noun="summary", query_label="Forum post", progress=False)
    with pytest.raises(ConfigError, match="a_tokens"):
        runner.run(runner.build_calls(pairs(1)))


def test_chat_template_option_puts_the_prefix_in_the_assistant_turn(tmp_path, tiny_model):
    judge = load_judge(local_judge(tmp_path, tiny_model, **{"chat_template: false": "chat_template: true"}))
    runner = JudgeRunner(judge, None, noun="summary", query_label="Forum post", progress=False)
    (call, _) = runner.build_calls(pairs(1))
    assert call.prompt.endswith("assistant\nPreferred summary:") and "<|im_start|>user" in call.prompt


@pytest.mark.skipif(not OAI1B_JUDGED.is_file(), reason="shared/reference (oai1b_judged.csv) not present")
def test_meta_eval_end_to_end(tmp_path, tiny_model, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    path = local_judge(tmp_path, tiny_model)
    assert main(["meta-eval", "--judge", str(path), "--limit", "6", "--out", str(tmp_path / "me"), "--no-progress",
                 "--reference", str(OAI1B_JUDGED)]) == 0
    text = capsys.readouterr().out
    assert "same-position agreement" in text and "position consistency" in text
    result = json.loads((tmp_path / "me" / "meta_eval.json").read_text())
    assert result["n_items"] == 6 and result["n_calls"] == 12 and result["agreement"]["n"] == 6
    assert result["reference_diagnostics"]["n"] == 6
    lines = [json.loads(line) for line in (tmp_path / "me" / "verdicts.jsonl").read_text().splitlines()]
    assert {line["item"] for line in lines} == {0, 1, 2, 3, 4, 5} and lines[0]["candidate"] == "oai1b"
