"""Small database folders for the reliability tests."""

from pathlib import Path

import pandas as pd

from aigciqa.database import DatabaseFolder, default_card
from aigciqa.mos.simulate import simulate_panel

WT = Path(__file__).resolve().parents[2]  # this checkout: children run its aigciqa


def rated_folder(root: Path) -> DatabaseFolder:
    """Images, prompts, a simulated panel's ratings and answers (small: 12 images, 8 subjects)."""
    card = default_card("faults", synthetic=True)
    images = pd.DataFrame([{"image_id": f"g{g}-{p}-1", "path": f"images/g{g}/{p}-1.png", "prompt_id": str(p),
                            "generator": f"g{g}", "sample": 1} for g in range(2) for p in range(6)])
    prompts = pd.DataFrame({"prompt_id": [str(p) for p in range(6)], "prompt": [f"prompt {p}" for p in range(6)],
                            "category": ["a", "b"] * 3, "challenge": ""})
    ratings, answers, _ = simulate_panel(images, card, n_subjects=8, n_outliers=1, seed=3)
    folder = DatabaseFolder(root)
    folder.write({"prompts": prompts, "images": images, "ratings": ratings, "answers": answers}, card=card,
                 stage="test")
    return folder
