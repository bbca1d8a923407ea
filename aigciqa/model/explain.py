"""Explanations (paper Fig. 11) and their VQA accuracy (section V-D, Table VIII) from a stage-2 or 3 run.

An answer is generated greedily (deterministic) by the frozen LLM after the run's visual prefix: the
projected instruction-aware queries for the image, its prompt and the question. By default each
image is asked the rating question of every perspective ("How is the quality of the image?").

VQA accuracy uses build-vqa's keyword matcher on the answers to those questions against labels.csv,
next to two references in the same run: the same LLM without instruction tuning (asked the question
as text only: it never sees the image, so it answers every image alike) and uniform guessing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from aigciqa.common.progress import progress as progress_bar
from aigciqa.common.questions import QUESTION_PERSPECTIVE, explained_perspectives, rating_question
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError
from aigciqa.model import runs
from aigciqa.model.data import load_model_data
from aigciqa.model.inference import (PixelCache, RowPixels, check_image_files, encode_text, image_files_data,
                                     pick_device)
from aigciqa.model.instruction import load_explainer

DEFAULT_MAX_NEW_TOKENS = 48
REPEAT_PENALTY = 1.1  # small LLMs loop without it (as build-vqa found for SmolLM2)


def generate(llm, prefix, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
    """Greedy answers of the LLM to tokenised prompts, each after its visual prefix ([B, queries, hidden];
    None: text only)."""
    import torch
    from aigciqa.model.instruct import prefixed_inputs
    if prefix is None:
        prefix = torch.zeros(len(prompts), 0, llm.hidden_size)
    embeds, mask = prefixed_inputs(prefix, prompts, llm.model.get_input_embeddings(), llm.pad_id)
    with torch.no_grad(), warnings.catch_warnings():
        # transformers warns that the penalty then covers the new tokens only: that is what is wanted here.
        warnings.filterwarnings("ignore", message=".*repetition_penalty.*")
        out = llm.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, repetition_penalty=REPEAT_PENALTY, pad_token_id=llm.pad_id,
                                 eos_token_id=llm.eos_id)
    return [llm.decode(ids) for ids in out]


def explainer_run(run: Path) -> Path:
    """The stage-2 run behind a stage-2 or 3 run (what answers questions)."""
    config = runs.read_config(run)
    if runs.stage_of(config) == 3:
        return runs.referenced_run(run, config)
    if runs.stage_of(config) != 2:
        raise InputError("explanations need a stage-2 or stage-3 run (aigciqa train instruct DB --from RUN)",
                         file=str(Path(run) / runs.CONFIG_FILE))
    return Path(run)


class Explainer:
    """A stage-2 model with its LLM, answering questions about images."""

    def __init__(self, run, *, device: str = "cpu", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS):
        self.model, self.tokenizer, self.preset, self.config, self.llm = load_explainer(
            explainer_run(Path(run)), with_llm=True, device=device)
        self.device, self.max_new_tokens = device, max_new_tokens

    def prompt_ids(self, question: str) -> list[int]:
        return self.llm.prompt_ids(question, self.config["max_prompt_tokens"])

    def answer(self, pixels, texts: list[str], questions: list[str]) -> list[str]:
        """Answers for images ([B, 3, H, W], normalised as the preset wants), their prompts and one question each."""
        import torch
        limit = self.preset.max_text_tokens
        with torch.no_grad():
            image_embeds = self.model.encode_image(pixels.to(self.device))
            prefix = self.model.soft_prompt(*encode_text(self.tokenizer, texts, self.device, limit),
                                            *encode_text(self.tokenizer, questions, self.device, limit), image_embeds)
        return generate(self.llm, prefix, [self.prompt_ids(q) for q in questions], self.max_new_tokens)

    def text_only(self, question: str) -> str:
        """The same LLM's answer without the visual prefix: no instruction tuning, no image."""
        return generate(self.llm, None, [self.prompt_ids(question)], self.max_new_tokens)[0]


def perspective_questions(perspectives: list[str]) -> list[tuple[str, str]]:
    return [(p, rating_question(p)) for p in perspectives]


def _ask_all(explainer: Explainer, pixels, texts, questions, batch_size, progress=False) -> list[str]:
    """Every image asked every question: answers image-major ([image][question] flattened)."""
    pairs = [(i, q) for i in range(len(texts)) for q in questions]
    answers = []
    chunks = [pairs[s:s + batch_size] for s in range(0, len(pairs), batch_size)]
    for chunk in progress_bar(chunks, "explaining", progress):
        rows = [i for i, _ in chunk]
        answers += explainer.answer(pixels.get(rows), [texts[i] for i in rows], [q for _, q in chunk])
    return answers


