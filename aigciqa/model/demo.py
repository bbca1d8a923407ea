"""The model's steps of ``aigciqa demo``: the tiny scorer (stage 1) for two epochs, then tiny instruction
tuning (stage 2, random LLM) for one epoch and one explanation."""

from __future__ import annotations

from aigciqa.common.deps import MODEL_PACKAGES, TRAIN_HINT, missing
from aigciqa.database.folder import VQA_FILE
from aigciqa.model import runs

SCORER_RUN = "demo-tiny"


def _split_column(folder) -> str:
    splits = folder.read_table("splits")
    return next(c for c in splits.columns if c != "image_id")


def scorer_step(context) -> str:
    """Demo: train the tiny preset for two epochs on the demo folder when its images exist on disk."""
    folder = context.folder
    if not folder.has("mos") or not folder.has("splits"):
        return "skipped: the demo folder has no mos.csv/splits.csv yet"
    images = folder.read_table("images")
    absent = [p for p in images["path"] if not folder.path(p).is_file()]
    if absent:
        return f"skipped: {len(absent)} of {len(images)} images are not on disk"
    if missing(MODEL_PACKAGES):
        return f"skipped: {', '.join(missing(MODEL_PACKAGES))} not installed ({TRAIN_HINT})"
    from aigciqa.model.scorer import TrainOptions, train
    result = train(folder.root, TrainOptions(preset="tiny", split=_split_column(folder), run=SCORER_RUN, epochs=2,
                                             lr=1e-4, seed=context.seed, progress=False, cpu=True))
    losses = ", ".join(f"{h['train_loss']:.3f}" for h in result.history)
    return f"{result.run_dir}: tiny MINT-IQA, 2 epochs, train L1 loss per epoch {losses}"


def instruction_step(context) -> str:
    """Demo: tiny stage 2 on the demo's vqa.jsonl from the tiny stage-1 demo run, then one explanation."""
    folder = context.folder
    scorer = folder.path(f"runs/{SCORER_RUN}")
    if not (scorer / runs.CONFIG_FILE).is_file():
        return f"skipped: no tiny stage-1 run (runs/{SCORER_RUN}) to build on"
    if not folder.path(VQA_FILE).is_file():
        return f"skipped: the demo folder has no {VQA_FILE} (build-vqa did not run)"
    from aigciqa.model.explain import explain_images
    from aigciqa.model.instruction import Stage2Options, train_stage2
    result = train_stage2(folder.root, Stage2Options(
        from_run=str(scorer), split=_split_column(folder), run=f"{SCORER_RUN}-instruct", epochs=1, lr=1e-3,
        seed=context.seed, max_answer_tokens=32, progress=False, cpu=True))
    image = folder.path(folder.read_table("images")["path"].iloc[0])
    answer = explain_images(result.run_dir, [image], "", max_new_tokens=16)[0]
    return (f"{result.run_dir}: tiny stage 2 (random LLM), 1 epoch, LM loss {result.history[0]['train_loss']:.3f}; "
            f"'{answer['question']}' -> '{answer['answer'][:40]}' (random weights: noise)")
