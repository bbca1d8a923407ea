"""Progress bars (tqdm, imported only when one is shown)."""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager

HUB_BARS_VARIABLE = "HF_HUB_DISABLE_PROGRESS_BARS"


def progress(items, description: str, enabled: bool = True, **tqdm_options):
    """``items`` wrapped in a tqdm bar that disappears when done; ``items`` itself when disabled or
    when there is at most one item (a bar for one step is noise)."""
    if not enabled or len(items) < 2:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=description, leave=False, **tqdm_options)


def progress_factory(enabled: bool):
    """The tqdm class when progress is shown, else None: for code that opens its own bars (totals, units)."""
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm


@contextmanager
def library_bars(enabled: bool):
    """Inside: huggingface_hub's (downloads) and transformers' (weight loading) progress bars follow
    ``enabled`` too, so ``--quiet`` silences every bar a command shows; afterwards both are as they were
    (huggingface_hub's per-group settings included; transformers imported inside gets the state it would
    have had). A set HF_HUB_DISABLE_PROGRESS_BARS is the user's own choice for both: left alone."""
    if enabled or os.environ.get(HUB_BARS_VARIABLE) is not None:
        yield
        return
    try:
        hub = importlib.import_module("huggingface_hub.utils.tqdm")
    except ImportError:  # an optional dependency; without it neither library draws bars here
        yield
        return
    hub_states = dict(hub.progress_bar_states)
    transformers = sys.modules.get("transformers")
    # transformers takes huggingface_hub's global switch when it is imported
    transformers_on = (transformers.utils.logging.is_progress_bar_enabled() if transformers is not None
                       else not hub.are_progress_bars_disabled())
    hub.disable_progress_bars()
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers = sys.modules.get("transformers")
        if transformers is not None and transformers_on:
            transformers.utils.logging.enable_progress_bar()  # also turns huggingface_hub's on: reset below
        hub.progress_bar_states.clear()
        hub.progress_bar_states.update(hub_states)
