"""``aigciqa generate``: the command-line layer over :func:`aigciqa.generate.run.run_generate`."""

from __future__ import annotations

import shlex
import sys

from aigciqa.errors import InputError


def parse_weights(values: list[str] | None) -> dict[str, str]:
    """``tiny`` | ``SPEC`` (every generator) | ``NAME=SPEC`` / ``NAME=tiny`` (one generator); a SPEC is a local
    folder or a Hub repo id ``ORG/NAME[@REVISION]`` (see :mod:`aigciqa.weights.spec`)."""
    weights: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if sep:
            if not name or not path:
                raise InputError(f"--weights '{value}' must be NAME=PATH", field="--weights")
            weights[name.strip().lower()] = path
        else:
            weights["*"] = value
    return weights


def run(args) -> int:
    from aigciqa.generate.registry import PAPER_GENERATORS
    from aigciqa.generate.run import run_generate
    names = [n.strip().lower() for n in (args.generators or ",".join(PAPER_GENERATORS)).split(",") if n.strip()]
    summary = run_generate(args.db, generators=names, prompts=args.prompts, per_prompt=args.images_per_prompt,
                           limit_prompts=args.limit_prompts, weights=parse_weights(args.weights),
                           config=args.config, only=args.only, progress=not args.quiet,
                           command=shlex.join(["aigciqa", *sys.argv[1:]]))
    if summary.rank == 0:
        print(summary.line())
    return 0


def register(subparsers) -> None:
    from aigciqa.cli import add_command, add_db_argument
    from aigciqa.generate.registry import FAMILIES, PAPER_GENERATORS
    families = "\n".join(f"{' ' * 10}{name:<19}{cls.summary}" for name, cls in FAMILIES.items())
    parser = add_command(
        subparsers, "generate",
        description=f"""
        Input: DB (created if absent, resumed if present), prompts (DB/prompts.csv, an embedded set or a
        CSV), generator weights: with no --weights the paper's Hugging Face Hub repos ('aigciqa weights
        list'; the cache, HF_HOME and HF_HUB_OFFLINE are honoured), else local folders, Hub repo ids
        ORG/NAME[@REVISION] or 'tiny' random-weight test pipelines. Output:
        DB/images/<generator>/<prompt_id>-<sample>.png and DB/images.csv (sha256, size, seed, settings,
        weights, the Hub commit they resolved to and their hash per image; every weights file's sha256 in
        the card); a rerun skips finished images.
        Several GPUs: accelerate launch -m aigciqa generate ... (or torchrun).

        generators (default: the paper's six: {', '.join(PAPER_GENERATORS)}):
        """.rstrip() + "\n" + families,
        example="""
        aigciqa generate db/ --generators stable_diffusion,unidiffuser --weights tiny --limit-prompts 5
        aigciqa generate db/ --generators stable_diffusion,controlnet,dalle,unidiffuser   # the Hub defaults
        aigciqa generate db/ --generators stable_diffusion --weights stable_diffusion=stable-diffusion-v1-5/stable-diffusion-v1-5@main
        aigciqa generate db/ --generators stable_diffusion --weights stable_diffusion=/models/sd15 --config gen.toml
        accelerate launch --num_processes 4 -m aigciqa generate db/ --generators stable_diffusion --weights /models/sd15""")
    add_db_argument(parser, "database folder (created if absent)")
    parser.add_argument("--generators", help="comma-separated generator names (see above)")
    parser.add_argument("--prompts", help="embedded prompt set (aigciqa2023) or a prompts CSV "
                        "(prompt_id,prompt,...); default: DB/prompts.csv, else aigciqa2023")
    parser.add_argument("--limit-prompts", type=int, metavar="N", help="only the first N prompts")
    parser.add_argument("--images-per-prompt", "--per-prompt", type=int, default=4, metavar="K",
                        help="images per prompt and generator (default 4, as in the paper)")
    parser.add_argument("--weights", action="append", metavar="tiny|SPEC|NAME=SPEC",
                        help="weights: 'tiny' (random-weight test pipelines), a folder or Hub repo id "
                        "ORG/NAME[@REVISION] for every generator, or NAME=SPEC for one; repeatable; wins over "
                        "the config's 'weights', which wins over the default Hub repo")
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML settings per generator (steps, guidance, "
                        "width, height, scheduler, dtype, ...; see docs/generate.md)")
    parser.add_argument("--only", action="append", metavar="IMAGE_ID",
                        help="make only this image (<generator>-<prompt_id>-<sample>) if missing or corrupt; repeatable")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
