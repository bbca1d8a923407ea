"""benchmarks/gpu_check.sh --dry-run: the GPU check's code runs end to end on the CPU with tiny shapes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_section(tmp_path, offline_environment):
    pytest.importorskip("diffusers")
    out = tmp_path / "RESULTS-gpu.md"
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                            cwd=ROOT, env=offline_environment(PYTHON=sys.executable), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    text = out.read_text()
    assert "DRY RUN" in text and "Not measured" not in text
    assert re.search(r"\| 32 px \| 2 \| 7\.5 \(batch 2\) \| float32 \| \d+ M \| 2 \| [\d.]+ \|", text)
    for rate, paper in (("1.0", "9.5"), ("0.7", "17.6"), ("0.5", "22.3")):
        assert re.search(rf"\| {rate} \| \d+/4 \| .* \| {paper} GB \|", text)
    assert "bf16, gradient checkpointing" in text
    # The boundary cache on the paper's shapes: aigciqa's scorer and cache, fix rate 0.7 (2 of the 4 tiny blocks
    # frozen: the cache holds patch embedding + 2 blocks), a step with and without it, and the cache's size.
    cache = text[text.index("## Boundary cache on the `paper` preset's shapes (fix rate 0.7)"):]
    assert "2/4 blocks frozen" in cache and "the first 3 steps" in cache
    assert re.search(r"\| without the cache .* \| [\d.]+ s \| n/a \(CPU\) \|", cache)
    assert re.search(r"\| with the cache .* \| [\d.]+ s \| n/a \(CPU\) \|", cache)
    assert re.search(r"Speed-up per step: \*\*[\d.]+x\*\*", cache)
    # 16 images of 5 tokens (4 patches + class) x 32 floats, plus the shard headers.
    per_image = int(re.search(r"([\d,]+) bytes per image", cache).group(1).replace(",", ""))
    assert 5 * 32 * 4 <= per_image < 5 * 32 * 4 + 400


def test_gpu_check_without_a_gpu_and_without_dry_run_says_so(tmp_path, offline_environment):
    pytest.importorskip("torch")
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the full check would run")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out",
                             str(tmp_path / "r.md")], cwd=ROOT, env=offline_environment(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "--dry-run" in result.stderr and not (tmp_path / "r.md").exists()
