"""Evaluation of a trained run on a database folder (its own or another: cross-database, Table IX) and
scoring of image files, a CSV of them or a database folder with the text the run was trained on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aigciqa.database import DatabaseFolder
from aigciqa.database.tables import read_csv_text
from aigciqa.errors import InputError
from aigciqa.model import runs
from aigciqa.model.data import SEGMENT_COLUMNS, check_targets, compose_text, image_prompts, load_model_data
from aigciqa.model.inference import (PixelCache, check_image_files, image_files_data, pick_device, predict_rows,
                                     rows_metrics)
from aigciqa.model.metrics import preference_accuracy
from aigciqa.model.stages import load_run


def evaluate_run(run: str | Path, root: str | Path, *, split: str | None = None, part: str = "test",
                 batch_size: int = 8, cpu: bool = False, progress: bool = False) -> dict:
    """Metrics per perspective (and their average), plus preference accuracy on pairs.csv when present.

    Without ``split`` every image of the folder is evaluated (a cross-database test).
    """
    data, rows, predicted = predict_folder(run, root, split=split, part=part, batch_size=batch_size, cpu=cpu,
                                           progress=progress)
    result: dict = {"run": str(run), "database": data.card["name"], "split": split, "part": part if split else "all",
                    "images": int(len(rows))}
    return {**result, **prediction_metrics(data, rows, predicted, part if split else "evaluated")}


def predict_folder(run: str | Path, root: str | Path, *, split: str | None = None, part: str = "test",
                   batch_size: int = 8, cpu: bool = False, progress: bool = False):
    """(ModelData, rows, MOS-scale predictions of those rows) as ``evaluate`` makes them: the folder's texts
    built as the run's training built its own."""
    config = runs.read_config(Path(run))
    data = load_model_data(root, perspectives=config["perspectives"], split=split,
                           use_segments=config.get("segments", True), need_mos=False, need_parts=(part,) if split else ())
    rows = data.part(part) if split else np.arange(len(data.image_ids))
    model, tokenizer, preset, _ = load_run(run, device=pick_device(cpu))
    return data, rows, predict_rows(model, tokenizer, preset, data, rows, batch_size, pick_device(cpu),
                                    show_progress=progress, features=_cached(model, preset, data, data.root, cpu))


def prediction_metrics(data, rows, predicted: np.ndarray, what: str) -> dict:
    """What ``aigciqa evaluate`` reports for predictions of ``rows`` (one column per perspective), whoever
    made them (a trained run or a baseline): metrics per perspective and on average against mos.csv, and
    preference accuracy on pairs.csv (a pair of any perspective, -1, is judged on the first)."""
    result: dict = {}
    if data.targets is not None:
        check_targets(data, rows, what)
        result["metrics"] = rows_metrics(data, rows, predicted)
    if not data.pairs.empty:
        position = {int(r): k for k, r in enumerate(rows)}
        pairs = data.pairs[data.pairs["better"].isin(position) & data.pairs["worse"].isin(position)]
        if len(pairs):
            b = np.array([position[int(i)] for i in pairs["better"]])
            w = np.array([position[int(i)] for i in pairs["worse"]])
            column = np.where(pairs["perspective"].to_numpy() < 0, 0, pairs["perspective"].to_numpy())
            result["preference_accuracy"] = preference_accuracy(predicted[b, column], predicted[w, column])
            result["pairs"] = int(len(pairs))
    if not result:
        raise InputError("nothing to evaluate against: the folder has neither mos.csv nor pairs.csv",
                         file=str(data.root))
    return result


@dataclass
class ScoreInputs:
    """What ``aigciqa score`` scores: image files and, per image, its prompt and the segments given for it
    ({} or empty values: none given, made by :class:`RunSegmenter` when the run needs them)."""
    paths: list[Path]
    prompts: list[str]
    segments: list[dict[str, str]]
    names: list[str]  # how the output names each image: the path as given, or the folder's image id
    source: str  # the file or folder the prompts came from ("" for --prompt), for error messages
    mos: dict[str, np.ndarray] = field(default_factory=dict)  # a database folder's "{perspective}_mos"


def image_file_inputs(images: list[str | Path], prompt: str, segments: dict[str, str] | None = None) -> ScoreInputs:
    """Image files sharing one prompt (and its segments, when given)."""
    check_image_files(images)
    return ScoreInputs(paths=[Path(p) for p in images], prompts=[prompt] * len(images),
                       segments=[dict(segments or {}) for _ in images], names=[str(p) for p in images], source="")


