"""Driving the real window in tests: Tk events in-process, xdotool for real X mouse and typing."""

from __future__ import annotations

import gc
import os
import subprocess
import time
import tkinter as tk
from pathlib import Path

from PIL import ImageGrab

from aigciqa.annotate.store import AnswerStore
from aigciqa.annotate.study import make_study
from aigciqa.annotate.window import AnnotateWindow


def pump(root: tk.Tk, until=lambda: True, timeout: float = 5.0) -> bool:
    """Process window events until ``until()`` holds (or the timeout passes); return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        root.update()
        if until():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def press(root: tk.Tk, *keys: str) -> None:
    """Key presses as Tk delivers them to the widget that has the keyboard focus."""
    for key in keys:
        (root.focus_get() or root).event_generate("<KeyPress>", keysym=key)
        root.update()


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True, timeout=10).stdout


def handle_x_events(root: tk.Tk) -> None:
    """Handle every X event sent so far (xdotool syncs with the server before it exits; a round trip
    of ours then puts every event the server made before it in our queue): no waiting on a clock."""
    try:
        root.update()
        root.winfo_pointerxy()  # XQueryPointer: a reply only after the events before it
        root.update()
    except tk.TclError:  # the events closed the window
        pass


def x_keys(root: tk.Tk, *names: str) -> None:
    """Real X key events to the window that has the keyboard focus, handled before this returns."""
    xdotool("key", "--delay", "20", *names)
    handle_x_events(root)


def click(root: tk.Tk, widget: tk.Widget) -> None:
    """A real mouse click (X server events through xdotool) in the middle of ``widget``."""
    root.update()
    x = widget.winfo_rootx() + max(widget.winfo_width() // 2, 4)
    y = widget.winfo_rooty() + widget.winfo_height() // 2
    xdotool("mousemove", "--sync", str(x), str(y))
    xdotool("click", "1")
    handle_x_events(root)


def click_radio(root: tk.Tk, button: tk.Radiobutton) -> None:
    """Click on a radiobutton's indicator/label (left part, where the subject aims)."""
    root.update()
    x = button.winfo_rootx() + 8
    y = button.winfo_rooty() + button.winfo_height() // 2
    xdotool("mousemove", "--sync", str(x), str(y))
    xdotool("click", "1")
    handle_x_events(root)


def type_text(root: tk.Tk, widget: tk.Widget, text: str) -> None:
    """Type into a widget with real X key events."""
    widget.focus_force()
    handle_x_events(root)
    xdotool("type", "--delay", "5", text)
    handle_x_events(root)


def screenshot(root: tk.Tk, target: Path) -> Path:
    root.update()
    box = (root.winfo_rootx(), root.winfo_rooty(), root.winfo_rootx() + root.winfo_width(),
           root.winfo_rooty() + root.winfo_height())
    ImageGrab.grab(bbox=box, xdisplay=root.winfo_screen()).save(target)
    return target


def open_window(folder, config=None, subject="s1", *, busy_timeout=2.0, prefetch=True, box=None,
                read_instructions=True, root=None):
    """The window for ``subject`` (signed in), past the instructions screen unless ``read_instructions`` is False."""
    card = folder.read_card()
    study = make_study(card, config, folder.read_table("images")["image_id"].tolist())
    store = AnswerStore(folder.root / "annotations.sqlite", busy_timeout=busy_timeout)
    root = root or tk.Tk(screenName=os.environ["DISPLAY"])  # explicit: Tk may reuse another screen it knows
    window = AnnotateWindow(root, folder, study, store, subject, prefetch=prefetch, box=box)
    root.focus_force()
    pump(root, timeout=0.2, until=lambda: False)
    if read_instructions and window.overlay is not None and window.session is not None:
        press(root, "Return")  # "Start" on the instructions screen
        assert window.overlay is None
    return root, window, store


def answer_all(root, window, digits="34544433") -> None:
    """Answer every row of the current item by keyboard (the highlight starts on the first row)."""
    window.cursor = 0
    press(root, *digits)


def close(root: tk.Tk, store) -> None:
    """Destroy the window and collect its Tk variables here, in the main thread (Tk requires it)."""
    try:
        root.destroy()
    except tk.TclError:  # closed already (by the window's own Close)
        pass
    store.close()
    gc.collect()
