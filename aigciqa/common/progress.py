"""Progress bars (tqdm, imported only when one is shown)."""

from __future__ import annotations

import sys
from contextlib import contextmanager


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
    ``enabled`` too, so ``--quiet`` silences every bar a command shows; afterwards they are as they were.
    transformers takes huggingface_hub's switch when it is first imported, so that switch goes first."""
    if enabled:
        yield
        return
    from huggingface_hub import utils as hub
    hub_was_on = not hub.are_progress_bars_disabled()
    transformers = sys.modules.get("transformers")
    transformers_was_on = transformers is None or transformers.utils.logging.is_progress_bar_enabled()
    hub.disable_progress_bars()
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if hub_was_on:
            hub.enable_progress_bars()
        transformers = sys.modules.get("transformers")
        if transformers is not None and transformers_was_on:
            transformers.utils.logging.enable_progress_bar()
