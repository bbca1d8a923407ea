"""Small database folders for build-vqa tests, written through DatabaseFolder like any stage would."""

import pandas as pd
from aigciqa.database import DatabaseFolder, default_card


def write_folder(root, *, mos=None, labels=None, prompts=None, images=None, card=None) -> DatabaseFolder:
    folder = DatabaseFolder(root)
    prompts = prompts if prompts is not None else pd.DataFrame({
        "prompt_id": ["p0", "p1"], "prompt": ["a corgi", "an oil painting of a tree and a building"],
        "category": ["Animals", "Arts"], "challenge": ["Basic", "Style & Format"]})
    images = images if images is not None else pd.DataFrame({
        "image_id": ["0", "1", "2"], "path": ["images/g/0.png", "images/g/1.png", "images/g/2.png"],
        "prompt_id": ["p0", "p0", "p1"]})
    mos = mos if mos is not None else pd.DataFrame({
        "image_id": ["0", "1", "2"], "quality_mos": [60.16417843, 35.5, 72.0],
        "authenticity_mos": [47.24654087, 30.0, 70.0], "correspondence_mos": [59.98587335, 40.0, 65.25]})
    labels = labels if labels is not None else pd.DataFrame({
        "image_id": ["0", "1", "2"], "clarity": [4, 1, 3], "outline": [4, 1, 2], "details": [3, 2, 4],
        "distortion": [2, 1, 3], "consistency": [3, 1, 2],
        "distortion_explanation": ["Corgi Partial Distortion", "Face is distorted.\nLegs too.", ""],
        "inconsistency_explanation": ["", "No corgi.", "The building is missing."]})
    tables = {"prompts": prompts, "images": images}
    if mos is not False:
        tables["mos"] = mos
    if labels is not False:
        tables["labels"] = labels
    folder.write(tables, card=card or default_card("vqa-test"), stage="test")
    return folder

