"""The training loop every stage shares: its options, the :class:`Task` a stage hands it, :func:`fit` (seeded
order, gradient accumulation, NaN stop, validation, all-or-nothing checkpoints, exact resume) and the
resume state.

The same loop runs on one CPU, one GPU, or many processes under ``accelerate launch`` (DDP): each process
takes every k-th batch of the epoch's seeded order. Defaults are the paper's: Adam (0.9, 0.999), learning
rate 1e-5 with cosine annealing, batch 8. A checkpoint is written every epoch in one all-or-nothing folder
write, so a failure (NaN loss, Ctrl-C) leaves the last good checkpoint intact; ``resume`` continues
bit-identically. The kept model (``model.safetensors``) is the one with the best validation score the
stage's task defines (its ``selection``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aigciqa.common.progress import progress as progress_bar
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError, read_json
from aigciqa.model import runs


@dataclass
class LoopOptions:
    """Options of the training loop that every stage shares (each stage adds its own, see :mod:`.stages`)."""
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
    resume_command: str | None = None  # the command that continues this run (recorded in last/state.json)


# LoopOptions fields that describe one invocation, not the run (left out of config.json).
INVOCATION_KEYS = ("run", "resume", "stop_after", "cpu", "progress", "resume_command")


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
    load: object = None  # (unwrapped model, path) -> None (default: runs.load_weights)
    selection: str = "srcc"  # what the selection score is (metrics.json: best_val_<selection>)


def check_loop_options(options: LoopOptions) -> None:
    if options.batch_size < 1 or options.epochs < 1 or options.grad_accum < 1:
        raise InputError("batch size, epochs and gradient accumulation must be at least 1")


@contextlib.contextmanager
def writer_lock(folder: DatabaseFolder):
    """The folder's writer lock, held by the main process of a run (the others, under ``accelerate launch``,
    write nothing; RANK is set by torch's and accelerate's launchers)."""
    if os.environ.get("RANK", "0") != "0":
        yield None
        return
    with folder.lock() as held:  # named by its command line
        yield held


def run_options(options: LoopOptions, exclude=()) -> dict:
    """The options that describe a run (recorded in its config.json)."""
    return {k: v for k, v in asdict(options).items() if k not in INVOCATION_KEYS and k not in exclude}


def write_test_metrics(root, run_rel: str, result: TrainResult, selection: str = "srcc", extra=None) -> None:
    DatabaseFolder(root).write(stage="train", files={f"{run_rel}/{runs.METRICS_FILE}": runs.metrics_json(
        result.history, result.best, result.test, selection, extra)})


def fit(root, options: LoopOptions, config: dict, make_task, resume_keys) -> tuple[TrainResult, object]:
    """The training loop of every stage: train (or resume) the task ``make_task(device)`` builds in
    ``root/runs/<options.run_name()>``, one all-or-nothing checkpoint per epoch. Returns the result and
    the device."""
    with writer_lock(DatabaseFolder(root)):  # the whole run: a second train of this folder exits 2 naming it
        return _fit_locked(root, options, config, make_task, resume_keys)


def _fit_locked(root, options: LoopOptions, config: dict, make_task, resume_keys) -> tuple[TrainResult, object]:
    folder = DatabaseFolder(root)
    run_rel = f"runs/{options.run_name()}"
    run_dir = folder.path(run_rel)
    start_epoch, state, state_tensors = 0, None, None
    if options.resume:
        state, state_tensors = _read_resume_state(run_dir, config, resume_keys)
        start_epoch = state["epoch"]
    elif (run_dir / runs.CONFIG_FILE).exists():
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
    optimizer = torch.optim.Adam(trainable, lr=options.lr, betas=(0.9, 0.999), **adam_kernel(trainable))

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
    # How to continue the run (aigciqa info, evaluate and score name it while it is unfinished); a resume
    # through the Python API keeps the command the run was started with.
    resume_command = options.resume_command or (state or {}).get("resume_command")
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
        batches_shown = progress_bar(mine, f"epoch {epoch + 1}/{options.epochs}",
                                     options.progress and accelerator.is_main_process)
        for batch in batches_shown:
            with accelerator.accumulate(model):
                loss = task.batch_loss(model, [examples[int(i)] for i in batch])
                if not torch.isfinite(loss):
                    updated = bool(result.losses or epoch_losses)  # any optimizer step in this invocation
                    raise InputError(nonfinite_loss_message(loss.item(), epoch, updated), file=str(run_dir))
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
                  {"epoch": epoch + 1, "history": history, "best": best, "resume_command": resume_command},
                  improved)
        accelerator.wait_for_everyone()

    result.best_epoch = best["epoch"]
    result.best = best
    result.history = history
    return result, accelerator.device


def nonfinite_loss_message(loss: float, epoch: int, updated: bool) -> str:
    """Why training stopped on a loss of inf or NaN: before any update of this invocation the weights are
    the initial or checkpointed ones, so the learning rate cannot be the cause: the inputs are."""
    if not updated:
        return (f"the loss is {loss} on the first batch, before any update (epoch {epoch + 1}): the inputs make it, "
                "not the learning rate; check this batch's images and targets (mos.csv, the card's mos_range); "
                "nothing was written")
    return (f"loss became {loss} in epoch {epoch + 1} after updates of the weights; training stopped, the last "
            "good checkpoint is kept (lower --lr?)")


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
    weights = runs.state_bytes(task.weights(model) if task.weights else model.state_dict())
    tensors, optimizer_json = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    state = {**progress, "optimizer": optimizer_json, "scheduler": scheduler.state_dict()}
    files = {f"{run_rel}/{runs.CONFIG_FILE}": json.dumps(config, indent=2) + "\n",
             f"{run_rel}/{runs.LAST_DIR}/{runs.MODEL_FILE}": weights,
             f"{run_rel}/{runs.LAST_DIR}/{runs.STATE_TENSORS}": runs.state_bytes(tensors),
             f"{run_rel}/{runs.LAST_DIR}/{runs.STATE_JSON}": json.dumps(state, indent=2, default=float) + "\n",
             f"{run_rel}/{runs.METRICS_FILE}": runs.metrics_json(progress["history"], progress["best"], None,
                                                             task.selection)}
    if improved:
        files[f"{run_rel}/{runs.MODEL_FILE}"] = weights
    folder.write(stage="train", files=files)


def _read_resume_state(run_dir: Path, config: dict, resume_keys):
    if not (run_dir / runs.CONFIG_FILE).exists():  # e.g. killed before its first checkpoint: nothing to lose
        raise InputError("no checkpoint to resume from: the run has no finished epoch; start it without --resume",
                         file=str(run_dir))
    saved = runs.read_config(run_dir)
    changed = [k for k in resume_keys if saved.get(k) != config.get(k)]
    if changed:
        raise InputError("cannot resume: options differ from the run's "
                         + ", ".join(f"{k} ({saved.get(k)!r} there, {config.get(k)!r} now)" for k in changed),
                         file=str(run_dir / runs.CONFIG_FILE))
    path = run_dir / runs.LAST_DIR / runs.STATE_JSON
    state = read_json(path, missing="no checkpoint to resume from", what="checkpoint state")
    return state, runs.read_tensors(run_dir / runs.LAST_DIR / runs.STATE_TENSORS)


ADAM_KERNEL_KEYS = ("fused", "foreach")


def adam_kernel(parameters) -> dict:
    """Adam's implementation for these parameters: the fused kernel where torch has one (CPU and CUDA; about
    6x faster than a loop over tensors on the CPU, which is what ``foreach`` falls back to there), else
    ``foreach``. Both give the same update to float rounding."""
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    return {"fused": True, "foreach": False} if fused else {"fused": False, "foreach": True}


def _restore(task, model, optimizer, scheduler, state, tensors, run_dir):
    import torch
    (task.load or runs.load_weights)(model, run_dir / runs.LAST_DIR / runs.MODEL_FILE)
    saved = state["optimizer"]
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    for key, value in saved["scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    # How to compute is this version's choice, not state: set before loading, since torch places each
    # parameter's step count by the groups it loads (on the parameter's device for the fused kernel).
    kernel = {key: optimizer.param_groups[0][key] for key in ADAM_KERNEL_KEYS}
    groups = [{**group, **kernel} for group in saved["param_groups"]]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
