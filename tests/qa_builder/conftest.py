"""Fixtures of the build-vqa tests."""

import pytest

from .vqa_fixtures import write_folder


@pytest.fixture
def small_folder(tmp_path):
    return write_folder(tmp_path / "db")
