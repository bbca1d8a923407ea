"""The rating window (Tkinter): shows a :class:`Session` and forwards what the subject does to it.

Everything the subject can do has a key: digits answer the highlighted row, Up/Down move the
highlight, Right/Enter go on, Left goes back, Tab writes the highlighted question's explanation,
S skips an image that cannot be shown, Z changes the view (fit / fill / 1:1), F11 full screen.
Every click and key goes straight to the store, typed text on every change; when the store is
locked the answer waits in memory, the window says so and retries every second.

Screens that stand in front of the rating view (sign-in, instructions, breaks, the end of a
session, the confirm on closing) are "overlays": while one is up, keys go to it, never to the rows.
"""

from __future__ import annotations

import logging
import time
import tkinter as tk
import tkinter.font as tkfont
import traceback
from dataclasses import dataclass, field

from PIL import ImageTk

from aigciqa.annotate.images import VIEW_MODES, Prefetcher
from aigciqa.annotate.session import Session, Shown, UnreadableItem
from aigciqa.annotate.store import AnswerStore, StoreBusy
from aigciqa.annotate.study import Study, validate_subject_id
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError

log = logging.getLogger("aigciqa.annotate")

TITLE = "aigciqa annotate"
SHORTCUTS = ("Up/Down: choose a row · digits answer it (or click) · Tab: write the explanation, Enter when done\n"
             "Right/Enter: next item · Left: previous · S: skip an image that cannot be shown\n"
             "Z: view fit / fill / 1:1 (drag to pan) · F11: full screen · mouse wheel scrolls the questions")
MISSING = "Before moving on, please "
HIGHLIGHT, PLAIN, CHOSEN = "#e69500", "#d9d9d9", "#ffd27f"
NEUTRAL_GREY = "#808080"  # ITU-R BT.500: a neutral grey surround for the image
RETRY_MS = 1000
PREFETCH_DELAY_MS = 60
RESIZE_DELAY_MS = 120
REPEAT_GUARD_S = 0.6  # a second Enter this soon after Next, with nothing answered, is a repeat, not a request
FONT_POINTS = 10  # named Tk fonts in points, so they follow the screen's dpi (Tk's defaults are in pixels)


@dataclass
class Row:
    """One answer row: a perspective's score or a question's level (with its explanation box)."""
    name: str
    title: str
    values: list[int]
    frame: tk.Frame
    variable: tk.StringVar
    buttons: list[tk.Radiobutton] = field(default_factory=list)
    explanation: str | None = None
    entry: tk.Entry | None = None
    entry_variable: tk.StringVar | None = None


