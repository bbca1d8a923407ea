"""The real rating window under Xvfb, driven by key and mouse events; the store is checked afterwards."""

from __future__ import annotations

import sqlite3

import pytest

from aigciqa.annotate.export import build_export
from aigciqa.annotate.study import make_study, subject_items

from .conftest import make_folder, png_bytes
from .gui import answer_all, click, close, click_radio, open_window, press, pump, screenshot, type_text

pytestmark = pytest.mark.gui


@pytest.fixture
def window(xvfb, folder):
    root, window, store = open_window(folder)
    yield root, window, store
    close(root, store)


def test_rate_by_keyboard_and_mouse_go_back_and_change(window, screenshot_dir):
    root, win, store = window
    session = win.session
    assert root.title() == "aigciqa annotate — s1 — item 1 of 6"
    first = session.item().image_id
    # item 1 by keyboard: three scores, five levels (all best, so no explanation is needed), then Right
    answer_all(root, win, "34544433")
    press(root, "Right")
    assert session.position == 1 and root.title().endswith("item 2 of 6")
    # item 2 by mouse: real clicks on the radio buttons, then on "Next >"
    chosen = {"quality": 2, "authenticity": 1, "correspondence": 0, "clarity": 3, "outline": 4, "details": 2,
              "distortion": 3, "consistency": 3}
    for row in win.rows:
        click_radio(root, row.buttons[row.values.index(chosen[row.name])])
    assert {r.name: r.variable.get() for r in win.rows} == {k: str(v) for k, v in chosen.items()}
    screenshot(root, screenshot_dir / "annotate-window.png")
    click(root, win.next_button)
    assert pump(root, lambda: session.position == 2)
    # back to item 2 with Left; change quality from 2 to 5 by keyboard
    press(root, "Left")
    assert session.position == 1 and win.rows[0].variable.get() == "2"
    win.cursor = 0
    press(root, "5", "Right")
    assert session.position == 2
    second = session.item(1).image_id

    latest = store.latest_answers("s1")
    assert latest[0] == {"quality": 3, "authenticity": 4, "correspondence": 5, "clarity": 4, "outline": 4,
                         "details": 4, "distortion": 3, "consistency": 3}
    assert latest[1] == {**chosen, "quality": 5}
    history = [(p, f, v) for _, p, f, v, *_ in store.answer_history("s1") if f == "quality"]
    assert history == [(0, "quality", 3), (1, "quality", 2), (1, "quality", 5)]  # append-only, latest wins
    assert store.finished_positions("s1") == {0: "done", 1: "done"}
    ratings, answers, _ = build_export(win.folder)
    assert set(ratings["image_id"]) == {first, second}
    assert ratings.set_index(["image_id", "perspective"]).loc[(second, "quality"), "score"] == 5


def test_required_fields_and_explanations_block_moving_on(window):
    root, win, store = window
    session = win.session
    press(root, "Right")
    assert session.position == 0
    assert "rate quality" in win.message.cget("text") and "answer clarity" in win.message.cget("text")
    assert store.finished_positions("s1") == {}
    # a distortion level below the best needs its explanation: the keyboard goes into the text box
    answer_all(root, win, "3334441")
    distortion = next(r for r in win.rows if r.name == "distortion")
    assert root.focus_get() is distortion.entry
    press(root, "Right")  # inside the text box, Right moves the text cursor, not to the next item
    assert session.position == 0
    root.focus_force()
    win.root.focus_set()
    win.cursor = 7
    press(root, "3", "Right")
    assert session.position == 0 and "explain geometry distortion" in win.message.cget("text")
    type_text(root, distortion.entry, "warped left hand")
    # text is committed shortly after typing stops, even before the subject leaves the box
    assert pump(root, lambda: store.latest_answers("s1")[0].get("distortion_explanation") == "warped left hand")
    press(root, "Return")  # leaves the text box
    assert root.focus_get() is not distortion.entry
    press(root, "Right")
    assert session.position == 1 and win.message.cget("text") == ""


