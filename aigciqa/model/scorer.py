"""Training stage 1 of the paper (section IV-C): the multi-perspective scorer (MINT-IQA's quality-aware
part), trained in the shared loop (:func:`.loop.fit`).

Losses: L1 on the normalised MOS (eq. 4), the pairwise loss -log sigmoid(f(better) - f(worse)) (eq. 5)
on pairs.csv or on rankings expanded to all untied pairs, and cross-entropy over MOS bins (the ablation
of Table XI). The kept model has the best validation SRCC (averaged over perspectives), or the best
preference accuracy when the folder has pairs only.

Exports what every stage module exports: its options, resume keys, build, load and train functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigciqa.errors import InputError
from aigciqa.model import runs
from aigciqa.model.data import ModelData, check_targets, load_model_data, ranking_pairs
from aigciqa.model.inference import (PixelCache, predict_rows, rows_metrics, score_forward, selection_srcc,
                                     used_rows)
from aigciqa.model.lora import ENCODER_PROJECTIONS, inject_lora
from aigciqa.model.loop import LoopOptions, Task, TrainResult, check_loop_options, fit, run_options, write_test_metrics
from aigciqa.model.metrics import preference_accuracy
from aigciqa.model.presets import get_preset

STAGE = 1
LOSSES = ("l1", "pairwise", "ce")


@dataclass
class TrainOptions(LoopOptions):
    preset: str = "tiny"
    split: str = "split"
    fix_rate: float = 0.7
    loss: str = "l1"
    bins: int = 1  # >1 only for the cross-entropy loss (the command line's default there: 5)
    segments: bool = True  # append style/content/atmosphere to the prompt
    perspectives: list[str] | None = None
    lora_rank: int = 0
    lora_blocks: str = "trainable"  # which encoder blocks LoRA adapts (runs.LORA_BLOCKS)
    weights: str | None = None  # the paper preset's checkpoint: a local folder or a Hub spec (aigciqa.weights)
    cache_features: bool = True

    def run_name(self) -> str:
        return self.run or f"mint-iqa-{self.preset}"


# Options that must not change between a run and its resumption (they change the result).
RESUME_KEYS = ("preset", "split", "epochs", "batch_size", "lr", "fix_rate", "loss", "bins", "segments",
               "perspectives", "seed", "grad_accum", "lora_rank", "lora_blocks", "num_queries")


def prepare(root, options: TrainOptions) -> tuple[ModelData, dict]:
    """Check the folder and options and return the data and the run config (no model yet)."""
    if options.loss not in LOSSES:
        raise InputError(f"unknown loss '{options.loss}' (known: {', '.join(LOSSES)})")
    check_loop_options(options)
    if not 0.0 <= options.fix_rate <= 1.0:
        raise InputError(f"fix rate {options.fix_rate} is outside 0-1")
    check_lora_options(options)
    preset = get_preset(options.preset)
    data = load_model_data(root, perspectives=options.perspectives, split=options.split,
                           use_segments=options.segments, need_mos=options.loss != "pairwise")
    train_rows = data.part("train")
    if options.loss == "pairwise":
        if data.targets is None and data.pairs.empty:
            raise InputError("the pairwise loss needs pairs.csv or mos.csv", file=str(data.root))
    else:
        check_targets(data, train_rows, "train")
        if len(data.part("val")):
            check_targets(data, data.part("val"), "val")
    bins = options.bins if options.loss == "ce" else 1
    if options.loss == "ce" and bins < 2:  # never silently another number of bins
        raise InputError(f"the cross-entropy loss needs at least 2 MOS bins, not {bins}", field="bins")
    config = {**run_options(options, exclude=("bins", "perspectives", "weights", "lora_blocks")),
              # recorded with LoRA only (a config without it, from before the choice, means every block)
              **({"lora_blocks": options.lora_blocks} if options.lora_rank else {}),
              "perspectives": data.perspectives, "bins": bins, "num_queries": preset.num_queries,
              "mos_range": list(data.mos_range), "database": data.card["name"],
              **preset.weights_entries(options.weights)}  # a Hub spec resolved; its commit and hashes recorded
    return data, config


def check_lora_options(options: TrainOptions) -> None:
    if options.lora_blocks not in runs.LORA_BLOCKS:
        raise InputError(f"unknown LoRA blocks '{options.lora_blocks}' (known: {', '.join(runs.LORA_BLOCKS)})",
                         field="lora_blocks")
    if options.lora_rank and options.lora_blocks == "trainable" and options.fix_rate >= 1.0:
        raise InputError("LoRA on the trainable blocks adapts nothing at fix rate 1 (every block is frozen): "
                         "lower the fix rate, or adapt every block with --lora-blocks all", field="lora_blocks")


def train(root, options: TrainOptions) -> TrainResult:
    """Train (or resume) a run in ``root/runs/<name>``; returns its history and test metrics."""
    data, config = prepare(root, options)

    def make_task(device) -> Task:
        model, tokenizer, preset, _frozen = build_model(config, pretrained=not options.resume, seed=options.seed)
        pixels = PixelCache(data, preset)
        from aigciqa.model.boundary_cache import training_inputs  # torch: imported when training starts
        features = training_inputs(model, pixels, device, root=data.root, preset=preset, rows=used_rows(data),
                                   batch_size=options.batch_size, precision=options.mixed_precision,
                                   enabled=options.cache_features)
        val_rows = data.part("val")

        def batch_loss(prepared, batch):
            return _batch_loss(prepared, batch, data, tokenizer, pixels, features, options.loss, config["bins"],
                               device, preset.max_text_tokens)

        def validate(model):
            predicted = predict_rows(model, tokenizer, preset, data, val_rows, options.batch_size, device,
                                     pixels, features=features)
            if data.targets is not None:
                metrics = rows_metrics(data, val_rows, predicted)
                return metrics, selection_srcc(metrics)
            # pairs only: select by preference accuracy on the pairs inside the val part
            accuracy = _val_preference_accuracy(data, val_rows, predicted)
            return {"preference_accuracy": accuracy}, accuracy

        return Task(model=model, examples=_training_examples(data, options), batch_loss=batch_loss,
                    validate=validate if len(val_rows) else None)

    result, device = fit(root, options, config, make_task, RESUME_KEYS)
    run_dir, run_rel = result.run_dir, f"runs/{options.run_name()}"
    finished = (result.history and result.history[-1]["epoch"] == options.epochs)
    test_rows = data.part("test") if data.parts is not None else np.array([], int)
    if finished and len(test_rows) and data.targets is not None and result.main_process:
        best_model, tokenizer, preset, _ = load(run_dir, config, device)
        check_targets(data, test_rows, "test")
        predicted = predict_rows(best_model, tokenizer, preset, data, test_rows, options.batch_size, device,
                                 features=cached_inputs(best_model, preset, data, test_rows, options, device))
        result.test = rows_metrics(data, test_rows, predicted)
        write_test_metrics(root, run_rel, result)
    return result


def cached_inputs(model, preset, data: ModelData, rows, options: TrainOptions, device):
    """The boundary cache for predicting rows with a frozen model (None with --no-cache)."""
    if not options.cache_features:
        return None
    from aigciqa.model.boundary_cache import frozen_inputs
    return frozen_inputs(model, PixelCache(data, preset), device, root=data.root, preset=preset, rows=rows,
                         batch_size=options.batch_size, fill=False)


def _val_preference_accuracy(data: ModelData, rows, predicted) -> float:
    position = {int(r): k for k, r in enumerate(rows)}
    pairs = [(position[b], position[w], max(p, 0)) for b, w, p in data.pairs.to_numpy()
             if b in position and w in position]
    if not pairs:
        return float("nan")
    b, w, p = (np.array(column) for column in zip(*pairs))
    return preference_accuracy(predicted[b, p], predicted[w, p])


def _training_examples(data: ModelData, options: TrainOptions) -> list:
    """Rows (L1/CE) or (better, worse, perspective) triples (pairwise) inside the train part."""
    rows = data.part("train")
    if options.loss != "pairwise":
        return [int(r) for r in rows]
    in_train = set(int(r) for r in rows)
    pairs = data.pairs if not data.pairs.empty else ranking_pairs(data, rows)
    triples = [(int(b), int(w), int(p)) for b, w, p in pairs[["better", "worse", "perspective"]].to_numpy()
               if b in in_train and w in in_train]
    if not triples:
        raise InputError("no preference pairs inside the train part", file=str(data.root))
    return triples


def _batch_loss(model, examples, data, tokenizer, pixels, features, loss, bins, device, max_tokens):
    import torch
    import torch.nn.functional as F
    core = model.module if hasattr(model, "module") else model
    if loss == "pairwise":
        better = [e[0] for e in examples]
        worse = [e[1] for e in examples]
        perspective = torch.tensor([e[2] for e in examples], device=device)
        scores = core.scores(score_forward(model, better + worse, data, tokenizer, pixels, features, device, max_tokens))
        diff = scores[: len(examples)] - scores[len(examples):]  # [B, P]
        # A pair with no perspective (-1) applies to every perspective.
        weight = torch.ones_like(diff) if (perspective < 0).all() else torch.where(
            (perspective[:, None] < 0) | (perspective[:, None] == torch.arange(diff.shape[1], device=device)),
            1.0, 0.0)
        return -(F.logsigmoid(diff) * weight).sum() / weight.sum()
    rows = list(examples)
    target = torch.tensor(data.targets[rows], dtype=torch.float32, device=device)
    outputs = score_forward(model, rows, data, tokenizer, pixels, features, device, max_tokens)
    if loss == "ce":
        classes = (target * bins).long().clamp(0, bins - 1)
        return F.cross_entropy(outputs.reshape(-1, bins), classes.reshape(-1))
    return F.l1_loss(outputs, target)


def build_model(config: dict, *, pretrained: bool, seed: int = 0):
    """The scorer a config describes (random heads seeded), with its fix rate and LoRA applied.

    Returns (model, tokenizer, preset, frozen_blocks).
    """
    import torch
    from aigciqa.model.network import apply_fix_rate
    preset = get_preset(config["preset"])
    torch.manual_seed(seed)
    weights = preset.local_weights(config)
    vision, fusion, tokenizer = preset.components(pretrained=pretrained, weights=weights)
    model = preset.scorer(vision, fusion, num_queries=config["num_queries"], perspectives=config["perspectives"],
                          bins=config["bins"])
    if pretrained:
        start_queries(model, preset, weights)
    frozen = apply_fix_rate(model, config["fix_rate"])
    if config.get("lora_rank"):
        model = add_lora(model, config["lora_rank"], config.get("lora_blocks") or runs.LORA_BLOCKS_UNRECORDED)
    return model, tokenizer, preset, frozen


def start_queries(model, preset, weights) -> None:
    """Start a model's queries from the preset's initial queries (InstructBLIP's learned ``query_tokens``
    for the paper preset) when it has them in the model's shape."""
    import torch
    queries = preset.initial_queries(weights)
    if queries is not None and queries.shape == model.query_tokens.shape:
        with torch.no_grad():
            model.query_tokens.copy_(queries)


