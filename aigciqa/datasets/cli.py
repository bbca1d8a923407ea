"""Command-line layer of the datasets subpackage: ``aigciqa import``, ``split``, ``prompts``."""

from __future__ import annotations


def register(subparsers) -> None:
    """Importers, splits and prompt-set commands register here as they are added."""
    _register_import(subparsers)
    _register_split(subparsers)
    _register_prompts(subparsers)


# ---- aigciqa split ------------------------------------------------------------------------------
def _register_split(subparsers) -> None:
    from aigciqa.cli import add_command, add_db_argument
    from aigciqa.datasets.splits import DEFAULT_RATIOS, SPLIT_KINDS
    parser = add_command(
        subparsers, "split",
        description="""
        Input: a database folder with images.csv (and prompts.csv for categories). Output: splits.csv,
        image_id + one column per repeat: prompt_s<seed> (--by prompt: every image of a prompt in its
        prompt's part, so no prompt is in two parts; prompts stratified by category) or image_s<seed>
        (--by image: images at random, as the AIGCIQA2023 authors did; prompts then leak between
        parts). Other columns of an existing splits.csv are kept; a column of the same name is
        replaced. Prints images and prompts per part. Nothing is written when an input is bad.""",
        example="""
        aigciqa split db/ --repeats 10                       # prompt_s0 .. prompt_s9, 70/10/20
        aigciqa split db/ --by image --ratios 0.8,0.2        # image_s0, 80/20, no val part""")
    add_db_argument(parser)
    parser.add_argument("--by", choices=SPLIT_KINDS, default="prompt", help="unit that is split (default prompt)")
    parser.add_argument("--repeats", type=int, default=1, help="number of splits, seeds S..S+N-1 (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first split (default 0)")
    parser.add_argument("--ratios", default=",".join(f"{r:g}" for r in DEFAULT_RATIOS),
                        help="train,val,test shares, or train,test for no val part (default %(default)s)")
    parser.set_defaults(func=_run_split)


def _run_split(args) -> int:
    from aigciqa.database import DatabaseFolder
    from aigciqa.datasets.splits import (format_summary, make_splits, merge_split_columns, parse_ratios,
                                         summarize_splits)
    ratios = parse_ratios(args.ratios)
    folder = DatabaseFolder(args.db)
    folder.read_card()  # a missing folder is an error, not a folder to create
    with folder.transaction() as transaction:  # read and write under the lock: no column is lost
        card = folder.read_card()
        images = folder.read_table("images", card)
        prompts = folder.read_table("prompts", card) if folder.has("prompts") else None
        existing = folder.read_table("splits", card) if folder.has("splits") else None
        new = make_splits(images, prompts, by=args.by, repeats=args.repeats, seed=args.seed, ratios=ratios)
        splits = merge_split_columns(existing, new)
        transaction.write({"splits": splits}, card=card, stage="split")
    columns = [c for c in new.columns if c != "image_id"]
    print(f"{folder.table_path('splits')}: wrote {', '.join(columns)} ({len(images)} images)")
    print(format_summary(summarize_splits(images, splits, columns)))
    return 0


