"""One subject's rating session: where they are, what they answered, when they may move on.

The window only shows a :class:`Session` and forwards what the subject does to it; every answer goes
straight to the store, so the window holds nothing that a crash could lose except text being typed.
The simulated panel of ``aigciqa demo`` records its answers through this same class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aigciqa.annotate.store import CLAIM_HEARTBEAT_S, FINISHED, REOPENED, AnswerStore
from aigciqa.annotate.study import Item, Study, TrainingItem, subject_items, validate_subject_id
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError

TRAINING_DONE = "training_done"
INSTRUCTIONS_SEEN = "instructions_seen"
BREAK = "break"
SESSION_LIMIT = "session_limit"


class UnreadableItem(ValueError):
    """An answer was given to an item whose image could not be shown."""


@dataclass(frozen=True)
class Shown:
    """What the window shows for one item (a rated item or a training example)."""
    path: Path
    prompt: str
    label: str  # e.g. "item 3 of 40" or "training example 1 of 2"


def image_lookup(folder: DatabaseFolder) -> tuple[dict[str, str], dict[str, str]]:
    """image_id -> path (relative) and image_id -> prompt text, from images.csv and prompts.csv."""
    card = folder.read_card()
    images = folder.read_table("images", card)
    prompts = folder.read_table("prompts", card) if folder.has("prompts") else pd.DataFrame(
        {"prompt_id": [], "prompt": []})
    text = dict(zip(prompts["prompt_id"], prompts["prompt"]))
    return (dict(zip(images["image_id"], images["path"])),
            {i: text.get(p, "") for i, p in zip(images["image_id"], images["prompt_id"])})


class Session:
    def __init__(self, folder: DatabaseFolder, study: Study, store: AnswerStore, subject_id: str, *,
                 clock=time.time, claim: bool = False):
        """``claim``: make this the subject's only live session (a window; SubjectInUse when another holds it)."""
        self.folder, self.study, self.store, self.clock = folder, study, store, clock
        self.subject_id = validate_subject_id(subject_id)
        self.paths, self.prompts = image_lookup(folder)
        if store.has_subject(subject_id):
            self.items = store.items(subject_id)  # the stored order wins over any change of config
            unknown = [i.image_id for i in self.items if i.image_id not in self.paths]
            if unknown:
                raise InputError(f"subject {subject_id} was given image '{unknown[0]}', which is no longer in "
                                 "images.csv", file=str(store.path), field="image_id")
        else:
            self.items = subject_items(study, list(self.paths), subject_id)
            store.add_subject(subject_id, self.items, study.config)
        self.session_id = store.start_session(subject_id)
        self.claimed = False
        if claim:
            store.claim(subject_id, self.session_id)
            self.claimed, self.claim_refreshed = True, clock()
        self.answers = store.latest_answers(subject_id)
        self.finished = store.finished_positions(subject_id)
        self.spent_before = sum(v.t_end - v.t_start for v in store.visits(subject_id))
        self.position = self.resume_position()
        self.visit_start = clock()
        self.unreadable: dict[int, str] = {}
        self.reopened: set[int] = set()  # finished items whose answers became incomplete (this session)
        self.training_needed = bool(study.training) and not store.has_event(subject_id, TRAINING_DONE)
        self.instructions_needed = not store.has_event(subject_id, INSTRUCTIONS_SEEN)
        self.session_start = clock()
        self.last_break, self.done_since_break = self.session_start, 0
        self.ended = False  # the session's time is recorded: no more visits

    def close(self) -> None:
        """Record the time on the current item and free the subject for another window."""
        try:
            if not self.all_done and not self.ended:
                self._leave("left")
            self.ended = True
        finally:
            if self.claimed:
                self.store.release_claim(self.subject_id, self.session_id)
                self.claimed = False

    def heartbeat(self) -> None:
        """Keep the claim on the subject alive (called by the window's clock)."""
        if self.claimed and self.clock() - self.claim_refreshed >= CLAIM_HEARTBEAT_S:
            self.store.refresh_claim(self.subject_id, self.session_id)
            self.claim_refreshed = self.clock()

    # ---- where we are ---------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_finished(self) -> int:
        return len(self.finished)

    @property
    def all_done(self) -> bool:
        return self.position >= self.n_items

    def resume_position(self) -> int:
        """The first item not finished yet (n when every item is)."""
        return next((i.position for i in self.items if i.position not in self.finished), self.n_items)

    def item(self, position: int | None = None) -> Item:
        return self.items[self.position if position is None else position]

    def shown(self, position: int | None = None) -> Shown:
        item = self.item(position)
        return Shown(self.folder.path(self.paths[item.image_id]), self.prompts.get(item.image_id, ""),
                     f"item {item.position + 1} of {self.n_items}")

    def time_spent(self) -> float:
        """Seconds spent on items, over every session (the current visit included)."""
        return self.spent_before + (0.0 if self.all_done else self.clock() - self.visit_start)

    # ---- answers ----------------------------------------------------------------------------------
    def values(self, position: int | None = None) -> dict:
        return dict(self.answers.get(self.position if position is None else position, {}))

    def check_value(self, field: str, value) -> None:
        study = self.study
        if field in study.perspectives:
            ok = not isinstance(value, str) and study.scale_min <= value <= study.scale_max
        elif field in {q.name for q in study.questions}:
            ok = isinstance(value, int) and 1 <= value <= len(study.question(field).levels)
        elif field in {q.explanation for q in study.questions if q.explanation}:
            ok = isinstance(value, str)
        else:
            raise ValueError(f"'{field}' is not a field of the study")
        if not ok:
            raise ValueError(f"{value!r} is not a valid answer for {field}")

    def set_answer(self, field: str, value, position: int | None = None) -> list[str]:
        """Record one answer; it is committed to the store before this returns (StoreBusy if locked).

        Returns the explanation fields cleared because the new level needs none (an explanation of a
        level the subject no longer gives must not be exported with the new one). A finished item
        whose answers become incomplete is reopened: it is no longer finished until completed again.
        """
        position = self.position if position is None else position
        self.check_value(field, value)
        if position in self.unreadable:
            raise UnreadableItem(f"item {position + 1}'s image cannot be shown: it can only be skipped")
        cleared = []
        if self.answers.get(position, {}).get(field) != value:
            self.store.record_answer(self.subject_id, position, field, value, self.session_id)
            self.answers.setdefault(position, {})[field] = value
        if field in {q.name for q in self.study.questions}:
            question = self.study.question(field)
            stale = self.answers.get(position, {}).get(question.explanation)
            if question.explanation and stale and not self.study.explanation_needed(field, value):
                self.store.record_answer(self.subject_id, position, question.explanation, "", self.session_id)
                self.answers[position][question.explanation] = ""
                cleared.append(question.explanation)
        self._recheck(position)
        return cleared

    def _recheck(self, position: int) -> None:
        """A finished item must stay complete: reopen it in the store as soon as it is not."""
        if position in self.finished and self.finished[position] == "done" and self.problems(position):
            now = self.clock()
            self.store.record_visit(self.subject_id, position, self.session_id, now, now, REOPENED)
            del self.finished[position]
            self.reopened.add(position)

    def problems(self, position: int | None = None) -> list[str]:
        return self.study.problems(self.values(position))

    # ---- moving ------------------------------------------------------------------------------------
    def _leave(self, outcome: str) -> None:
        now = self.clock()
        self.store.record_visit(self.subject_id, self.position, self.session_id, self.visit_start, now, outcome)
        self.spent_before += now - self.visit_start
        if outcome in FINISHED:
            self.finished[self.position] = outcome
        self.visit_start = now

    def next(self) -> list[str]:
        """Move on when the item's answers are complete; otherwise return what is missing.

        After the last item, the first item that is not finished (a reopened one) comes next.
        """
        if self.all_done:
            return []
        if self.position in self.unreadable:
            return ["skip this image (S): it cannot be shown"]
        problems = self.problems()
        if problems:
            return problems
        least = float(self.study.session["min_viewing_seconds"] or 0)
        seen = self.clock() - self.visit_start
        if self.position not in self.finished and seen < least:
            return [f"look at the image a little longer (at least {least:g} s)"]
        new = self.position not in self.finished
        self._leave("done")
        self.reopened.discard(self.position)
        if new:
            self.done_since_break += 1
        self.position += 1
        if self.all_done:
            self.position = self.resume_position()
        return []

    def previous(self) -> list[str]:
        """Go back one item. A finished item must stay complete to be left."""
        if self.position == 0:
            return []
        if self.all_done:
            self.position -= 1
            self.visit_start = self.clock()
            return []
        if self.finished.get(self.position) == "skipped":
            self._leave("skipped")
            self.position -= 1
            return []
        problems = self.problems()
        was_finished = self.position in self.finished or self.position in self.reopened
        if was_finished and problems:
            return problems
        self._leave("done" if was_finished else "left")
        self.reopened.discard(self.position)
        self.position -= 1
        return []

    def report_unreadable(self, message: str) -> None:
        """Log an image that cannot be shown (once per item and session); the subject may then skip it."""
        if self.position in self.unreadable:
            return
        item = self.item()
        self.store.record_problem(self.subject_id, item.position, item.image_id, self.paths[item.image_id],
                                  message, self.session_id)
        self.unreadable[self.position] = message

    def incomplete_finished(self) -> list[int]:
        """Positions finished before whose answers are now incomplete (reopened and not completed again)."""
        return sorted(p for p in self.reopened if p not in self.finished)

    # ---- breaks and the session's length ----------------------------------------------------------------
    def break_due(self) -> bool:
        every_items, every_minutes = self.study.session["break_every_items"], self.study.session["break_every_minutes"]
        return not self.all_done and not self.over() and bool(
            (every_items and self.done_since_break >= every_items)
            or (every_minutes and self.done_since_break and self.clock() - self.last_break >= 60 * every_minutes))

    def take_break(self) -> None:
        """Record a break; the time of the item shown after it starts when the break ends."""
        self.store.record_event(self.subject_id, BREAK, self.session_id)
        self.last_break, self.done_since_break = self.clock(), 0
        self.visit_start = self.clock()

    def over(self) -> bool:
        """The study's maximum session length is reached (the subject continues in a later session)."""
        limit = self.study.session["max_minutes"]
        return bool(limit) and self.clock() - self.session_start >= 60 * limit

    def end_for_limit(self) -> None:
        if not self.all_done and not self.ended:
            self._leave("left")
        self.ended = True
        self.store.record_event(self.subject_id, SESSION_LIMIT, self.session_id)

    def can_skip(self) -> bool:
        return not self.all_done and self.position in self.unreadable

    def skip(self) -> bool:
        if not self.can_skip():
            return False
        self._leave("skipped")
        self.position += 1
        return True

    # ---- training ------------------------------------------------------------------------------------
    def training_items(self) -> list[tuple[Shown, TrainingItem]]:
        out = []
        n = len(self.study.training)
        for k, example in enumerate(self.study.training):
            relative = example.path if example.path is not None else self.paths[example.image_id]
            prompt = example.prompt or (self.prompts.get(example.image_id, "") if example.image_id else "")
            out.append((Shown(self.folder.path(relative), prompt, f"training example {k + 1} of {n}"), example))
        return out

    def finish_training(self) -> None:
        self.store.record_event(self.subject_id, TRAINING_DONE, self.session_id)
        self.training_needed = False
        self.visit_start = self.clock()

    def finish_instructions(self) -> None:
        self.store.record_event(self.subject_id, INSTRUCTIONS_SEEN, self.session_id)
        self.instructions_needed = False
        self.visit_start = self.clock()