def csv_inputs(path: str | Path) -> ScoreInputs:
    """A CSV with ``path`` and ``prompt`` columns (+ ``style``, ``content``, ``atmosphere``), one row per
    image; a relative path is relative to the CSV's folder."""
    path = Path(path)
    table = read_csv_text(path)
    for column in ("path", "prompt"):
        if column not in table.columns:
            raise InputError(f"no '{column}' column (the columns are path, prompt and optionally "
                             f"{', '.join(SEGMENT_COLUMNS)})", file=str(path), field=column)
    paths = []
    for number, (value, prompt) in enumerate(zip(table["path"], table["prompt"]), start=1):
        image = path.parent / str(value).strip() if str(value).strip() else None
        if image is None or not image.is_file():
            raise InputError("image file not found", file=str(path), row=number, field="path")
        if not str(prompt).strip():
            raise InputError("empty prompt", file=str(path), row=number, field="prompt")
        paths.append(image)
    segments = [{c: str(table[c].iloc[k]) for c in SEGMENT_COLUMNS if c in table.columns} for k in range(len(table))]
    return ScoreInputs(paths=paths, prompts=[str(p) for p in table["prompt"]], segments=segments,
                       names=[str(v) for v in table["path"]], source=str(path))


def folder_inputs(root: str | Path) -> ScoreInputs:
    """Every image of a database folder with its prompt and segments from prompts.csv, and its MOS when the
    folder has mos.csv."""
    data = load_model_data(root, need_mos=False, need_parts=())
    folder = DatabaseFolder(root)
    prompts = image_prompts(folder, data.card, data.prompt_ids)
    mos = {} if data.targets is None else {f"{name}_mos": data.to_mos(data.targets[:, j])
                                           for j, name in enumerate(data.perspectives)}
    return ScoreInputs(paths=data.paths, prompts=[p for p, _ in prompts], segments=[s for _, s in prompts],
                       names=data.image_ids, source=str(folder.table_path("prompts")), mos=mos)


def score_source(items: list[str], prompt: str | None, segments: dict[str, str]) -> ScoreInputs:
    """``aigciqa score``'s inputs: one database folder, one CSV (``*.csv``), or image files with --prompt."""
    if len(items) == 1 and (Path(items[0]).is_dir() or items[0].lower().endswith(".csv")):
        if prompt is not None or segments:
            raise InputError("--prompt and --style/--content/--atmosphere are for image files: the CSV or folder "
                             "gives each image's own", file=items[0], field="--prompt")
        return folder_inputs(items[0]) if Path(items[0]).is_dir() else csv_inputs(items[0])
    if prompt is None:
        raise InputError("--prompt is needed for image files (or give one CSV or database folder)", field="--prompt")
    return image_file_inputs(items, prompt, segments)


def has_segments(segments: dict[str, str]) -> bool:
    return any(str(segments.get(name, "")).strip() for name in SEGMENT_COLUMNS)


