"""The window on small, ordinary and high-dpi screens: every control reachable, the image at its own
size when it fits, zoom/1:1 and full screen. Each screen is its own Xvfb server (size and dpi)."""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont

import pytest

from .conftest import make_folder
from .gui import close, open_window, press, pump, screenshot

pytestmark = pytest.mark.gui

SCREENS = [((1024, 600), 96), ((1920, 1080), 96), ((3840, 2160), 192)]


def on_screen(widget, size) -> bool:
    x, y = widget.winfo_rootx(), widget.winfo_rooty()
    return (widget.winfo_ismapped() and x >= 0 and y >= 0 and x + widget.winfo_width() <= size[0]
            and y + widget.winfo_height() <= size[1])


def in_view(widget, viewport) -> bool:
    """Entirely inside the visible part of a scrolled area."""
    top, height = viewport.winfo_rooty(), viewport.winfo_height()
    return widget.winfo_rooty() >= top - 1 and widget.winfo_rooty() + widget.winfo_height() <= top + height + 1


@pytest.mark.parametrize("size, dpi", SCREENS, ids=[f"{w}x{h}@{d}dpi" for (w, h), d in SCREENS])
def test_every_control_is_reachable_and_follows_the_dpi(screen, tmp_path, screenshot_dir, size, dpi):
    folder = make_folder(tmp_path / "db", size=(1024, 1024))
    root, win, store = open_window(folder, root=tk.Tk(screenName=screen(size, dpi)))
    try:
        settled = lambda: win.box == (win.canvas.winfo_width(), win.canvas.winfo_height())  # noqa: E731
        assert pump(root, settled)
        assert root.winfo_width() <= size[0] and root.winfo_height() <= size[1]
        for control in (win.progress_label, win.previous_button, win.next_button, win.skip_button, win.view_button,
                        win.fullscreen_button, win.message):
            assert on_screen(control, size), control
        font = tkfont.nametofont("TkDefaultFont", root)
        for k, row in enumerate(win.rows):
            while win.cursor < k:
                press(root, "Down")
            root.update()
            assert in_view(row.frame, win.rows_canvas), row.name  # the rows scroll to the highlighted one
            for button in row.buttons:
                assert on_screen(button, size), (row.name, button.cget("text"))
                # never broken inside a word, and a target that grows with the dpi
                assert all(font.measure(w) <= int(button.cget("wraplength")) for w in button.cget("text").split())
                assert button.winfo_height() >= 0.18 * dpi
            if row.entry is not None:
                assert on_screen(row.entry, size) and row.entry.winfo_width() >= 15 * font.measure("0")
        screenshot(root, screenshot_dir / f"annotate-{size[0]}x{size[1]}.png")

        # the image: its own pixels when they fit, else fitted to the space (no fixed cap)
        box = win.box
        if box[0] >= 1024 and box[1] >= 1024:
            assert win.shown_size == (1024, 1024)
        else:
            assert max(win.shown_size) == min(box)
        press(root, "z")  # fill the space
        assert win.view_mode == "fill" and max(win.shown_size) == min(box)
        press(root, "z")  # 1:1
        assert win.view_mode == "1:1" and win.shown_size == (1024, 1024)
        press(root, "z")
        assert win.view_mode == "fit"
        press(root, "F11")  # (Xvfb has no window manager to report the state back: the window's own flag)
        assert win.fullscreen and "Leave" in win.fullscreen_button.cget("text")
        assert (root.winfo_width(), root.winfo_height()) == size and win.canvas.cget("background") == "#808080"
        press(root, "Escape")
        assert not win.fullscreen
    finally:
        close(root, store)


def test_the_image_follows_the_window_size(xvfb, tmp_path):
    folder = make_folder(tmp_path / "db", size=(1024, 1024))
    root, win, store = open_window(folder)
    try:
        settled = lambda: win.box == (win.canvas.winfo_width(), win.canvas.winfo_height())  # noqa: E731
        assert pump(root, settled)
        large = win.shown_size
        root.geometry("1000x500")
        assert pump(root, lambda: settled() and win.box[1] < 500)
        assert max(win.shown_size) == min(win.box) < max(large)  # fitted to the smaller space
        root.focus_force()  # (no window manager gives the focus back after the resize)
        press(root, "z", "z")  # 1:1 is its own pixels, whatever the space
        assert win.shown_size == (1024, 1024)
    finally:
        close(root, store)
