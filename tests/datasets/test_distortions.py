"""The synthetic-distortion database of the learning benchmark."""

import pytest

pytest.importorskip("skimage", reason="scikit-image ships the sample photographs")
pytest.importorskip("PIL")

from aigciqa.datasets.distortions import build_distortion_folder


def test_folder_is_valid_content_disjoint_and_quality_falls_with_level(tmp_path):
    sources = {"train": ["camera", "coins"], "test": ["coffee"]}
    folder = build_distortion_folder(tmp_path / "db", sources=sources, distortions={"blur": 1.0, "jpeg": 0.8})
    tables = folder.validate()
    images, mos, splits = tables["images"], tables["mos"], tables["splits"]
    assert len(images) == 3 * (1 + 2 * 4) and folder.read_card()["synthetic"] is True
    parts = splits.merge(images, on="image_id").groupby("prompt_id")["by_content"].nunique()
    assert (parts == 1).all()  # every source image lies in exactly one part
    by_id = mos.set_index("image_id")["quality_mos"]
    assert by_id["coffee-pristine-0"] == 100
    assert [by_id[f"coffee-blur-{level}"] for level in (1, 2, 3, 4)] == [80, 60, 40, 20]
    assert by_id["coffee-jpeg-4"] == pytest.approx(100 - 20 * 4 * 0.8)
    assert all((folder.root / path).is_file() for path in images["path"])