def test_training_is_answered_then_shows_the_reference_and_note_and_stores_nothing(xvfb, folder):
    folder.write(files={"training/example.png": png_bytes((80, 80), (10, 200, 10))})
    config = {"training": [{"path": "training/example.png", "prompt": "a green square",
                            "note": "Bent edges count as distortion.",
                            "answers": {"quality": 4, "clarity": 2, "distortion": 1,
                                        "distortion_explanation": "the square is bent"}}]}
    root, win, store = open_window(folder, config)
    try:
        assert win.in_training and "Training" in win.banner.cget("text")
        assert all(r.variable.get() == "" for r in win.rows)  # the subject answers first
        press(root, "Right")
        assert win.in_training and "rate quality" in win.message.cget("text")
        answer_all(root, win, "34544433")
        press(root, "Right")
        banner = win.banner.cget("text")
        assert win.in_training and "Quality 4 (you: 3)" in banner and "Bent edges count as distortion." in banner
        assert "the square is bent" in banner
        assert str(win.rows[0].buttons[0].cget("state")) == "disabled"  # the answers are compared, not changed
        press(root, "Right")  # at once: taken as a double press, which must not skip past the reference
        assert win.in_training and "Reference answers" in win.banner.cget("text")
        win._arrived_at -= 10  # later: a deliberate Next
        press(root, "Right")
        assert not win.in_training and win.session.position == 0
        assert store.answer_history("s1") == [] and store.has_event("s1", "training_done")
        assert win.rows[0].variable.get() == ""  # the first real item starts empty
    finally:
        close(root, store)
    root, win, store = open_window(folder, config)  # signing in again: no second training
    try:
        assert not win.in_training
    finally:
        close(root, store)


def test_unreadable_image_shows_placeholder_is_logged_skipped_and_reported(xvfb, tmp_path):
    folder = make_folder(tmp_path / "db", n_images=2)
    card = folder.read_card()
    order = subject_items(make_study(card, None, ["img0", "img1"]), ["img0", "img1"], "s1")
    broken = order[0].image_id
    path = folder.read_table("images").set_index("image_id").loc[broken, "path"]
    folder.path(path).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    root, win, store = open_window(folder)
    try:
        assert str(win.skip_button.cget("state")) == "normal"
        assert [p[2] for p in store.problems()] == [broken]
        press(root, "Right")
        assert win.session.position == 0  # an unreadable image still needs answers or a skip
        press(root, "s")
        assert win.session.position == 1 and store.finished_positions("s1") == {0: "skipped"}
        assert str(win.skip_button.cget("state")) == "disabled"
        answer_all(root, win)
        press(root, "Right")
        assert win.session.all_done and "Thank you" in win.canvas.itemcget(win.canvas_text, "text")
    finally:
        close(root, store)
    ratings, _, summary = build_export(folder)
    assert set(ratings["image_id"]) == {order[1].image_id}
    assert summary["unreadable_images"][0]["image_id"] == broken
    assert summary["subjects"][0]["items_skipped"] == 1


def test_locked_store_keeps_the_answer_and_saves_it_when_free(xvfb, folder):
    root, win, store = open_window(folder, busy_timeout=0.05)
    try:
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
        win.cursor = 0
        press(root, "4")
        assert "in use by another program" in win.message.cget("text")
        assert win.pending == {(0, "quality"): 4}
        press(root, "Right")
        assert win.session.position == 0
        blocker.execute("COMMIT")
        blocker.close()
        assert pump(root, lambda: not win.pending, timeout=5)
        assert store.latest_answers("s1")[0]["quality"] == 4
        assert win.message.cget("text") == "All answers are saved."
    finally:
        close(root, store)


def test_sign_in_refuses_odd_subject_ids(xvfb, folder):
    root, win, store = open_window(folder, subject=None)
    try:
        assert win.session is None
        entry = next(w for w in win.sign_in.winfo_children() if w.winfo_class() == "Entry")
        type_text(root, entry, "anna m/1")  # real key events into the sign-in box
        press(root, "Return")
        assert win.subject_variable.get() == "anna m/1"
        assert "not allowed" in win.sign_in_message.cget("text") and win.session is None
        assert store.subjects() == []
        win.subject_variable.set("s02")
        win._sign_in_clicked()
        assert win.session.subject_id == "s02" and root.title().endswith("item 1 of 6")
    finally:
        close(root, store)
