"""The build-mos step of ``aigciqa demo``: a SIMULATED panel rates the demo images, then build-mos runs."""

from __future__ import annotations

import numpy as np

from aigciqa.mos.build import run_build_mos
from aigciqa.mos.simulate import simulate_panel


def simulate_step(context, n_subjects: int = 24, n_outliers: int = 3) -> dict:
    """Write a simulated panel's ratings.csv and answers.csv into the demo folder; return the truth."""
    folder = context.folder
    card = folder.read_card()
    images = folder.read_table("images", card)
    ratings, answers, truth = simulate_panel(images, card, n_subjects=n_subjects, n_outliers=n_outliers,
                                             seed=context.seed)
    folder.write({"ratings": ratings, "answers": answers}, card=card, stage="simulate-panel")
    context.extras["panel_truth"] = truth
    return truth


def demo_step(context) -> str:
    # The annotate step, when it ran, already recorded a simulated panel through the annotation store.
    truth = context.extras.get("panel_truth") or simulate_step(context)
    outcome = run_build_mos(context.folder.root, command="aigciqa demo (build-mos step)")
    planted = set(truth["outliers"])
    caught = []
    for perspective in outcome.result.perspectives:
        rejected = set(outcome.result.rejected_subjects(perspective))
        caught.append(f"{perspective} {len(planted & rejected)}/{len(planted)}"
                      + (f" +{len(rejected - planted)} other" if rejected - planted else ""))
    n_subjects = len(truth["bias"])
    true = truth["true_scores"].set_index("image_id")
    table = outcome.result.table.set_index("image_id")
    r = min(float(np.corrcoef(table[f"{p}_mos"], true.loc[table.index, p])[0, 1])
            for p in outcome.result.perspectives)
    return (f"SIMULATED panel of {n_subjects} subjects with {len(planted)} planted random raters "
            f"({', '.join(sorted(planted))}); BT.500 screening caught {'; '.join(caught)}; "
            f"MOS vs simulated true scores r >= {r:.3f}. " + outcome.summary())