def explain_images(run, images: list, prompt: str, questions: list[str] | None = None, *, batch_size: int = 8,
                   max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, cpu: bool = False, progress: bool = False) -> list[dict]:
    """Answers ``{image, perspective, question, answer}`` for image files: the perspective rating questions,
    or the questions given."""
    check_image_files(images)
    explainer = Explainer(run, device=pick_device(cpu), max_new_tokens=max_new_tokens)
    data = image_files_data(images, prompt, explainer.config)
    asked = ([("", q) for q in questions] if questions
             else perspective_questions(explainer.config["perspectives"]))
    answers = _ask_all(explainer, PixelCache(data, explainer.preset), data.texts, [q for _, q in asked], batch_size,
                       progress)
    return [{"image": str(path), "perspective": perspective, "question": question, "answer": answers[k * len(asked) + j]}
            for k, path in enumerate(data.paths) for j, (perspective, question) in enumerate(asked)]


def evaluate_vqa(run, root, *, split: str | None = None, part: str = "test", batch_size: int = 8,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, limit: int | None = None, cpu: bool = False,
                 progress: bool = False) -> dict:
    """VQA accuracy per perspective of the run's answers to the rating questions, next to the same LLM
    without instruction tuning and the random baseline (Table VIII)."""
    from aigciqa.qa_builder.build import answer_labels
    folder = DatabaseFolder(root)
    labels = answer_labels(folder)  # checked before the model loads
    explainer = Explainer(run, device=pick_device(cpu), max_new_tokens=max_new_tokens)
    config = explainer.config
    data = load_model_data(root, perspectives=config["perspectives"], split=split,
                           use_segments=config.get("segments", True), need_mos=False,
                           need_parts=(part,) if split else ())
    rows, asked = vqa_inputs(data, labels[0], config["perspectives"], split, part, limit)
    pixels = PixelCache(data, explainer.preset)
    texts = [data.texts[r] for r in rows]
    tuned = _ask_all(explainer, RowPixels(pixels, rows), texts, [q for _, q in asked], batch_size, progress)
    untuned = {q: explainer.text_only(q) for _, q in asked}
    records = answer_records(data, rows, asked, tuned)
    plain = answer_records(data, rows, asked, [untuned[q] for _ in rows for _, q in asked])
    report_tuned = vqa_report(folder, records, asked, labels, "explanations")
    report_plain = vqa_report(folder, plain, asked, labels, "text-only answers")
    return {"run": str(run), "database": labels[1].get("name", ""), "split": split, "part": part if split else "all",
            "images": len(rows), "llm": config["llm"],
            "accuracy": {"instruction_tuned": report_tuned["accuracy"],
                         "llm_without_instruction_tuning": report_plain["accuracy"],
                         "random_baseline": report_tuned["random_baseline"]},
            "per_question": report_tuned["per_question"], "answers": records,
            "text_only_answers": untuned}


def vqa_inputs(data, labels: dict, perspectives: list[str], split: str | None, part: str,
               limit: int | None) -> tuple[list[int], list[tuple[str, str]]]:
    """(rows of the labelled images of the chosen part, at most ``limit``; (perspective, rating question) of
    each perspective the fine-grained labels describe)."""
    rows = [int(r) for r in (data.part(part) if split else np.arange(len(data.image_ids)))
            if data.image_ids[r] in labels][:limit]
    asked = [(p, q) for p, q in perspective_questions(perspectives) if p in explained_perspectives()]
    if not rows or not asked:
        raise InputError("nothing to evaluate: no labelled image in the chosen part, or no perspective with "
                         "fine-grained questions", file=str(data.root))
    return rows, asked


def answer_records(data, rows: list[int], asked, answers: list[str]) -> list[dict]:
    """``{image_id, perspective, question, answer}`` per (image, question), from answers image-major."""
    return [{"image_id": data.image_ids[row], "perspective": perspective, "question": question,
             "answer": answers[k * len(asked) + j]}
            for k, row in enumerate(rows) for j, (perspective, question) in enumerate(asked)]


def vqa_report(folder: DatabaseFolder, records: list[dict], asked, labels: tuple[dict, dict], what: str) -> dict:
    """VQA accuracy of answer records by build-vqa's matcher (the one computation of it), on the
    perspectives asked."""
    from aigciqa.qa_builder.build import evaluate_records
    return _asked_only(evaluate_records(folder, records, what, labels), asked)


