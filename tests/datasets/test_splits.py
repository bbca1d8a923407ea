"""Splits: no prompt in two parts, seeded and repeatable, ratios kept, written all-or-nothing."""

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder, default_card
from aigciqa.datasets.prompt_sets import load_prompt_set
from aigciqa.datasets.demo import demo_step
from aigciqa.datasets.splits import (assign_parts, authors_split_facts, make_splits,
                                     merge_split_columns, parse_ratios, part_sizes,
                                     prompts_in_several_parts, split_by_image, split_by_prompt,
                                     summarize_splits)
from aigciqa.errors import InputError

GENERATORS = ("Controlnet", "DALLE", "Glide", "Lafite", "stable-diffusion", "Unidiffuser")


@pytest.fixture
def aigciqa2023(shared_data):
    """The real AIGCIQA2023 structure: images N.png of AIGCIQA2023.csv, N = m*400 + p*4 + (k-1)."""
    published = pd.read_csv(shared_data / "aigciqa2023" / "AIGCIQA2023.csv", dtype=str, keep_default_na=False)
    numbers = published["name"].str.removesuffix(".png").astype(int)
    prompts = load_prompt_set("aigciqa2023")
    images = pd.DataFrame({
        "image_id": numbers.astype(str), "path": "images/" + published["name"],
        "prompt_id": ((numbers % 400) // 4).astype(str),
        "generator": [GENERATORS[n // 400] for n in numbers], "sample": numbers % 4 + 1})
    # The formula agrees with the published prompt text of every image.
    assert (images["prompt_id"].map(dict(zip(prompts["prompt_id"], prompts["prompt"])))
            == published["prompt"]).all()
    return images, prompts


def parts_per_prompt(images, column):
    return pd.DataFrame({"prompt_id": images["prompt_id"], "part": column}).groupby("prompt_id")["part"].nunique()


def test_no_prompt_in_two_parts_for_every_repeat(aigciqa2023):
    images, prompts = aigciqa2023
    assert len(images) == 2400 and images["prompt_id"].nunique() == 100
    splits = make_splits(images, prompts, by="prompt", repeats=10, seed=0)
    assert list(splits.columns) == ["image_id"] + [f"prompt_s{s}" for s in range(10)]
    for column in splits.columns[1:]:
        assert (parts_per_prompt(images, splits[column]) == 1).all(), column
        assert prompts_in_several_parts(images, splits[column]) == []
        # 70/10/20 of the 100 prompts, and so of the 2400 images (24 per prompt).
        assert splits[column].value_counts().to_dict() == {"train": 1680, "val": 240, "test": 480}
    summary = summarize_splits(images, splits)
    assert (summary[["train_prompts", "val_prompts", "test_prompts"]].to_numpy() == [70, 10, 20]).all()
    assert (summary["prompts_in_several_parts"] == 0).all()


def test_prompts_are_stratified_by_category(aigciqa2023):
    images, prompts = aigciqa2023
    category = dict(zip(prompts["prompt_id"], prompts["category"]))
    main_categories = prompts["category"].value_counts()
    main_categories = main_categories[main_categories >= 9].index
    worst = {True: 0, False: 0}
    for seed in range(30):
        for stratify in (True, False):
            column = split_by_prompt(images, prompts, seed=seed, stratify=stratify)
            drawn = pd.DataFrame({"prompt_id": images["prompt_id"], "part": column}).drop_duplicates()
            tests = drawn[drawn["part"] == "test"]["prompt_id"].map(category).value_counts()
            deviation = (tests.reindex(main_categories, fill_value=0) - 2).abs().max()
            worst[stratify] = max(worst[stratify], deviation)
    assert worst[True] <= 1  # each 10-prompt category has 1-3 test prompts (2 expected)
    assert worst[False] > worst[True]


def test_same_seed_same_split_other_seed_differs(aigciqa2023):
    images, prompts = aigciqa2023
    first = split_by_prompt(images, prompts, seed=3)
    assert first.equals(split_by_prompt(images, prompts, seed=3))
    assert not first.equals(split_by_prompt(images, prompts, seed=4))
    by_image = split_by_image(images, seed=3)
    assert by_image.equals(split_by_image(images, seed=3))
    assert not by_image.equals(split_by_image(images, seed=4))


def test_split_does_not_depend_on_row_order_or_repeat_count(aigciqa2023):
    images, prompts = aigciqa2023
    shuffled = images.sample(frac=1, random_state=1).reset_index(drop=True)
    for by in ("prompt", "image"):
        ordered = make_splits(images, prompts, by=by, seed=5).set_index("image_id")
        reordered = make_splits(shuffled, prompts.iloc[::-1], by=by, seed=5).set_index("image_id")
        assert reordered.loc[ordered.index].equals(ordered)
    # Column prompt_s2 is the same whether it is repeat 2 of seed 0 or repeat 0 of seed 2.
    assert make_splits(images, prompts, repeats=3, seed=0)["prompt_s2"].equals(
        make_splits(images, prompts, repeats=1, seed=2)["prompt_s2"])


def test_ratios_without_val_and_rounding(aigciqa2023):
    images, prompts = aigciqa2023
    column = split_by_prompt(images, prompts, seed=0, ratios=parse_ratios("0.8,0.2"))
    assert column.value_counts().to_dict() == {"train": 1920, "test": 480}
    assert parse_ratios("0.7, 0.1, 0.2") == (0.7, 0.1, 0.2)
    assert part_sizes(10, (0.7, 0.1, 0.2)) == {"train": 7, "val": 1, "test": 2}
    assert part_sizes(7, (0.7, 0.1, 0.2)) == {"train": 5, "val": 1, "test": 1}
    assert sum(part_sizes(101, (0.7, 0.1, 0.2)).values()) == 101
    assert part_sizes(3, (0.7, 0.1, 0.2)) == {"train": 1, "val": 1, "test": 1}  # no part with a share is empty
    with pytest.raises(InputError, match="cannot fill"):
        part_sizes(2, (0.7, 0.1, 0.2))
    two_prompts = pd.DataFrame({"image_id": ["a", "b", "c"], "prompt_id": ["p1", "p1", "p2"]})
    with pytest.raises(InputError) as error:  # names what is counted and where it comes from
        split_by_prompt(two_prompts, seed=0, ratios=(0.7, 0.1, 0.2))
    assert str(error.value).startswith("images.csv, field 'prompt_id': 2 prompt(s) cannot fill train, val, test")


@pytest.mark.parametrize("text, message", [
    ("0.7,0.1", "sum to 1"), ("0.5,0.6,-0.1", "not negative"), ("a,b", "numbers"),
    ("1,0,0", "train and test"), ("0.2,0.2,0.2,0.4", "3 ratios"), ("nan,0.5", "finite")])
def test_bad_ratios_are_refused(text, message):
    with pytest.raises(InputError, match=message) as error:
        parse_ratios(text)
    assert error.value.field == "ratios"


def test_split_by_image_puts_prompts_in_several_parts(aigciqa2023):
    """The AIGCIQA2023 authors' kind of split (about 80/20 by image) leaks almost every prompt."""
    images, _ = aigciqa2023
    for seed in range(5):
        column = split_by_image(images, seed=seed, ratios=(0.8, 0.2))
        assert column.value_counts().to_dict() == {"train": 1920, "test": 480}
        assert len(prompts_in_several_parts(images, column)) >= 95
    facts = authors_split_facts()
    assert facts["unit"] == "image" and all("MINT-IQA" in source for source in facts["sources"])


def test_images_without_prompt_cannot_be_split_by_prompt():
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "prompt_id": ["0", "", "1"]})
    with pytest.raises(InputError) as error:
        split_by_prompt(images)
    assert (error.value.row, error.value.field) == (2, "prompt_id")
    assert split_by_image(images, ratios=(0.5, 0.5)).notna().all()


def test_assign_parts_refuses_negative_seed():
    with pytest.raises(InputError, match="seed"):
        assign_parts(["a", "b"], (0.5, 0.5), seed=-1)


def test_merge_keeps_other_columns_and_replaces_same_name():
    existing = pd.DataFrame({"image_id": ["a", "b"], "official": ["train", "test"], "prompt_s0": ["test", "test"]})
    new = pd.DataFrame({"image_id": ["b", "a", "c"], "prompt_s0": ["train", "val", "train"],
                        "prompt_s1": ["val", "train", "test"]})
    merged = merge_split_columns(existing, new)
    assert list(merged.columns) == ["image_id", "official", "prompt_s0", "prompt_s1"]
    assert merged.set_index("image_id").loc[["a", "b", "c"]].to_dict("list") == {
        "official": ["train", "test", ""], "prompt_s0": ["val", "train", "train"],
        "prompt_s1": ["train", "val", "test"]}


# ---- command line ------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path, aigciqa2023):
    images, prompts = aigciqa2023
    folder = DatabaseFolder(tmp_path / "db")
    folder.write({"prompts": prompts, "images": images}, card=default_card("t"), stage="test")
    return folder


def test_cli_split_writes_columns_and_prints_summary(folder, capsys):
    assert main(["split", str(folder.root), "--repeats", "2", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "prompt_s7: train 1680 images / 70 prompts, val 240 images / 10 prompts, test 480 images / 20 prompts" in out
    assert main(["split", str(folder.root), "--by", "image", "--ratios", "0.8,0.2"]) == 0
    splits = folder.read_table("splits")
    assert list(splits.columns) == ["image_id", "prompt_s7", "prompt_s8", "image_s0"]
    assert splits["image_s0"].value_counts().to_dict() == {"train": 1920, "test": 480}
    assert folder.read_card()["provenance"]["split"]["command"].startswith("aigciqa")
    images = folder.read_table("images")
    expected = make_splits(images, folder.read_table("prompts"), repeats=2, seed=7)
    assert splits[["image_id", "prompt_s7", "prompt_s8"]].to_dict("list") == expected.to_dict("list")


@pytest.mark.parametrize("args, message", [
    (["--ratios", "0.7,0.2"], "ratios"), (["--repeats", "0"], "repeats"), (["--seed", "-1"], "seed")])
def test_cli_split_bad_options_exit_2_and_write_nothing(folder, capsys, args, message):
    assert main(["split", str(folder.root), *args]) == 2
    assert message in capsys.readouterr().err
    assert not folder.has("splits")


def test_cli_split_bad_folder_exits_2_and_keeps_existing_splits(folder, tmp_path, capsys):
    assert main(["split", str(tmp_path / "nowhere")]) == 2
    assert "dataset.json is missing" in capsys.readouterr().err
    assert main(["split", str(folder.root)]) == 0
    before = folder.table_path("splits").read_bytes()
    images = folder.read_table("images")
    images.loc[4, "prompt_id"] = ""  # record 5 has no prompt
    folder.write({"images": images})
    assert main(["split", str(folder.root), "--seed", "1"]) == 2
    assert "images.csv, record 5, field 'prompt_id'" in capsys.readouterr().err
    assert folder.table_path("splits").read_bytes() == before


def test_demo_step_splits_the_demo_folder(tmp_path):
    from aigciqa.demo import DemoContext, example_folder
    context = DemoContext(out=tmp_path)
    example_folder(context)
    summary = demo_step(context)
    assert "prompts in two parts: 0" in summary
    splits = context.folder.read_table("splits")
    images = context.folder.read_table("images")
    assert list(splits.columns) == ["image_id", "prompt_s0", "prompt_s1", "prompt_s2"]
    for column in splits.columns[1:]:
        assert prompts_in_several_parts(images, splits[column]) == []


def test_cli_split_of_a_database_without_prompts(tmp_path, capsys):
    """Classic IQA databases have no prompts: split by image works, by prompt says why not."""
    folder = DatabaseFolder(tmp_path / "db")
    images = pd.DataFrame({"image_id": [f"i{k}" for k in range(20)], "path": [f"images/{k}.png" for k in range(20)]})
    folder.write({"images": images}, card=default_card("classic"), stage="test")
    assert main(["split", str(folder.root)]) == 2
    assert "--by image" in capsys.readouterr().err and not folder.has("splits")
    assert main(["split", str(folder.root), "--by", "image"]) == 0
    assert "image_s0: train 14 images, val 2 images, test 4 images" in capsys.readouterr().out
