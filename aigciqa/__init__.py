"""aigciqa: build and model quality databases of AI-generated images.

Stages (subpackages) share one database folder, owned by :mod:`aigciqa.database`.
"""

__version__ = "0.1.0"
