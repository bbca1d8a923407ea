"""``build-vqa`` end to end: read the folder, make pairs, expand with an LLM, segment prompts, write.

All inputs are checked before any work; outputs are written at the end in one all-or-nothing
:meth:`DatabaseFolder.write` (plus an atomic write for ``-o FILE``). LLM results live in a cache
in the folder (``vqa_llm_cache.sqlite``), committed one request at a time, so Ctrl-C loses nothing
and a rerun resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from aigciqa.common.files import read_jsonl_lines
from aigciqa.common.progress import progress_factory
from aigciqa.database import DatabaseFolder, dumps_jsonl
from aigciqa.database.atomic import write_text_atomic
from aigciqa.database.folder import VQA_FILE
from aigciqa.errors import InputError
from aigciqa.qa_builder.exports import dumps_llava, dumps_mint_iqa, llava_records, mint_iqa_records
from aigciqa.qa_builder.inputs import VqaInputs, load_inputs
from aigciqa.qa_builder.templates import count_by, template_pairs

FORMATS = ("paper", "mint-iqa", "llava")
DEFAULT_FILES = {"paper": VQA_FILE, "mint-iqa": "vqa_mint-iqa.json", "llava": "vqa_llava.json"}
CACHE_FILE = "vqa_llm_cache.sqlite"
CARD_SECTION = "build_vqa"


@dataclass
class BuildOptions:
    format: str = "paper"
    output: Path | None = None          # None: the format's default file inside the folder
    use_llm: bool | None = None         # None: use the LLM when one is available; False: never
    llm_path: str | Path | None = None  # GGUF file, Hub spec or default name; None: the default SmolLM2 GGUF
    llm_limit: int | None = None        # expand only the first N images (None: all)
    segment_prompts: bool = False
    progress: bool = True
    settings: object | None = None      # LlmSettings; None: defaults
    llm_threads: int | None = None      # llama.cpp threads (None: half the cores, at most 4)
    llm_kinds: tuple[str, ...] | None = None   # reword only these pair kinds (None: all)
    segment_with_llm: bool = True       # False: rule-based segmentation even when an LLM is loaded
    segment_check: str = "refine"       # "refine" (the paper's LLM refinement) or "strict" (extraction only)


@dataclass
class BuildReport:
    format: str
    output: str
    images: int
    pairs: int
    by_source: dict = field(default_factory=dict)
    by_kind: dict = field(default_factory=dict)
    llm: dict | None = None
    llm_note: str = ""
    segmentation: dict | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        text = (f"{self.output}: {self.pairs} pairs for {self.images} images ({self.format} format; "
                + ", ".join(f"{k} {v}" for k, v in self.by_source.items()) + ")")
        if self.llm:
            s = self.llm["stats"]
            rates = ", ".join(f"{task} {c['passed']}/{c['requests']} passed its checks"
                              for task, c in sorted(s["by_task"].items()))
            text += (f"; LLM {self.llm['model_file']}: {s['requests']} requests ({rates}), {s['cache_hits']} "
                     f"from cache, {s['failed']} fell back to templates or rules")
        elif self.llm_note:
            text += f"; {self.llm_note}"
        if self.segmentation:
            counts = self.segmentation["segmented_by"]
            text += (f"; prompts.csv style/content/atmosphere ({self.segmentation['check']} check): "
                     + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
        return text


def open_llm(options: BuildOptions, folder: DatabaseFolder):
    """(client or None, note). An explicit --llm PATH that fails is an InputError; the default is optional."""
    from aigciqa.qa_builder import llm as llm_module
    if options.use_llm is False:
        return None, "LLM off (--no-llm)"
    settings = options.settings or llm_module.LlmSettings()
    path, source = (None, {}) if options.llm_path is None else llm_module.resolve_model(options.llm_path)
    if path is None:
        path = llm_module.default_model_path()
        if path is None or not llm_module.llama_cpp_available():
            if options.use_llm:
                raise InputError(f"no LLM available ({llm_module.INSTALL_HINT})")
            return None, f"no LLM available, templates only ({llm_module.INSTALL_HINT})"
    client = llm_module.LlmClient(path, settings, n_threads=options.llm_threads, source=source)
    # The cache file is made only once the model has loaded: a bad file leaves the folder untouched.
    client.cache = llm_module.LlmCache(folder.root / CACHE_FILE)
    return client, ""


def build_vqa(folder: DatabaseFolder, options: BuildOptions = BuildOptions()) -> BuildReport:
    started = time.perf_counter()
    if options.format not in FORMATS:
        from aigciqa.registry import lookup
        lookup({f: f for f in FORMATS}, options.format, "format")
    if options.segment_prompts:
        from aigciqa.qa_builder.segment import SEGMENT_CHECKS
        from aigciqa.registry import lookup
        lookup(SEGMENT_CHECKS, options.segment_check, "segmentation check")
    inputs = load_inputs(folder)
    if options.llm_path is not None and options.use_llm is not False:
        from aigciqa.qa_builder.llm import resolve_model
        resolve_model(options.llm_path)  # before any work: a missing file or uncached repo stops here
    pairs = template_pairs(inputs) if options.format != "mint-iqa" else []
    mint_records = mint_iqa_records(inputs) if options.format == "mint-iqa" else []

    needs_llm = options.segment_prompts or options.format != "mint-iqa"
    client, note = (open_llm(options, folder) if needs_llm else (None, ""))
    progress = progress_factory(options.progress)
    segmentation = prompts_frame = None
    try:
        if client is not None and options.format != "mint-iqa":
            from aigciqa.qa_builder.expand import expand_pairs
            image_ids = list(inputs.facts["image_id"])
            if options.llm_limit is not None:
                image_ids = image_ids[: options.llm_limit]
            extra = expand_pairs(client, pairs, image_ids, progress, kinds=options.llm_kinds)
            pairs = _merge(pairs, extra)
        if options.segment_prompts:
            from aigciqa.qa_builder.segment import segment_prompts
            prompts_frame = folder.read_table("prompts", inputs.card)
            segmenter = client if options.segment_with_llm else None
            segments, counts = segment_prompts(list(prompts_frame["prompt"]), segmenter, progress,
                                               mode=options.segment_check)
            segmentation = {"check": options.segment_check, "segmented_by": counts,
                            "model": segmenter.name if segmenter is not None else None}
            for name in ("style", "content", "atmosphere", "segmented_by", "segment_model"):
                prompts_frame[name] = [s[name] for s in segments]
        llm_info = None
        if client is not None:
            from dataclasses import asdict
            llm_info = {**client.describe(), "stats": asdict(client.stats),
                        "success_rate": client.stats.success_rates()}
    finally:
        if client is not None:
            client.close()

    if options.format == "paper":
        text, count = dumps_jsonl(pairs), len(pairs)
    elif options.format == "llava":
        records = llava_records(pairs, inputs)
        text, count = dumps_llava(records), len(pairs)
    else:
        text, count = dumps_mint_iqa(mint_records), len(mint_records)
    images = len({r["image_id"] for r in pairs} if pairs else {r["id"] for r in mint_records})
    report = BuildReport(format=options.format, output="", images=images, pairs=count,
                         by_source=count_by(pairs, "source") if pairs else {"template": count},
                         by_kind=count_by(pairs, "kind") if pairs else {},
                         llm=llm_info, llm_note=note, segmentation=segmentation)
    _write(folder, inputs, options, text, prompts_frame, report)
    report.seconds = time.perf_counter() - started
    return report


def _merge(templates: list[dict], extra: list[dict]) -> list[dict]:
    """Template and LLM pairs together: each image's LLM pairs right after its template pairs."""
    by_image: dict[str, list[dict]] = {}
    for record in extra:
        by_image.setdefault(record["image_id"], []).append(record)
    out: list[dict] = []
    current = None
    for record in templates:
        if current is not None and record["image_id"] != current:
            out += by_image.pop(current, [])
        current = record["image_id"]
        out.append(record)
    if current is not None:
        out += by_image.pop(current, [])
    for rest in by_image.values():
        out += rest
    return out


