"""Canny edge maps (numpy + scipy), the conditioning image of the ControlNet generator.

Same steps and thresholds as OpenCV's ``cv2.Canny(gray, low, high)`` with a 3x3 Sobel and the L2
gradient: gradient, non-maximum suppression along the gradient direction, then hysteresis (weak edges
are kept when 8-connected to a strong one). Written here to avoid an OpenCV dependency.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def canny(gray: np.ndarray, low: float = 100.0, high: float = 200.0) -> np.ndarray:
    """Boolean edge map of a 2-D grey image (0-255 values)."""
    image = np.asarray(gray, dtype=np.float64)
    gx = ndimage.sobel(image, axis=1, mode="nearest")
    gy = ndimage.sobel(image, axis=0, mode="nearest")
    magnitude = np.hypot(gx, gy)
    # Quantise the gradient direction to 0, 45, 90, 135 degrees; keep pixels not below both neighbours.
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = np.digitize(angle, [22.5, 67.5, 112.5, 157.5]) % 4
    padded = np.pad(magnitude, 1)
    h, w = magnitude.shape
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}  # (dy, dx) along the gradient
    keep = np.zeros_like(magnitude, dtype=bool)
    for index, (dy, dx) in offsets.items():
        ahead = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        behind = padded[1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        keep |= (sector == index) & (magnitude >= ahead) & (magnitude > behind)
    thin = np.where(keep, magnitude, 0.0)
    strong, weak = thin >= high, thin >= low
    labels, count = ndimage.label(weak, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros_like(weak)
    has_strong = np.zeros(count + 1, dtype=bool)
    has_strong[np.unique(labels[strong])] = True
    has_strong[0] = False
    return has_strong[labels]


def canny_image(image, low: float = 100.0, high: float = 200.0):
    """A PIL RGB image -> its Canny edges as a white-on-black RGB PIL image of the same size."""
    from PIL import Image
    gray = np.asarray(image.convert("L"))
    edges = canny(gray, low, high).astype(np.uint8) * 255
    return Image.fromarray(np.stack([edges] * 3, axis=-1), mode="RGB")
