"""The rating window (Tkinter): shows a :class:`Session` and forwards what the subject does to it.

Everything the subject can do has a key: digits answer the highlighted row, Up/Down move the
highlight, Right/Enter go on, Left goes back, Tab writes the highlighted question's explanation,
S skips an image that cannot be shown. Every click and key goes straight to the store; when the
store is locked the answer waits in memory, the window says so and retries every second.
"""

from __future__ import annotations

import logging
import tkinter as tk
import traceback
from dataclasses import dataclass, field

from PIL import ImageTk

from aigciqa.annotate.images import Prefetcher
from aigciqa.annotate.session import Session, Shown
from aigciqa.annotate.store import AnswerStore, StoreBusy
from aigciqa.annotate.study import Study
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError

log = logging.getLogger("aigciqa.annotate")

TITLE = "aigciqa annotate"
SHORTCUTS = ("Keys:  Up/Down choose a row  ·  digits answer it (the mouse works too)\n"
             "Tab: write the explanation, Enter when done  ·  Right or Enter: next item\n"
             "Left: previous item  ·  S: skip an image that cannot be shown")
MISSING = "Before moving on, please "
HIGHLIGHT, PLAIN = "#e69500", "#d9d9d9"
RETRY_MS = 1000
PREFETCH_DELAY_MS = 60
TEXT_COMMIT_MS = 400  # text is committed this long after the last key stroke


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
        self.training: list[tuple[Shown, dict]] = []
        self.training_index = 0
        self.pending: dict[tuple[int, str], object] = {}  # answers waiting for a locked store
        self.cursor = 0
        self.photo = None
        self.shown_path = None
        self._text_jobs: dict[str, str] = {}
        self._retry_job = None
        self._tick_job = None
        self._prefetch_job = None
        if box is None:
            width, height = root.winfo_screenwidth(), root.winfo_screenheight()
            side = max(256, min(720, width - 620, height - 230))
            box = (side, side)
        self.box = box
        self.images = Prefetcher(box, enabled=prefetch)
        root.title(TITLE)
        root.report_callback_exception = self._unexpected
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._build()
        root.bind("<KeyPress>", self._on_key)
        root.bind("<Destroy>", self._destroyed)
        self._tick()
        if subject_id is None:
            self._show_sign_in()
        else:
            self.start(subject_id)

    # ---- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        root, box = self.root, self.box
        left = tk.Frame(root, padx=8, pady=8)
        left.grid(row=0, column=0, sticky="n")
        self.canvas = tk.Canvas(left, width=box[0], height=box[1], background="#202020", highlightthickness=0)
        self.canvas.grid(row=0, column=0)
        self.image_item = self.canvas.create_image(box[0] // 2, box[1] // 2, anchor="center")
        self.canvas_text = self.canvas.create_text(box[0] // 2, box[1] // 2, fill="white", width=box[0] - 40,
                                                   font=("TkDefaultFont", 16), justify="center")
        self.prompt_label = tk.Label(left, text="", wraplength=box[0], justify="left", anchor="w",
                                     font=("TkDefaultFont", 13))
        self.prompt_label.grid(row=1, column=0, sticky="we", pady=(6, 0))

        panel = tk.Frame(root, padx=8, pady=8)
        panel.grid(row=0, column=1, sticky="n")
        self.progress_label = tk.Label(panel, text="", font=("TkDefaultFont", 12, "bold"), anchor="w")
        self.progress_label.grid(row=0, column=0, sticky="we")
        self.banner = tk.Label(panel, text="", fg="#8a4b00", anchor="w", justify="left", wraplength=600)
        self.banner.grid(row=1, column=0, sticky="we")
        rows = tk.Frame(panel)
        rows.grid(row=2, column=0, sticky="we")
        self.rows: list[Row] = []
        for name in self.study.perspectives:
            self.rows.append(self._row(rows, name, name.capitalize(), self.study.scores,
                                       [str(v) for v in self.study.scores]))
        for q in self.study.questions:
            values = list(range(1, len(q.levels) + 1))
            row = self._row(rows, q.name, q.title.capitalize(), values, [f"{v} {w}" for v, w in zip(values, q.levels)])
            if q.explanation:
                row.explanation = q.explanation
                row.entry_variable = tk.StringVar(root)
                box = tk.Frame(row.frame)
                box.grid(row=2, column=0, sticky="we")
                tk.Label(box, text=q.explanation_prompt, anchor="w").pack(side="left")
                row.entry = tk.Entry(box, textvariable=row.entry_variable, width=32)
                row.entry.pack(side="left", padx=4, pady=(0, 2))
                row.entry.bind("<KeyRelease>", lambda e, r=row: self._text_changed(r))
                row.entry.bind("<FocusOut>", lambda e, r=row: self._commit_text(r))
                row.entry.bind("<Return>", lambda e, r=row: self._leave_entry(r))
                row.entry.bind("<Escape>", lambda e, r=row: self._leave_entry(r))
            self.rows.append(row)
        nav = tk.Frame(panel, pady=6)
        nav.grid(row=3, column=0, sticky="we")
        self.previous_button = tk.Button(nav, text="< Previous", width=12, command=self.previous)
        self.previous_button.pack(side="left")
        self.next_button = tk.Button(nav, text="Next >", width=12, command=self.next)
        self.next_button.pack(side="left", padx=6)
        self.skip_button = tk.Button(nav, text="Skip (image unreadable)", command=self.skip, state="disabled")
        self.skip_button.pack(side="left", padx=6)
        self.message = tk.Label(panel, text="", fg="#b00000", anchor="w", justify="left", wraplength=600)
        self.message.grid(row=4, column=0, sticky="we")
        tk.Label(panel, text=SHORTCUTS, fg="#505050", anchor="w", justify="left",
                 font=("TkDefaultFont", 9)).grid(row=5, column=0, sticky="we", pady=(8, 0))

    def _row(self, parent, name, title, values, texts) -> Row:
        frame = tk.Frame(parent, highlightthickness=2, highlightbackground=PLAIN, padx=4, pady=1)
        frame.grid(row=len(self.rows), column=0, sticky="we", pady=1)
        tk.Label(frame, text=title, anchor="w", font=("TkDefaultFont", 10, "bold")).grid(row=0, column=0, sticky="w")
        buttons = tk.Frame(frame)
        buttons.grid(row=1, column=0, sticky="w")
        variable = tk.StringVar(self.root, value="")
        row = Row(name, title, values, frame, variable)
        for k, (value, text) in enumerate(zip(values, texts)):
            # tristatevalue: an unanswered row ("") must look unanswered, not half-selected
            button = tk.Radiobutton(buttons, text=text, value=str(value), variable=variable, anchor="w",
                                    justify="left", wraplength=115, takefocus=0, tristatevalue="<none>",
                                    width=3 if texts == [str(v) for v in values] else 0, command=lambda r=row: self._clicked(r))
            button.grid(row=0, column=k, sticky="w", padx=(0, 6))
            row.buttons.append(button)
        return row

    # ---- signing in -----------------------------------------------------------------------------------
    def _show_sign_in(self) -> None:
        self.sign_in = tk.Frame(self.root, padx=40, pady=40, highlightthickness=2, highlightbackground=HIGHLIGHT)
        self.sign_in.place(relx=0.5, rely=0.4, anchor="center")
        tk.Label(self.sign_in, text="Welcome. Please type your subject id and press Enter.",
                 font=("TkDefaultFont", 13)).pack(pady=(0, 10))
        self.subject_variable = tk.StringVar(self.root)
        entry = tk.Entry(self.sign_in, textvariable=self.subject_variable, width=30, font=("TkDefaultFont", 13))
        entry.pack()
        entry.bind("<Return>", lambda e: self._sign_in_clicked())
        tk.Button(self.sign_in, text="Start", command=self._sign_in_clicked).pack(pady=8)
        self.sign_in_message = tk.Label(self.sign_in, text="", fg="#b00000", wraplength=420)
        self.sign_in_message.pack()
        entry.focus_set()

    def _sign_in_clicked(self) -> None:
        try:
            self.start(self.subject_variable.get().strip())
        except InputError as error:
            self.sign_in_message.configure(text=error.message)
            return
        self.sign_in.destroy()
        self.root.focus_set()

    def start(self, subject_id: str) -> None:
        """Open (or resume) the subject's session; InputError for a bad id or a store problem."""
        self.session = Session(self.folder, self.study, self.store, subject_id)
        self.training = self.session.training_items() if self.session.training_needed else []
        self.training_index = 0
        log.info("subject %s: session %s, resuming at item %s of %s", subject_id, self.session.session_id,
                 self.session.position + 1, self.session.n_items)
        self.show()

    @property
    def in_training(self) -> bool:
        return self.training_index < len(self.training)

    # ---- showing an item --------------------------------------------------------------------------------
    def show(self) -> None:
        session = self.session
        self.message.configure(text="")
        if self.in_training:
            shown, answers = self.training[self.training_index]
            self.banner.configure(text=f"Training ({shown.label}): the reference answers are filled in. "
                                       "Try the keys; nothing here is saved. Press Right to go on.")
            self._set_values(answers)
            self._show_image(shown)
            self.skip_button.configure(state="disabled")
        elif session.all_done:
            self.banner.configure(text="")
            self._set_values({})
            self.canvas.itemconfigure(self.image_item, image="")
            self.photo = None
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
                try:
                    session.report_unreadable(loaded.error)
                except StoreBusy as error:
                    self.message.configure(text=error.message)
            self.skip_button.configure(state="normal" if session.can_skip() else "disabled")
            if self._prefetch_job:
                self.root.after_cancel(self._prefetch_job)
            # Start decoding the neighbours once this image is on screen, not while it is being drawn.
            self._prefetch_job = self.root.after(PREFETCH_DELAY_MS, self._prefetch)
        state = "disabled" if (session.all_done and not self.in_training) else "normal"
        for row in self.rows:
            for button in row.buttons:
                button.configure(state=state)
            if row.entry is not None:
                row.entry.configure(state=state)
        self.cursor = self._first_unanswered()
        self._highlight()
        self._update_progress()

    def _prefetch(self) -> None:
        self._prefetch_job = None
        session = self.session
        for ahead in (session.position + 1, session.position - 1):  # the next one first
            if 0 <= ahead < session.n_items:
                self.images.prefetch(session.shown(ahead).path)

    def _show_image(self, shown: Shown):
        loaded = self.images.get(shown.path)
        self.photo = ImageTk.PhotoImage(loaded.image)  # keep a reference: Tk does not
        self.canvas.itemconfigure(self.image_item, image=self.photo)
        self.canvas.itemconfigure(self.canvas_text, text="")
        self.prompt_label.configure(text=f"Prompt: {shown.prompt}" if shown.prompt else "")
        self.shown_path = shown.path
        return loaded

    def _set_values(self, values: dict) -> None:
        for row in self.rows:
            value = values.get(row.name)
            row.variable.set("" if value is None else str(int(value)))
            if row.entry_variable is not None:
                row.entry_variable.set(values.get(row.explanation) or "")

    def _first_unanswered(self) -> int:
        return next((k for k, row in enumerate(self.rows) if row.variable.get() == ""), 0)

    def _highlight(self) -> None:
        for k, row in enumerate(self.rows):
            row.frame.configure(highlightbackground=HIGHLIGHT if k == self.cursor else PLAIN)

    def _tick(self) -> None:
        self._update_progress()
        self._tick_job = self.root.after(1000, self._tick)

    def _destroyed(self, event) -> None:
        if event.widget is self.root:  # stop the timers: their commands die with the window
            for job in (self._tick_job, self._retry_job, self._prefetch_job, *self._text_jobs.values()):
                if job:
                    self.root.after_cancel(job)
            self.images.close()

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
        return self.session is None or (self.session.all_done and not self.in_training)

    def _commit(self, field_name: str, value) -> None:
        if self.in_training or self.session is None:
            return  # training answers are never stored
        key = (self.session.position, field_name)
        self.pending.pop(key, None)
        try:
            self.session.set_answer(field_name, value)
        except StoreBusy as error:
            self.pending[key] = value
            self._store_busy(error)
            return
        if self.message.cget("text").startswith(MISSING):  # keep the list of what is missing current
            problems = self.session.problems()
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
        job = self._text_jobs.pop(row.name, None)
        if job:
            self.root.after_cancel(job)
        self._text_jobs[row.name] = self.root.after(TEXT_COMMIT_MS, lambda: self._commit_text(row))

    def _commit_text(self, row: Row) -> None:
        job = self._text_jobs.pop(row.name, None)
        if job:
            self.root.after_cancel(job)
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
        """Commit any explanation typed but not yet saved (before moving or closing)."""
        stored = self.session.values() if self.session else {}
        for row in self.rows:
            if row.entry is not None and (stored.get(row.explanation) or "") != row.entry_variable.get():
                self._commit_text(row)

    # ---- moving --------------------------------------------------------------------------------------
    def _can_move(self) -> bool:
        if self.session is None:
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
            names = [name for name, _ in self.study.missing(self.session.values())]
            if names:
                self.cursor = next(k for k, row in enumerate(self.rows) if row.name == names[0])
                self._highlight()
        else:
            self.show()

    def _guarded(self, action) -> None:
        try:
            self._moved(action())
        except StoreBusy as error:
            self._store_busy(error)

    def next(self) -> None:
        if not self._can_move():
            return
        if self.in_training:
            self.training_index += 1
            if not self.in_training:
                self._guarded(lambda: self.session.finish_training() or [])
                return
            self.show()
            return
        self._guarded(self.session.next)

    def previous(self) -> None:
        if not self._can_move():
            return
        if self.in_training:
            if self.training_index > 0:
                self.training_index -= 1
                self.show()
            return
        self._guarded(self.session.previous)

    def skip(self) -> None:
        if self._can_move() and not self.in_training and self.session.can_skip():
            self._guarded(lambda: [] if self.session.skip() else ["wait"])

    # ---- keys ----------------------------------------------------------------------------------------
    def _on_key(self, event) -> str | None:
        if self.session is None or isinstance(event.widget, tk.Entry):
            return None  # typing text (or the sign-in id): the entry handles its own keys
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
            self.next()
        elif key in ("Left", "Prior"):
            self.previous()
        elif key in ("s", "S"):
            self.skip()
        elif key in ("Tab", "ISO_Left_Tab"):
            entries = [k for k in range(len(self.rows)) if self.rows[k].entry is not None]
            if entries and not self._inactive():
                target = next((k for k in entries if k >= self.cursor), entries[0])
                self.cursor = target
                self._highlight()
                self.rows[target].entry.focus_set()
            return "break"
        return None

    # ---- closing and errors -----------------------------------------------------------------------------
    def close(self) -> None:
        try:
            if self.session is not None and not self.in_training:
                self._flush_text()
                if not self.session.all_done:
                    self.session._leave("left")  # count the time spent on the current item
        except InputError as error:
            log.warning("while closing: %s", error)
        self.root.destroy()

    def _unexpected(self, kind, value, trace) -> None:
        log.error("unexpected error in the window:\n%s", "".join(traceback.format_exception(kind, value, trace)))
        if isinstance(value, InputError):
            text = value.message
        else:
            text = f"Something went wrong ({kind.__name__}); it is logged."
        self.message.configure(text=text + " Answers already given are saved.")