def _inside(folder: DatabaseFolder, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(folder.root.resolve()).as_posix()
    except ValueError:
        return None


def _write(folder: DatabaseFolder, inputs: VqaInputs, options: BuildOptions, text: str, prompts_frame,
           report: BuildReport) -> None:
    card = dict(inputs.card)
    section = {"format": options.format, "images": report.images, "pairs": report.pairs,
               "by_source": report.by_source, "by_kind": report.by_kind,
               "llm": ({k: v for k, v in report.llm.items() if k != "model_path"} if report.llm else None),
               "llm_note": report.llm_note or None, "segmentation": report.segmentation}
    card[CARD_SECTION] = section
    relative = DEFAULT_FILES[options.format] if options.output is None else _inside(folder, Path(options.output))
    tables = {"prompts": prompts_frame} if prompts_frame is not None else {}
    if relative is not None:
        folder.write(tables, card=card, stage="build-vqa", files={relative: text})
        report.output = str(folder.root / relative)
        return
    if tables:  # the pairs go elsewhere, the segmentation columns still belong in the folder
        folder.write(tables, card=card, stage="build-vqa")
    write_text_atomic(options.output, text)
    report.output = str(options.output)


def labels_by_image(inputs: VqaInputs) -> dict[str, dict[str, int | None]]:
    from aigciqa.qa_builder.inputs import level_of
    names = [q["name"] for q in inputs.questions]
    return {row["image_id"]: {n: level_of(row.get(n)) for n in names} for row in inputs.facts.to_dict("records")}


def evaluate(folder: DatabaseFolder, answers_path: Path) -> dict:
    """VQA accuracy of the answers in a JSONL file against the folder's labels."""
    labels = answer_labels(folder)  # checked before the answers are read
    path = Path(answers_path)
    numbered = read_jsonl_lines(path)
    if not numbered:
        raise InputError("no answer records", file=str(path))
    return evaluate_records(folder, [record for _, record in numbered], str(path), labels,
                            numbers=[number for number, _ in numbered])


def answer_labels(folder: DatabaseFolder) -> tuple[dict, dict]:
    """(fine-grained labels by image, card): what VQA accuracy scores answers against."""
    inputs = load_inputs(folder)
    if not inputs.questions:
        raise InputError("labels.csv has no fine-grained question columns to score against", file=str(folder.root))
    return labels_by_image(inputs), inputs.card


def evaluate_records(folder: DatabaseFolder, records: list[dict], file: str, labels=None, numbers=None) -> dict:
    """VQA accuracy of answer records ``{image_id, answer[, perspective]}`` against the folder's labels: the
    one computation of it (``evaluate --vqa`` calls it on a run's answers)."""
    from aigciqa.qa_builder.vqa_accuracy import evaluate_answers
    by_image, card = labels or answer_labels(folder)
    return evaluate_answers(records, by_image, card, file=file, numbers=numbers)
