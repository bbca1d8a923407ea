"""``aigciqa annotate``: the rating window, ``annotate export`` and ``annotate status``."""

from __future__ import annotations

import logging
from pathlib import Path

from aigciqa.errors import InputError

ACTIONS = ("open", "export", "status")
STORE_FILE = "annotations.sqlite"


def register(subparsers) -> None:
    from aigciqa.cli import add_command, add_db_argument
    parser = add_command(
        subparsers, "annotate",
        description="""
        aigciqa annotate open DB      opens the rating window (Tk). Input: a database folder with images.csv
                                      (and prompts.csv for the prompt text), optionally a study config (JSON).
                                      Each subject signs in with an id; every answer is committed at once to
                                      DB/annotations.sqlite (or --store FILE); a restart resumes where they were.
                                      One live window per subject id; instructions, training, breaks and the
                                      session limit come from the study config.
        aigciqa annotate export DB    writes ratings.csv, answers.csv and annotation_summary.json (items done,
                                      time and gold agreement per subject) from every DB/annotations*.sqlite
                                      plus any --store FILE; the result feeds 'aigciqa build-mos DB'.
                                      A study in progress: --min-items N, --exclude-subject ID, --exclude-flagged
                                      leave subjects out (the summary says who and why).
        aigciqa annotate status DB    prints each subject's progress and flags (low agreement, speeding, ...).
        See docs/annotate.md for the study config, the keys and the store.""",
        example="""
        aigciqa annotate open db/ --study study.json --subject s01
        aigciqa annotate status db/
        aigciqa annotate export db/ --store other-machine/annotations-s07.sqlite
        aigciqa annotate export db/ --min-items 20 --exclude-flagged --exclude-subject s03""")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    window = add_command(
        actions, "open", summary="Open the rating window.",
        description="Input: DB with images.csv; output: answers in DB/annotations.sqlite (or --store FILE).",
        example="aigciqa annotate open db/ --study study.json --subject s01")
    export = add_command(
        actions, "export", summary="Write ratings.csv, answers.csv and annotation_summary.json from the stores.",
        description="Input: every DB/annotations*.sqlite plus any --store FILE; output: DB/ratings.csv, "
                    "DB/answers.csv, DB/annotation_summary.json.",
        example="aigciqa annotate export db/ --min-items 20 --exclude-flagged --exclude-subject s03")
    status = add_command(
        actions, "status", summary="Print each subject's progress and flags (low agreement, speeding, ...).",
        description="Input: every DB/annotations*.sqlite plus any --store FILE; output: a table on stdout.",
        example="aigciqa annotate status db/")
    for action in (window, export, status):
        add_db_argument(action)
    window.add_argument("--study", metavar="CONFIG", help="study config (JSON); default: everything in the card")
    window.add_argument("--subject", metavar="ID", help="subject id (letters, digits, _ . -); asked in the window "
                                                        "when absent")
    window.add_argument("--store", metavar="FILE", action="append", default=[],
                        help=f"the answer store to write (default DB/{STORE_FILE})")
    for action in (export, status):
        action.add_argument("--store", metavar="FILE", action="append", default=[],
                            help="an extra store to merge (repeatable)")
    export.add_argument("--exclude-low-agreement", action="store_true",
                        help="leave out subjects whose gold agreement is below the study's min_agreement")
    export.add_argument("--min-items", type=int, default=0, metavar="N",
                        help="leave out subjects with fewer than N items done")
    export.add_argument("--exclude-subject", action="append", default=[], metavar="ID",
                        help="leave out this subject (repeatable)")
    export.add_argument("--exclude-flagged", action="store_true",
                        help="leave out flagged subjects (low agreement, speeding, one constant score, under 2 items)")
    parser.set_defaults(func=run)


def upgrade_argv(argv: list[str]) -> list[str]:
    """The old spelling ``annotate DB`` (the window as default action) as ``annotate open DB``."""
    from aigciqa.cli import deprecated, old_spelling_folder
    rest = argv[1:]
    if rest and not rest[0].startswith("-") and rest[0] not in ACTIONS and old_spelling_folder(rest[0], ACTIONS):
        deprecated("'aigciqa annotate DB'", "'aigciqa annotate open DB'")
        return [argv[0], "open", *rest]
    return argv


def run(args) -> int:
    from aigciqa.database import DatabaseFolder
    folder = DatabaseFolder(args.db)
    if args.action == "export":
        from aigciqa.annotate.export import ExportFilter, export, format_summary
        filters = ExportFilter(min_items=args.min_items, exclude_subjects=frozenset(args.exclude_subject),
                               exclude_flagged=args.exclude_flagged, exclude_low_agreement=args.exclude_low_agreement)
        print(format_summary(export(folder, args.store, filters=filters)))
        print(f"wrote {folder.table_path('ratings')}, {folder.table_path('answers')} and the summary")
        return 0
    if args.action == "status":
        from aigciqa.annotate.export import status
        folder.read_card()  # a missing folder or one that is not a database is an error, not "no store yet"
        print(status(folder, args.store))
        return 0
    return open_window(folder, study_path=args.study, subject_id=args.subject,
                       store_path=args.store[-1] if args.store else None)


def open_window(folder, *, study_path=None, subject_id=None, store_path=None) -> int:
    from aigciqa.annotate.store import AnswerStore
    from aigciqa.annotate.study import load_study_config, make_study, validate_subject_id
    card = folder.read_card()
    image_ids = folder.read_table("images", card)["image_id"].tolist()
    config = load_study_config(study_path) if study_path else None
    study = make_study(card, config, image_ids, file=study_path or "study config")
    if subject_id is not None:
        validate_subject_id(subject_id)
    store_path = Path(store_path) if store_path else folder.root / STORE_FILE
    try:
        import tkinter as tk
        from aigciqa.annotate.window import AnnotateWindow
    except ImportError as error:
        raise InputError(f"the window needs Tkinter and Pillow ({error}); install with: pip install 'aigciqa[gui]' "
                         "and your system's python3-tk") from None
    try:
        root = tk.Tk(className="aigciqa")
    except tk.TclError as error:
        raise InputError(f"cannot open a window ({error}); run it on a desktop, or set DISPLAY") from None
    store_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(store_path.with_suffix(".log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("aigciqa.annotate")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with AnswerStore(store_path) as store:
            AnnotateWindow(root, folder, study, store, subject_id)
            root.mainloop()
    finally:
        if _alive(root):
            root.destroy()
        logger.removeHandler(handler)
        handler.close()
    return 0


def _alive(root) -> bool:
    try:
        return bool(root.winfo_exists())
    except Exception:  # the Tcl interpreter is gone once the window was closed
        return False
