"""One decoding for every stage: what the model and the baselines read is what the annotators saw."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aigciqa.annotate.images import load_scaled
from aigciqa.baselines.methods import read_grey
from aigciqa.baselines.natural_scene import luminance
from aigciqa.baselines.text_image import read_images
from aigciqa.database.images import open_image
from aigciqa.errors import InputError
from aigciqa.model.data import load_pixels


def awkward_images(folder):
    """Files whose plain ``Image.open(...).convert("RGB")`` differs from what a viewer shows."""
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 0] = 200  # red under full transparency on the left half: a viewer shows white there
    rgba[:, 16:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(folder / "transparent.png")
    Image.fromarray(np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (24, 1))).save(folder / "deep.png")
    upright = Image.new("RGB", (32, 24), (10, 20, 30))
    upright.paste((250, 0, 0), (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; shown turned 90 degrees clockwise
    upright.rotate(90, expand=True).save(folder / "turned.jpg", exif=exif, quality=95)
    return [folder / "transparent.png", folder / "deep.png", folder / "turned.jpg"]


def test_transparency_shows_white_and_16_bit_grey_keeps_its_range(tmp_path):
    transparent, deep, _ = awkward_images(tmp_path)
    shown = np.asarray(open_image(transparent))
    assert (shown[:, :16] == 255).all() and (shown[:, 16:] == (200, 0, 0)).all()
    ramp = np.asarray(open_image(deep))[0, :, 0]
    assert ramp[0] == 0 and ramp[-1] == 255 and (np.diff(ramp.astype(int)) >= 0).all()


def test_exif_orientation_is_applied(tmp_path):
    turned = awkward_images(tmp_path)[2]
    shown = open_image(turned)
    assert shown.size == (32, 24) and np.asarray(shown)[2, 2, 0] > 200


@pytest.mark.parametrize("index", [0, 1, 2])
def test_model_baselines_and_window_decode_the_same_pixels(tmp_path, index):
    path = awkward_images(tmp_path)[index]
    window = np.asarray(load_scaled(path, (10_000, 10_000), "1:1").image)
    assert np.array_equal(window, np.asarray(open_image(path)))
    assert np.array_equal(np.asarray(read_images([path])[0]), window)
    assert np.allclose(read_grey(path), luminance(window))
    size = 16
    expected = np.asarray(Image.fromarray(window).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    assert np.allclose(load_pixels(path, size, (0, 0, 0), (1, 1, 1)), expected.transpose(2, 0, 1))


def test_a_fifo_is_refused_by_every_reader_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_images([fifo])
    loaded = load_scaled(fifo, (50, 50))
    assert "not a regular file" in loaded.error