# ---- aigciqa prompts ----------------------------------------------------------------------------
def _register_prompts(subparsers) -> None:
    from aigciqa.cli import add_command
    from aigciqa.datasets.prompt_sets import EMBEDDED_PROMPT_SETS
    parser = add_command(
        subparsers, "prompts",
        description="""
        Input: a PartiPrompts TSV (header Prompt, Category, Challenge, Note) for 'select', the name
        of an embedded prompt set for 'show'. select draws one prompt per category x challenge cell,
        seeded (by default the AIGCIQA2023 grid, 10 x 10), writes the prompts table to a new database
        folder (with a default dataset.json) or to OUT.csv, and lists the cells that have no prompt.
        show prints an embedded prompt set as CSV. Output: nothing is written when an input is bad.""",
        example="""
        aigciqa prompts select PartiPrompts.tsv -o new-db/ --seed 1
        aigciqa prompts select PartiPrompts.tsv -o grid.csv --categories Animals People \\
            --challenges Basic Complex
        aigciqa prompts show aigciqa2023""")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    select = add_command(
        actions, "select", summary="Draw one prompt per category x challenge cell from a PartiPrompts TSV.",
        description="""
        Input: a PartiPrompts TSV (header Prompt, Category, Challenge, Note; prompts kept verbatim).
        Each cell's prompt is drawn with its own seeded stream, so it depends only on the seed, the
        cell and the prompts in it. Output: a prompts table (prompt_id, prompt, category, challenge;
        ids 0.. in challenge-major order as in AIGCIQA2023) in a new database folder with a default
        dataset.json, or in OUT when it ends in .csv. Cells with no prompt are listed.""",
        example="aigciqa prompts select PartiPrompts.tsv -o new-db/ --seed 1")
    select.add_argument("parti_tsv", metavar="PARTI_TSV", help="PartiPrompts TSV file")
    select.add_argument("-o", "--out", required=True,
                        help="new database folder, or a file ending in .csv for the prompts table alone")
    select.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    select.add_argument("--categories", nargs="+", metavar="CATEGORY",
                        help="categories (rows of the grid; default: the AIGCIQA2023 ten)")
    select.add_argument("--challenges", nargs="+", metavar="CHALLENGE",
                        help="challenges (columns of the grid; default: the AIGCIQA2023 ten)")
    select.set_defaults(func=_run_prompts_select)
    show = add_command(
        actions, "show", summary="Print an embedded prompt set as CSV.",
        description="Embedded sets: " + "; ".join(f"{name}: {text}"
                                                  for name, (_, text) in EMBEDDED_PROMPT_SETS.items()),
        example="aigciqa prompts show aigciqa2023 > prompts.csv")
    show.add_argument("name", nargs="?", default="aigciqa2023",
                      help=f"prompt set ({', '.join(EMBEDDED_PROMPT_SETS)}; default aigciqa2023)")
    show.set_defaults(func=_run_prompts_show)


def _run_prompts_select(args) -> int:
    from pathlib import Path

    from aigciqa.database import DatabaseFolder, default_card
    from aigciqa.database.atomic import write_text_atomic
    from aigciqa.database.tables import to_csv_text
    from aigciqa.datasets.prompt_sets import read_parti_tsv, select_prompt_grid
    from aigciqa.errors import InputError
    out = Path(args.out)
    to_csv = out.suffix.lower() == ".csv"
    if to_csv and out.is_dir():
        raise InputError("is a folder; give a file name ending in .csv", file=out)
    if not to_csv:
        if out.exists() and not out.is_dir():
            raise InputError("exists and is not a folder", file=out)
        _refuse_database(DatabaseFolder(out))
    selection = select_prompt_grid(read_parti_tsv(args.parti_tsv), categories=args.categories,
                                   challenges=args.challenges, seed=args.seed, file=args.parti_tsv)
    if selection.prompts.empty:
        raise InputError("no cell of the chosen grid has a prompt", file=args.parti_tsv)
    if to_csv:
        write_text_atomic(out, to_csv_text(selection.prompts))
    else:
        card = default_card(out.resolve().name, description=(
            f"Prompts drawn from {Path(args.parti_tsv).name} with 'aigciqa prompts select' (seed {args.seed})."))
        folder = DatabaseFolder(out)
        with folder.transaction() as transaction:
            _refuse_database(folder)  # again under the lock: another command may have made it meanwhile
            transaction.write({"prompts": selection.prompts}, card=card, stage="prompts")
    n_cells = len(selection.candidates)
    print(f"{out}: {len(selection.prompts)} prompts drawn for {n_cells} cells (seed {args.seed})")
    if selection.missing:
        print(f"{len(selection.missing)} cell(s) have no prompt in {args.parti_tsv}:")
        for category, challenge in selection.missing:
            print(f"  {category} x {challenge}")
    return 0


def _refuse_database(folder) -> None:
    from aigciqa.errors import InputError
    if folder.exists():
        raise InputError("is already a database folder; choose a new folder or a .csv file", file=folder.root)


def _run_prompts_show(args) -> int:
    from aigciqa.database.tables import to_csv_text
    from aigciqa.datasets.prompt_sets import load_prompt_set
    print(to_csv_text(load_prompt_set(args.name)), end="")
    return 0


