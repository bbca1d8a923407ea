"""Decoding and scaling images for the window, in a background thread, one image ahead.

Decoding a 1024x1024 PNG and resampling it with Lanczos takes tens of milliseconds; doing it for
the next item while the subject looks at the current one makes moving on instant.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from aigciqa.database.images import open_image
from aigciqa.errors import InputError

log = logging.getLogger("aigciqa.annotate")

PLACEHOLDER_BACKGROUND = (96, 96, 96)
MISSING = "the file is missing"


# How an image is sized on screen: "fit" = native size when it fits, else shrunk to fit; "fill" = scaled
# up or down to fill the space; "1:1" = native pixels always (a larger image is panned with the mouse).
VIEW_MODES = ("fit", "fill", "1:1")


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image  # RGB, sized for the box and view mode
    error: str | None = None  # why the file could not be shown (the image is then a placeholder)


def scale_to_fit(image: Image.Image, box: tuple[int, int], mode: str = "fill") -> Image.Image:
    """Size ``image`` for ``box`` in a view mode (see VIEW_MODES), aspect ratio kept, Lanczos resampling."""
    factor = min(box[0] / image.width, box[1] / image.height)
    if mode == "1:1" or (mode == "fit" and factor >= 1):
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def placeholder(box: tuple[int, int], message: str) -> Image.Image:
    side = min(box)
    image = Image.new("RGB", (side, side), PLACEHOLDER_BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, side // 30))
    text = f"This image cannot be shown.\n\n{message}\n\nPress S (or the Skip button) to skip it."
    draw.multiline_text((side // 2, side // 2), text, fill=(255, 255, 255), font=font, anchor="mm",
                        align="center")
    return image


def load_scaled(path: str | Path, box: tuple[int, int], mode: str = "fill") -> LoadedImage:
    """The image sized for ``box`` (see VIEW_MODES), or a placeholder saying why it cannot be shown (never
    raises). Decoded by the database layer, as the model and the baselines decode it (EXIF orientation,
    16-bit grey, transparency over white; regular files under the pixel cap only)."""
    try:
        return LoadedImage(scale_to_fit(open_image(path, missing=MISSING), box, mode))
    except InputError as problem:
        error = MISSING if problem.message == MISSING else f"the file is not a readable image ({problem.message})"
    log.warning("cannot show %s: %s", path, error)
    return LoadedImage(placeholder(box, error), error)


class Prefetcher:
    """Loads images in a worker thread; ``get`` returns a finished one or waits for it."""

    def __init__(self, box: tuple[int, int], *, enabled: bool = True, keep: int = 6, mode: str = "fill"):
        self.box, self.mode = box, mode
        self.enabled = enabled
        self.keep = keep
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._futures: dict[Path, Future] = {}
        self._lock = threading.Lock()

    def request(self, path: str | Path) -> Future:
        path = Path(path)
        with self._lock:
            future = self._futures.get(path)
            if future is None:
                future = self._executor.submit(load_scaled, path, self.box, self.mode)
                self._futures[path] = future
                while len(self._futures) > self.keep:  # forget the oldest request
                    self._futures.pop(next(iter(self._futures)))
            return future

    def prefetch(self, path: str | Path) -> None:
        if self.enabled:
            self.request(path)

    def get(self, path: str | Path) -> LoadedImage:
        if not self.enabled:
            return load_scaled(path, self.box, self.mode)
        return self.request(path).result()

    def set_view(self, box: tuple[int, int], mode: str | None = None) -> bool:
        """Size later images for a new box or view mode (forgetting those made for the old); True if it changed."""
        mode = self.mode if mode is None else mode
        with self._lock:
            if (box, mode) == (self.box, self.mode):
                return False
            self.box, self.mode = box, mode
            self._futures.clear()
            return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
