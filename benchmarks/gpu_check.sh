#!/usr/bin/env bash
# GPU check with random-weight full-size models (see benchmarks/gpu_check.py): Stable Diffusion 1.5 at 512 px
# and 50 steps, the paper preset's ViT-g/14 + Q-Former training step at fix rates 1.0/0.7/0.5 against the
# paper's Table XII, and a stage-2 step with a 7B Llama in bf16. Needs no network (HF_HUB_OFFLINE=1) and
# finishes in under 8 minutes on one 80 GB GPU; writes benchmarks/RESULTS-gpu.md.
#   bash benchmarks/gpu_check.sh              # on a GPU machine
#   bash benchmarks/gpu_check.sh --dry-run    # CPU, tiny shapes: checks the script only
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's aigciqa (parts 1 and 4 import it)
exec timeout 470 "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