def vlm_question(question: str, prompt: str) -> str:
    """A rating question as a zero-shot VLM is asked it: after the text the image was generated from, which
    MINT-IQA reads through its Q-Former (correspondence cannot be judged without it)."""
    return f'This image was generated from the text "{prompt}". {question}' if prompt.strip() else question


def vlm_answers(vlm, data, rows: list[int], asked, *, batch_size: int = 8,
                max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, progress: bool = False) -> list[str]:
    """A zero-shot VLM's answers, image-major, to every question about every row's image (``data`` loaded
    without segments: its texts are the prompts)."""
    pairs = [(row, question) for row in rows for _, question in asked]
    answers: list[str] = []
    chunks = [pairs[s:s + batch_size] for s in range(0, len(pairs), batch_size)]
    for chunk in progress_bar(chunks, "asking", progress):
        answers += vlm.answer([data.paths[r] for r, _ in chunk],
                              [vlm_question(q, data.texts[r]) for r, q in chunk], max_new_tokens, REPEAT_PENALTY)
    return answers


def evaluate_vlm(spec: str, root, *, split: str | None = None, part: str = "test", batch_size: int = 8,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, limit: int | None = None, cpu: bool = False,
                 progress: bool = False) -> dict:
    """VQA accuracy per perspective of a zero-shot vision-language model (``--vlm``: InstructBLIP, LLaVA, ...)
    asked the same rating questions about the same images as a run, scored by the same matcher, next to
    the random baseline (Table VIII)."""
    from aigciqa.model.vlm import load_vlm
    from aigciqa.qa_builder.build import answer_labels
    folder = DatabaseFolder(root)
    labels = answer_labels(folder)  # checked before the model loads
    data = load_model_data(root, split=split, use_segments=False, need_mos=False, need_parts=(part,) if split else ())
    rows, asked = vqa_inputs(data, labels[0], data.perspectives, split, part, limit)
    vlm = load_vlm(spec, device=pick_device(cpu))
    answers = vlm_answers(vlm, data, rows, asked, batch_size=batch_size, max_new_tokens=max_new_tokens,
                          progress=progress)
    records = answer_records(data, rows, asked, answers)
    report = vqa_report(folder, records, asked, labels, f"answers of {vlm.label}")
    return {"vlm": vlm.label, "vlm_source": vlm.record(), "database": labels[1].get("name", ""), "split": split,
            "part": part if split else "all", "images": len(rows),
            "accuracy": {"zero_shot": report["accuracy"], "random_baseline": report["random_baseline"]},
            "per_question": report["per_question"], "answers": records}


def _asked_only(report: dict, asked) -> dict:
    """The report restricted to the perspectives asked (the matcher scores every labelled question)."""
    keep = {p for p, _ in asked}
    return {**report, **{key: {p: v for p, v in report[key].items() if p in keep}
                         for key in ("accuracy", "random_baseline")},
            "per_question": {q: v for q, v in report["per_question"].items() if QUESTION_PERSPECTIVE[q] in keep}}


def format_vqa(report: dict) -> str:
    """An ``evaluate --vqa`` report as a table: a run's (instruction-tuned, its LLM alone) or a zero-shot
    VLM's accuracy per perspective, with the random baseline."""
    accuracy = report["accuracy"]
    where = f"{report['database']} ({report['part']}, {report['images']} images)"
    if "vlm" in report:
        source = report["vlm_source"]
        lines = [f"VQA accuracy on {where}, zero-shot {source['class']} {report['vlm']}:",
                 f"  {'perspective':<15} {'zero-shot':>10} {'random':>8}"]
        for p, value in accuracy["zero_shot"].items():
            lines.append(f"  {p:<15} {100 * value:9.2f}% {100 * accuracy['random_baseline'][p]:7.2f}%")
    else:
        lines = [f"VQA accuracy on {where}, LLM {report['llm']}:",
                 f"  {'perspective':<15} {'instruction-tuned':>18} {'LLM alone':>10} {'random':>8}"]
        for p, value in accuracy["instruction_tuned"].items():
            lines.append(f"  {p:<15} {100 * value:17.2f}% {100 * accuracy['llm_without_instruction_tuning'][p]:9.2f}% "
                         f"{100 * accuracy['random_baseline'][p]:7.2f}%")
    from aigciqa.qa_builder.vqa_accuracy import per_question_lines
    return "\n".join(lines + per_question_lines(report["per_question"]))
