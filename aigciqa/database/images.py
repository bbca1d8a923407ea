"""Opening the images a folder lists: inside the folder, regular files, and of a bounded size.

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


def open_image(path: str | Path, *, mode: str = "RGB", file: str | None = None):
    """Decode the image at ``path`` (already checked to be inside its folder) into a PIL image.

    A folder, FIFO or device, an unreadable or non-image file, and an image over the pixel cap are
    InputErrors naming ``file`` (default: the path)."""
    from PIL import Image, UnidentifiedImageError
    name = file or str(path)
    check_regular_file(path, what="image file", max_bytes=None)
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
                    return image.convert(mode)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(f"cannot decode the image: {error}", file=name) from None