def add_lora(model, rank: int, blocks: str = "trainable"):
    """LoRA (peft) on the attention projections of the image encoder's blocks: the blocks the fix rate left
    trainable (``blocks="trainable"``) or every block (``"all"``). Either way the encoder's own weights are
    frozen (peft): the adapters are what trains in it, while the Q-Former, queries and regressors train fully.
    With "trainable" the blocks below the boundary stay untouched, so the boundary cache covers them."""
    from aigciqa.model.network import vision_layers
    within = None
    if blocks == "trainable":  # called after apply_fix_rate: the blocks with trainable weights are above it
        adapted = {id(layer) for layer in vision_layers(model.vision)
                   if any(p.requires_grad for p in layer.parameters())}
        within = [name for name, module in model.vision.named_modules() if id(module) in adapted]
    model.vision = inject_lora(model.vision, rank, ENCODER_PROJECTIONS, within)
    return model


def load(run: Path, config: dict, device: str = "cpu"):
    """(scorer in eval mode, tokenizer, preset, config) of a stage-1 run."""
    model, tokenizer, preset, _ = build_model(config, pretrained=False)
    runs.load_weights(model, Path(run) / runs.MODEL_FILE)
    model.to(device).eval()
    return model, tokenizer, preset, config


def load_run(run, device: str = "cpu"):
    """:func:`load` of a run folder that must be a stage-1 run."""
    config = runs.read_config(Path(run))
    return load(Path(run), config, device)


def predict_with(run: Path, data: ModelData, rows, batch_size: int, device) -> np.ndarray:
    """MOS-scale predictions of a stage-1 run's scorer."""
    model, tokenizer, preset, _ = load_run(run, device=device)
    return predict_rows(model, tokenizer, preset, data, rows, batch_size, device)
