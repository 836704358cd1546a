"""Typed run configuration: every setting a user can change is a field here.

A run is described by a YAML file plus command-line overrides (``--set section.field=value`` or the
shortcut flags of each command). ``load_config`` turns any mistake into one ``ConfigError`` line that names the
file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.core.errors import ConfigError
from harness.core.hashing import content_hash


class Section(BaseModel):
    """Base of every config section: unknown fields are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    """The policy model: ``embedded`` (SmolLM2-135M-Instruct from PyPI), a hub id, or a local folder."""

    name: str = "embedded"
    revision: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False
    prompt_format: Literal["auto", "chat", "base"] = Field(
        "auto", description="'chat' uses the tokenizer's chat template, 'base' the paper's format-only prompt; "
        "'auto' picks chat when the tokenizer has a template")
    principles_in: Literal["user", "system"] = Field(
        "user", description="chat format: put the principles in the user turn or a system message "
        "(some chat templates have no system role)")

    def at_checkpoint(self, folder: str | Path) -> ModelConfig:
        """These settings (dtype, prompt format, ...) pointed at a checkpoint folder of this model."""
        return self.model_copy(update={"name": str(Path(folder).resolve()), "revision": None})


class DataConfig(Section):
    """Where the queries come from: the task's demo set, the hub dataset the paper used, or a local file."""

    source: str = Field("demo", description="'demo', 'hub', or a path to a local file")
    train_limit: int | None = Field(16, ge=1, description="training queries to draw from the pool (paper: 2,000; "
                                    "the default is sized for a 2-core CPU)")
    eval_limit: int | None = Field(16, ge=1, description="evaluation queries (paper: 250; default sized for a CPU)")
    subsets: list[str] | None = Field(None, description="dialogue only: hh-rlhf subsets to use")