class AnnotateWindow:
    def __init__(self, root: tk.Tk, folder: DatabaseFolder, study: Study, store: AnswerStore,
                 subject_id: str | None = None, *, prefetch: bool = True, box: tuple[int, int] | None = None):
        self.root, self.folder, self.study, self.store = root, folder, study, store
        self.session: Session | None = None
        self.training: list = []  # (Shown, TrainingItem) for each training example
        self.training_index = 0
        self.training_answers: dict = {}  # the subject's answers to the example on screen (never stored)
        self.training_revealed = False  # the reference answers of the example are shown
        self.pending: dict[tuple[int, str], object] = {}  # answers waiting for a locked store
        self.cursor = 0
        self.photo = None
        self.shown_path = None
        self.shown: Shown | None = None
        self.unreadable_shown = False
        self.overlay: tk.Frame | None = None
        self._overlay_keys: dict[str, tk.Button] = {}
        self._screen = None  # the screen (instructions, a break) that "Keep rating" returns to
        self.shown_size: tuple[int, int] | None = None
        self.view_mode = "fit"
        self.fullscreen = False
        self._loading = False  # filling the rows from stored answers: not a change by the subject
        self._arrived_at: float | None = None  # when Next brought the item on screen
        self._answered_since_arrival = False
        self._retry_job = self._tick_job = self._prefetch_job = self._resize_job = self._break_job = None
        self.scale = root.winfo_fpixels("1i") / 96.0  # 1 at 96 dpi, 2 at 192 dpi
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont", "TkCaptionFont"):
            tkfont.nametofont(name, root).configure(size=FONT_POINTS)
        self.fixed_box = box is not None
        self.box = box or self._initial_box()
        self.images = Prefetcher(self.box, enabled=prefetch, mode=self.view_mode)
        root.title(TITLE)
        root.report_callback_exception = self._unexpected
        root.protocol("WM_DELETE_WINDOW", self.request_close)
        self._build()
        root.bind("<KeyPress>", self._on_key)
        root.bind("<Destroy>", self._destroyed)
        self._tick()
        if subject_id is None:
            self._show_sign_in()
        else:
            self.start(subject_id)

    def px(self, pixels: float) -> int:
        """A length given at 96 dpi, in this screen's pixels."""
        return max(1, round(pixels * self.scale))

    # ---- layout --------------------------------------------------------------------------------------
    def _initial_box(self) -> tuple[int, int]:
        """The window fills the screen; the image gets what the answer panel leaves (refined on resize)."""
        width, height = self.root.winfo_screenwidth(), self.root.winfo_screenheight()
        try:
            self.root.wm_attributes("-zoomed", True)  # maximised where a window manager runs
        except tk.TclError:
            pass
        self.root.geometry(f"{width}x{height}+0+0")
        return max(128, width - self.px(560)), max(128, height - self.px(80))

    def _build(self) -> None:
        root = self.root
        root.configure(background=NEUTRAL_GREY)
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        viewer = tk.Frame(root, background=NEUTRAL_GREY)
        viewer.grid(row=0, column=0, sticky="nsew")
        viewer.rowconfigure(0, weight=1)
        viewer.columnconfigure(0, weight=1)
        width, height = self.box
        self.canvas = tk.Canvas(viewer, width=width, height=height, background=NEUTRAL_GREY, highlightthickness=0)
        self.canvas.grid(row=0, column=0, sticky="" if self.fixed_box else "nsew")
        self.image_item = self.canvas.create_image(width // 2, height // 2, anchor="center")
        self.canvas_text = self.canvas.create_text(width // 2, height // 2, fill="white", width=max(width - 40, 50),
                                                   font=("TkDefaultFont", 16), justify="center")
        self.canvas.bind("<ButtonPress-1>", lambda e: self.canvas.scan_mark(e.x, e.y))
        self.canvas.bind("<B1-Motion>", lambda e: self.canvas.scan_dragto(e.x, e.y, gain=1))
        if not self.fixed_box:
            self.canvas.bind("<Configure>", self._canvas_resized)
        self.prompt_label = tk.Label(viewer, text="", wraplength=width, justify="left", anchor="w",
                                     font=("TkDefaultFont", 13), background=NEUTRAL_GREY, foreground="white")
        self.prompt_label.grid(row=1, column=0, sticky="we", padx=self.px(8), pady=(self.px(4), self.px(6)))

        panel = tk.Frame(root, padx=self.px(8), pady=self.px(6))
        panel.grid(row=0, column=1, sticky="ns")
        # Spare height goes below everything (row 7); a short screen takes it from the answer rows (row 2),
        # which then scroll, so navigation stays just under them and always in view.
        panel.rowconfigure(2, weight=1)
        panel.rowconfigure(7, weight=1000)
        panel.columnconfigure(0, weight=1)
        self.panel = panel
        self.progress_label = tk.Label(panel, text="", font=("TkDefaultFont", 12, "bold"), anchor="w")
        self.progress_label.grid(row=0, column=0, columnspan=2, sticky="we")
        self.banner = tk.Label(panel, text="", fg="#8a4b00", anchor="w", justify="left", wraplength=self.px(500))
        self.banner.grid(row=1, column=0, columnspan=2, sticky="we")
        # The answer rows scroll (a small screen); navigation stays below them, always in view.
        self.rows_canvas = tk.Canvas(panel, highlightthickness=0, borderwidth=0)
        self.rows_canvas.grid(row=2, column=0, sticky="new")
        self.rows_scrollbar = tk.Scrollbar(panel, orient="vertical", command=self.rows_canvas.yview)
        self.rows_scrollbar.grid(row=2, column=1, sticky="ns")
        self.rows_canvas.configure(yscrollcommand=self.rows_scrollbar.set)
        rows = tk.Frame(self.rows_canvas)
        self.rows_canvas.create_window((0, 0), window=rows, anchor="nw")
        rows.bind("<Configure>", lambda e: self.rows_canvas.configure(
            scrollregion=self.rows_canvas.bbox("all"), width=rows.winfo_reqwidth(),
            height=min(rows.winfo_reqheight(), self.root.winfo_screenheight())))
        for sequence in ("<Button-4>", "<Button-5>", "<MouseWheel>"):
            root.bind_all(sequence, self._wheel, add="+")
        self.rows: list[Row] = []
        for name in self.study.perspectives:
            texts = [f"{v} {self.study.anchors[v]}" if v in self.study.anchors else str(v) for v in self.study.scores]
            self.rows.append(self._row(rows, name, name.capitalize(), self.study.scores, texts))
        for q in self.study.questions:
            values = list(range(1, len(q.levels) + 1))
            row = self._row(rows, q.name, q.title.capitalize(), values, [f"{v} {w}" for v, w in zip(values, q.levels)])
            if q.explanation:
                row.explanation = q.explanation
                row.entry_variable = tk.StringVar(root)
                line = tk.Frame(row.frame)
                line.grid(row=2, column=0, sticky="we")
                tk.Label(line, text=q.explanation_prompt, anchor="w").pack(side="left")
                row.entry = tk.Entry(line, textvariable=row.entry_variable, width=30)
                row.entry.pack(side="left", padx=self.px(4), pady=(0, self.px(2)), fill="x", expand=True)
                # every change is committed at once: a kill loses at most the key being pressed
                row.entry_variable.trace_add("write", lambda *_, r=row: self._text_changed(r))
                row.entry.bind("<Return>", lambda e, r=row: self._leave_entry(r))
                row.entry.bind("<KP_Enter>", lambda e, r=row: self._leave_entry(r))
                row.entry.bind("<Escape>", lambda e, r=row: self._leave_entry(r))
            self.rows.append(row)
        nav = tk.Frame(panel, pady=self.px(4))
        nav.grid(row=3, column=0, columnspan=2, sticky="we")
        self.previous_button = tk.Button(nav, text="< Previous", command=self.previous)
        self.previous_button.pack(side="left")
        self.next_button = tk.Button(nav, text="Next >", command=self.next, font=("TkDefaultFont", 11, "bold"))
        self.next_button.pack(side="left", padx=self.px(6))
        self.skip_button = tk.Button(nav, text="Skip (unreadable)", command=self.skip, state="disabled")
        self.skip_button.pack(side="left", padx=self.px(6))
        view = tk.Frame(panel)
        view.grid(row=4, column=0, columnspan=2, sticky="we")
        self.view_button = tk.Button(view, text="View: fit (Z)", command=self.cycle_view)
        self.view_button.pack(side="left")
        self.fullscreen_button = tk.Button(view, text="Full screen (F11)", command=self.toggle_fullscreen)
        self.fullscreen_button.pack(side="left", padx=self.px(6))
        self.message = tk.Label(panel, text="", fg="#b00000", anchor="w", justify="left", wraplength=self.px(500))
        self.message.grid(row=5, column=0, columnspan=2, sticky="we")
        tk.Label(panel, text=SHORTCUTS, fg="#505050", anchor="w", justify="left", wraplength=self.px(500),
                 font=("TkDefaultFont", 8)).grid(row=6, column=0, columnspan=2, sticky="we", pady=(self.px(4), 0))

    def _row(self, parent, name, title, values, texts) -> Row:
        frame = tk.Frame(parent, highlightthickness=self.px(2), highlightbackground=PLAIN, padx=self.px(4),
                         pady=self.px(1))
        frame.grid(row=len(self.rows), column=0, sticky="we", pady=self.px(1))
        tk.Label(frame, text=title, anchor="w", font=("TkDefaultFont", 10, "bold")).grid(row=0, column=0, sticky="w")
        buttons = tk.Frame(frame)
        buttons.grid(row=1, column=0, sticky="w")
        variable = tk.StringVar(self.root, value="")
        row = Row(name, title, values, frame, variable)
        font = tkfont.nametofont("TkDefaultFont", self.root)
        # Wrap between words only: the widest word of the row decides the wrap length (any dpi).
        wrap = max(font.measure(word) for text in texts for word in text.split()) + self.px(4)
        wrap = max(wrap, min(max(font.measure(t) for t in texts), self.px(110)))
        for k, (value, text) in enumerate(zip(values, texts)):
            # Button-style choices (no indicator): large targets whose size follows the font, so the dpi.
            button = tk.Radiobutton(buttons, text=text, value=str(value), variable=variable, indicatoron=False,
                                    selectcolor=CHOSEN, justify="center", wraplength=wrap, takefocus=0,
                                    padx=self.px(5), pady=self.px(2), tristatevalue="<none>",
                                    command=lambda r=row: self._clicked(r))
            button.grid(row=0, column=k, sticky="nsew", padx=(0, self.px(3)))
            row.buttons.append(button)
        return row

    def _wheel(self, event) -> None:
        if str(event.widget).startswith(str(self.panel)):
            step = -1 if (event.num == 4 or getattr(event, "delta", 0) > 0) else 1
            self.rows_canvas.yview_scroll(step, "units")

    def _scroll_to_cursor(self) -> None:
        """Keep the highlighted row in view (the rows scroll on a small screen)."""
        frame = self.rows[self.cursor].frame
        total = max(frame.master.winfo_height(), 1)
        top, bottom = self.rows_canvas.yview()
        y0, y1 = frame.winfo_y() / total, (frame.winfo_y() + frame.winfo_height()) / total
        if y0 < top:
            self.rows_canvas.yview_moveto(y0)
        elif y1 > bottom:
            self.rows_canvas.yview_moveto(max(0.0, y1 - (bottom - top)))

    # ---- overlays: sign-in, instructions, breaks, end of session, closing ------------------------------
    def _open_overlay(self, title: str, text: str = "", *, wide: bool = False) -> tk.Frame:
        self._close_overlay()
        self._overlay_keys = {}
        frame = tk.Frame(self.root, padx=self.px(30), pady=self.px(24), highlightthickness=self.px(2),
                         highlightbackground=HIGHLIGHT)
        if wide:
            frame.place(relx=0.5, rely=0.5, anchor="center", relwidth=0.9, relheight=0.9)
        else:
            frame.place(relx=0.5, rely=0.45, anchor="center")
        tk.Label(frame, text=title, font=("TkDefaultFont", 14, "bold"), justify="left",
                 wraplength=self.px(640)).pack(anchor="w", pady=(0, self.px(8)))
        if text:
            tk.Label(frame, text=text, font=("TkDefaultFont", 12), justify="left",
                     wraplength=self.px(640)).pack(anchor="w", pady=(0, self.px(8)))
        frame.lift()
        self.overlay = frame
        return frame

    def _close_overlay(self) -> None:
        if self.overlay is not None:
            self.overlay.destroy()
            self.overlay = None
            self._overlay_keys = {}
            self.root.focus_set()

    def _buttons(self, frame: tk.Frame, *choices) -> list[tk.Button]:
        """Buttons (text, command, keysyms) in a line; the first has the focus; the keys press them."""
        line = tk.Frame(frame)
        line.pack(anchor="w", pady=(self.px(6), 0))
        made = []
        for text, command, keys in choices:
            button = tk.Button(line, text=text, command=command, font=("TkDefaultFont", 12))
            button.pack(side="left", padx=(0, self.px(10)))
            made.append(button)
            self._overlay_keys.update({key: button for key in keys})
        made[0].focus_set()
        return made

    def _overlay_key(self, key: str) -> str:
        """A key while an overlay is up: it presses that overlay's button for the key, and nothing else."""
        button = self._overlay_keys.get(key)
        if button is not None and button.winfo_exists() and str(button.cget("state")) != "disabled":
            button.invoke()
        return "break"

    def _show_sign_in(self) -> None:
        self.sign_in = self._open_overlay("Welcome. Please type your subject id and press Enter.")
        self.subject_variable = tk.StringVar(self.root)
        entry = tk.Entry(self.sign_in, textvariable=self.subject_variable, width=30, font=("TkDefaultFont", 13))
        entry.pack(anchor="w")
        # "break": the Enter that signs in must not also reach the window as "Next" (it did, and skipped
        # the first training example, or all of them).
        entry.bind("<Return>", lambda e: self._sign_in_clicked() or "break")
        entry.bind("<KP_Enter>", lambda e: self._sign_in_clicked() or "break")
        tk.Button(self.sign_in, text="Start", command=self._sign_in_clicked).pack(anchor="w", pady=self.px(8))
        self.sign_in_message = tk.Label(self.sign_in, text="", fg="#b00000", wraplength=self.px(420), justify="left")
        self.sign_in_message.pack(anchor="w")
        entry.focus_set()

    def _sign_in_clicked(self) -> None:
        subject_id = self.subject_variable.get().strip()
        try:
            validate_subject_id(subject_id)
            holder = self.store.claim_holder(subject_id)
            if holder is not None:
                raise InputError(f"subject {subject_id} is rating in another window right now ({holder}). "
                                 "If that is not you, please use your own id.")
            if self.store.has_subject(subject_id):
                self._ask_continue(subject_id)
                return
            self.start(subject_id)
        except InputError as error:
            self.sign_in_message.configure(text=error.message)

    def _ask_continue(self, subject_id: str) -> None:
        """An id that exists is someone's session: ask before resuming it."""
        done, total = len(self.store.finished_positions(subject_id)), len(self.store.items(subject_id))
        frame = self._open_overlay(f"Continue as {subject_id} ({done} of {total} done)?",
                                   f"The id {subject_id} has already been used. Continue only if you are "
                                   f"{subject_id}; otherwise go back and type your own id.")
        self.continue_buttons = self._buttons(
            frame, (f"Continue as {subject_id}", lambda: self._start_from_overlay(subject_id), ("Return", "KP_Enter")),
            ("No, go back", self._show_sign_in, ("Escape",)))

    def _start_from_overlay(self, subject_id: str) -> None:
        try:
            self.start(subject_id)
        except InputError as error:
            self._show_sign_in()
            self.subject_variable.set(subject_id)
            self.sign_in_message.configure(text=error.message)

    def start(self, subject_id: str) -> None:
        """Open (or resume) the subject's session; InputError for a bad id, a busy subject or a store problem."""
        self.session = Session(self.folder, self.study, self.store, subject_id, claim=True)
        self._close_overlay()
        self.training = self.session.training_items() if self.session.training_needed else []
        self.training_index = 0
        self.training_answers, self.training_revealed = {}, False
        log.info("subject %s: session %s, resuming at item %s of %s", subject_id, self.session.session_id,
                 self.session.position + 1, self.session.n_items)
        self._update_progress()
        if self.session.instructions_needed:
            self._show_instructions()
        else:
            self.show()

    def instructions_text(self) -> str:
        study = self.study
        lines = [study.instructions.strip(), ""] if study.instructions.strip() else []
        lines.append(f"For each image, give a score from {study.scale_min} (worst) to {study.scale_max} (best) for each of:")
        lines += [f"  • {study.definitions[p]}" for p in study.perspectives]
        if study.anchors:
            lines.append("  The scale: " + ",  ".join(f"{k} = {w}" for k, w in study.anchors.items()))
        lines += ["", "Then answer the questions about the image (worst level first):"]
        for q in study.questions:
            levels = ",  ".join(f"{k} {w}" for k, w in enumerate(q.levels, start=1))
            lines.append(f"  • {q.title.capitalize()}: {levels}")
            if q.explanation_rule == "below_best":
                lines.append(f"      below '{q.levels[-1]}', say where: \"{q.explanation_prompt}\"")
            elif q.explanation_rule == "always":
                lines.append(f"      always say: \"{q.explanation_prompt}\"")
        if self.training:
            lines += ["", f"First come {len(self.training)} training example(s): answer them, then Next shows the "
                          "reference answers. Nothing from training is kept."]
        lines += ["", "Keys: " + SHORTCUTS.replace("\n", "; ")]
        return "\n".join(lines)

    def _show_instructions(self) -> None:
        frame = self._open_overlay("Instructions", wide=True)
        self._screen = self._show_instructions
        text = tk.Text(frame, wrap="word", font=("TkDefaultFont", 12), height=5, relief="flat",
                       background=frame.cget("background"))
        text.insert("1.0", self.instructions_text())
        text.configure(state="disabled")
        self._buttons(frame, ("Start (Enter)", lambda: self._leave_overlay(self.session.finish_instructions),
                              ("Return", "KP_Enter")))
        buttons = frame.winfo_children()[-1]
        bar = tk.Scrollbar(frame, orient="vertical", command=text.yview)  # a long text on a small screen
        text.configure(yscrollcommand=bar.set)
        bar.pack(side="right", fill="y", before=buttons)
        text.pack(fill="both", expand=True, before=buttons)
        self.instructions_widget = text

    def _leave_overlay(self, record) -> None:
        """Record that a screen was done with (instructions read, a break taken), then show the item."""
        try:
            record()
        except StoreBusy as error:
            self._store_busy(error)
            return
        self._screen = None
        self._close_overlay()
        self.show()

    def _after_move(self) -> None:
        """After Next: the end of the session, a break, or the next item."""
        session = self.session
        if session.over():
            session.end_for_limit()
            frame = self._open_overlay(
                "This session is over.", f"It has reached the study's limit of {session.study.session['max_minutes']:g} "
                "minutes. Your answers are saved; you will continue where you stopped next time. Thank you!")
            self._buttons(frame, ("Close the window", self.close, ()))
            return
        if session.break_due():
            self._show_break()
            return
        self.show(arrived=True)

    def _show_break(self) -> None:
        seconds = float(self.study.session["break_seconds"])
        self._screen = self._show_break
        frame = self._open_overlay("Time for a short break.",
                                   f"You have rated {self.session.done_since_break} images. Please look away from "
                                   f"the screen and rest your eyes for at least {seconds:g} s.")
        self.break_label = tk.Label(frame, text="", font=("TkDefaultFont", 12))
        self.break_label.pack(anchor="w")
        (self.continue_button,) = self._buttons(frame, ("Continue (Enter)", lambda: self._leave_overlay(self.session.take_break), ("Return", "KP_Enter")))
        self._break_end = time.monotonic() + seconds
        self._break_countdown()

    def _break_countdown(self) -> None:
        self._break_job = None
        left = self._break_end - time.monotonic()
        if left > 0:
            self.continue_button.configure(state="disabled")
            self.break_label.configure(text=f"{int(left) + 1} s left")
            self._break_job = self.root.after(200, self._break_countdown)
        else:
            self.continue_button.configure(state="normal")
            self.break_label.configure(text="Continue when you are ready.")

    @property
    def in_training(self) -> bool:
        return self.training_index < len(self.training)

    # ---- showing an item --------------------------------------------------------------------------------
    def show(self, *, arrived: bool = False) -> None:
        session = self.session
        self.message.configure(text="")
        self.unreadable_shown = False
        self._arrived_at = time.monotonic() if arrived else None
        self._answered_since_arrival = False
        if self.in_training:
            shown, example = self.training[self.training_index]
            if self.training_revealed:
                self.banner.configure(text=self._reference_text(example))
            else:
                self.banner.configure(text=f"Training ({shown.label}): answer as you would, then press Next to "
                                           "see the reference answers. Nothing here is kept.")
            self._set_values(self.training_answers)
            self._show_image(shown)
            self.skip_button.configure(state="disabled")
        elif session.all_done:
            self.banner.configure(text="")
            self._set_values({})
            self.canvas.itemconfigure(self.image_item, image="")
            self.photo, self.shown = None, None
            self.canvas.itemconfigure(self.canvas_text, text=f"All {session.n_items} items are done.\n\nThank you!"
                                      "\n\nYou may close this window (Left goes back to change an answer).")
            self.prompt_label.configure(text="")
            self.skip_button.configure(state="disabled")
        else:
            self.banner.configure(text="")
            shown = session.shown()
            self._set_values(session.values())
            loaded = self._show_image(shown)
            if loaded.error:
                self.unreadable_shown = True
                self.banner.configure(text="This image cannot be shown, so it cannot be rated: press S (or Skip) "
                                           "to skip it. It is reported to the organiser.")
                try:
                    session.report_unreadable(loaded.error)
                except StoreBusy as error:
                    self.message.configure(text=error.message)
            self.skip_button.configure(state="normal" if session.can_skip() else "disabled")
            self._schedule_prefetch()
        state = "disabled" if self._inactive() else "normal"
        for row in self.rows:
            for button in row.buttons:
                button.configure(state=state)
            if row.entry is not None:
                row.entry.configure(state=state)
        self.cursor = self._first_unanswered()
        self._highlight()
        self._update_progress()
        # The keyboard belongs to the rating rows on every new item, whatever the mouse did before:
        # digits typed for the highlighted row must never land in an explanation box.
        self.root.focus_set()

    def _reference_text(self, example) -> str:
        parts = []
        for row in self.rows:
            if row.name in example.answers:
                yours = self.training_answers.get(row.name)
                parts.append(f"{row.title} {example.answers[row.name]} (you: {'-' if yours is None else yours})")
            if row.explanation and example.answers.get(row.explanation):
                parts.append(f"“{example.answers[row.explanation]}”")
        text = "Reference answers: " + ";  ".join(parts) + "."
        if example.note:
            text += f"\nNote: {example.note}"
        return text + "\nPress Next to go on."

    def _schedule_prefetch(self) -> None:
        # Start decoding the neighbours once this image is on screen, not while it is being drawn.
        if self._prefetch_job:
            self.root.after_cancel(self._prefetch_job)
        self._prefetch_job = self.root.after(PREFETCH_DELAY_MS, self._prefetch)

    def _prefetch(self) -> None:
        self._prefetch_job = None
        session = self.session
        for ahead in (session.position + 1, session.position - 1):  # the next one first
            if 0 <= ahead < session.n_items:
                self.images.prefetch(session.shown(ahead).path)

    def _show_image(self, shown: Shown):
        loaded = self.images.get(shown.path)
        self.photo = ImageTk.PhotoImage(loaded.image)  # keep a reference: Tk does not
        width, height = self.box
        self.canvas.coords(self.image_item, width // 2, height // 2)
        self.canvas.itemconfigure(self.image_item, image=self.photo)
        self.canvas.itemconfigure(self.canvas_text, text="")
        # a larger image at 1:1 is panned by dragging: the scroll region is the image
        self.canvas.configure(scrollregion=(min(0, (width - loaded.image.width) // 2),
                                            min(0, (height - loaded.image.height) // 2),
                                            max(width, (width + loaded.image.width) // 2),
                                            max(height, (height + loaded.image.height) // 2)))
        self.canvas.xview_moveto(0 if loaded.image.width <= width else
                                 (loaded.image.width - width) / 2 / loaded.image.width)
        self.canvas.yview_moveto(0 if loaded.image.height <= height else
                                 (loaded.image.height - height) / 2 / loaded.image.height)
        self.prompt_label.configure(text=f"Prompt: {shown.prompt}" if shown.prompt else "")
        self.shown_path, self.shown = shown.path, shown
        self.shown_size = loaded.image.size
        return loaded

    def _canvas_resized(self, event) -> None:
        if self._resize_job:
            self.root.after_cancel(self._resize_job)
        self._resize_job = self.root.after(RESIZE_DELAY_MS, self._apply_size)

    def _apply_size(self) -> None:
        self._resize_job = None
        box = (max(self.canvas.winfo_width(), 64), max(self.canvas.winfo_height(), 64))
        self.prompt_label.configure(wraplength=box[0])
        self.canvas.coords(self.canvas_text, box[0] // 2, box[1] // 2)
        self.canvas.itemconfigure(self.canvas_text, width=max(box[0] - 40, 50))
        if box != self.box:
            self.box = box
            self._redraw_view()

    def _redraw_view(self) -> None:
        if self.images.set_view(self.box, self.view_mode) and self.shown is not None:
            self._show_image(self.shown)
            if self.session is not None and not self.in_training:
                self._schedule_prefetch()  # the neighbours made for the old size are gone

    def cycle_view(self) -> None:
        """Fit (native size when it fits) -> fill the space -> 1:1 pixels -> fit."""
        self.view_mode = VIEW_MODES[(VIEW_MODES.index(self.view_mode) + 1) % len(VIEW_MODES)]
        self.view_button.configure(text=f"View: {self.view_mode} (Z)")
        self._redraw_view()

    def toggle_fullscreen(self, on: bool | None = None) -> None:
        self.fullscreen = not self.fullscreen if on is None else on
        self.root.attributes("-fullscreen", self.fullscreen)
        self.fullscreen_button.configure(text="Leave full screen (F11)" if self.fullscreen else "Full screen (F11)")

    def _set_values(self, values: dict) -> None:
        self._loading = True
        try:
            for row in self.rows:
                value = values.get(row.name)
                row.variable.set("" if value is None else str(int(value)))
                if row.entry_variable is not None:
                    row.entry_variable.set(values.get(row.explanation) or "")
        finally:
            self._loading = False

    def _first_unanswered(self) -> int:
        return next((k for k, row in enumerate(self.rows) if row.variable.get() == ""), 0)

    def _highlight(self) -> None:
        for k, row in enumerate(self.rows):
            row.frame.configure(highlightbackground=HIGHLIGHT if k == self.cursor else PLAIN)
        self._scroll_to_cursor()

    def _tick(self) -> None:
        self._update_progress()
        if self.session is not None:
            try:
                self.session.heartbeat()
            except InputError as error:  # a busy store: the next tick tries again
                log.warning("claim not refreshed: %s", error)
        self._tick_job = self.root.after(1000, self._tick)

    def _destroyed(self, event) -> None:
        if event.widget is self.root:  # stop the timers: their commands die with the window
            for job in (self._tick_job, self._retry_job, self._prefetch_job, self._resize_job, self._break_job):
                if job:
                    self.root.after_cancel(job)
            self.images.close()
            self._end_session()

    def _update_progress(self) -> None:
        session = self.session
        if session is None:
            return
        if self.in_training:
            text = self.training[self.training_index][0].label.capitalize()
            title = f"{TITLE} — {session.subject_id} — {text}"
        else:
            where = "all done" if session.all_done else f"Item {session.position + 1} of {session.n_items}"
            minutes, seconds = divmod(int(session.time_spent()), 60)
            text = f"{where}  ·  {session.n_finished} finished  ·  {minutes:02d}:{seconds:02d} spent"
            title = f"{TITLE} — {session.subject_id} — {where.lower()}"
        self.progress_label.configure(text=text)
        if self.root.title() != title:
            self.root.title(title)

    # ---- answering -------------------------------------------------------------------------------------
    def _clicked(self, row: Row) -> None:
        self.cursor = self.rows.index(row)
        self._highlight()
        self.root.focus_set()  # a click on an answer gives the keyboard back to the rows
        self._commit(row.name, int(row.variable.get()))

    def choose(self, row_index: int, value: int) -> bool:
        """Answer a row by keyboard; the highlight moves to the next row (or into a required text box)."""
        row = self.rows[row_index]
        if value not in row.values or self._inactive():
            return False
        row.variable.set(str(value))
        self._commit(row.name, value)
        if row.entry is not None and self._explanation_required(row) and not row.entry_variable.get().strip():
            row.entry.focus_set()
        else:
            self.cursor = min(row_index + 1, len(self.rows) - 1)
        self._highlight()
        return True

    def _explanation_required(self, row: Row) -> bool:
        level = int(row.variable.get()) if row.variable.get() else None
        return self.study.explanation_needed(row.name, level)

    def _inactive(self) -> bool:
        """No answers now: nobody signed in, an overlay is up, all done, or an image that cannot be shown."""
        if self.session is None or self.overlay is not None:
            return True
        if self.in_training:
            return self.training_revealed
        return self.session.all_done or self.unreadable_shown

    def _commit(self, field_name: str, value) -> None:
        if self.session is None:
            return
        self._answered_since_arrival = True
        if self.in_training:
            self.training_answers[field_name] = value  # training answers are never stored
            if field_name in {q.name for q in self.study.questions} and \
                    not self.study.explanation_needed(field_name, value):
                self._clear_explanation(field_name, store=False)
            self._refresh_missing(self.study.problems(self.training_answers))
            return
        key = (self.session.position, field_name)
        self.pending.pop(key, None)
        try:
            cleared = self.session.set_answer(field_name, value)
        except StoreBusy as error:
            self.pending[key] = value
            self._store_busy(error)
            return
        except UnreadableItem as error:
            self.message.configure(text=str(error))
            return
        self._refresh_missing(self.session.problems())
        for explanation in cleared:
            question = next(q for q in self.study.questions if q.explanation == explanation)
            self._clear_explanation(question.name, store=False)
            self.message.configure(text=f"The explanation of {question.title} was cleared: "
                                        f"'{question.levels[int(value) - 1]}' needs none.")

    def _clear_explanation(self, question_name: str, *, store: bool) -> None:
        row = next(r for r in self.rows if r.name == question_name)
        if row.entry_variable is not None and row.entry_variable.get():
            self._loading = not store
            try:
                row.entry_variable.set("")
            finally:
                self._loading = False
            if self.in_training:
                self.training_answers.pop(row.explanation, None)

    def _refresh_missing(self, problems: list[str]) -> None:
        if self.message.cget("text").startswith(MISSING):  # keep the list of what is missing current
            self.message.configure(text=MISSING + "; ".join(problems) + "." if problems else "")

    def _store_busy(self, error: StoreBusy) -> None:
        log.warning("store busy: %s", error)
        self.message.configure(text="Saving is waiting: the answer file is in use by another program. "
                                    "Your answers are kept and saved as soon as it is free (retrying).")
        if self._retry_job is None:
            self._retry_job = self.root.after(RETRY_MS, self._retry)

    def _retry(self) -> None:
        self._retry_job = None
        for (position, field_name), value in list(self.pending.items()):
            try:
                self.session.set_answer(field_name, value, position=position)
            except StoreBusy as error:
                self._store_busy(error)
                return
            del self.pending[(position, field_name)]
        self.message.configure(text="All answers are saved.")

    def _text_changed(self, row: Row) -> None:
        if not self._loading:
            self._commit_text(row)

    def _commit_text(self, row: Row) -> None:
        if self.session is None or self._inactive():
            return
        self._commit(row.explanation, row.entry_variable.get())

    def _leave_entry(self, row: Row) -> str:
        self._commit_text(row)
        self.cursor = min(self.rows.index(row) + 1, len(self.rows) - 1)
        self._highlight()
        self.root.focus_set()
        return "break"

    def _flush_text(self) -> None:
        """Commit any explanation on screen but not in the store (one that waited for a locked store)."""
        if self.session is None or self.in_training or self._inactive():
            return
        stored = self.session.values()
        for row in self.rows:
            if row.entry is not None and (stored.get(row.explanation) or "") != row.entry_variable.get():
                self._commit_text(row)

    # ---- moving --------------------------------------------------------------------------------------
    def _can_move(self) -> bool:
        if self.session is None or self.overlay is not None:
            return False
        if self.in_training:
            return True
        self._flush_text()
        if self.pending:
            self.message.configure(text="Please wait: your last answers are not saved yet (the answer file is "
                                        "in use by another program).")
            return False
        return True

    def _moved(self, problems: list[str]) -> None:
        if problems:
            self.message.configure(text=MISSING + "; ".join(problems) + ".")
            answers = self.training_answers if self.in_training else self.session.values()
            names = [name for name, _ in self.study.missing(answers)]
            if names:
                self.cursor = next(k for k, row in enumerate(self.rows) if row.name == names[0])
                self._highlight()
        else:
            self._after_move()

    def _guarded(self, action, then=None) -> None:
        """Run a move; show what is missing, or go on (``then``, by default what follows Next)."""
        try:
            problems = action()
        except StoreBusy as error:
            self._store_busy(error)
            return
        if problems or then is None:
            self._moved(problems)
        else:
            then()

    def next(self) -> None:
        if not self._can_move():
            return
        if self.in_training:
            if not self.training_revealed:
                problems = self.study.problems(self.training_answers)
                if problems:
                    self._moved(problems)
                    return
                self.training_revealed = True  # the subject answered: now the reference and the note
                self.show(arrived=True)  # a double Enter must not skip past the reference
                return
            self.training_index += 1
            self.training_answers, self.training_revealed = {}, False
            if not self.in_training:
                self._guarded(lambda: self.session.finish_training() or [])
                return
            self.show(arrived=True)
            return
        self._guarded(self.session.next)

    def previous(self) -> None:
        if not self._can_move():
            return
        if self.in_training:
            return  # training goes forward only: each example is answered, then compared
        self._guarded(self.session.previous, then=self.show)

    def skip(self) -> None:
        if self._can_move() and not self.in_training and self.session.can_skip():
            self._guarded(lambda: [] if self.session.skip() else ["wait"])

    # ---- keys ----------------------------------------------------------------------------------------
    def _on_key(self, event) -> str | None:
        if isinstance(event.widget, tk.Entry):
            return None  # typing text: the entry handles its own keys
        if self.overlay is not None:
            return self._overlay_key(event.keysym)  # a screen in front: keys never reach the rows
        if self.session is None:
            return None
        key = event.keysym
        if key.startswith("KP_"):
            key = key[3:]
        if key.isdigit() and len(key) == 1:
            self.choose(self.cursor, int(key))
        elif key == "Up":
            self.cursor = max(self.cursor - 1, 0)
            self._highlight()
        elif key == "Down":
            self.cursor = min(self.cursor + 1, len(self.rows) - 1)
            self._highlight()
        elif key in ("Right", "Return", "Next", "Enter"):
            if self._repeated_next():
                return "break"
            self.next()
        elif key in ("Left", "Prior"):
            self.previous()
        elif key in ("s", "S"):
            self.skip()
        elif key in ("z", "Z"):
            self.cycle_view()
        elif key == "F11":
            self.toggle_fullscreen()
        elif key == "Escape" and self.fullscreen:
            self.toggle_fullscreen(False)
        elif key in ("Tab", "ISO_Left_Tab"):
            entries = [k for k in range(len(self.rows)) if self.rows[k].entry is not None]
            if entries and not self._inactive():
                target = next((k for k in entries if k >= self.cursor), entries[0])
                self.cursor = target
                self._highlight()
                self.rows[target].entry.focus_set()
        else:
            return None
        return "break"  # handled here: no other binding may act on the same key

    def _repeated_next(self) -> bool:
        """A Next key right after Next brought this item, with nothing answered yet: a double press."""
        return (self._arrived_at is not None and not self._answered_since_arrival
                and time.monotonic() - self._arrived_at < REPEAT_GUARD_S)

    # ---- closing and errors -----------------------------------------------------------------------------
    def request_close(self) -> None:
        """The window's close button: ask first while a subject is rating."""
        session = self.session
        if session is None or (session.all_done and not self.in_training) or session.ended:
            self.close()
            return
        self._flush_text()
        text = "Your answers so far are saved; next time you continue where you stopped."
        incomplete = session.incomplete_finished()
        if incomplete:
            items = ", ".join(str(p + 1) for p in incomplete)
            text += f"\nItem(s) {items} were changed and are not complete now: they will be asked again."
        back = self._screen if self.overlay is not None else None  # instructions or a break: back to it
        frame = self._open_overlay("Close the window?", text)
        self.close_buttons = self._buttons(frame, ("Keep rating", lambda: self._keep_rating(back), ("Escape",)),
                                           ("Close", self.close, ("y", "Y")))

    def _keep_rating(self, back) -> None:
        self._close_overlay()
        if back is not None:
            back()

    def close(self) -> None:
        try:
            self._flush_text()
        except InputError as error:
            log.warning("while closing: %s", error)
        self._end_session()
        self.root.destroy()

    def _end_session(self) -> None:
        """Record the time on the current item and free the subject's claim (also when the window dies)."""
        if self.session is None:
            return
        try:
            if self.in_training:
                self.session.ended = True  # no item was on screen: no time to record
            self.session.close()
        except InputError as error:
            log.warning("while closing: %s", error)

    def _unexpected(self, kind, value, trace) -> None:
        log.error("unexpected error in the window:\n%s", "".join(traceback.format_exception(kind, value, trace)))
        if isinstance(value, InputError):
            text = value.message
        else:
            text = f"Something went wrong ({kind.__name__}); it is logged."
        self.message.configure(text=text + " Answers already given are saved.")
