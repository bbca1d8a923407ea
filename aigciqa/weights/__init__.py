"""Where weights come from: a local folder or file, or a Hugging Face Hub repo id (optionally pinned).

Every stage that loads weights hands its ``--weights``/``--llm`` value to :func:`aigciqa.weights.resolve.resolve`
and gets back a local path plus what made it (repo id, resolved commit, file hashes). Hub repos go
through ``huggingface_hub`` (``snapshot_download``/``hf_hub_download``), so the standard cache,
``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and tokens behave as users expect. The defaults
that reproduce the paper are one table, :mod:`aigciqa.weights.defaults`.
"""
