"""Training stages 2 and 3 of the paper (section IV-C), in the stage-1 loop (:func:`train.fit`).

- Stage 2 (instruction tuning): the stage-1 scorer frozen, the LLM frozen (LoRA adapters optional);
  the instruction-aware Q-Former, its queries, the zero connection and the projection learn from
  ``vqa.jsonl`` (made by ``aigciqa build-vqa``) with the language-modelling loss on the answer tokens
  only. The kept model has the lowest LM loss on the split's ``val`` pairs.
- Stage 3 (feedback, Fig. 10): everything frozen but the regressors, which now read the quality-aware
  representation next to the instruction-aware one for the perspective's rating question; they start
  at stage 1's regressors, train on MOS (L1), and the test metrics are reported next to stage 1's
  (Table XIII).

A stage-2 run references its stage-1 run and a stage-3 run its stage-2 run (``from_run``, relative to
the database folder when inside it, and the sha256 of the referenced weights, checked on load): the
frozen weights are not copied. A file-backed LLM is referenced by path; the ``tiny`` random LLM is
stored in the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigciqa.database.folder import VQA_FILE
from aigciqa.errors import InputError
from aigciqa.model import checkpoint as ckpt
from aigciqa.model.boundary_cache import frozen_inputs
from aigciqa.model.data import ModelData, check_targets, load_model_data
from aigciqa.model.train import (LoopOptions, PixelCache, Task, TrainResult, _encode_text,
                                 check_loop_options, fit, predict_rows, rows_metrics, run_options, selection_srcc,
                                 used_rows, write_test_metrics)

# Scorer config keys a stage-2/3 config repeats, so evaluation and scoring read it like a stage-1 config.
SCORER_KEYS = (*ckpt.ARCHITECTURE_KEYS, "fix_rate", "mos_range", "segments", "database", "weights")


@dataclass
class Stage2Options(LoopOptions):
    from_run: str = ""  # the stage-1 run: a folder, or a name under DIR/runs
    split: str = "split"
    llm: str | None = None  # tiny | model folder | GGUF file (default: the preset's, see model.llm)
    zero_connection: bool = True  # off: the Table XV ablation
    llm_lora_rank: int = 0
    weights: str | None = None  # InstructBLIP folder for the instruct Q-Former (default: the scorer's)
    max_answer_tokens: int = 64
    max_prompt_tokens: int = 96
    vqa: str = VQA_FILE

    def run_name(self) -> str:
        return self.run or f"{Path(self.from_run).name}-instruct"


STAGE2_RESUME_KEYS = ("from_sha256", "split", "epochs", "batch_size", "lr", "seed", "grad_accum", "llm",
                      "zero_connection", "llm_lora_rank", "max_answer_tokens", "max_prompt_tokens", "vqa_sha256")


@dataclass
class Stage3Options(LoopOptions):
    from_run: str = ""  # the stage-2 run
    split: str = "split"

    def run_name(self) -> str:
        return self.run or f"{Path(self.from_run).name}-feedback"


STAGE3_RESUME_KEYS = ("from_sha256", "split", "epochs", "batch_size", "lr", "seed", "grad_accum")


@dataclass
class VqaRecord:
    row: int  # image row in ModelData
    question: str
    answer: str
    perspective: str


def stage_of(config: dict) -> int:
    return int(config.get("stage", 1))


def find_run(root, spec: str, stage: int) -> Path:
    """A run folder given as a path or as a name under DIR/runs, checked to be of the stage wanted."""
    if not spec:
        raise InputError(f"stage {stage + 1} needs --from RUN (a stage-{stage} run)")
    candidates = [Path(spec), Path(root) / "runs" / spec]
    run = next((c for c in candidates if (c / ckpt.CONFIG_FILE).is_file()), candidates[0])
    found = stage_of(ckpt.read_config(run))
    if found != stage:
        raise InputError(f"--from needs a stage-{stage} run, this one is stage {found}", file=str(run))
    return run.resolve()


def _reference(root, run: Path) -> str:
    """How a config names another run: relative to the database folder when inside it (folders move)."""
    try:
        return run.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(run)


def referenced_run(run_dir: Path, config: dict) -> Path:
    """The run a stage-2/3 run was trained from, checked against the sha256 recorded at training."""
    from aigciqa.qa_builder.llm import file_sha256
    target = Path(config["from_run"])
    if not target.is_absolute():
        target = Path(run_dir).resolve().parent.parent / target
    weights = target / ckpt.MODEL_FILE
    if not weights.is_file():
        raise InputError(f"the run it was trained from is missing: {target}", file=str(Path(run_dir) / ckpt.CONFIG_FILE),
                         field="from_run")
    if file_sha256(weights) != config["from_sha256"]:
        raise InputError(f"the run it was trained from has changed since ({target}): retrain this stage",
                         file=str(Path(run_dir) / ckpt.CONFIG_FILE), field="from_sha256")
    return target


def vqa_records(data: ModelData, name: str) -> tuple[list[VqaRecord], str]:
    """The question-answer records of ``DIR/<name>`` whose image is listed, checked; and the file's sha256."""
    from aigciqa.qa_builder.build import read_jsonl
    from aigciqa.qa_builder.llm import file_sha256
    path = data.root / name
    if not path.is_file():
        raise InputError(f"{name} is missing: run 'aigciqa build-vqa {data.root}' first", file=str(path))
    rows = {image_id: row for row, image_id in enumerate(data.image_ids)}
    records = []
    for number, record in enumerate(read_jsonl(path), start=1):
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
    from aigciqa.model import llm as llms
    from aigciqa.qa_builder.llm import file_sha256
    check_loop_options(options)
    scorer_dir = find_run(root, options.from_run, 1)
    scorer_config = ckpt.read_config(scorer_dir)
    data = load_model_data(root, perspectives=scorer_config["perspectives"], split=options.split,
                           use_segments=scorer_config.get("segments", True), need_mos=False)
    records, vqa_sha = vqa_records(data, options.vqa)
    train_records, val_records = _in_part(data, records, "train"), _in_part(data, records, "val")
    if not train_records:
        raise InputError(f"no {options.vqa} record is about an image of the train part of '{options.split}'",
                         file=str(data.root / options.vqa))
    spec = llms.resolve_spec(options.llm, scorer_config["preset"])
    llm = llms.load_llm(spec, seed=options.seed)
    config = {**{k: scorer_config.get(k) for k in SCORER_KEYS}, "stage": 2,
              **run_options(options, exclude=("from_run", "llm", "weights")), "llm": spec, "llm_hidden": llm.hidden_size,
              "weights": options.weights or scorer_config.get("weights"),
              "from_run": _reference(root, scorer_dir), "from_sha256": file_sha256(scorer_dir / ckpt.MODEL_FILE),
              "vqa_sha256": vqa_sha}

    def make_task(device) -> Task:
        model, tokenizer, preset = build_explainer(config, ckpt.load_run(scorer_dir)[:3], llm,
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

    result, _ = fit(root, options, config, make_task, STAGE2_RESUME_KEYS)
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
    prompt = _encode_text(tokenizer, texts, device, preset.max_text_tokens)
    instruction = _encode_text(tokenizer, questions, device, preset.max_text_tokens)
    ids, mask, labels = answer_batch([e[0] for e in encoded], [e[1] for e in encoded], llm.pad_id)
    return (*prompt, *instruction, image_embeds, ids.to(device), mask.to(device), labels.to(device))


def build_explainer(config: dict, scorer: tuple, llm, *, pretrained: bool, seed: int):
    """The stage-2 model of a config around a stage-1 (scorer, tokenizer, preset), which it freezes: a new
    instruct Q-Former (the preset's initialisation when ``pretrained``), and the LLM when given (with LoRA
    when configured). Returns (model, Q-Former tokenizer, preset)."""
    import torch
    from aigciqa.model.instruct import InstructIQA
    from aigciqa.model.llm import add_lora
    from aigciqa.model.presets import build_qformer
    scorer, tokenizer, preset = scorer
    torch.manual_seed(seed)
    qformer = build_qformer(preset, pretrained=pretrained, weights=config.get("weights"))
    model = InstructIQA(scorer, qformer, llm_hidden=config["llm_hidden"], zero_connection=config["zero_connection"])
    if preset.name == "paper" and pretrained and config.get("weights"):
        ckpt.load_paper_queries(model, config["weights"])
    if llm is not None:
        module = add_lora(llm.model, config["llm_lora_rank"]) if config.get("llm_lora_rank") else llm.model
        model.attach_llm(module, random=llm.random)
    return model, tokenizer, preset


def load_run_state(model, path: Path) -> None:
    """Load a stage-2 run's tensors; every tensor the model's run state needs must be there (a file-backed
    LLM's weights are not: they come from its file)."""
    tensors = ckpt.read_tensors(path)
    own = model.run_state()
    missing = sorted(set(own) - set(tensors))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise InputError(f"checkpoint does not fit this model (another preset or option?): {len(missing)} missing, "
                         f"{len(wrong)} misshapen tensors, e.g. '{(missing or wrong)[0]}'", file=str(path))
    model.load_state_dict({k: tensors[k] for k in own}, strict=False)


def load_explainer(run: Path, *, with_llm: bool, device: str = "cpu"):
    """(stage-2 model in eval mode, Q-Former tokenizer, preset, config, LanguageModel or None) of a stage-2 run."""
    from aigciqa.model.llm import load_llm, resolve_spec
    config = ckpt.read_config(run)
    llm = load_llm(resolve_spec(config["llm"], config["preset"]), seed=config["seed"]) if with_llm else None
    model, tokenizer, preset = build_explainer(config, ckpt.load_run(referenced_run(run, config))[:3], llm,
                                               pretrained=False, seed=config["seed"])
    load_run_state(model, Path(run) / ckpt.MODEL_FILE)
    return model.to(device).eval(), tokenizer, preset, config, llm


def build_feedback(explainer, tokenizer, perspectives: list[str]):
    """The stage-3 model around a stage-2 model: one rating question per perspective as its instruction."""
    from aigciqa.model.instruct import FeedbackIQA
    from aigciqa.qa_builder.templates import rating_question
    tokens = tokenizer([rating_question(p) for p in perspectives], padding=True, return_tensors="pt")
    return FeedbackIQA(explainer, tokens["input_ids"], tokens["attention_mask"])


def load_scoring_run(run: Path, config: dict, device: str = "cpu"):
    """What ``checkpoint.load_run`` gives for a stage-2 or 3 run: (scorer, tokenizer, preset, config).
    Stage 2 leaves the scorer as stage 1 made it; stage 3 scores with its feedback regressors."""
    if stage_of(config) == 2:
        model, tokenizer, preset, _ = ckpt.load_run(referenced_run(run, config), device=device)
        return model, tokenizer, preset, config
    explainer, tokenizer, preset, _, _ = load_explainer(referenced_run(run, config), with_llm=False)
    model = build_feedback(explainer, tokenizer, config["perspectives"])
    ckpt.load_weights(model.heads, Path(run) / ckpt.MODEL_FILE)
    return model.to(device).eval(), tokenizer, preset, config


def explainer_run(run: Path) -> Path:
    """The stage-2 run behind a stage-2 or 3 run (what answers questions)."""
    config = ckpt.read_config(run)
    if stage_of(config) == 3:
        return referenced_run(run, config)
    if stage_of(config) != 2:
        raise InputError("explanations need a stage-2 or stage-3 run (aigciqa train DIR --stage 2 --from RUN)",
                         file=str(Path(run) / ckpt.CONFIG_FILE))
    return Path(run)


def train_stage3(root, options: Stage3Options) -> TrainResult:
    """Fine-tune the feedback regressors (or resume); test metrics next to stage 1's (Table XIII)."""
    from aigciqa.qa_builder.llm import file_sha256
    check_loop_options(options)
    explainer_dir = find_run(root, options.from_run, 2)
    explainer_config = ckpt.read_config(explainer_dir)
    if explainer_config["bins"] != 1:
        raise InputError("stage 3 fine-tunes MOS regressors: the stage-1 run must use the l1 or pairwise loss, "
                         "not ce", file=str(explainer_dir / ckpt.CONFIG_FILE), field="bins")
    data = load_model_data(root, perspectives=explainer_config["perspectives"], split=options.split,
                           use_segments=explainer_config.get("segments", True))
    train_rows, val_rows = data.part("train"), data.part("val")
    check_targets(data, train_rows, "train")
    if len(val_rows):
        check_targets(data, val_rows, "val")
    config = {**{k: explainer_config.get(k) for k in SCORER_KEYS}, "stage": 3,
              **run_options(options, exclude=("from_run",)), "from_run": _reference(root, explainer_dir),
              "from_sha256": file_sha256(explainer_dir / ckpt.MODEL_FILE)}

    def make_task(device) -> Task:
        import torch
        import torch.nn.functional as F
        explainer, tokenizer, preset, _, _ = load_explainer(explainer_dir, with_llm=False)
        model = build_feedback(explainer, tokenizer, data.perspectives).to(device)  # starts at stage 1
        # Everything before the regressors is frozen: its outputs are computed once per image.
        rows = [int(r) for r in np.concatenate([train_rows, val_rows])]
        images = frozen_inputs(model, PixelCache(data, preset), device, root=data.root, preset=preset, rows=rows,
                               batch_size=options.batch_size, fill=True)
        cached = _feedback_features(model, data, rows, tokenizer, preset, images, options.batch_size, device)

        def loss_of(prepared, batch):
            target = torch.tensor(data.targets[batch], dtype=torch.float32, device=device)
            return F.l1_loss(prepared(features=torch.stack([cached[r] for r in batch])), target)

        def validate(unwrapped):
            with torch.no_grad():
                outputs = unwrapped.scores(unwrapped(features=torch.stack([cached[int(r)] for r in val_rows])))
            metrics = rows_metrics(data, val_rows, data.to_mos(outputs.float().cpu().numpy()))
            return metrics, selection_srcc(metrics)

        return Task(model=model, examples=[int(r) for r in train_rows], batch_loss=loss_of,
                    validate=validate if len(val_rows) else None, weights=lambda m: m.heads.state_dict(),
                    load=lambda m, path: ckpt.load_weights(m.heads, path))

    result, device = fit(root, options, config, make_task, STAGE3_RESUME_KEYS)
    test_rows = data.part("test") if data.parts is not None else np.array([], int)
    finished = result.history and result.history[-1]["epoch"] == options.epochs
    if finished and len(test_rows) and result.main_process:
        check_targets(data, test_rows, "test")
        run_dir = result.run_dir
        stage3 = predict_with(run_dir, data, test_rows, options.batch_size, device)
        stage1 = predict_with(referenced_run(explainer_dir, explainer_config), data, test_rows, options.batch_size,
                              device)
        result.test = rows_metrics(data, test_rows, stage3)
        stage1_test = rows_metrics(data, test_rows, stage1)
        change = {p: {k: result.test[p][k] - stage1_test[p][k] for k in ("srcc", "krcc", "plcc_logistic")}
                  for p in result.test}
        result.extra = {"stage1_test": stage1_test, "change_against_stage1": change}
        write_test_metrics(root, f"runs/{options.run_name()}", result, extra=result.extra)
    return result


def predict_with(run: Path, data: ModelData, rows, batch_size: int, device) -> np.ndarray:
    model, tokenizer, preset, _ = ckpt.load_run(run, device=device)
    return predict_rows(model, tokenizer, preset, data, rows, batch_size, device)


def _feedback_features(model, data, rows, tokenizer, preset, images, batch_size, device) -> dict:
    cached = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids, mask = _encode_text(tokenizer, [data.texts[r] for r in chunk], device, preset.max_text_tokens)
        features = model.features(ids, mask, images.image_embeds(chunk))
        cached.update(zip(chunk, features))
    return cached


def demo_step(context) -> str:
    """Demo: tiny stage 2 on the demo's vqa.jsonl from the tiny stage-1 demo run, then one explanation."""
    folder = context.folder
    scorer = folder.path("runs/demo-tiny")
    if not (scorer / ckpt.CONFIG_FILE).is_file():
        return "skipped: no tiny stage-1 run (runs/demo-tiny) to build on"
    if not folder.path(VQA_FILE).is_file():
        return f"skipped: the demo folder has no {VQA_FILE} (build-vqa did not run)"
    from aigciqa.model.explain import explain_images
    splits = folder.read_table("splits")
    column = next(c for c in splits.columns if c != "image_id")
    result = train_stage2(folder.root, Stage2Options(from_run=str(scorer), split=column, run="demo-tiny-instruct",
                                                     epochs=1, lr=1e-3, seed=context.seed, max_answer_tokens=32,
                                                     progress=False, cpu=True))
    image = folder.path(folder.read_table("images")["path"].iloc[0])
    answer = explain_images(result.run_dir, [image], "", max_new_tokens=16)[0]
    return (f"{result.run_dir}: tiny stage 2 (random LLM), 1 epoch, LM loss {result.history[0]['train_loss']:.3f}; "
            f"'{answer['question']}' -> '{answer['answer'][:40]}' (random weights: noise)")
