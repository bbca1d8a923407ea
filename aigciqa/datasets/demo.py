"""The datasets stage's step of ``aigciqa demo``: splits of the demo folder by prompt."""

from __future__ import annotations

from aigciqa.datasets.splits import make_splits, merge_split_columns, summarize_splits


def demo_step(context) -> str:
    """Split the demo folder by prompt (3 repeats) and write splits.csv."""
    folder = context.folder
    card = folder.read_card()
    images = folder.read_table("images", card)
    prompts = folder.read_table("prompts", card)
    existing = folder.read_table("splits", card) if folder.has("splits") else None
    new = make_splits(images, prompts, by="prompt", repeats=3, seed=context.seed)
    splits = merge_split_columns(existing, new)
    folder.write({"splits": splits}, card=card, stage="split", command="aigciqa demo (split step)")
    summary = summarize_splits(images, splits, [c for c in new.columns if c != "image_id"])
    first = summary.iloc[0]
    leaks = int(summary["prompts_in_several_parts"].sum())
    return (f"{folder.table_path('splits')}: {len(summary)} splits by prompt "
            f"({', '.join(summary['column'])}); {first['column']}: train/val/test = "
            f"{first['train_prompts']}/{first['val_prompts']}/{first['test_prompts']} prompts; "
            f"prompts in two parts: {leaks}")
