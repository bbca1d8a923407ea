"""Opening the images a folder lists: inside the folder, regular files, and of a bounded size, decoded
the way a viewer shows them, so the model and the baselines see what the annotators rated.

Pillow refuses images over ``2 * Image.MAX_IMAGE_PIXELS`` with a DecompressionBombError and only
warns between one and two times; here the cap is one clear limit, checked from the file's header
before any pixel is decoded, and raised with the environment variable ``AIGCIQA_MAX_IMAGE_PIXELS``
(a number of pixels) for databases of very large images.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from aigciqa.errors import InputError, check_regular_file

MAX_IMAGE_PIXELS_ENV = "AIGCIQA_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 64 * 1024 * 1024  # 8192 x 8192; the databases' images are at most 2048 px wide


def max_image_pixels() -> int:
    text = os.environ.get(MAX_IMAGE_PIXELS_ENV)
    if text is None:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"'{text}' is not a positive number of pixels", field=MAX_IMAGE_PIXELS_ENV)
    return value


def as_shown(image):
    """A decoded PIL image as an image viewer (and the annotate window) shows it, in RGB: turned by its EXIF
    orientation, 16-bit or float grey scaled to 8 bits (``convert`` would clip it to white), transparency
    over white (``convert`` would drop it, showing whatever colour the transparent pixels hold)."""
    import numpy as np
    from PIL import Image, ImageOps
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" else 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(np.rint(pixels / top * 255), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "P", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        shown = Image.new("RGB", rgba.size, (255, 255, 255))
        shown.paste(rgba, mask=rgba.getchannel("A"))
        return shown
    return image.convert("RGB")


def open_image(path: str | Path, *, mode: str = "RGB", file: str | None = None,
               missing: str = "file not found"):
    """Decode the image at ``path`` (already checked to be inside its folder) into a PIL image, as shown
    (:func:`as_shown`), in ``mode``.

    A folder, FIFO or device, a missing, unreadable or non-image file, and an image over the pixel cap are
    InputErrors naming ``file`` (default: the path)."""
    from PIL import Image, UnidentifiedImageError
    name = file or str(path)
    check_regular_file(path, what="image file", max_bytes=None, missing=missing)
    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the cap below decides
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as image:
                    width, height = image.size
                    if width * height > limit:
                        raise InputError(f"image is {width}x{height} = {width * height} pixels, over the cap of "
                                         f"{limit} (raise it with the environment variable "
                                         f"{MAX_IMAGE_PIXELS_ENV}=PIXELS)", file=name)
                    image.load()
                    shown = as_shown(image)
                    return shown if mode == "RGB" else shown.convert(mode)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(f"cannot decode the image: {error}", file=name) from None
