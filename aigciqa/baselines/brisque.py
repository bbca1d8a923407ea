"""BRISQUE, the blind/referenceless image spatial quality evaluator (Mittal, Moorthy and Bovik, IEEE
Transactions on Image Processing 21(12), 2012): 36 natural-scene features (AGGD fits of the MSCN
coefficients and their four neighbour products, at full and half size) regressed on LIVE DMOS by an RBF
support vector regression. About 0 (pristine) to 100 (heavily distorted): lower is better.

Parameters: the SVR and feature ranges of the ``brisque`` 0.2.0 package, evaluated in numpy. Features as
that package computes them, since its SVR was trained on them: grey in [0, 1] with C = 1/255, the mean
squares of each side as the variances, the exact root of the moment equation for the shape, and OpenCV's
bicubic (no antialiasing) half-size reduction, which :func:`half_size_cubic` reproduces in numpy.
"""

from __future__ import annotations

import numpy as np

from aigciqa.baselines.natural_scene import fit_aggd, half_size_cubic, mscn, neighbour_products
from aigciqa.baselines.parameters import brisque_model

def scale_features(gray: np.ndarray) -> np.ndarray:
    """The 18 features of one scale: (shape, variance) of the MSCN coefficients, then (shape, mean, left
    variance, right variance) of the horizontal, vertical, main- and secondary-diagonal products."""
    coefficients = mscn(gray, 1.0 / 255.0)
    sets = [coefficients, *neighbour_products(coefficients, wrap=False)]
    features = []
    for k, values in enumerate(sets):
        fit = fit_aggd(values.reshape(1, -1), exact=True)
        if k == 0:
            features += [fit["shape"], (fit["left_ms"] + fit["right_ms"]) / 2]
        else:
            features += [fit["shape"], fit["mean"], fit["left_ms"], fit["right_ms"]]
    return np.concatenate(features)


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a grey image in [0, 1]."""
    gray = np.asarray(gray, np.float64)
    if gray.ndim != 2 or min(gray.shape) < 8:
        raise ValueError(f"BRISQUE takes a 2-D grey image of at least 8 x 8 pixels, got shape {gray.shape}")
    return np.concatenate([scale_features(gray), scale_features(half_size_cubic(gray))])


def brisque(gray: np.ndarray) -> float:
    """BRISQUE of a grey image in [0, 1]: lower is better."""
    model = brisque_model()
    scaled = -1.0 + 2.0 * (brisque_features(gray) - model.low) / (model.high - model.low)
    return float(model.svr.predict(scaled)[0])
