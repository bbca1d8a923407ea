"""Command-line layer of the mos subpackage: ``aigciqa build-mos`` and ``aigciqa sureal-export``."""

from __future__ import annotations


def register(subparsers) -> None:
    _register_build_mos(subparsers)
    _register_sureal_export(subparsers)


def upgrade_argv(argv: list[str]) -> list[str]:
    """The old spelling ``sureal-export DB OUT`` as ``sureal-export DB -o OUT``."""
    if argv[0] != "sureal-export":
        return argv
    from aigciqa.cli import upgrade_positional_out
    return upgrade_positional_out(argv, position=1, old="'aigciqa sureal-export DB OUT'",
                                  new="'aigciqa sureal-export DB -o OUT'")


def _register_build_mos(subparsers) -> None:
    from aigciqa.cli import add_command, add_range_argument
    parser = add_command(
        subparsers, "build-mos",
        description="""
        Input DB: a database folder (ratings.csv, and answers.csv for labels), a long ratings CSV
        (subject_id,image_id,perspective,score), a wide matrix CSV (rows stimuli, columns subjects,
        empty or 'nan' = not rated) or a sureal dataset JSON ('os' list or dict). The rating scale is
        the card's, else --scale (default 0 5).
        Steps: per-subject z-scores (sample std), BT.500-14 Annex 1 §2.3.1 kurtosis screening of the
        z-scores per perspective, z' = 100 (z + 3) / 6, mean over accepted subjects with std, 95 %
        t confidence interval and count. --order screen-first screens the raw scores first and
        z-scores the accepted subjects after, the order the paper's text gives (section III-C).
        Output: mos.csv, screening.json, figures/ and (from answers.csv) labels.csv, written together
        or not at all. A folder DB without -o is updated in place; -o OUT names a database folder to
        update, or a new (or empty) folder that becomes one holding the ratings and the outputs.
        Bad input (score off the scale, non-numeric or missing score, repeated rating, unknown image or
        perspective, a subject who cannot be z-scored) stops with the file, record and field: exit 2.""",
        example="""
        aigciqa build-mos db/                                   # writes into db/
        aigciqa build-mos scores.json -o out/ --scale 1 5       # a sureal dataset
        aigciqa build-mos matrix.csv -o out/ --no-zscore --screening correlation
        aigciqa build-mos db/ --order screen-first --remove-score-outliers   # the paper's order, with its rate""")
    parser.add_argument("db", metavar="DB", help="database folder, or a long or wide ratings CSV or sureal dataset "
                                                 "JSON")
    parser.add_argument("-o", "--out", help="output database folder (default: DB when it is a folder)")
    add_range_argument(parser, "--scale", help="rating scale of a CSV or JSON source (default 0 5)")
    parser.add_argument("--perspective", help="perspective name of a wide CSV or JSON source (default quality)")
    parser.add_argument("--screening", default="bt500", choices=("bt500", "correlation", "none"),
                        help="subject screening (default bt500: BT.500 kurtosis test)")
    parser.add_argument("--no-zscore", dest="zscore", action="store_false",
                        help="screen and average raw scores (MOS on the rating scale) instead of z-scores")
    parser.add_argument("--order", default="zscore-first", choices=("zscore-first", "screen-first"),
                        help="zscore-first: screen the z-scores (default); screen-first: screen the raw "
                             "scores, then z-score the accepted subjects (the paper's text)")
    parser.add_argument("--scope", default="perspective", choices=("perspective", "any"),
                        help="'perspective': screen each perspective alone (default); 'any': a subject "
                             "rejected in any perspective is dropped from all")
    parser.add_argument("--remove-score-outliers", action="store_true",
                        help="also drop single scores outside their image's BT.500 band (off by default); "
                             "the rate removed is printed and kept in screening.json")
    parser.add_argument("--count-unanimous", action="store_true",
                        help="BT.500 literal rule: a stimulus everyone scored alike counts for all in P "
                             "and Q (as sureal); by default it counts for nobody")
    parser.add_argument("--no-figures", dest="figures", action="store_false", help="skip figures/")
    parser.set_defaults(func=_run_build_mos)


def _run_build_mos(args) -> int:
    from aigciqa.mos.aggregate import MosOptions
    from aigciqa.mos.build import run_build_mos
    options = MosOptions(zscore=args.zscore, order=args.order, screening=args.screening, scope=args.scope,
                         remove_score_outliers=args.remove_score_outliers, count_unanimous=args.count_unanimous)
    scale = args.scale
    outcome = run_build_mos(args.db, args.out, options=options, scale=scale, perspective=args.perspective,
                            figures=args.figures)
    print(outcome.summary())
    return 0


def _register_sureal_export(subparsers) -> None:
    from aigciqa.cli import add_command, add_out_argument, add_range_argument
    parser = add_command(
        subparsers, "sureal-export",
        description="""
        Input: anything build-mos reads (a database folder DB, a long or wide ratings CSV, a sureal
        JSON). Output: -o FILE, JSON in sureal's dataset format (dis_videos with asset_id = image id and
        os = {subject_id: score}, a list for repeated ratings), to run sureal's other subjective
        models (e.g. 'sureal P910 FILE'). Written atomically; bad input writes nothing (exit 2).""",
        example="aigciqa sureal-export db/ -o quality.json --perspective quality")
    parser.add_argument("db", metavar="DB", help="database folder or ratings file")
    add_out_argument(parser, "FILE", "output JSON file", required=True)
    parser.add_argument("--perspective", help="perspective to export (needed when there are several)")
    add_range_argument(parser, "--scale", help="rating scale of a CSV or JSON source (default 0 5)")
    parser.set_defaults(func=_run_sureal_export)


def _run_sureal_export(args) -> int:
    from aigciqa.database.atomic import write_text_atomic
    from aigciqa.errors import InputError
    from aigciqa.mos.sources import read_source
    from aigciqa.mos.sureal_io import dumps_sureal, to_sureal_dataset
    out = args.out
    source = read_source(args.db, scale=args.scale,
                         perspective=args.perspective)
    perspectives = list(source.card["perspectives"])
    perspective = args.perspective
    if perspective is None:
        if len(perspectives) > 1:
            raise InputError(f"--perspective is needed: the source has {', '.join(perspectives)}",
                             field="--perspective")
        perspective = perspectives[0]
    elif perspective not in perspectives:
        raise InputError(f"perspective '{perspective}' is not in the source ({', '.join(perspectives)})",
                         field="--perspective")
    dataset = to_sureal_dataset(source.ratings, perspective, name=source.card["name"], scale=source.scale)
    write_text_atomic(out, dumps_sureal(dataset))
    print(f"{out}: {len(dataset['dis_videos'])} stimuli, "
          f"{(source.ratings['perspective'] == perspective).sum()} scores of '{perspective}'")
    return 0