class RunSegmenter:
    """Segments for prompts given without them, made as the run's training database made its own.

    The run's database is the folder it lies in (``DB/runs/NAME``, the card named as ``config["database"]``);
    its prompts.csv says, per prompt, who made the segments (``segmented_by``: llm, rules or
    rules-after-llm-failed, and ``segment_model``, written by ``build-vqa --segment-prompts``). A prompt of
    that database gets its own segments; another prompt gets the rules when the rules made them all, the
    LLM (with the rules as fallback, as build-vqa does) when it made any and its GGUF file is installed.
    Otherwise nothing can be made and the caller is told why (exit 2, never a silently different text)."""

    def __init__(self, run: str | Path, config: dict):
        self.run = Path(run)
        self.known: dict[str, dict[str, str]] = {}
        self.trained_with_segments: bool | None = None  # None: the run's database is not found
        self.segmented_by: set[str] = set()
        self.models: set[str] = set()
        root = self.run.resolve().parent.parent
        if not (root / "dataset.json").is_file():
            return
        folder = DatabaseFolder(root)
        card = folder.read_card()
        if card.get("name") != config.get("database") or not folder.has("prompts"):
            return
        table = folder.read_table("prompts", card)
        columns = [c for c in SEGMENT_COLUMNS if c in table.columns]
        for k, prompt in enumerate(table["prompt"]):
            self.known.setdefault(str(prompt), {c: str(table[c].iloc[k]) for c in columns})
        self.trained_with_segments = any(has_segments(s) for s in self.known.values())
        if "segmented_by" in table.columns:
            self.segmented_by = {str(v) for v in table["segmented_by"] if str(v)}
        if "segment_model" in table.columns:
            self.models = {str(v) for v in table["segment_model"] if str(v)}

    def segments(self, prompts: list[str], source: str) -> list[dict[str, str]]:
        """Segments per prompt ({} where the run's training texts had none); InputError when none can be made."""
        todo = list(dict.fromkeys(p for p in prompts if p not in self.known))
        made: dict[str, dict[str, str]] = {}
        if todo and self.trained_with_segments is not False:
            from aigciqa.qa_builder.segment import segment_prompts
            client = self.open_segmenter(todo[0], source)
            try:
                made = dict(zip(todo, segment_prompts(todo, client)[0]))
            finally:
                if client is not None:
                    client.close()
        return [self.known.get(p, made.get(p, {})) for p in prompts]

    def open_segmenter(self, prompt: str, source: str):
        """The LLM client that segments as training did, None for the rules; InputError when neither may."""
        def fail(why: str):
            return InputError(f"the run was trained with style/content/atmosphere segments and none can be made "
                              f"for prompt {prompt!r}: {why}; give them with --style/--content/--atmosphere or as "
                              "CSV columns", file=source or str(self.run / runs.CONFIG_FILE), field="segments")
        if self.trained_with_segments is None:
            raise fail(f"its training database (the folder above {self.run}) is not found")
        if not self.segmented_by:
            raise fail("its database's prompts.csv does not record who made the segments (segmented_by)")
        if self.segmented_by == {"rules"}:
            return None
        from aigciqa.qa_builder import llm
        path = llm.default_model_path()
        if len(self.models) != 1:
            raise fail("the LLM that made them is not recorded (segment_model)")
        model = next(iter(self.models))
        if path is None or path.name != model or not llm.llama_cpp_available():
            raise fail(f"the LLM that made them ({model}) is not installed ({llm.INSTALL_HINT})")
        return llm.LlmClient(path)


def scoring_texts(run: str | Path, config: dict, inputs: ScoreInputs) -> list[str]:
    """The text the run was trained on, per image: :func:`compose_text` of the prompt and its segments (given,
    or made by the run's segmenter when the run was trained with segments)."""
    use_segments = config.get("segments", True)
    segments = list(inputs.segments)
    # An image without a prompt was trained on the empty text: nothing to segment.
    missing = ([k for k, s in enumerate(segments) if inputs.prompts[k].strip() and not has_segments(s)]
               if use_segments else [])
    if missing:
        made = RunSegmenter(run, config).segments([inputs.prompts[k] for k in missing], inputs.source)
        for k, found in zip(missing, made):
            segments[k] = found
    return [compose_text(p, s, use_segments) for p, s in zip(inputs.prompts, segments)]


def score_inputs(run: str | Path, inputs: ScoreInputs, *, batch_size: int = 8, cpu: bool = False,
                 progress: bool = True) -> tuple[list[str], np.ndarray, list[str]]:
    """(perspectives, scores per perspective on the MOS scale of the run's training data, the texts fed)."""
    texts = scoring_texts(run, runs.read_config(Path(run)), inputs)  # before the model loads: exit 2 early
    model, tokenizer, preset, config = load_run(run, device=pick_device(cpu))
    data = image_files_data(inputs.paths, texts, config)
    # Images of the run's own database folder (found by content) come from its boundary cache.
    database = Path(run).resolve().parent.parent
    predicted = predict_rows(model, tokenizer, preset, data, np.arange(len(inputs.paths)), batch_size,
                             pick_device(cpu), show_progress=progress,
                             features=_cached(model, preset, data, database, cpu))
    return config["perspectives"], predicted, texts


def score_images(run: str | Path, images: list[str | Path], prompt: str, *, segments: dict[str, str] | None = None,
                 batch_size: int = 8, cpu: bool = False, progress: bool = True) -> tuple[list[str], np.ndarray]:
    """Scores per perspective (MOS scale of the run's training data) for image files and one prompt."""
    perspectives, predicted, _ = score_inputs(run, image_file_inputs(images, prompt, segments),
                                              batch_size=batch_size, cpu=cpu, progress=progress)
    return perspectives, predicted


def _cached(model, preset, data, root: Path, cpu: bool):
    """Read-only use of a folder's boundary cache (images it lacks are computed, not stored)."""
    from aigciqa.model.boundary_cache import frozen_inputs
    return frozen_inputs(model, PixelCache(data, preset), pick_device(cpu), root=root, preset=preset)
