"""Run folders on disk: their layout, config, weights (safetensors, never pickle) and the runs they build on.

A run folder (``runs/<name>/`` in the database folder) holds
- ``config.json``: the training stage, preset and architecture (what is needed to rebuild the model) and
  the training options;
- ``model.safetensors``: the kept model (the best validation score of its stage, see :mod:`.loop`);
- ``last/model.safetensors``, ``last/state.safetensors`` (optimizer tensors, RNG state) and
  ``last/state.json`` (epoch, scheduler, history): everything an exact resume needs;
- ``metrics.json``: per-epoch history, the chosen epoch and test metrics.

A stage-2 run references its stage-1 run and a stage-3 run its stage-2 run (``from_run``, relative to the
database folder when inside it, and the sha256 of the referenced weights, checked on load): the frozen
weights are not copied.

The lowest layer of :mod:`aigciqa.model`: imports nothing of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from aigciqa.common.files import file_sha256
from aigciqa.errors import InputError, read_json

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
LAST_DIR = "last"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
METRICS_FILE = "metrics.json"

# The training stages as subcommands of `aigciqa train`, by the number of the paper's stage.
STAGE_COMMANDS = {1: "scorer", 2: "instruct", 3: "feedback"}

# Config keys that fix the architecture: a checkpoint only loads into a model built with the same values.
ARCHITECTURE_KEYS = ("preset", "perspectives", "bins", "lora_rank", "num_queries")
# Scorer config keys a stage-2/3 config repeats, so evaluation and scoring read it like a stage-1 config.
# "weights" is the local checkpoint path models load from, "weights_source" what it is (repo id, revision,
# resolved commit, sha256 of every file; see aigciqa.weights).
# Which image-encoder blocks a stage-1 run's LoRA adapts (recorded when lora_rank > 0): "trainable", the blocks
# above the fix-rate boundary (the frozen ones below it stay as they are, so the boundary cache covers them), or
# "all" (every block, as runs did before the choice was recorded: a config without it means "all").
LORA_BLOCKS = ("trainable", "all")
LORA_BLOCKS_UNRECORDED = "all"
SCORER_KEYS = (*ARCHITECTURE_KEYS, "lora_blocks", "fix_rate", "mos_range", "segments", "database", "weights",
               "weights_source")


# The types of a run config's entries (the ones a model is rebuilt and evaluated from); checked on every
# read, so a mistyped config.json is one line naming the file and field instead of a failure deep inside.
CONFIG_SCHEMA = {
    "type": "object",
    "required": [*ARCHITECTURE_KEYS, "fix_rate", "mos_range"],
    "properties": {
        "stage": {"enum": [1, 2, 3]},
        "preset": {"type": "string", "minLength": 1},
        "perspectives": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        "bins": {"type": "integer", "minimum": 1},
        "lora_rank": {"type": "integer", "minimum": 0},
        "lora_blocks": {"enum": [*LORA_BLOCKS, None]},  # null: no LoRA (a stage-2/3 config copies it)
        "num_queries": {"type": "integer", "minimum": 1},
        "fix_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "mos_range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "segments": {"type": "boolean"},
        "database": {"type": "string"},
        "weights": {"type": ["string", "null"]},
        "from_run": {"type": "string", "minLength": 1},
        "from_sha256": {"type": "string"},
    },
}


def state_bytes(tensors: dict) -> bytes:
    from safetensors.torch import save
    return save({key: value.detach().cpu().contiguous() for key, value in tensors.items()})


def read_tensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    if not path.is_file():
        raise InputError("checkpoint file not found", file=str(path))
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"corrupt checkpoint: {error}", file=str(path)) from None


def read_config(run: Path) -> dict:
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise InputError("not a model run: config.json is missing (train one with 'aigciqa train')",
                         file=str(run))
    config = read_json(path, what="run config")
    errors = sorted(jsonschema.Draft202012Validator(CONFIG_SCHEMA).iter_errors(config),
                    key=lambda e: list(e.absolute_path))
    if errors:
        field = "/".join(str(part) for part in errors[0].absolute_path) or None
        raise InputError(errors[0].message, file=str(path), field=field)
    low, high = config["mos_range"]
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InputError(f"[{low}, {high}] must be finite with the low end below the high end", file=str(path),
                         field="mos_range")
    if config.get("lora_rank") and not config.get("lora_blocks"):
        config["lora_blocks"] = LORA_BLOCKS_UNRECORDED  # a run from before the choice was recorded
    return config


def stage_of(config: dict) -> int:
    """The training stage (1, 2 or 3) a run config belongs to."""
    return int(config.get("stage", 1))


def load_weights(model, path: Path) -> None:
    """Load safetensors weights; a checkpoint of another architecture is refused with a clear message."""
    tensors = read_tensors(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[0]
        raise InputError(f"checkpoint does not fit this model (another preset or option?): "
                         f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} misshapen "
                         f"tensors, e.g. '{detail}'", file=str(path))
    model.load_state_dict(tensors)


def load_partial_weights(model, own: dict, path: Path) -> None:
    """Load the tensors ``own`` names (part of the model's state, e.g. without a file-backed LLM's weights);
    every one must be in the file with its shape."""
    tensors = read_tensors(path)
    missing = sorted(set(own) - set(tensors))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise InputError(f"checkpoint does not fit this model (another preset or option?): {len(missing)} missing, "
                         f"{len(wrong)} misshapen tensors, e.g. '{(missing or wrong)[0]}'", file=str(path))
    model.load_state_dict({k: tensors[k] for k in own}, strict=False)


def find_run(root, spec: str, stage: int) -> Path:
    """A run folder given as a path or as a name under DB/runs, checked to be of the stage wanted."""
    if not spec:
        raise InputError(f"stage {stage + 1} needs --from RUN (a stage-{stage} run)")
    candidates = [Path(spec), Path(root) / "runs" / spec]
    run = next((c for c in candidates if (c / CONFIG_FILE).is_file()), candidates[0])
    found = stage_of(read_config(run))
    if found != stage:
        raise InputError(f"--from needs a stage-{stage} run, this one is stage {found}", file=str(run))
    return run.resolve()


def reference_to(root, run: Path) -> dict:
    """The config entries that name the run a stage builds on: ``from_run`` (relative to the database folder
    when inside it, so folders can move) and ``from_sha256`` of its weights."""
    try:
        name = run.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        name = str(run)
    return {"from_run": name, "from_sha256": file_sha256(run / MODEL_FILE)}


def referenced_run(run_dir: Path, config: dict) -> Path:
    """The run a stage-2/3 run was trained from, checked against the sha256 recorded at training."""
    target = Path(config["from_run"])
    if not target.is_absolute():
        target = Path(run_dir).resolve().parent.parent / target
    weights = target / MODEL_FILE
    if not weights.is_file():
        raise InputError(f"the run it was trained from is missing: {target}", file=str(Path(run_dir) / CONFIG_FILE),
                         field="from_run")
    if file_sha256(weights) != config["from_sha256"]:
        raise InputError(f"the run it was trained from has changed since ({target}): retrain this stage",
                         file=str(Path(run_dir) / CONFIG_FILE), field="from_sha256")
    return target


def metrics_json(history, best, test, selection: str = "srcc", extra: dict | None = None) -> str:
    """The text of metrics.json: history, kept epoch, its selection score and the test metrics."""
    return json.dumps({"history": history, "best_epoch": best["epoch"],
                       f"best_val_{selection}": best["srcc"] if math.isfinite(best["srcc"]) else None,
                       "test": test, **(extra or {})}, indent=2, default=float, allow_nan=True) + "\n"


@dataclass(frozen=True)
class RunProgress:
    """How far a run's training got: epochs checkpointed of those planned (config.json's ``epochs``) and the
    command that continues it (recorded by ``aigciqa train``; None when trained through the Python API)."""
    run: Path
    stage: int
    epochs_done: int
    epochs_planned: int | None  # None: not a trained run (e.g. a baseline's stored scores)
    recorded_command: str | None = None

    @property
    def finished(self) -> bool:
        return self.epochs_planned is None or self.epochs_done >= self.epochs_planned

    def resume_command(self, db="DB") -> str:
        """The command that continues the run: the recorded one, else its shape (see :meth:`resume_caveat`)."""
        if self.recorded_command:
            return self.recorded_command
        return (f"aigciqa train {STAGE_COMMANDS.get(self.stage, 'STAGE')} {db} --run {self.run.name} "
                f"--epochs {self.epochs_planned} --resume")

    def resume_caveat(self) -> str:
        """What the command leaves out when it was not recorded (a run trained through the Python API)."""
        return "" if self.recorded_command else f" (plus the options it was started with: {self.run / CONFIG_FILE})"

    def unfinished_line(self, db="DB") -> str:
        """One line for a run that is not finished: where it stopped and how to finish it."""
        return (f"run {self.run} is unfinished (epoch {self.epochs_done} of {self.epochs_planned}): its model is the "
                f"best checkpoint so far; finish it with: {self.resume_command(db)}{self.resume_caveat()}")


def run_progress(run) -> RunProgress:
    """How far the run folder's training got, from config.json (epochs planned) and last/state.json (epochs
    checkpointed, the resume command): the one place that decides whether a run is finished."""
    run = Path(run)
    config = read_json(run / CONFIG_FILE, missing="not a model run: config.json is missing", what="run config")
    planned = config.get("epochs") if isinstance(config, dict) else None
    if not isinstance(planned, int):
        return RunProgress(run, 1, 0, None)
    state_path = run / LAST_DIR / STATE_JSON
    state = read_json(state_path, what="checkpoint state") if state_path.is_file() else {}
    return RunProgress(run, stage_of(config), int(state.get("epoch", 0)), planned, state.get("resume_command"))
