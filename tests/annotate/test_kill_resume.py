"""Kill the running app with SIGKILL mid-item, restart it: every committed answer is there and it resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import ImageGrab

from aigciqa.annotate.store import AnswerStore

from .gui import xdotool

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def wait_for(condition, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def window_id(title_part: str):
    result = subprocess.run(["xdotool", "search", "--name", title_part], capture_output=True, text=True)
    return result.stdout.split()[0] if result.returncode == 0 and result.stdout.split() else None


def window_title(wid: str) -> str:
    return xdotool("getwindowname", wid).strip()


def store_state(path):
    if not path.exists():
        return {}, {}
    with AnswerStore(path) as store:
        if not store.has_subject("s1"):
            return {}, {}
        return store.latest_answers("s1"), store.finished_positions("s1")


def store_events(path):
    with AnswerStore(path) as store:
        return [kind for kind, *_ in store.events("s1")]


def start_app(folder):
    return subprocess.Popen([sys.executable, "-m", "aigciqa", "annotate", "open", str(folder.root), "--subject", "s1"],
                            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def keys(wid, *names):
    xdotool("windowfocus", "--sync", wid)
    xdotool("key", "--delay", "30", *names)


def test_sigkill_mid_item_then_restart_resumes_with_every_answer(xvfb, folder, screenshot_dir):
    path = folder.root / "annotations.sqlite"
    app = start_app(folder)
    try:
        wid = wait_for(lambda: window_id("aigciqa annotate"), what="the window")
        wait_for(lambda: window_title(wid).endswith("item 1 of 6"), what="item 1")
        keys(wid, "Return")  # past the instructions screen
        wait_for(lambda: store_events(path) == ["instructions_seen"], what="the instructions read")
        keys(wid, *"34544433", "Right")
        wait_for(lambda: store_state(path)[1] == {0: "done"}, what="item 1 finished")
        keys(wid, *"21033333", "Right")
        wait_for(lambda: store_state(path)[1] == {0: "done", 1: "done"}, what="item 2 finished")
        keys(wid, "2", "1")  # item 3: two answers given, the rest not yet
        wait_for(lambda: len(store_state(path)[0].get(2, {})) == 2, what="two answers on item 3")
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
    assert app.returncode == -signal.SIGKILL
    answers, finished = store_state(path)
    assert finished == {0: "done", 1: "done"}
    assert answers[0] == {"quality": 3, "authenticity": 4, "correspondence": 5, "clarity": 4, "outline": 4,
                          "details": 4, "distortion": 3, "consistency": 3}
    assert answers[1] == {"quality": 2, "authenticity": 1, "correspondence": 0, "clarity": 3, "outline": 3,
                          "details": 3, "distortion": 3, "consistency": 3}
    assert answers[2] == {"quality": 2, "authenticity": 1}

    app = start_app(folder)
    try:
        wid = wait_for(lambda: window_id("aigciqa annotate"), what="the restarted window")
        wait_for(lambda: window_title(wid).endswith("item 3 of 6"), what="resuming at item 3")
        geometry = dict(line.split("=") for line in xdotool("getwindowgeometry", "--shell", wid).split())
        x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=os.environ["DISPLAY"]).save(
            screenshot_dir / "annotate-resumed.png")
        keys(wid, "Right")  # not complete yet: stays on item 3
        time.sleep(0.3)
        assert window_title(wid).endswith("item 3 of 6")
        keys(wid, *"544433", "Right")  # the highlight resumes on the first unanswered row
        wait_for(lambda: store_state(path)[1].get(2) == "done", what="item 3 finished")
        wait_for(lambda: window_title(wid).endswith("item 4 of 6"), what="item 4")
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
    answers, finished = store_state(path)
    assert finished == {0: "done", 1: "done", 2: "done"}
    assert answers[2] == {"quality": 2, "authenticity": 1, "correspondence": 5, "clarity": 4, "outline": 4,
                          "details": 4, "distortion": 3, "consistency": 3}
    assert app.stderr.read() == b""  # no traceback in either run
