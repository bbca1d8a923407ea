"""Speed of the rating window, measured through the real window (Tk under Xvfb when DISPLAY is unset).

1. "next": from the Right key to the next image drawn and flushed to the X server, for 512 and
   1024 px PNGs, with the background prefetch on and off (the reference run in the same process).
   Before each "next" the benchmark waits as a subject would (--dwell, default 0.5 s), which is
   when the prefetch decodes the next image.
2. "commit": from a digit key to the answer committed in SQLite (WAL, synchronous=FULL) and the
   window redrawn, against a bare ``AnswerStore.record_answer`` right after it (the reference).

3. --screenshots DIR: the window on Xvfb screens of 1024x600, 1920x1080 and 3840x2160 at 192 dpi
   (docs/annotate-WxH.png) and the instructions screen at 1024x600.

The figures are written to benchmarks/RESULTS.md (section "## annotate"), replacing the previous ones.

Usage: python benchmarks/bench_annotate.py [--items 10] [--dwell 0.5] [--screenshot docs/annotate-window.png]
                                           [--screenshots docs]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw


def picture(size: int, seed: int) -> bytes:
    """A PNG that decodes like a generated image: smooth scene plus fine noise (so it compresses badly)."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, size)[:, None, None]
    sky = np.array([70, 120, 200]) * (1 - y) + np.array([250, 200, 150]) * y
    image = Image.fromarray(np.broadcast_to(sky, (size, size, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    r = size // 8
    cx, cy = rng.integers(r, size - r), rng.integers(r, size // 2)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 230, 120))
    for k, colour in enumerate(((60, 110, 60), (40, 80, 45))):
        xs = np.linspace(0, size, 9)
        ys = size * (0.55 + 0.15 * k) + rng.normal(0, size * 0.05, 9)
        draw.polygon([(0, size), *zip(xs.tolist(), ys.tolist()), (size, size)], fill=colour)
    pixels = np.asarray(image).astype(np.int16) + rng.integers(-6, 7, (size, size, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def make_folder(root: Path, size: int, n: int):
    from aigciqa.database import DatabaseFolder, default_card
    folder = DatabaseFolder(root)
    prompts = pd.DataFrame({"prompt_id": ["0"], "prompt": ["a sunny valley with two green hills at dusk"],
                            "category": ["Outdoor Scenes"], "challenge": ["Basic"]})
    rows, files = [], {}
    for k in range(n):
        path = DatabaseFolder.image_relpath("bench", "0", k)
        rows.append({"image_id": f"im{k}", "path": path, "prompt_id": "0", "generator": "bench", "sample": k,
                     "width": size, "height": size})
        files[path] = picture(size, k)
    folder.write({"prompts": prompts, "images": pd.DataFrame(rows)}, card=default_card("bench"), stage="bench",
                 files=files)
    return folder


SCREENS = [((1024, 600), 96), ((1920, 1080), 96), ((3840, 2160), 192)]
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## annotate"


def xvfb_server(size=(1280, 1024), dpi=96):
    """(process, display) of a new Xvfb screen; it must outlive every Tk window opened on it."""
    if shutil.which("Xvfb") is None:
        sys.exit("needs a display: set DISPLAY or install Xvfb")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X{n}-lock").exists()
                  and not Path(f"/tmp/.X11-unix/X{n}").exists())
    process = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{size[0]}x{size[1]}x24", "-dpi", str(dpi),
                                "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        time.sleep(0.05)
    return process, f":{number}"


def start_xvfb():
    if os.environ.get("DISPLAY"):
        return None
    process, display = xvfb_server()
    os.environ["DISPLAY"] = display
    return process


def open_window(folder, prefetch: bool, store_name: str | None = None, display: str | None = None):
    import tkinter as tk
    from aigciqa.annotate.store import AnswerStore
    from aigciqa.annotate.study import make_study
    from aigciqa.annotate.window import AnnotateWindow
    study = make_study(folder.read_card(), None, folder.read_table("images")["image_id"].tolist())
    store = AnswerStore(folder.root / (store_name or f"annotations-{'on' if prefetch else 'off'}.sqlite"))
    root = tk.Tk(screenName=display)
    window = AnnotateWindow(root, folder, study, store, "bench", prefetch=prefetch)
    root.focus_force()
    root.update()
    if window.overlay is not None:  # the instructions screen: "Start"
        key(root, "Return")
    settle(root, window)
    return root, window, store


def settle(root, window, timeout=5.0) -> None:
    """Run the window until its image area has its final size (the resize is applied after a short delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and window.box != (window.canvas.winfo_width(), window.canvas.winfo_height()):
        root.update()
        time.sleep(0.01)


def on_screen(root) -> None:
    """Draw everything pending and wait for the X server to have it (winfo_pointerxy is a round trip)."""
    root.update()
    root.winfo_pointerxy()


def key(root, keysym: str) -> None:
    (root.focus_get() or root).event_generate("<KeyPress>", keysym=keysym)


def run_items(folder, prefetch: bool, dwell: float, screenshot: Path | None = None):
    """Rate every item by keyboard; return the "next" times, window commit times and bare commit times."""
    from aigciqa.annotate.store import AnswerStore
    root, window, store = open_window(folder, prefetch)
    bare_store = AnswerStore(folder.root / f"bare-{prefetch}.sqlite")
    next_ms, commit_ms, bare_ms = [], [], []
    try:
        while not window.session.all_done:
            window.cursor = 0
            for k, digit in enumerate("34544433"):
                started = time.perf_counter()
                key(root, digit)
                on_screen(root)
                commit_ms.append(1000 * (time.perf_counter() - started))
                started = time.perf_counter()  # the reference, interleaved so both see the same disk
                bare_store.record_answer("ref", window.session.position, f"field{k}", int(digit), 1)
                bare_ms.append(1000 * (time.perf_counter() - started))
            if screenshot is not None and window.session.position == 1:
                grab_window(root, window, screenshot)
            end = time.monotonic() + dwell
            while time.monotonic() < end:  # the subject looks at the image; the window keeps running
                root.update()
                time.sleep(0.01)
            before = window.shown_path
            started = time.perf_counter()
            key(root, "Right")
            on_screen(root)
            elapsed = 1000 * (time.perf_counter() - started)
            if not window.session.all_done:
                assert window.shown_path != before
                next_ms.append(elapsed)
    finally:
        window.close()
        store.close()
        bare_store.close()
        gc.collect()  # Tk variables must be freed in the main thread
    return next_ms, commit_ms, bare_ms


def grab_window(root, window, target: Path) -> None:
    """A screenshot of the window with an explanation box in use."""
    from PIL import ImageGrab
    window.cursor = 6
    key(root, "2")  # distortion 2: the keyboard goes into its explanation box
    window.rows[6].entry_variable.set("the left hill has a sharp, unnatural edge")
    window._leave_entry(window.rows[6])
    on_screen(root)
    box = (root.winfo_rootx(), root.winfo_rooty(), root.winfo_rootx() + root.winfo_width(),
           root.winfo_rooty() + root.winfo_height())
    save_screenshot(ImageGrab.grab(bbox=box, xdisplay=root.winfo_screen()), target)


def save_screenshot(image, target: Path) -> None:
    """A palette PNG: a fraction of the size of a full-colour one, for the docs."""
    image.convert("RGB").quantize(colors=256).save(target, optimize=True)


def screenshots(out: Path, tmp: Path) -> list[str]:
    """The window on each screen of SCREENS, and the instructions screen on the smallest; the files written."""
    from PIL import ImageGrab
    folder = make_folder(tmp / "shots", 1024, 3)
    servers, written = [], []
    try:
        for (width, height), dpi in SCREENS:
            process, display = xvfb_server((width, height), dpi)
            servers.append(process)
            root, window, store = open_window(folder, True, f"annotations-{width}.sqlite", display)
            if width == 1024:  # the instructions, as a new subject sees them first
                window._show_instructions()
                on_screen(root)
                target = out / "annotate-instructions.png"
                save_screenshot(ImageGrab.grab(bbox=(0, 0, width, height), xdisplay=display), target)
                written.append(target.name)
                key(root, "Return")
            key(root, "3")
            key(root, "4")  # two rows answered, the highlight on the third
            target = out / f"annotate-{width}x{height}.png"
            grab_window(root, window, target)
            written.append(target.name)
            window.close()
            store.close()
            gc.collect()
    finally:
        for process in servers:  # only now: Tk keeps its connections to the displays until the end
            process.terminate()
    return written


def write_results(lines: list[str]) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections are left as they are)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = text.find(SECTION + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    RESULTS.write_text(text.rstrip("\n") + "\n\n" + "\n".join([SECTION, "", *lines]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--dwell", type=float, default=0.5)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--screenshots", type=Path, metavar="DIR")
    args = parser.parse_args()
    xvfb = start_xvfb()
    from aigciqa.annotate.images import load_scaled
    lines = [f"`python benchmarks/bench_annotate.py --items {args.items} --dwell {args.dwell}` (Tk under Xvfb "
             "1280x1024 unless DISPLAY was set; the window decides the image size from the space it has).", "",
             "| image px | prefetch | next median ms | next max ms | load+scale ms |", "|---|---|---|---|---|"]
    ratios = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            commits, bare = [], []
            for size in (512, 1024):
                folder = make_folder(Path(tmp) / f"db{size}", size, args.items)
                images = folder.read_table("images")
                started = time.perf_counter()
                for path in images["path"]:
                    load_scaled(folder.path(path), (660, 660))
                load_ms = 1000 * (time.perf_counter() - started) / len(images)
                medians = {}
                for prefetch in (False, True):
                    shot = args.screenshot if (size == 1024 and prefetch) else None
                    next_ms, commit_ms, bare_ms = run_items(folder, prefetch, args.dwell, shot)
                    commits += commit_ms
                    bare += bare_ms
                    medians[prefetch] = statistics.median(next_ms)
                    lines.append(f"| {size} | {'on' if prefetch else 'off'} | {medians[prefetch]:.1f} | "
                                 f"{max(next_ms):.1f} | {load_ms:.1f} |")
                ratios.append(f"{size} px: next with prefetch / without = {medians[True] / medians[False]:.2f}")
            lines += ["", *[f"- {r}" for r in ratios],
                      f"- answer commit through the window (key to SQLite commit, WAL, synchronous=FULL, and redraw): "
                      f"median {statistics.median(commits):.2f} ms (max {max(commits):.1f}); a bare "
                      f"`AnswerStore.record_answer` right after it: median {statistics.median(bare):.2f} ms; ratio "
                      f"{statistics.median(commits) / statistics.median(bare):.2f}"]
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                written = screenshots(args.screenshots, Path(tmp))
                lines.append(f"- screenshots: {', '.join(written)} in {args.screenshots}")
    finally:
        if xvfb is not None:
            xvfb.terminate()
    print("\n".join(lines))
    write_results(lines)


if __name__ == "__main__":
    main()
