"""Training stage 3 of the paper (section IV-C, Fig. 10): feedback, in the shared loop (:func:`.loop.fit`).

Everything is frozen but the regressors, which now read the quality-aware representation next to the
instruction-aware one for the perspective's rating question; they start at stage 1's regressors, train on
MOS (L1), and the test metrics are reported next to stage 1's (Table XIII). The kept model has the best
validation SRCC. A stage-3 run references its stage-2 run (see :mod:`.runs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigciqa.common.questions import rating_question
from aigciqa.errors import InputError
from aigciqa.model import instruction, runs, scorer
from aigciqa.model.boundary_cache import frozen_inputs
from aigciqa.model.data import check_targets, load_model_data
from aigciqa.model.inference import PixelCache, encode_text, predict_rows, rows_metrics, selection_srcc
from aigciqa.model.loop import LoopOptions, Task, TrainResult, check_loop_options, fit, run_options, write_test_metrics

STAGE = 3


@dataclass
class Stage3Options(LoopOptions):
    from_run: str = ""  # the stage-2 run
    split: str = "split"

    def run_name(self) -> str:
        return self.run or f"{Path(self.from_run).name}-feedback"


# Options that must not change between a run and its resumption.
RESUME_KEYS = ("from_sha256", "split", "epochs", "batch_size", "lr", "seed", "grad_accum")


def build_feedback(explainer, tokenizer, perspectives: list[str]):
    """The stage-3 model around a stage-2 model: one rating question per perspective as its instruction."""
    from aigciqa.model.instruct import FeedbackIQA
    tokens = tokenizer([rating_question(p) for p in perspectives], padding=True, return_tensors="pt")
    return FeedbackIQA(explainer, tokens["input_ids"], tokens["attention_mask"])


def train_stage3(root, options: Stage3Options) -> TrainResult:
    """Fine-tune the feedback regressors (or resume); test metrics next to stage 1's (Table XIII)."""
    check_loop_options(options)
    explainer_dir = runs.find_run(root, options.from_run, 2)
    explainer_config = runs.read_config(explainer_dir)
    if explainer_config["bins"] != 1:
        raise InputError("stage 3 fine-tunes MOS regressors: the stage-1 run must use the l1 or pairwise loss, "
                         "not ce", file=str(explainer_dir / runs.CONFIG_FILE), field="bins")
    data = load_model_data(root, perspectives=explainer_config["perspectives"], split=options.split,
                           use_segments=explainer_config.get("segments", True))
    train_rows, val_rows = data.part("train"), data.part("val")
    check_targets(data, train_rows, "train")
    if len(val_rows):
        check_targets(data, val_rows, "val")
    config = {**{k: explainer_config.get(k) for k in runs.SCORER_KEYS}, "stage": 3,
              **run_options(options, exclude=("from_run",)), **runs.reference_to(root, explainer_dir)}

    def make_task(device) -> Task:
        import torch
        import torch.nn.functional as F
        explainer, tokenizer, preset, _, _ = instruction.load_explainer(explainer_dir, with_llm=False)
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
                    load=lambda m, path: runs.load_weights(m.heads, path))

    result, device = fit(root, options, config, make_task, RESUME_KEYS)
    test_rows = data.part("test") if data.parts is not None else np.array([], int)
    finished = result.history and result.history[-1]["epoch"] == options.epochs
    if finished and len(test_rows) and result.main_process:
        check_targets(data, test_rows, "test")
        run_dir = result.run_dir
        model, tokenizer, preset, _ = load(run_dir, runs.read_config(run_dir), device)
        stage3 = predict_rows(model, tokenizer, preset, data, test_rows, options.batch_size, device)
        stage1 = scorer.predict_with(runs.referenced_run(explainer_dir, explainer_config), data, test_rows,
                                     options.batch_size, device)
        result.test = rows_metrics(data, test_rows, stage3)
        stage1_test = rows_metrics(data, test_rows, stage1)
        change = {p: {k: result.test[p][k] - stage1_test[p][k] for k in ("srcc", "krcc", "plcc_logistic")}
                  for p in result.test}
        result.extra = {"stage1_test": stage1_test, "change_against_stage1": change}
        write_test_metrics(root, f"runs/{options.run_name()}", result, extra=result.extra)
    return result


def _feedback_features(model, data, rows, tokenizer, preset, images, batch_size, device) -> dict:
    """The frozen features the regressors read, per row (``images``: the rows' image-encoder outputs)."""
    import torch
    cached = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids, mask = encode_text(tokenizer, [data.texts[r] for r in chunk], device, preset.max_text_tokens)
        with torch.no_grad():
            features = model.features(ids, mask, images.image_embeds(chunk))
        cached.update(zip(chunk, features))
    return cached


def load(run: Path, config: dict, device: str = "cpu"):
    """(feedback model in eval mode, tokenizer, preset, config) of a stage-3 run: it scores with its regressors."""
    explainer, tokenizer, preset, _, _ = instruction.load_explainer(runs.referenced_run(run, config), with_llm=False)
    model = build_feedback(explainer, tokenizer, config["perspectives"])
    runs.load_weights(model.heads, Path(run) / runs.MODEL_FILE)
    return model.to(device).eval(), tokenizer, preset, config
