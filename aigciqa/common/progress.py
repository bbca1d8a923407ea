"""Progress bars (tqdm, imported only when one is shown)."""

from __future__ import annotations


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
