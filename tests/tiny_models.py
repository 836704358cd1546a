"""Tiny random models for the SAMI, iteration and mutual-information tests.

The tokenizer is a byte-level BPE trained in memory on the demo TL;DR posts and the principles (a few hundred
tokens, no download, no dependency on the embedded model), so forward passes cost almost nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from harness.config import ModelConfig, RunConfig, TrainConfig  # noqa: E402
from harness.flow.generate import QueryGroup  # noqa: E402
from harness.tasks.loaders import Query  # noqa: E402
from harness.tasks.principles import ConstitutionSampler  # noqa: E402
from harness.tasks import get_task  # noqa: E402

SPECIALS = ["<pad>", "<s>", "</s>"]


def build_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from harness.tasks import get_task

    task = get_task("tldr")
    corpus = [task.demo_file.read_text(encoding="utf-8"), task.principles_file.read_text()]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def build_tiny_model(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random 2-layer llama (safetensors) plus the tiny tokenizer, saved as a normal model folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # sharper random logits: no near-ties in greedy decoding, non-trivial losses
        model.model.embed_tokens.weight.normal_(0.0, 1.0)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def tiny_config(model_dir: Path, **train) -> RunConfig:
    defaults = dict(queries_per_step=4, micro_batch_queries=1, learning_rate=1e-3, steps_per_iteration=[2, 2],
                    iterations=2, max_prompt_tokens=256, max_response_tokens=64)
    defaults.update(train)
    return RunConfig(task="tldr", model=ModelConfig(name=str(model_dir), prompt_format="base"),
                     train=TrainConfig(**defaults))


SHORT_POSTS = [
    "SUBREDDIT: r/relationships\n\nTITLE: Anniversary plans\n\nPOST: My boyfriend forgot our cabin weekend.",
    "SUBREDDIT: r/personalfinance\n\nTITLE: Car or savings?\n\nPOST: I have 8k saved and my car broke down.",
    "SUBREDDIT: r/AskReddit\n\nTITLE: Roommate\n\nPOST: My roommate never cleans the kitchen. What do I do?",
    "SUBREDDIT: r/jobs\n\nTITLE: Offer\n\nPOST: I got two job offers and cannot decide between them.",
    "SUBREDDIT: r/dogs\n\nTITLE: Puppy\n\nPOST: Our puppy barks all night and the neighbours complain.",
    "SUBREDDIT: r/college\n\nTITLE: Major\n\nPOST: Should I switch from biology to computer science?",
]


def synthetic_groups(n: int = 4, C: int = 2, seed: int = 0) -> list[QueryGroup]:
    """Query groups with C constitutions and C distinct short responses (no generation needed)."""
    import random

    task = get_task("tldr")
    sampler = ConstitutionSampler(task.principles(), C)
    groups = []
    for k in range(n):
        query = Query(f"q{k}", SHORT_POSTS[k % len(SHORT_POSTS)])
        constitutions = sampler.sample(random.Random(seed * 1000 + k))
        responses = [f"The post {'is short.' if j == 0 else 'describes a long and detailed story about ' * (j % 3 + 1) + 'life.'}"
                     for j in range(C)]
        groups.append(QueryGroup(query, constitutions, responses))
    return groups
