"""Training stage 1 of the paper (section IV-C): the multi-perspective scorer, with accelerate.

The same function runs on one CPU, one GPU, or many processes under ``accelerate launch`` (DDP):
each process takes every k-th batch of the epoch's seeded order. Defaults are the paper's: Adam
(0.9, 0.999), learning rate 1e-5 with cosine annealing, batch 8. Losses: L1 on the normalised MOS
(eq. 4), the pairwise loss -log sigmoid(f(better) - f(worse)) (eq. 5) on pairs.csv or on rankings
expanded to all untied pairs, and cross-entropy over MOS bins (the ablation of Table XI).

Checkpoints are written every epoch in one all-or-nothing folder write, so a failure (NaN loss,
Ctrl-C) leaves the last good checkpoint intact; ``resume`` continues bit-identically.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError, read_json
from aigciqa.model import checkpoint as ckpt
from aigciqa.model.data import ModelData, check_targets, load_model_data, load_pixels, ranking_pairs
from aigciqa.model.metrics import perspective_metrics

LOSSES = ("l1", "pairwise", "ce")


@dataclass
class LoopOptions:
    """Options of the training loop that every stage shares (stage 1 here, stages 2 and 3 in :mod:`.stage2`)."""
    run: str | None = None  # name under runs/
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-5
    seed: int = 0
    grad_accum: int = 1
    mixed_precision: str = "no"
    resume: bool = False
    stop_after: int | None = None  # stop after this many epochs in this invocation (resume later)
    cpu: bool = False
    progress: bool = True


# LoopOptions fields that describe one invocation, not the run (left out of config.json).
INVOCATION_KEYS = ("run", "resume", "stop_after", "cpu", "progress")


@dataclass
class TrainOptions(LoopOptions):
    preset: str = "tiny"
    split: str = "split"
    fix_rate: float = 0.7
    loss: str = "l1"
    bins: int = 1  # >1 only for the cross-entropy loss
    segments: bool = True  # append style/content/atmosphere to the prompt
    perspectives: list[str] | None = None
    lora_rank: int = 0
    weights: str | None = None  # local checkpoint folder of the paper preset
    cache_features: bool = True

    def run_name(self) -> str:
        return self.run or f"mint-iqa-{self.preset}"


# Options that must not change between a run and its resumption (they change the result).
RESUME_KEYS = ("preset", "split", "epochs", "batch_size", "lr", "fix_rate", "loss", "bins", "segments",
               "perspectives", "seed", "grad_accum", "lora_rank", "num_queries")


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best: dict = field(default_factory=dict)  # epoch and selection score of the kept model
    extra: dict = field(default_factory=dict)  # what a stage adds (stage 3: stage-1 test metrics, change)
    test: dict | None = None
    losses: list[float] = field(default_factory=list)  # every optimizer step of this invocation
    main_process: bool = True  # False in the other processes of a distributed run


@dataclass
class Task:
    """What one training stage trains; :func:`fit` runs the loop around it (seeded order, accumulation,
    NaN stop, validation, all-or-nothing checkpoints, exact resume), the same for every stage."""
    model: object  # torch module; its parameters with requires_grad are optimised
    examples: list  # what an epoch goes through, in a seeded order
    batch_loss: object  # (prepared model, examples of one batch) -> scalar loss tensor
    validate: object = None  # (unwrapped model) -> (metrics, selection score, higher is better), or None
    weights: object = None  # (unwrapped model) -> tensors a checkpoint holds (default: the state dict)
    load: object = None  # (unwrapped model, path) -> None (default: checkpoint.load_weights)
    selection: str = "srcc"  # what the selection score is (metrics.json: best_val_<selection>)


def prepare(root, options: TrainOptions) -> tuple[ModelData, dict]:
    """Check the folder and options and return the data and the run config (no model yet)."""
    if options.loss not in LOSSES:
        raise InputError(f"unknown loss '{options.loss}' (known: {', '.join(LOSSES)})")
    check_loop_options(options)
    if not 0.0 <= options.fix_rate <= 1.0:
        raise InputError(f"fix rate {options.fix_rate} is outside 0-1")
    from aigciqa.model.presets import get_preset
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
    if options.loss == "ce" and bins < 2:
        bins = 5
    config = {**run_options(options, exclude=("bins", "perspectives")),
              "perspectives": data.perspectives, "bins": bins, "num_queries": preset.num_queries,
              "mos_range": list(data.mos_range), "database": data.card["name"]}
    return data, config


def check_loop_options(options: LoopOptions) -> None:
    if options.batch_size < 1 or options.epochs < 1 or options.grad_accum < 1:
        raise InputError("batch size, epochs and gradient accumulation must be at least 1")


def run_options(options: LoopOptions, exclude=()) -> dict:
    """The options that describe a run (recorded in its config.json)."""
    return {k: v for k, v in asdict(options).items() if k not in INVOCATION_KEYS and k not in exclude}


def train(root, options: TrainOptions) -> TrainResult:
    """Train (or resume) a run in ``root/runs/<name>``; returns its history and test metrics."""
    data, config = prepare(root, options)

    def make_task(device) -> Task:
        model, tokenizer, preset, _frozen = ckpt.build_model(config, pretrained=not options.resume,
                                                             seed=options.seed)
        pixels = PixelCache(data, preset)
        from aigciqa.model.boundary_cache import training_inputs
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
        best_model, tokenizer, preset, _ = ckpt.build_model(config, pretrained=False)
        ckpt.load_weights(best_model, run_dir / ckpt.MODEL_FILE)
        best_model.to(device).eval()
        check_targets(data, test_rows, "test")
        predicted = predict_rows(best_model, tokenizer, preset, data, test_rows, options.batch_size, device,
                                 features=cached_inputs(best_model, preset, data, test_rows, options, device))
        result.test = rows_metrics(data, test_rows, predicted)
        write_test_metrics(root, run_rel, result)
    return result


def rows_metrics(data: ModelData, rows, predicted: np.ndarray) -> dict:
    """Metrics per perspective (and average) of MOS-scale predictions [len(rows), perspectives]."""
    return perspective_metrics({p: predicted[:, j] for j, p in enumerate(data.perspectives)},
                               {p: data.to_mos(data.targets[rows, j]) for j, p in enumerate(data.perspectives)})


def selection_srcc(metrics: dict) -> float:
    """The validation score that picks the kept model: SRCC averaged over perspectives."""
    return metrics.get("average", next(iter(metrics.values())))["srcc"]


def write_test_metrics(root, run_rel: str, result: TrainResult, selection: str = "srcc", extra=None) -> None:
    DatabaseFolder(root).write(stage="train", files={f"{run_rel}/{ckpt.METRICS_FILE}": _metrics_json(
        result.history, result.best, result.test, selection, extra)})


def fit(root, options: LoopOptions, config: dict, make_task, resume_keys) -> tuple[TrainResult, object]:
    """The training loop of every stage: train (or resume) the task ``make_task(device)`` builds in
    ``root/runs/<options.run_name()>``, one all-or-nothing checkpoint per epoch. Returns the result and
    the device."""
    folder = DatabaseFolder(root)
    run_rel = f"runs/{options.run_name()}"
    run_dir = folder.path(run_rel)
    start_epoch, state, state_tensors = 0, None, None
    if options.resume:
        state, state_tensors = _read_resume_state(run_dir, config, resume_keys)
        start_epoch = state["epoch"]
    elif (run_dir / ckpt.CONFIG_FILE).exists():
        raise InputError(f"run '{options.run_name()}' exists: pass --resume to continue it or --run NAME "
                         "for a new one", file=str(run_dir))

    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    accelerator = Accelerator(cpu=options.cpu, mixed_precision=options.mixed_precision,
                              gradient_accumulation_steps=options.grad_accum)
    set_seed(options.seed)
    task = make_task(accelerator.device)
    model = task.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=options.lr, betas=(0.9, 0.999))

    examples = task.examples
    world, rank = accelerator.num_processes, accelerator.process_index
    batches_per_process = math.ceil(math.ceil(len(examples) / options.batch_size) / world)
    # A partial accumulation at the end of an epoch is dropped (like drop_last), so every epoch starts
    # clean and a resumed run matches an uninterrupted one.
    steps_per_epoch = max(1, batches_per_process // options.grad_accum)
    # The scheduler steps once per optimizer step; it is not handed to accelerate (which would step it
    # once per process) because each process already sees only its share of the batches.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps_per_epoch * options.epochs)
    model, optimizer = accelerator.prepare(model, optimizer)
    history: list[dict] = []
    best = {"epoch": None, "srcc": -math.inf}  # "srcc" holds the selection score (task.selection)
    if state is not None:
        _restore(task, accelerator.unwrap_model(model), optimizer, scheduler, state, state_tensors, run_dir)
        history, best = state["history"], state["best"]

    result = TrainResult(run_dir=run_dir, history=history, main_process=accelerator.is_main_process)
    last_epoch = options.epochs if options.stop_after is None else min(options.epochs,
                                                                       start_epoch + options.stop_after)
    for epoch in range(start_epoch, last_epoch):
        started = time.perf_counter()
        model.train()
        accelerator.step = 0  # accelerate's accumulation counter: restart it each epoch
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(options.seed * 100003 + epoch))
        batches = [order[i:i + options.batch_size] for i in range(0, len(order), options.batch_size)]
        # Every process must take the same number of steps (DDP all-reduces each one): wrap around,
        # as torch's DistributedSampler pads.
        batches += batches[: (-len(batches)) % world]
        mine = batches[rank::world]
        epoch_losses = []
        progress = _progress(mine, f"epoch {epoch + 1}/{options.epochs}",
                             options.progress and accelerator.is_main_process)
        for batch in progress:
            with accelerator.accumulate(model):
                loss = task.batch_loss(model, [examples[int(i)] for i in batch])
                if not torch.isfinite(loss):
                    raise InputError(f"loss became {loss.item()} in epoch {epoch + 1}; training stopped, the "
                                     f"last good checkpoint is kept (lower --lr?)", file=str(run_dir))
                accelerator.backward(loss)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            epoch_losses.append(float(loss.detach()))
        (optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer).zero_grad()
        result.losses += epoch_losses
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(epoch_losses)),
                  "lr": float(scheduler.get_last_lr()[0]), "seconds": time.perf_counter() - started}
        improved = epoch == 0 and best["epoch"] is None
        if task.validate is not None:
            metrics, score = task.validate(accelerator.unwrap_model(model))
            record["val"] = metrics
            if not math.isnan(score) and score > best["srcc"]:
                best, improved = {"epoch": epoch + 1, "srcc": score}, True
        else:
            best, improved = {"epoch": epoch + 1, "srcc": float("nan")}, True  # no val part: keep the last
        if best["epoch"] is None:
            best, improved = {"epoch": epoch + 1, "srcc": -math.inf}, True
        history.append(record)
        if accelerator.is_main_process:
            _save(folder, run_rel, config, task, accelerator.unwrap_model(model), optimizer, scheduler,
                  {"epoch": epoch + 1, "history": history, "best": best}, improved)
        accelerator.wait_for_everyone()

    result.best_epoch = best["epoch"]
    result.best = best
    result.history = history
    return result, accelerator.device


def _val_preference_accuracy(data: ModelData, rows, predicted) -> float:
    from aigciqa.model.metrics import preference_accuracy
    position = {int(r): k for k, r in enumerate(rows)}
    pairs = [(position[b], position[w], max(p, 0)) for b, w, p in data.pairs.to_numpy()
             if b in position and w in position]
    if not pairs:
        return float("nan")
    b, w, p = (np.array(column) for column in zip(*pairs))
    return preference_accuracy(predicted[b, p], predicted[w, p])


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


def cached_inputs(model, preset, data: ModelData, rows, options: TrainOptions, device):
    """The boundary cache for predicting rows with a frozen model (None with --no-cache)."""
    if not options.cache_features:
        return None
    from aigciqa.model.boundary_cache import frozen_inputs
    return frozen_inputs(model, PixelCache(data, preset), device, root=data.root, preset=preset, rows=rows,
                         batch_size=options.batch_size, fill=False)


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


def _encode_text(tokenizer, texts, device, max_tokens):
    tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return tokens["input_ids"].to(device), tokens["attention_mask"].to(device)


def _forward(model, rows, data, tokenizer, pixels, features, device, max_tokens):
    import torch
    input_ids, mask = _encode_text(tokenizer, [data.texts[r] for r in rows], device, max_tokens)
    if features is not None:
        # Training a stage-1 scorer runs its trainable encoder steps on the cached boundary activations;
        # predicting (no gradients) takes the encoder's output.
        if torch.is_grad_enabled():
            return model(input_ids, mask, **features.inputs(rows))
        return model(input_ids, mask, image_embeds=features.image_embeds(rows))
    return model(input_ids, mask, pixel_values=pixels.get(rows).to(device))


def _batch_loss(model, examples, data, tokenizer, pixels, features, loss, bins, device, max_tokens):
    import torch
    import torch.nn.functional as F
    core = model.module if hasattr(model, "module") else model
    if loss == "pairwise":
        better = [e[0] for e in examples]
        worse = [e[1] for e in examples]
        perspective = torch.tensor([e[2] for e in examples], device=device)
        scores = core.scores(_forward(model, better + worse, data, tokenizer, pixels, features, device, max_tokens))
        diff = scores[: len(examples)] - scores[len(examples):]  # [B, P]
        # A pair with no perspective (-1) applies to every perspective.
        weight = torch.ones_like(diff) if (perspective < 0).all() else torch.where(
            (perspective[:, None] < 0) | (perspective[:, None] == torch.arange(diff.shape[1], device=device)),
            1.0, 0.0)
        return -(F.logsigmoid(diff) * weight).sum() / weight.sum()
    rows = list(examples)
    target = torch.tensor(data.targets[rows], dtype=torch.float32, device=device)
    outputs = _forward(model, rows, data, tokenizer, pixels, features, device, max_tokens)
    if loss == "ce":
        classes = (target * bins).long().clamp(0, bins - 1)
        return F.cross_entropy(outputs.reshape(-1, bins), classes.reshape(-1))
    return F.l1_loss(outputs, target)


def predict_rows(model, tokenizer, preset, data: ModelData, rows, batch_size, device, pixels=None,
                 progress: bool = False, features=None) -> np.ndarray:
    """Scores on the MOS scale, [len(rows), perspectives], in eval mode without gradients."""
    import torch
    pixels = pixels or PixelCache(data, preset)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        chunks = [list(map(int, rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
        for chunk in _progress(chunks, "scoring", progress):
            outputs = _forward(model, chunk, data, tokenizer, pixels, features, device, preset.max_text_tokens)
            out.append(model.scores(outputs).float().cpu().numpy())
    model.train(was_training)
    return data.to_mos(np.concatenate(out)) if out else np.zeros((0, len(data.perspectives)))


def _progress(items, description, enabled):
    if not enabled or len(items) < 2:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=description, leave=False)


def _optimizer_tensors(optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if hasattr(value, "shape"):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _save(folder, run_rel, config, task, model, optimizer, scheduler, progress, improved):
    import torch
    weights = ckpt.state_bytes(task.weights(model) if task.weights else model.state_dict())
    tensors, optimizer_json = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    state = {**progress, "optimizer": optimizer_json, "scheduler": scheduler.state_dict()}
    files = {f"{run_rel}/{ckpt.CONFIG_FILE}": json.dumps(config, indent=2) + "\n",
             f"{run_rel}/{ckpt.LAST_DIR}/{ckpt.MODEL_FILE}": weights,
             f"{run_rel}/{ckpt.LAST_DIR}/{ckpt.STATE_TENSORS}": ckpt.state_bytes(tensors),
             f"{run_rel}/{ckpt.LAST_DIR}/{ckpt.STATE_JSON}": json.dumps(state, indent=2, default=float) + "\n",
             f"{run_rel}/{ckpt.METRICS_FILE}": _metrics_json(progress["history"], progress["best"], None,
                                                             task.selection)}
    if improved:
        files[f"{run_rel}/{ckpt.MODEL_FILE}"] = weights
    folder.write(stage="train", files=files)


def _metrics_json(history, best, test, selection: str = "srcc", extra: dict | None = None) -> str:
    return json.dumps({"history": history, "best_epoch": best["epoch"],
                       f"best_val_{selection}": best["srcc"] if math.isfinite(best["srcc"]) else None,
                       "test": test, **(extra or {})}, indent=2, default=float, allow_nan=True) + "\n"


def _read_resume_state(run_dir: Path, config: dict, resume_keys=RESUME_KEYS):
    saved = ckpt.read_config(run_dir)
    changed = [k for k in resume_keys if saved.get(k) != config.get(k)]
    if changed:
        raise InputError("cannot resume: options differ from the run's "
                         + ", ".join(f"{k} ({saved.get(k)!r} there, {config.get(k)!r} now)" for k in changed),
                         file=str(run_dir / ckpt.CONFIG_FILE))
    path = run_dir / ckpt.LAST_DIR / ckpt.STATE_JSON
    state = read_json(path, missing="no checkpoint to resume from", what="checkpoint state")
    return state, ckpt.read_tensors(run_dir / ckpt.LAST_DIR / ckpt.STATE_TENSORS)


def _restore(task, model, optimizer, scheduler, state, tensors, run_dir):
    import torch
    (task.load or ckpt.load_weights)(model, run_dir / ckpt.LAST_DIR / ckpt.MODEL_FILE)
    saved = state["optimizer"]
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    for key, value in saved["scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": saved["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
