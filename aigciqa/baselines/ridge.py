"""The learned baseline that runs everywhere: ridge regression on the frozen, pretrained image encoder of a
model preset (its CLS token and mean patch token), trained on a split's train part with the penalty chosen
by validation SRCC. torch is imported lazily."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aigciqa.model.data import ModelData
from aigciqa.model.metrics import correlation_metrics

RIDGE_ALPHAS = (0.1, 1, 10, 100, 1000, 10000)


def encoder_features(data: ModelData, preset_name: str, *, weights=None, batch_size: int = 16,
                     progress: bool = False) -> np.ndarray:
    """[images, 2 x hidden]: CLS and mean patch token of the preset's pretrained encoder, frozen (the encoder
    as the preset loads it)."""
    import torch
    from aigciqa.model.presets import build_components, get_preset
    from aigciqa.model.inference import PixelCache
    preset = get_preset(preset_name)
    vision = build_components(preset, pretrained=True, weights=weights)[0].eval()
    pixels = PixelCache(data, preset)
    starts = range(0, len(data.image_ids), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f"{preset_name} encoder features", leave=False)
    features = []
    with torch.no_grad():
        for start in starts:
            rows = list(range(start, min(start + batch_size, len(data.image_ids))))
            tokens = vision(pixel_values=pixels.get(rows)).last_hidden_state
            features.append(torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], dim=1).numpy())
    return np.concatenate(features)


@dataclass(frozen=True)
class RidgeFit:
    """Standardisation (from the train part) and the weights (last entry: intercept) of one fitted ridge."""
    alpha: float
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.c_[(x - self.mean) / self.std, np.ones(len(x))] @ self.weights


def fit_ridge(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
              alphas=RIDGE_ALPHAS) -> RidgeFit:
    """Closed-form ridge on standardised features (train part statistics), alpha with the best val SRCC."""
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6

    def fit(alpha):
        a = np.c_[(x[train] - mean) / std, np.ones(len(train))]
        return RidgeFit(float(alpha), mean, std,
                        np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ y[train]))

    fits = [fit(alpha) for alpha in alphas]
    return max(fits, key=lambda f: correlation_metrics(f.predict(x[val]), y[val])["srcc"])
