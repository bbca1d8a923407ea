"""Images as the window shows them: view modes, awkward files (16-bit, EXIF rotation), placeholders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aigciqa.annotate.images import load_scaled, scale_to_fit


@pytest.mark.parametrize("mode, size", [("fit", (64, 48)), ("fill", (400, 300)), ("1:1", (64, 48))])
def test_a_small_image_keeps_its_size_unless_told_to_fill(mode, size):
    assert scale_to_fit(Image.new("RGB", (64, 48)), (400, 400), mode).size == size


@pytest.mark.parametrize("mode, size", [("fit", (400, 300)), ("fill", (400, 300)), ("1:1", (1600, 1200))])
def test_a_large_image_is_shrunk_to_fit_except_at_1_to_1(mode, size):
    assert scale_to_fit(Image.new("RGB", (1600, 1200)), (400, 400), mode).size == size


def test_16_bit_grey_is_shown_by_its_range_not_clipped_to_white(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    loaded = load_scaled(tmp_path / "deep.png", (256, 16), "1:1")
    row = np.asarray(loaded.image)[0, :, 0]
    assert loaded.error is None and row[0] == 0 and row[-1] == 255 and 120 <= row[128] <= 135


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    image.save(tmp_path / "camera.jpg", exif=exif)
    assert load_scaled(tmp_path / "camera.jpg", (100, 100), "fit").image.size == (20, 60)


def test_an_unreadable_file_gives_a_placeholder_and_the_reason(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    loaded = load_scaled(tmp_path / "bad.png", (200, 100))
    assert loaded.error.startswith("the file is not a readable image") and loaded.image.size == (100, 100)
    assert load_scaled(tmp_path / "gone.png", (200, 100)).error == "the file is missing"
