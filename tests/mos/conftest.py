import pandas as pd
import pytest

from aigciqa.database import DatabaseFolder, default_card
from aigciqa.mos.simulate import simulate_panel


def demo_images(n_generators=3, n_prompts=6, samples=2):
    rows = [{"image_id": f"g{g}-{p}-{k}", "path": f"images/g{g}/{p}-{k}.png", "prompt_id": str(p),
             "generator": f"g{g}", "sample": k}
            for g in range(n_generators) for p in range(n_prompts) for k in range(1, samples + 1)]
    return pd.DataFrame(rows)


@pytest.fixture
def card():
    return default_card("mos-test", synthetic=True)


@pytest.fixture
def simulated_folder(tmp_path, card):
    """A database folder with images, a simulated panel's ratings.csv and answers.csv."""
    images = demo_images()
    prompts = pd.DataFrame({"prompt_id": [str(p) for p in range(6)], "prompt": [f"prompt {p}" for p in range(6)],
                            "category": "", "challenge": ""})
    ratings, answers, truth = simulate_panel(images, card, n_subjects=16, n_outliers=2, seed=1)
    folder = DatabaseFolder(tmp_path / "db")
    folder.write({"prompts": prompts, "images": images, "ratings": ratings, "answers": answers}, card=card,
                 stage="test")
    folder.truth = truth
    return folder
