"""Stage: annotate. The rating window, its crash-safe answer store, and the export to ratings/answers.

Pure core: :mod:`.study` (study config, item order), :mod:`.store` (SQLite), :mod:`.session` (one
subject's progress), :mod:`.images` (decode, scale, prefetch), :mod:`.export`. The Tk window is in
:mod:`.window`; the command line in :mod:`.cli`; the demo's simulated panel in :mod:`.demo`.
"""