class GenerationConfig(Section):
    """Decoding settings (paper: greedy, at most 350 new tokens)."""

    backend: str = "hf"
    max_new_tokens: int = Field(96, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    batch_size: int = Field(16, ge=1, description="prompts per generation batch (16: about 20% faster than 8 on "
                            "the embedded model on 2 CPU cores, same greedy outputs; benchmarks/generation.py)")
    seed: int = 42
    tensor_parallel_size: int = Field(1, ge=1, description="vllm backend only")
    base_url: str | None = Field(None, description="openai backend only: an OpenAI-compatible endpoint")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai backend only: environment variable of the key")
    max_concurrency: int = Field(8, ge=1, description="openai backend only")


class PrinciplesConfig(Section):
    """Which principles to use and how constitutions are sampled (SPEC section 2)."""

    file: str | None = Field(None, description="principles file; default: the task's own under principles/")
    constitutions_per_query: int = Field(2, ge=2, description="C: constitutions (and responses) per query")


class TrainConfig(Section):
    """Expert-iteration training (paper: 3 iterations, 2t steps of 128 queries, lr 5e-7, restart from base)."""

    iterations: int = Field(3, ge=1)
    steps_per_iteration: list[int] | None = Field(
        None, description="optimizer steps at each iteration; default: 2t (the paper's schedule)")
    queries_per_step: int = Field(2, ge=1, description="queries per optimizer step (paper: 128; default CPU-sized)")
    micro_batch_queries: int = Field(1, ge=1, description="queries per forward/backward pass")
    learning_rate: float = Field(5e-5, gt=0, description="constant learning rate (paper: 5e-7 at 128 queries per "
                                 "step; the CPU default takes far fewer, smaller steps)")
    learning_rate_sweep: list[float] = Field(
        default_factory=list, description="also train the primary trainer at each of these learning rates on the "
        "same generations (one leaderboard row each); other settings via compare_trainers: 'dpo@beta=0.1'")
    optimizer: Literal["adamw", "rmsprop"] = "adamw"
    max_grad_norm: float | None = Field(None, gt=0)
    kl_beta: float = Field(0.0, ge=0, description="weight of KL(pi_theta || pi_base); 0 in every paper run")
    lora: bool = False
    lora_rank: int = Field(16, ge=1)
    summed_logprobs: bool = Field(False, description="use summed instead of per-token-mean response log-probs")
    max_prompt_tokens: int = Field(1024, ge=8, description="training contexts longer than this are cut from the left "
                                   "(which can remove the principles: a warning says so)")
    max_response_tokens: int = Field(512, ge=1, description="response tokens scored per sequence (longer are cut)")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / rank)")
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "no", description="Accelerate autocast; weights keep model.dtype (paper: bf16 on A100s; fp32 is faster on CPU)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward to save memory")
    keep_checkpoints: Literal["last", "all"] = Field(
        "last", description="'last': once a run is published, delete the weights of every checkpoint but the last "
        "iteration's (their identity stays, so resume and provenance still work); 'all': keep every checkpoint")
    mi_constitutions: int = Field(4, ge=2, description="C for the mutual-information metric (4 = both principles "
                                  "crossed with their antitheses)")
    mi_resamples: int = Field(10000, ge=2000, description="bootstrap resamples (over queries) for the MI interval")
    seed: int = 42

    @field_validator("steps_per_iteration")
    @classmethod
    def _positive_steps(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(step < 1 for step in value):
            raise ValueError("every step count must be >= 1")
        return value

    def steps_at(self, iteration: int) -> int:
        """Optimizer steps for iteration ``iteration`` (1-based): the configured list, else 2t as in the paper."""
        if self.steps_per_iteration is None:
            return 2 * iteration
        if iteration > len(self.steps_per_iteration):
            raise ConfigError("config", "train.steps_per_iteration",
                              f"has {len(self.steps_per_iteration)} entries but iterations={self.iterations}")
        return self.steps_per_iteration[iteration - 1]


class SFTConfig(Section):
    """The ``sft`` trainer (context distillation, SPEC section 3): fine-tune on the model's own c+ responses."""

    keep_principles: bool = Field(
        True, description="keep the c+ principles in the training prompt; False trains on the task's training "
        "prompt rendered with an empty principles list (the 'principles removed' variant)")


class DPOConfig(Section):
    """The ``dpo`` trainer: preference optimisation on self-generated pairs (chosen = c+ response, rejected = c-
    response, prompt = (x, c+)); no preference labels (RLCD-style)."""

    loss_type: Literal["sigmoid", "ipo", "simpo"] = Field(
        "sigmoid", description="sigmoid = DPO (Rafailov et al. 2023), ipo = IPO on length-averaged log-probs "
        "(Azar et al. 2023), simpo = reference-free length-normalised SimPO (Meng et al. 2024)")
    beta: float | None = Field(
        None, gt=0, description="default: the task's (sigmoid/ipo: 0.1 dialogue, 0.5 tldr/heldout; simpo: 2.0)")
    simpo_gamma: float = Field(1.0, ge=0, description="simpo only: target reward margin gamma (SimPO eq. 6)")


class EvalConfig(Section):
    """Evaluation: which baselines each trained iterate is judged against, by which judge, scored how."""

    baselines: list[Literal["base", "instruct"]] = Field(
        default_factory=lambda: ["base", "instruct"], description="'base' = the untrained model (iteration 0); "
        "'instruct' = eval.instruct_model prompted with the principles in its chat template")
    instruct_model: ModelConfig | None = Field(
        None, description="the instruction-tuned baseline model; default: the policy's model with the principles "
        "as the system message of its chat template (for the embedded SmolLM2-135M-Instruct: the same weights as "
        "'base', the principles placed as the paper's instruct baseline has them)")
    instruct_backend: str | None = Field(None, description="backend for the instruct model; default: generation.backend")
    judge: str | None = Field(None, description="judge name (`harness ls judges`) or a judge YAML path; default: "
                              "'verifier' when every principle of the run has checks, else 'local'")
    protocol: Literal["robust", "sami-paper"] = "robust"
    max_parse_failure_rate: float = Field(0.05, ge=0, le=1)
    bootstrap_resamples: int = Field(10_000, ge=1000)
    mutual_information: bool = Field(True, description="compute the MI estimate per iteration")
    mi_every_iteration: bool = Field(
        False, description="MI estimate at every iteration; False: at iteration 0 and the last iteration only (the "
        "paired change the leaderboard reports; CPU default)")
    mi_queries: int | None = Field(4, ge=1, description="evaluation queries used for the MI estimate "
                                   "(default CPU-sized; None = the whole evaluation set)")


class RunConfig(Section):
    """Everything that defines a run; its hash identifies the run's results."""

    task: str = "tldr"
    trainer: str = "sami"
    compare_trainers: list[str] = Field(
        default_factory=list, description="also train these on the same generations each iteration")
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    generation: GenerationConfig = GenerationConfig()
    principles: PrinciplesConfig = PrinciplesConfig()
    filters: list[str] | None = Field(None, description="filter names; default: the task's filters")
    train: TrainConfig = TrainConfig()
    sft: SFTConfig = SFTConfig()
    dpo: DPOConfig = DPOConfig()
    eval: EvalConfig = EvalConfig()
    seed: int = 42
    out: str | None = Field(None, description="run directory; default: runs/<task>-<trainer>-<config hash>")

    def hash(self) -> str:
        """Content hash of the settings that change results (the output folder does not)."""
        return content_hash(self.model_dump(mode="json", exclude={"out"}))


def _set_path(tree: dict, dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(source, dotted, f"'{key}' is not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.field=value``; the value is read as YAML (numbers, booleans, lists)."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected section.field=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return key.strip(), raw


def load_yaml_mapping(path: Path) -> dict:
    """Load a YAML file that must hold a mapping; errors name the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "(file)", "no such file")
    from harness.core.artifacts import read_text

    text = read_text(path, "YAML file")  # not UTF-8: one line naming the file and line
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError(str(path), where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", "must be a mapping of section names to settings")
    return data


def validation_error(source: str, exc: ValidationError) -> ConfigError:
    """The first pydantic error as a ConfigError naming the dotted field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; `harness validate --help` shows the sections)"
    return ConfigError(source, field, message)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                sets: list[str] | None = None) -> RunConfig:
    """Build a RunConfig from an optional YAML file, shortcut overrides and ``--set`` strings."""
    tree: dict = load_yaml_mapping(Path(path)) if path else {}
    source = str(path) if path else "command line"
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(tree, key, value, "command line")
    for text in sets or []:
        key, value = parse_override(text)
        _set_path(tree, key, value, "--set")
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise validation_error(source, exc) from None
