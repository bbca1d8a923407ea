"""Fixtures for the annotate tests: a small database folder with real PNGs, and an Xvfb display."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from aigciqa.database import DatabaseFolder, default_card

N_IMAGES = 6


def png_bytes(size=(64, 48), color=(200, 30, 30)) -> bytes:
    from PIL import Image, ImageDraw
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_folder(root: Path, n_images: int = N_IMAGES, size=(64, 48), corrupt: tuple[int, ...] = ()) -> DatabaseFolder:
    """A folder with ``n_images`` PNGs (images listed in images.csv, prompts in prompts.csv)."""
    folder = DatabaseFolder(root)
    prompts = pd.DataFrame({"prompt_id": ["0", "1"], "prompt": ["a red corgi on a sofa", "a girl reading "],
                            "category": ["Animals", "People"], "challenge": ["Basic", "Basic"]})
    rows, files = [], {}
    for k in range(n_images):
        path = DatabaseFolder.image_relpath("gen", str(k % 2), k)
        rows.append({"image_id": f"img{k}", "path": path, "prompt_id": str(k % 2), "generator": "gen",
                     "sample": k, "width": size[0], "height": size[1]})
        files[path] = b"\x89PNG\r\n\x1a\n this is not a real PNG" if k in corrupt else png_bytes(
            size, ((40 * k) % 256, 120, 200 - 20 * k % 200))
    folder.write({"prompts": prompts, "images": pd.DataFrame(rows)}, card=default_card("annotate-test"),
                 stage="test", files=files)
    return folder


@pytest.fixture
def folder(tmp_path) -> DatabaseFolder:
    return make_folder(tmp_path / "db")


def _free_display() -> int:
    for number in range(70, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number")


def start_xvfb(size=(1280, 1024), dpi: int = 96) -> tuple[subprocess.Popen, str]:
    """An Xvfb server with one screen of ``size`` pixels at ``dpi``; (process, display name)."""
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install xvfb xdotool): the window tests "
                    "need a virtual display and real X input events")
    for _attempt in range(5):
        number = _free_display()
        process = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{size[0]}x{size[1]}x24", "-dpi", str(dpi),
                                    "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return process, f":{number}"
            time.sleep(0.05)
        process.terminate()
    pytest.fail("Xvfb did not start")


@pytest.fixture(scope="session")
def screen():
    """Virtual screens of a given size and dpi (``screen((1024, 600), 96)`` -> display name), one per kind.

    They live until the session ends: Tk keeps its connection to a display after its windows are gone,
    and Xlib ends the process when such a server goes away while it still processes events.
    """
    started: dict[tuple, tuple[subprocess.Popen, str]] = {}

    def start(size, dpi=96) -> str:
        key = (tuple(size), dpi)
        if key not in started:
            started[key] = start_xvfb(size, dpi)
        return started[key][1]
    yield start
    for process, _ in started.values():
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def xvfb():
    """A virtual X display for the session (DISPLAY set while it runs); skip when Xvfb is absent."""
    process, display = start_xvfb()
    number = display[1:]
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    """Where window screenshots go: $AIGCIQA_TEST_OUTPUT when set (CI keeps it), else the test's tmp dir."""
    target = Path(os.environ.get("AIGCIQA_TEST_OUTPUT", tmp_path / "screenshots"))
    target.mkdir(parents=True, exist_ok=True)
    return target
