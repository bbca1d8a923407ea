"""A kill or Ctrl-C leaves no partial PNG and no torn manifest; the rerun gives the same bytes."""

import json
import subprocess
import sys
import textwrap

import pytest

from aigciqa.database import DatabaseFolder
from aigciqa.generate.run import run_generate

# A child process that runs generate and SIGKILLs itself at a chosen point:
#   after_image N : right after the N-th image file is written (its row is not yet in images.csv)
#   in_manifest N : at the N-th rename of images.csv (after that commit's journal record)
CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import aigciqa.database.atomic as atomic
    from aigciqa.generate.run import run_generate
    root, mode, n, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    seen = {"images": 0, "manifest": 0}
    def after_image(image_id):
        seen["images"] += 1
        if mode == "after_image" and seen["images"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace = atomic.os.replace
    def replace(tmp, target):
        if str(target).endswith("images.csv"):
            seen["manifest"] += 1
            if mode == "in_manifest" and seen["manifest"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        real_replace(tmp, target)
    atomic.os.replace = replace
    run_generate(root, generators=["stable_diffusion", "unidiffuser"], per_prompt=2, limit_prompts=2,
                 weights={"*": "tiny"}, config=config, progress=False, on_image=after_image)
""")


def run_child(root, mode, n, config):
    return subprocess.run([sys.executable, "-c", CHILD, str(root), mode, str(n), json.dumps(config)],
                          capture_output=True, text=True, timeout=300)


def check_consistent(root):
    """No temp file under a real name's place, every listed image matches its hash, ids unique."""
    tables = DatabaseFolder(root).validate()
    images = tables.get("images")
    assert images is None or images["image_id"].is_unique
    return images


@pytest.mark.slow
@pytest.mark.parametrize("mode,n", [("after_image", 3), ("in_manifest", 2)])
def test_sigkill_then_resume_gives_the_uninterrupted_images(tmp_path, tiny_config, read_pngs, mode, n):
    full = run_generate(tmp_path / "full", generators=["stable_diffusion", "unidiffuser"], per_prompt=2,
                        limit_prompts=2, weights={"*": "tiny"}, config=tiny_config, progress=False)
    assert full.generated == 8
    root = tmp_path / "killed"
    child = run_child(root, mode, n, tiny_config)
    assert child.returncode == -9, child.stderr[-2000:]
    images = check_consistent(root)
    # flush_every=2: 'after_image 3' leaves 2 listed rows and a 3rd file. 'in_manifest 2' kills at the
    # rename of the second images.csv, which comes after that commit's record (the folder's journal):
    # the next reader rolls the commit forward, so all 4 rows of the second flush are listed.
    listed = {"after_image": 2, "in_manifest": 4}[mode]
    assert len(images) == listed
    for row in images.itertuples():
        assert (root / row.path).read_bytes() == (tmp_path / "full" / row.path).read_bytes()
    resumed = run_generate(root, generators=["stable_diffusion", "unidiffuser"], per_prompt=2, limit_prompts=2,
                           weights={"*": "tiny"}, config=tiny_config, progress=False)
    assert resumed.finished_before == listed and resumed.generated == 8 - listed
    assert read_pngs(root) == read_pngs(tmp_path / "full")
    assert len(check_consistent(root)) == 8
    assert not list(root.rglob("*.tmp"))


def test_ctrl_c_keeps_the_finished_images_listed(tmp_path, tiny_config):
    tiny_config["flush_every"] = 100

    def interrupt(image_id):
        if image_id == "stable_diffusion-1-1":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_generate(tmp_path / "db", generators=["stable_diffusion"], per_prompt=2, limit_prompts=2,
                     weights={"*": "tiny"}, config=tiny_config, progress=False, on_image=interrupt)
    images = check_consistent(tmp_path / "db")
    assert list(images["image_id"]) == ["stable_diffusion-0-1", "stable_diffusion-0-2", "stable_diffusion-1-1"]
