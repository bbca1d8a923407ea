"""``aigciqa annotate``: the rating window, ``annotate export`` and ``annotate status``."""

from __future__ import annotations

import logging
from pathlib import Path

from aigciqa.errors import InputError

ACTIONS = ("open", "export", "status")
STORE_FILE = "annotations.sqlite"


def register(subparsers) -> None:
    from aigciqa.cli import add_command
    parser = add_command(
        subparsers, "annotate", summary="Rate the folder's images in a window; export or show the ratings.",
        description="""
        aigciqa annotate DIR          opens the rating window (Tk). Input: a database folder with images.csv
                                      (and prompts.csv for the prompt text), optionally a study config (JSON).
                                      Each subject signs in with an id; every answer is committed at once to
                                      DIR/annotations.sqlite (or --store FILE); a restart resumes where they were.
                                      One live window per subject id; instructions, training, breaks and the
                                      session limit come from the study config.
        aigciqa annotate export DIR   writes ratings.csv, answers.csv and annotation_summary.json (items done,
                                      time and gold agreement per subject) from every DIR/annotations*.sqlite
                                      plus any --store FILE; the result feeds 'aigciqa build-mos DIR'.
                                      A study in progress: --min-items N, --exclude-subject ID, --exclude-flagged
                                      leave subjects out (the summary says who and why).
        aigciqa annotate status DIR   prints each subject's progress and flags (low agreement, speeding, ...).
        See docs/annotate.md for the study config, the keys and the store.""",
        example="""
        aigciqa annotate db/ --study study.json --subject s01
        aigciqa annotate status db/
        aigciqa annotate export db/ --store other-machine/annotations-s07.sqlite
        aigciqa annotate export db/ --min-items 20 --exclude-flagged --exclude-subject s03""",
        usage="aigciqa annotate [open|export|status] DIR [--study CONFIG] [--subject ID] [--store FILE] "
              "[--exclude-low-agreement] [--min-items N] [--exclude-subject ID] [--exclude-flagged]")
    parser.add_argument("words", nargs="+", metavar="[open|export|status] DIR",
                        help="what to do (open by default) and the database folder")
    parser.add_argument("--study", metavar="CONFIG", help="study config (JSON); default: everything in the card")
    parser.add_argument("--subject", metavar="ID", help="subject id (letters, digits, _ . -); asked in the window "
                                                        "when absent")
    parser.add_argument("--store", metavar="FILE", action="append", default=[],
                        help=f"open: the answer store to write (default DIR/{STORE_FILE}); export/status: an "
                             "extra store to merge (repeatable)")
    parser.add_argument("--exclude-low-agreement", action="store_true",
                        help="export: leave out subjects whose gold agreement is below the study's min_agreement")
    parser.add_argument("--min-items", type=int, default=0, metavar="N",
                        help="export: leave out subjects with fewer than N items done")
    parser.add_argument("--exclude-subject", action="append", default=[], metavar="ID",
                        help="export: leave out this subject (repeatable)")
    parser.add_argument("--exclude-flagged", action="store_true",
                        help="export: leave out flagged subjects (low agreement, speeding, one constant score, "
                             "under 2 items)")
    parser.set_defaults(func=run, _parser=parser)


def run(args) -> int:
    words = args.words
    if len(words) == 1:
        action, directory = "open", words[0]
    elif len(words) == 2 and words[0] in ACTIONS:
        action, directory = words
    else:
        args._parser.error(f"expected DIR or one of {', '.join(ACTIONS)} followed by DIR, got: {' '.join(words)}")
    from aigciqa.database import DatabaseFolder
    folder = DatabaseFolder(directory)
    if action == "export":
        from aigciqa.annotate.export import ExportFilter, export, format_summary
        filters = ExportFilter(min_items=args.min_items, exclude_subjects=frozenset(args.exclude_subject),
                               exclude_flagged=args.exclude_flagged, exclude_low_agreement=args.exclude_low_agreement)
        print(format_summary(export(folder, args.store, filters=filters)))
        print(f"wrote {folder.table_path('ratings')}, {folder.table_path('answers')} and the summary")
        return 0
    if action == "status":
        from aigciqa.annotate.export import status
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
