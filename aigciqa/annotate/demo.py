"""The demo's non-interactive annotation: a simulated panel answers through the window's own path.

Each simulated subject signs in (a :class:`Session`, so their item order is drawn and stored as for
a person), answers every item with ``set_answer`` and moves on with ``next`` (so the study's required
fields are checked), and the store is then exported like any other.
"""

from __future__ import annotations

from aigciqa.annotate.cli import STORE_FILE
from aigciqa.annotate.export import SUMMARY_FILE, export
from aigciqa.annotate.session import Session
from aigciqa.annotate.store import AnswerStore
from aigciqa.annotate.study import make_study


def record_panel(folder, study, store, ratings, answers) -> int:
    """Write a panel's answers (tables in ratings.csv / answers.csv columns) item by item; return items done."""
    scores = {(s, i, p): v for s, i, p, v in ratings[["subject_id", "image_id", "perspective", "score"]].itertuples(
        index=False)}
    levels = {(s, i, q): (lv, ex) for s, i, q, lv, ex in answers[
        ["subject_id", "image_id", "question", "level", "explanation"]].itertuples(index=False)}
    explanation_of = {q.name: q.explanation for q in study.questions}
    done = 0
    for subject in ratings["subject_id"].drop_duplicates():
        session = Session(folder, study, store, str(subject))
        while not session.all_done:
            image_id = session.item().image_id
            for p in study.perspectives:
                if (subject, image_id, p) in scores:
                    session.set_answer(p, float(scores[subject, image_id, p]))
            for q in study.questions:
                if (subject, image_id, q.name) in levels:
                    level, text = levels[subject, image_id, q.name]
                    session.set_answer(q.name, int(level))
                    if explanation_of[q.name] and text:
                        session.set_answer(explanation_of[q.name], str(text))
            problems = session.next()
            if problems:
                raise ValueError(f"simulated subject {subject} left {image_id} incomplete: {problems}")
            done += 1
    return done


def demo_step(context) -> str:
    """Simulate a panel (aigciqa.mos.simulate), record it through the store, export ratings and answers."""
    from aigciqa.mos.simulate import simulate_panel
    folder = context.folder
    card = folder.read_card()
    images = folder.read_table("images", card)
    study = make_study(card, {"seed": context.seed}, images["image_id"].tolist())
    ratings, answers, truth = simulate_panel(images, card, n_subjects=12, n_outliers=2, seed=context.seed)
    context.extras["panel_truth"] = truth  # read by the build-mos step
    # Simulated answers need no power-cut safety: skip the per-answer fsync that a person's answers get.
    with AnswerStore(folder.root / STORE_FILE, durable=False) as store:
        done = record_panel(folder, study, store, ratings, answers)
    summary = export(folder, command="aigciqa demo (simulated panel)")
    return (f"{done} items rated by {ratings['subject_id'].nunique()} simulated subjects "
            f"({len(truth['outliers'])} random raters) through {STORE_FILE}; exported "
            f"{summary['exported']['ratings']} ratings to ratings.csv, {summary['exported']['answers']} answers to "
            f"answers.csv, per-subject summary to {SUMMARY_FILE}")