# ---- aigciqa import -----------------------------------------------------------------------------
def _register_import(subparsers) -> None:
    from aigciqa.cli import add_command, add_deprecated_option, add_range_argument
    from aigciqa.datasets.importers import importer_help
    from aigciqa.datasets.importers.meta_csv import PRESETS
    import textwrap
    parser = add_command(
        subparsers, "import",
        description=textwrap.dedent("""
        Input: KIND, the published files SRC (images are optional: only their paths are listed, and
        images put later at those paths are used). Output: DB, a new database folder: dataset.json
        and the tables the database has (prompts, images, mos, labels, pairs, splits). Every record is
        checked first; a bad one stops the import with its file, record and field (exit status 2) and
        nothing is written. Records accepted with a change (an out-of-range code imported as missing)
        are printed as warnings, one per line.
        """) + "\nkinds:\n" + importer_help(),
        example="""
        aigciqa import aigciqa2023 AIGCIQA2023/ db/        # folder with the three published CSV files
        aigciqa import agiqa3k data.csv agiqa3k-db/
        aigciqa import imagereward test.json ir-db/
        aigciqa import meta-csv meta_info_KonIQ10kDataset.csv koniq-db/ --layout koniq10k""")
    parser.add_argument("kind", metavar="KIND", help="aigciqa2023, agiqa3k, imagereward or meta-csv")
    parser.add_argument("src", metavar="SRC", help="published file(s): a file or the folder holding them")
    parser.add_argument("db", metavar="DB", help="database folder to create")
    parser.add_argument("--overwrite", action="store_true",
                        help="DB may already hold a database: replace the tables this import writes")
    group = parser.add_argument_group("aigciqa2023 options")
    group.add_argument("--labels-encoding", help="text encoding of AIGIQA2023+.csv (default gbk, as published)")
    group = parser.add_argument_group("meta-csv options (each overrides the layout's)")
    group.add_argument("--layout", help=f"a known database's CSV layout: {', '.join(PRESETS)}")
    add_deprecated_option(group, "--preset", dest="layout", new="--layout")
    group.add_argument("--name-column", help="image name column (also the image id; path images/NAME)")
    group.add_argument("--mos-column", help="MOS column")
    group.add_argument("--std-column", help="standard deviation column")
    group.add_argument("--std-scale", choices=("mos", "raw"),
                       help="std in MOS units (quality_std) or on the raw rating scale (quality_std_raw)")
    group.add_argument("--ref-column", help="reference image column of a full-reference database")
    group.add_argument("--split-column", action="append", metavar="COLUMN[=NAME]",
                       help="split column (repeatable), stored in splits.csv as NAME (default: COLUMN)")
    add_deprecated_option(group, "--split", dest="split_column", new="--split-column", append=True)
    group.add_argument("--split-values", metavar="RAW=PART,...",
                       help="how split cells map to train/val/test, e.g. 0=train,1=val,2=test")
    add_range_argument(group, "--mos-range", help="range of the MOS")
    add_range_argument(group, "--scale", help="raw rating scale (default: the MOS range)")
    group.add_argument("--lower-is-better", action="store_true", help="the MOS column is a DMOS")
    group.add_argument("--name", help="database name in dataset.json (default: the layout or file name)")
    parser.set_defaults(func=_run_import)


def _parse_pairs(text: str, option: str) -> dict[str, str]:
    from aigciqa.errors import InputError
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        raw, sep, part = item.partition("=")
        if not sep or not raw.strip() or not part.strip():
            raise InputError(f"'{item}' is not RAW=PART", field=option)
        pairs[raw.strip()] = part.strip()
    return pairs


def _run_import(args) -> int:
    import sys
    import warnings

    from aigciqa.datasets.importers import format_summary, import_database
    from aigciqa.errors import DataWarning
    options = {"labels_encoding": args.labels_encoding, "preset": args.layout, "name_column": args.name_column,
               "mos_column": args.mos_column, "std_column": args.std_column, "std_scale": args.std_scale,
               "ref_column": args.ref_column, "mos_range": args.mos_range, "scale": args.scale,
               "name": args.name}
    if args.split_column:
        options["split_columns"] = {column.strip(): (name.strip() or column.strip()) if sep else column.strip()
                                    for column, sep, name in (item.partition("=") for item in args.split_column)}
    if args.split_values:
        options["split_values"] = _parse_pairs(args.split_values, "--split-values")
    if args.lower_is_better:
        options["higher_is_better"] = False
    options = {key: value for key, value in options.items() if value is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # printed below, one line each
        summary = import_database(args.kind, args.src, args.db, overwrite=args.overwrite, **options)
    for message in summary.warnings:
        print(f"aigciqa import: warning: {message}", file=sys.stderr)
    print(format_summary(summary))
    return 0
