"""The answer store and a subject's session, without a window."""

from __future__ import annotations

import sqlite3

import pytest

from aigciqa.annotate.session import Session
from aigciqa.annotate.store import AnswerStore, StoreBusy, find_stores
from aigciqa.annotate.study import make_study
from aigciqa.errors import InputError

COMPLETE = {"quality": 3, "authenticity": 2, "correspondence": 5, "clarity": 4, "outline": 3, "details": 4,
            "distortion": 3, "consistency": 3}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def session_for(folder, subject="s1", config=None, clock=None, store=None):
    study = make_study(folder.read_card(), config, folder.read_table("images")["image_id"].tolist())
    store = store or AnswerStore(folder.root / "annotations.sqlite")
    return Session(folder, study, store, subject, clock=clock or Clock())


def answer(session, values=COMPLETE):
    for name, value in values.items():
        session.set_answer(name, value)


def test_store_is_wal_and_refuses_other_files(tmp_path):
    with AnswerStore(tmp_path / "a.sqlite") as store:
        assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (tmp_path / "text.sqlite").write_text("hello, I am not a database" * 10)
    with pytest.raises(InputError, match="not a readable annotation store"):
        AnswerStore(tmp_path / "text.sqlite")
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(InputError, match="not an aigciqa annotation store"):
        AnswerStore(tmp_path / "other.sqlite")
    with pytest.raises(InputError, match="not found"):
        AnswerStore(tmp_path / "missing.sqlite", create=False)


def test_locked_store_raises_store_busy_and_loses_nothing(folder):
    session = session_for(folder, store=AnswerStore(folder.root / "annotations.sqlite", busy_timeout=0.05))
    blocker = sqlite3.connect(session.store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreBusy, match="in use by another program"):
        session.set_answer("quality", 4)
    assert session.values() == {}  # not recorded as given until it is in the store
    blocker.execute("COMMIT")
    session.set_answer("quality", 4)
    assert session.store.latest_answers("s1") == {0: {"quality": 4}}


def test_moving_on_needs_complete_answers_and_records_time(folder):
    clock = Clock()
    session = session_for(folder, clock=clock)
    assert session.next() == ["rate quality", "rate authenticity", "rate correspondence", "answer clarity",
                              "answer outline and content", "answer details", "answer geometry distortion",
                              "answer text-image consistency"]
    answer(session)
    clock.now += 12.5
    assert session.next() == [] and session.position == 1
    assert session.store.visits("s1")[0].t_end - session.store.visits("s1")[0].t_start == 12.5
    clock.now += 3
    assert session.time_spent() == 15.5
    with pytest.raises(ValueError):
        session.set_answer("quality", 6)
    with pytest.raises(ValueError):
        session.set_answer("clarity", 0)


def test_going_back_keeps_finished_items_complete(folder):
    session = session_for(folder)
    for _ in range(2):
        answer(session)
        session.next()
    session.set_answer("quality", 1)  # item 3 started, not finished: may go back
    assert session.previous() == [] and session.position == 1
    session.set_answer("distortion", 1)  # now item 2 needs an explanation: it may not be left unfinished
    assert session.previous() == ["explain geometry distortion (where is the distortion)"]
    assert session.next() == ["explain geometry distortion (where is the distortion)"]
    assert session.position == 1
    session.set_answer("distortion_explanation", "arm bent backwards")
    assert session.previous() == [] and session.position == 0
    assert session.store.finished_positions("s1") == {0: "done", 1: "done"}


def test_restart_resumes_at_first_unfinished_item_with_the_same_order(folder):
    session = session_for(folder)
    order = [i.image_id for i in session.items]
    for _ in range(2):
        answer(session)
        session.next()
    session.set_answer("quality", 2)
    session.store.close()
    again = session_for(folder)
    assert [i.image_id for i in again.items] == order
    assert again.position == 2 and again.values() == {"quality": 2}
    assert again.session_id != session.session_id
    assert session_for(folder, "s2").items != again.items  # another subject, another order


def test_changed_config_does_not_change_a_stored_order(folder):
    first = [i.image_id for i in session_for(folder, config={"seed": 1}).items]
    assert [i.image_id for i in session_for(folder, config={"seed": 2}).items] == first


def test_stores_found_in_the_folder_and_given_extra(folder, tmp_path):
    AnswerStore(folder.root / "annotations.sqlite").close()
    AnswerStore(folder.root / "annotations-s7.sqlite").close()
    AnswerStore(tmp_path / "elsewhere.sqlite").close()
    names = [p.name for p in find_stores(folder.root, [tmp_path / "elsewhere.sqlite",
                                                       folder.root / "annotations.sqlite"])]
    assert names == ["annotations-s7.sqlite", "annotations.sqlite", "elsewhere.sqlite"]


def test_one_live_session_per_subject_and_a_crash_does_not_leave_it_stuck(folder):
    import os
    import signal
    import subprocess
    import sys
    from aigciqa.annotate.store import CLAIM_STALE_S, SubjectInUse
    path = folder.root / "annotations.sqlite"
    live = session_for(folder, store=AnswerStore(path))
    live.store.close()
    first = Session(live.folder, live.study, AnswerStore(path), "s1", claim=True)
    with pytest.raises(SubjectInUse, match="already rating in another window"):
        Session(first.folder, first.study, AnswerStore(path), "s1", claim=True)
    first.close()  # closing frees it
    second = Session(first.folder, first.study, AnswerStore(path), "s1", claim=True)
    second.store.close()  # gone without closing, like a crash, but this process lives: still held
    with pytest.raises(SubjectInUse):
        Session(first.folder, first.study, AnswerStore(path), "s1", claim=True)
    with AnswerStore(path) as store:  # a claim from a machine that stopped refreshing it: stale
        store.connection.execute("UPDATE claims SET host='other', heartbeat=heartbeat-?", (CLAIM_STALE_S + 1,))
    Session(first.folder, first.study, AnswerStore(path), "s1", claim=True).close()
    # a process that holds the claim is killed with SIGKILL: the claim is taken over at once
    code = ("import sys, time; from aigciqa.annotate.store import AnswerStore; "
            "s = AnswerStore(sys.argv[1]); s.claim('s1', 99); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(SubjectInUse):
        Session(first.folder, first.study, AnswerStore(path), "s1", claim=True)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    Session(first.folder, first.study, AnswerStore(path), "s1", claim=True).close()


def test_min_viewing_time_and_breaks_follow_the_study(folder):
    clock = Clock()
    session = session_for(folder, config={"session": {"min_viewing_seconds": 4, "break_every_items": 2,
                                                      "max_minutes": 1}}, clock=clock)
    answer(session)
    assert session.next() == ["look at the image a little longer (at least 4 s)"]
    clock.now += 4
    assert session.next() == [] and not session.break_due()
    answer(session)
    clock.now += 4
    assert session.next() == [] and session.break_due()
    session.take_break()
    assert not session.break_due() and session.store.has_event("s1", "break")
    clock.now += 60
    assert session.over()


def test_a_break_every_m_minutes_counts_from_the_last_break(folder):
    clock = Clock()
    session = session_for(folder, config={"session": {"break_every_minutes": 10}}, clock=clock)
    clock.now += 9 * 60
    assert not session.break_due()  # nothing rated yet
    answer(session)
    assert session.next() == [] and not session.break_due()
    clock.now += 61
    assert session.break_due()
    session.take_break()
    clock.now += 5 * 60
    assert not session.break_due()
