"""Training stage 2 of the paper (section IV-C): instruction tuning, in the shared loop (:func:`.loop.fit`).

The stage-1 scorer is frozen, the LLM frozen (LoRA adapters optional); the instruction-aware Q-Former, its
queries, the zero connection and the projection learn from ``vqa.jsonl`` (made by ``aigciqa build-vqa``)
with the language-modelling loss on the answer tokens only. The kept model has the lowest LM loss on the
split's ``val`` pairs (not the best SRCC: stage 2 does not change the scores).

A stage-2 run references its stage-1 run (see :mod:`.runs`). A file-backed LLM is referenced by path;
the ``tiny`` random LLM is stored in the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aigciqa.common.files import file_sha256, read_jsonl_lines
from aigciqa.database.folder import VQA_FILE, DatabaseFolder
from aigciqa.errors import InputError
from aigciqa.model import runs, scorer
from aigciqa.model.boundary_cache import frozen_inputs
from aigciqa.model.data import ModelData, load_model_data
from aigciqa.model.inference import PixelCache, encode_text, used_rows
from aigciqa.model.llm import add_lora, llm_dtype, load_llm, resolve_llm, resolve_spec
from aigciqa.model.loop import LoopOptions, Task, TrainResult, check_loop_options, fit, run_options
from aigciqa.model.presets import get_preset

STAGE = 2


@dataclass
class Stage2Options(LoopOptions):
    from_run: str = ""  # the stage-1 run: a folder, or a name under DB/runs
    split: str = "split"
    llm: str | None = None  # tiny | folder | GGUF | InstructBLIP | Hub spec (default: the preset's, see model.llm)
    zero_connection: bool = True  # off: the Table XV ablation
    llm_lora_rank: int = 0
    weights: str | None = None  # InstructBLIP folder or Hub spec for the instruct Q-Former (default: the scorer's)
    max_answer_tokens: int = 64
    max_prompt_tokens: int = 96
    vqa: str = VQA_FILE

    def run_name(self) -> str:
        return self.run or f"{Path(self.from_run).name}-instruct"


# Options that must not change between a run and its resumption.
RESUME_KEYS = ("from_sha256", "split", "epochs", "batch_size", "lr", "seed", "grad_accum", "llm", "zero_connection",
               "llm_lora_rank", "max_answer_tokens", "max_prompt_tokens", "vqa_sha256")


@dataclass
class VqaRecord:
    row: int  # image row in ModelData
    question: str
    answer: str
    perspective: str


def vqa_records(data: ModelData, name: str) -> tuple[list[VqaRecord], str]:
    """The question-answer records of ``DB/<name>`` whose image is listed, checked; and the file's sha256."""
    path = DatabaseFolder(data.root).path(name)  # inside the folder, links resolved (--vqa ../x.jsonl refused)
    if not path.is_file():
        raise InputError(f"{name} is missing: run 'aigciqa build-vqa {data.root}' first", file=str(path))
    rows = {image_id: row for row, image_id in enumerate(data.image_ids)}
    records = []
    for number, record in read_jsonl_lines(path):
        if not isinstance(record, dict):
            raise InputError("a record must be a JSON object", file=str(path), row=number)
        for key in ("image_id", "question", "answer"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise InputError(f"{key} is missing or not a non-empty string", file=str(path), row=number, field=key)
        if record["image_id"] not in rows:
            raise InputError(f"image_id '{record['image_id']}' is not in images.csv", file=str(path), row=number,
                             field="image_id")
        records.append(VqaRecord(rows[record["image_id"]], record["question"], record["answer"],
                                 str(record.get("perspective") or "")))
    return records, file_sha256(path)


def _in_part(data: ModelData, records: list[VqaRecord], part: str) -> list[int]:
    """Indices of the records whose image is in one part of the split."""
    return [i for i, r in enumerate(records) if data.parts is None or data.parts[r.row] == part]


def train_stage2(root, options: Stage2Options) -> TrainResult:
    """Instruction-tune (or resume) a stage-2 run in ``root/runs/<name>``."""
    check_loop_options(options)
    scorer_dir = runs.find_run(root, options.from_run, 1)
    scorer_config = runs.read_config(scorer_dir)
    get_preset(scorer_config["preset"]).check_instruct()  # before reading anything else: nothing to write
    data = load_model_data(root, perspectives=scorer_config["perspectives"], split=options.split,
                           use_segments=scorer_config.get("segments", True), need_mos=False)
    records, vqa_sha = vqa_records(data, options.vqa)
    train_records, val_records = _in_part(data, records, "train"), _in_part(data, records, "val")
    if not train_records:
        raise InputError(f"no {options.vqa} record is about an image of the train part of '{options.split}'",
                         file=str(data.root / options.vqa))
    preset = get_preset(scorer_config["preset"])
    # --weights (the instruct Q-Former's checkpoint) resolved like stage 1's; default: the scorer's.
    weights = preset.weights_entries(options.weights) if options.weights else {}
    checkpoint = weights or {k: scorer_config.get(k) for k in ("weights", "weights_source")}
    spec, llm_source = resolve_llm(options.llm, preset.name, checkpoint["weights"], checkpoint["weights_source"])
    llm = load_llm(spec, seed=options.seed, dtype=llm_dtype(options.mixed_precision))
    config = {**{k: scorer_config.get(k) for k in runs.SCORER_KEYS}, "stage": 2,
              **run_options(options, exclude=("from_run", "llm", "weights")), "llm": spec, "llm_hidden": llm.hidden_size,
              "llm_dtype": str(llm.model.dtype).removeprefix("torch."), **({"llm_source": llm_source} if llm_source else {}),
              **weights,
              **runs.reference_to(root, scorer_dir), "vqa_sha256": vqa_sha}

    def make_task(device) -> Task:
        model, tokenizer, preset = build_explainer(config, scorer.load_run(scorer_dir)[:3], llm,
                                                   pretrained=not options.resume, seed=options.seed)
        model.to(device)
        # The image encoder is frozen here: its output is computed once per image, on the stage-1 boundary cache.
        features = frozen_inputs(model, PixelCache(data, preset), device, root=data.root, preset=preset,
                                 rows=used_rows(data), batch_size=options.batch_size, fill=True)
        encoded = encode_records(records, llm, options)

        def loss_of(prepared, batch: list[int]):
            return prepared(*_stage2_inputs(batch, records, encoded, data, tokenizer, preset, features, llm, device))

        def validate(unwrapped):
            import torch
            losses = []
            unwrapped.eval()
            with torch.no_grad():
                for start in range(0, len(val_records), options.batch_size):
                    batch = val_records[start:start + options.batch_size]
                    losses.append(float(loss_of(unwrapped, batch)) * len(batch))
            unwrapped.train()
            loss = sum(losses) / len(val_records)
            return {"lm_loss": loss}, -loss

        return Task(model=model, examples=train_records, batch_loss=loss_of,
                    validate=validate if val_records else None, weights=lambda m: m.run_state(),
                    load=load_run_state, selection="negative_lm_loss")

    result, _ = fit(root, options, config, make_task, RESUME_KEYS)
    return result


def encode_records(records: list[VqaRecord], llm, options) -> list[tuple[list[int], list[int]]]:
    """Each record's LLM prompt and answer tokens, computed once."""
    prompts: dict[str, list[int]] = {}
    out = []
    for record in records:
        if record.question not in prompts:
            prompts[record.question] = llm.prompt_ids(record.question, options.max_prompt_tokens)
        out.append((prompts[record.question], llm.answer_ids(record.answer, options.max_answer_tokens)))
    return out


def _stage2_inputs(batch, records, encoded, data, tokenizer, preset, features, llm, device):
    rows = [records[i].row for i in batch]
    return step_inputs(tokenizer, preset, llm, [data.texts[r] for r in rows], [records[i].question for i in batch],
                       [encoded[i] for i in batch], features.image_embeds(rows), device)


def step_inputs(tokenizer, preset, llm, texts, questions, encoded, image_embeds, device) -> tuple:
    """The arguments of InstructIQA's forward (the stage-2 loss) for one batch: image prompts and
    questions for the Q-Formers, LLM (prompt, answer) token pairs, image tokens."""
    from aigciqa.model.instruct import answer_batch
    prompt = encode_text(tokenizer, texts, device, preset.max_text_tokens)
    instruction = encode_text(tokenizer, questions, device, preset.max_text_tokens)
    ids, mask, labels = answer_batch([e[0] for e in encoded], [e[1] for e in encoded], llm.pad_id)
    return (*prompt, *instruction, image_embeds, ids.to(device), mask.to(device), labels.to(device))


def build_explainer(config: dict, scorer_parts: tuple, llm, *, pretrained: bool, seed: int):
    """The stage-2 model of a config around a stage-1 (scorer, tokenizer, preset), which it freezes: a new
    instruct Q-Former (the preset's initialisation when ``pretrained``), and the LLM when given (with LoRA
    when configured). Returns (model, Q-Former tokenizer, preset)."""
    import torch
    from aigciqa.model.instruct import InstructIQA
    scorer_model, tokenizer, preset = scorer_parts
    torch.manual_seed(seed)
    weights = preset.local_weights(config)
    qformer = preset.qformer(pretrained=pretrained, weights=weights)
    model = InstructIQA(scorer_model, qformer, llm_hidden=config["llm_hidden"], zero_connection=config["zero_connection"])
    if pretrained:
        scorer.start_queries(model, preset, weights)
        if llm is not None and llm.projection is not None:
            start_projection(model, llm.projection)
    if llm is not None:
        module = add_lora(llm.model, config["llm_lora_rank"]) if config.get("llm_lora_rank") else llm.model
        model.attach_llm(module, random=llm.random)
    return model, tokenizer, preset


def start_projection(model, projection: dict) -> None:
    """Start the projection from an InstructBLIP checkpoint's ``language_projection`` (which maps its Q-Former
    into the LLM it came with) when the shapes agree: stage 2 then starts from InstructBLIP."""
    import torch
    if all(projection[k].shape == getattr(model.projection, k).shape for k in ("weight", "bias")):
        with torch.no_grad():
            model.projection.weight.copy_(projection["weight"])
            model.projection.bias.copy_(projection["bias"])


def load_run_state(model, path: Path) -> None:
    """Load a stage-2 run's tensors; every tensor the model's run state needs must be there (a file-backed
    LLM's weights are not: they come from its file)."""
    runs.load_partial_weights(model, model.run_state(), path)


def load_explainer(run: Path, *, with_llm: bool, device: str = "cpu"):
    """(stage-2 model in eval mode, Q-Former tokenizer, preset, config, LanguageModel or None) of a stage-2 run."""
    config = runs.read_config(run)
    llm = None
    if with_llm:  # a Hub LLM whose recorded snapshot path is gone is found again by repo and commit
        moved = {"weights": config["llm"], "weights_source": config.get("llm_source")}
        llm = load_llm(resolve_spec(get_preset(config["preset"]).local_weights(moved), config["preset"]),
                       seed=config["seed"], dtype=config.get("llm_dtype", "float32"))
    model, tokenizer, preset = build_explainer(config, scorer.load_run(runs.referenced_run(run, config))[:3], llm,
                                               pretrained=False, seed=config["seed"])
    load_run_state(model, Path(run) / runs.MODEL_FILE)
    return model.to(device).eval(), tokenizer, preset, config, llm


def load(run: Path, config: dict, device: str = "cpu"):
    """What a stage-2 run scores with: stage 2 leaves the scorer as stage 1 made it."""
    model, tokenizer, preset, _ = scorer.load_run(runs.referenced_run(run, config), device=device)
    return model, tokenizer, preset, config
