"""Running a model on rows of a database folder or on loose image files: device choice, text encoding,
the pixel cache, prediction on the MOS scale and its metrics. Training (:mod:`.loop`) and every
stage use these; nothing here trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aigciqa.common.progress import progress
from aigciqa.errors import InputError
from aigciqa.model.data import ModelData, load_pixels
from aigciqa.model.metrics import perspective_metrics


def pick_device(cpu: bool) -> str:
    """"cuda" when a GPU is there and ``cpu`` is not asked for, else "cpu"."""
    import torch
    return "cuda" if torch.cuda.is_available() and not cpu else "cpu"


def encode_text(tokenizer, texts, device, max_tokens):
    """(input ids, attention mask) of texts on ``device``, padded to the longest and cut at ``max_tokens``."""
    tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return tokens["input_ids"].to(device), tokens["attention_mask"].to(device)


class PixelCache:
    """Decoded, normalised images by row, decoded once (no augmentation, so training is deterministic)."""

    def __init__(self, data: ModelData, preset):
        self.data, self.preset, self.cache = data, preset, {}

    def get(self, rows):
        import torch
        arrays = []
        for row in rows:
            if row not in self.cache:
                self.cache[row] = load_pixels(self.data.paths[row], self.preset.image_size,
                                              self.preset.mean, self.preset.std)
            arrays.append(self.cache[row])
        return torch.from_numpy(np.stack(arrays))

    def forget(self, rows) -> None:
        """Drop decoded images that will not be read again (the boundary cache holds their activations)."""
        for row in rows:
            self.cache.pop(row, None)


def used_rows(data: ModelData) -> np.ndarray:
    """Rows of the images a run uses (every part of its split): the boundary cache is filled for these."""
    return np.arange(len(data.image_ids)) if data.parts is None else np.flatnonzero(data.parts != "")


class RowPixels:
    """Pixels of ModelData rows addressed by position in a row list."""

    def __init__(self, pixels: PixelCache, rows):
        self.pixels, self.rows = pixels, rows

    def get(self, positions):
        return self.pixels.get([self.rows[p] for p in positions])


def score_forward(model, rows, data, tokenizer, pixels, features, device, max_tokens):
    """The scorer's raw outputs for rows (from the boundary cache, :mod:`.boundary_cache`, when given)."""
    import torch
    input_ids, mask = encode_text(tokenizer, [data.texts[r] for r in rows], device, max_tokens)
    if features is not None:
        # Training a stage-1 scorer runs its trainable encoder steps on the cached boundary activations;
        # predicting (no gradients) takes the encoder's output.
        if torch.is_grad_enabled():
            return model(input_ids, mask, **features.inputs(rows))
        return model(input_ids, mask, image_embeds=features.image_embeds(rows))
    return model(input_ids, mask, pixel_values=pixels.get(rows).to(device))


def predict_rows(model, tokenizer, preset, data: ModelData, rows, batch_size, device, pixels=None,
                 show_progress: bool = False, features=None) -> np.ndarray:
    """Scores on the MOS scale, [len(rows), perspectives], in eval mode without gradients."""
    import torch
    pixels = pixels or PixelCache(data, preset)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        chunks = [list(map(int, rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
        for chunk in progress(chunks, "scoring", show_progress):
            outputs = score_forward(model, chunk, data, tokenizer, pixels, features, device, preset.max_text_tokens)
            out.append(model.scores(outputs).float().cpu().numpy())
    model.train(was_training)
    return data.to_mos(np.concatenate(out)) if out else np.zeros((0, len(data.perspectives)))


def rows_metrics(data: ModelData, rows, predicted: np.ndarray) -> dict:
    """Metrics per perspective (and average) of MOS-scale predictions [len(rows), perspectives]."""
    return perspective_metrics({p: predicted[:, j] for j, p in enumerate(data.perspectives)},
                               {p: data.to_mos(data.targets[rows, j]) for j, p in enumerate(data.perspectives)})


def selection_srcc(metrics: dict) -> float:
    """The validation score that picks the kept scorer: SRCC averaged over perspectives."""
    return metrics.get("average", next(iter(metrics.values())))["srcc"]


def check_image_files(images) -> None:
    for number, path in enumerate(images, start=1):
        if not Path(path).is_file():
            raise InputError(f"image file not found (argument {number})", file=str(path))


def image_files_data(images, texts: str | list[str], config: dict) -> ModelData:
    """Loose image files as ModelData rows (no folder, no targets), with one text for all or one per image."""
    paths = [Path(p) for p in images]
    texts = [texts] * len(paths) if isinstance(texts, str) else list(texts)
    return ModelData(root=Path("."), card={"mos_range": config["mos_range"], "name": ""},
                     perspectives=config["perspectives"], image_ids=[p.name for p in paths], paths=paths,
                     texts=texts, prompt_ids=[""] * len(paths), targets=None, parts=None)
