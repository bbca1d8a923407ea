"""What a real study needs from the window: no wrong data in, one live window per subject, the practice
of BT.500 labs (instructions, active training, breaks, a confirm on closing). Real Tk under Xvfb, real
X key and mouse events where the problem was about them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aigciqa.annotate.export import build_export, status
from aigciqa.annotate.study import make_study, subject_items

from .conftest import make_folder, png_bytes
from .gui import answer_all, click, click_radio, close, open_window, press, pump, type_text, x_keys, xdotool

pytestmark = pytest.mark.gui


def row(window, name):
    return next(r for r in window.rows if r.name == name)


def close_button(root):
    """What the window manager's close button does: run the window's WM_DELETE_WINDOW handler."""
    root.tk.call(root.protocol("WM_DELETE_WINDOW"))
    root.update()


def sign_in(root, window, subject_id):
    entry = next(w for w in window.sign_in.winfo_children() if w.winfo_class() == "Entry")
    type_text(root, entry, subject_id)
    x_keys(root, "Return")


# ---- 1. Enter at sign-in ---------------------------------------------------------------------------------
def test_enter_at_sign_in_does_not_also_count_as_next(xvfb, folder):
    folder.write(files={"training/one.png": png_bytes((80, 80), (10, 200, 10))})
    config = {"training": [{"path": "training/one.png", "answers": {"quality": 4}}]}
    root, win, store = open_window(folder, config, subject=None)
    try:
        sign_in(root, win, "s07")
        assert win.session is not None and win.session.subject_id == "s07"
        assert win.in_training and win.training_index == 0  # the only example is still to come
        assert not store.has_event("s07", "training_done") and win.message.cget("text") == ""
        assert win.overlay is not None  # the instructions come first; the same Enter did not pass them
        x_keys(root, "Return")
        assert win.overlay is None and win.in_training and win.training_index == 0
        assert win.message.cget("text") == ""
    finally:
        close(root, store)


# ---- 2. an image that cannot be shown ----------------------------------------------------------------------
def test_unreadable_image_cannot_be_rated_only_skipped(xvfb, tmp_path):
    folder = make_folder(tmp_path / "db", n_images=2)
    order = subject_items(make_study(folder.read_card(), None, ["img0", "img1"]), ["img0", "img1"], "s1")
    path = folder.read_table("images").set_index("image_id").loc[order[0].image_id, "path"]
    folder.path(path).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    root, win, store = open_window(folder)
    try:
        assert all(str(b.cget("state")) == "disabled" for r in win.rows for b in r.buttons)
        click_radio(root, win.rows[0].buttons[4])  # the mouse cannot answer it either
        press(root, *"44433333", "Return")
        assert win.session.position == 0 and "skip this image" in win.message.cget("text")
        assert store.latest_answers("s1") == {} and store.finished_positions("s1") == {}
        press(root, "s")
        assert store.finished_positions("s1") == {0: "skipped"}
        assert all(str(b.cget("state")) == "normal" for r in win.rows for b in r.buttons)
        answer_all(root, win)
        press(root, "Right")
    finally:
        close(root, store)
    ratings, _, summary = build_export(folder)
    assert order[0].image_id not in set(ratings["image_id"])
    assert [u["image_id"] for u in summary["unreadable_images"]] == [order[0].image_id]


# ---- 3. subject ids ------------------------------------------------------------------------------------
def test_existing_id_asks_before_continuing(xvfb, folder):
    root, win, store = open_window(folder)
    answer_all(root, win)
    press(root, "Right")
    close(root, store)
    root, win, store = open_window(folder, subject=None)
    try:
        sign_in(root, win, "s1")
        assert win.session is None
        title = win.overlay.winfo_children()[0].cget("text")
        assert title == "Continue as s1 (1 of 6 done)?"
        x_keys(root, "Escape")  # "No, go back": the sign-in again, nothing started
        assert win.session is None and win.sign_in.winfo_exists()
        sign_in(root, win, "s1")
        x_keys(root, "Return")  # "Continue as s1"
        assert win.session is not None and win.session.position == 1
        assert win.overlay is None and win.message.cget("text") == ""
    finally:
        close(root, store)


def test_second_live_window_for_one_id_is_refused(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        answer_all(root, win)
        press(root, "Right")
        second = subprocess.run([sys.executable, "-m", "aigciqa", "annotate", "open", str(folder.root), "--subject", "s1"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "already rating in another window" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        # in the window: the sign-in says so, and starts nothing
        other_root, other, other_store = open_window(folder, subject=None, root=None)
        try:
            sign_in(other_root, other, "s1")
            assert other.session is None and "another window" in other.sign_in_message.cget("text")
        finally:
            close(other_root, other_store)
        assert store.finished_positions("s1") == {0: "done"}
    finally:
        close(root, store)
    root, win, store = open_window(folder)  # closed: the id is free again
    try:
        assert win.session.position == 1
    finally:
        close(root, store)


# ---- 4. focus after using the mouse ---------------------------------------------------------------------------
def test_focus_returns_to_the_rows_on_every_item(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        chosen = {"quality": 2, "authenticity": 3, "correspondence": 4, "clarity": 4, "outline": 4, "details": 4,
                  "distortion": 2, "consistency": 3}
        for r in win.rows:
            click_radio(root, r.buttons[r.values.index(chosen[r.name])])
        distortion = row(win, "distortion")
        click(root, distortion.entry)  # the mouse puts the text cursor in the box
        xdotool("type", "--delay", "5", "bent arm")
        assert pump(root, lambda: distortion.entry_variable.get() == "bent arm")
        click(root, win.next_button)
        assert pump(root, lambda: win.session.position == 1)
        x_keys(root, "4", "4", "3")  # meant for the highlighted rows
        assert store.latest_answers("s1")[1] == {"quality": 4, "authenticity": 4, "correspondence": 3}
        assert distortion.entry_variable.get() == "" and "inconsistency_explanation" not in store.latest_answers("s1")[1]
    finally:
        close(root, store)


# ---- 5. finished items stay complete ------------------------------------------------------------------------
def test_a_finished_item_made_incomplete_is_reopened_not_exported_and_asked_again(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        for _ in range(2):
            answer_all(root, win)
            press(root, "Right")
        press(root, "Left")
        assert win.session.position == 1
        distortion = row(win, "distortion")
        click_radio(root, distortion.buttons[0])  # level 1 needs an explanation, which is missing
        assert store.finished_positions("s1") == {0: "done"}  # re-checked on the change
        close_button(root)
        assert win.overlay is not None and "not complete" in win.overlay.winfo_children()[1].cget("text")
        click(root, win.close_buttons[1])  # "Close"
    finally:
        close(root, store)
    ratings, answers, summary = build_export(folder)
    first = subject_items(make_study(folder.read_card(), None, [f"img{k}" for k in range(6)]),
                          [f"img{k}" for k in range(6)], "s1")[0].image_id
    assert set(ratings["image_id"]) == {first} and set(answers["image_id"]) == {first}
    assert "1/6" in status(folder).splitlines()[2]
    root, win, store = open_window(folder)
    try:
        assert win.session.position == 1  # the restart asks for it again
        assert row(win, "distortion").variable.get() == "1"
    finally:
        close(root, store)


def test_a_level_that_needs_no_explanation_clears_the_old_one(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        answer_all(root, win, "3334442")  # distortion 2: the keyboard goes into its box
        distortion = row(win, "distortion")
        assert root.focus_get() is distortion.entry
        type_text(root, distortion.entry, "bent fingers")
        press(root, "Return", "3", "Right")
        assert win.session.position == 1
        press(root, "Left")
        win.cursor = win.rows.index(distortion)
        press(root, "3")  # now "essentially distortion-free"
        assert distortion.entry_variable.get() == "" and "cleared" in win.message.cget("text")
        assert store.latest_answers("s1")[0]["distortion_explanation"] == ""
        press(root, "Right")
    finally:
        close(root, store)
    _, answers, _ = build_export(folder)
    assert (answers.loc[answers.question == "distortion", "explanation"] == "").all()


# ---- typing, Enter, closing -------------------------------------------------------------------------------
def test_every_key_stroke_of_an_explanation_is_committed(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        answer_all(root, win, "3334441")
        distortion = row(win, "distortion")
        typed = []
        for word in ("warped", " left", " hand"):
            xdotool("type", "--delay", "5", word)
            typed.append(word)
            # as soon as the window has the keys, the store has them: no pause needed
            assert pump(root, lambda: distortion.entry_variable.get() == "".join(typed))
            assert store.latest_answers("s1")[0]["distortion_explanation"] == "".join(typed)
    finally:
        close(root, store)


def test_double_enter_opens_the_next_item_without_an_error(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        answer_all(root, win)
        press(root, "Return", "Return")
        assert win.session.position == 1 and win.message.cget("text") == ""
        press(root, "Right")  # a deliberate Next, later, still says what is missing
        win._arrived_at -= 10
        press(root, "Right")
        assert win.session.position == 1 and "rate quality" in win.message.cget("text")
    finally:
        close(root, store)


def test_closing_asks_first(xvfb, folder):
    root, win, store = open_window(folder)
    try:
        close_button(root)
        assert win.overlay is not None and root.winfo_exists()
        press(root, "5")  # keys go to the question, not to the rows
        assert store.latest_answers("s1") == {}
        press(root, "Escape")  # "Keep rating"
        assert win.overlay is None
        close_button(root)
        click(root, win.close_buttons[1])
        assert pump(root, lambda: store.claim_holder("s1") is None)
    finally:
        close(root, store)
    visits = store.__class__(folder.root / "annotations.sqlite").visits("s1")
    assert [v.outcome for v in visits] == ["left"]


# ---- the study as labs run it ---------------------------------------------------------------------------------
def test_instructions_define_the_perspectives_scale_and_levels(xvfb, folder):
    config = {"instructions": {"text": "Rate each image on its own.", "definitions": {"quality": "Quality: looks."}}}
    root, win, store = open_window(folder, config, read_instructions=False)
    try:
        text = win.instructions_widget.get("1.0", "end")
        assert "Rate each image on its own." in text and "Quality: looks." in text and "Authenticity:" in text
        assert "0 = very bad" in text and "5 = excellent" in text and "1 very blurry" in text
        assert "Where is the distortion?" in text
        press(root, "4")
        assert store.latest_answers("s1") == {}
        press(root, "Return")
        assert win.overlay is None and store.has_event("s1", "instructions_seen")
    finally:
        close(root, store)
    root, win, store = open_window(folder, config, read_instructions=False)
    try:
        assert win.overlay is None  # read once
    finally:
        close(root, store)


def test_breaks_every_n_items_and_the_session_limit(xvfb, folder):
    config = {"session": {"break_every_items": 2, "break_seconds": 0.5}}
    root, win, store = open_window(folder, config)
    try:
        for _ in range(2):
            answer_all(root, win)
            press(root, "Right")
        assert win.overlay is not None and "break" in win.overlay.winfo_children()[0].cget("text")
        press(root, "Return")  # the break is not over yet
        assert win.overlay is not None
        assert pump(root, lambda: str(win.continue_button.cget("state")) == "normal", timeout=5)
        press(root, "Return")
        assert win.overlay is None and win.session.position == 2
        assert [kind for kind, *_ in store.events("s1")] == ["instructions_seen", "break"]
    finally:
        close(root, store)
    root, win, store = open_window(folder, {"session": {"max_minutes": 0.0001}})
    try:
        answer_all(root, win)
        pump(root, timeout=0.1, until=lambda: False)
        press(root, "Right")
        assert "session is over" in win.overlay.winfo_children()[0].cget("text")
        assert "session_limit" in [kind for kind, *_ in store.events("s1")]
        assert store.finished_positions("s1") == {0: "done", 1: "done", 2: "done"}
    finally:
        close(root, store)


def test_minimum_viewing_time(xvfb, folder):
    root, win, store = open_window(folder, {"session": {"min_viewing_seconds": 60}})
    try:
        answer_all(root, win)
        press(root, "Right")
        assert win.session.position == 0 and "a little longer" in win.message.cget("text")
    finally:
        close(root, store)


def test_keep_rating_returns_to_the_instructions_not_past_them(xvfb, folder):
    root, win, store = open_window(folder, read_instructions=False)
    try:
        close_button(root)
        press(root, "Escape")  # "Keep rating"
        assert win.overlay is not None and win.instructions_widget.winfo_exists()
        assert not store.has_event("s1", "instructions_seen")
    finally:
        close(root, store)
