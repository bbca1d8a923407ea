import os
from pathlib import Path

import pytest

# ../shared/data next to the checkout, or wherever AIGCIQA_SHARED_DATA points (a clone kept elsewhere).
SHARED_DATA = Path(os.environ.get("AIGCIQA_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture
def shared_data() -> Path:
    """The real published data in ../shared/data (see its README); skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set AIGCIQA_SHARED_DATA to its path)")
    return SHARED_DATA
