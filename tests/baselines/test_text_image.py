"""The transformers baselines on tiny random models of the real classes, loaded from local folders."""

import shutil

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

from aigciqa.baselines.methods import get_baseline  # noqa: E402
from aigciqa.baselines.text_image import (IMAGEREWARD_STD, HEAD_FILE, load_reward_head,  # noqa: E402
                                          reward_head)
from aigciqa.errors import InputError  # noqa: E402

PROMPTS = ["a red bicycle", "two cats on a sofa", "an old lighthouse at dusk"]


def scorer(name, weights):
    return get_baseline(name).scorer(weights, "cpu")


def test_clip_scores_are_the_models_own_cosine_similarities(tiny_clip, image_files):
    clip = scorer("clipscore", tiny_clip)
    inputs = clip.inputs(image_files, PROMPTS)
    with torch.no_grad():
        logits = clip.model(**inputs).logits_per_image.diagonal().numpy()
    scale = float(clip.model.logit_scale.detach().exp())
    assert np.allclose(clip.score(image_files, PROMPTS), logits / scale, atol=1e-5)
    assert np.allclose(scorer("pickscore", tiny_clip).score(image_files, PROMPTS), logits, atol=1e-4)
    assert np.allclose(scorer("hpsv2", tiny_clip).score(image_files, PROMPTS), logits / scale, atol=1e-5)
    # the prompt matters: another prompt gives another score
    assert not np.allclose(clip.score(image_files, PROMPTS), clip.score(image_files, PROMPTS[::-1]))


def test_blipscore_is_blips_retrieval_cosine(tiny_blip, image_files):
    blip = scorer("blipscore", tiny_blip)
    inputs = blip.inputs(image_files, PROMPTS)
    with torch.no_grad():
        similarity = blip.model(**inputs, use_itm_head=False).itm_score.diagonal().numpy()
    assert np.allclose(blip.score(image_files, PROMPTS), similarity, atol=1e-5)


def _with_head(source, tmp_path, input_size, name, prefix=""):
    folder = tmp_path / name
    shutil.copytree(source, folder)
    torch.manual_seed(1)
    state = reward_head(input_size).state_dict()
    torch.save({f"{prefix}{k}": v for k, v in state.items()} | {"blip.other": torch.zeros(2)}, folder / "model.pt")
    return folder, state


def test_imagereward_loads_its_published_head_file_and_normalises(tiny_blip, image_files, tmp_path):
    folder, state = _with_head(tiny_blip, tmp_path, 32, "imagereward", prefix="mlp.")  # as in ImageReward.pt
    reward = scorer("imagereward", folder)
    scores = reward.score(image_files, PROMPTS)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    from safetensors.torch import save_file
    shifted = {k: v.clone() for k, v in state.items()}
    shifted["layers.7.bias"] += 1.0
    (folder / "model.pt").unlink()
    save_file(shifted, folder / HEAD_FILE)
    assert np.allclose(scorer("imagereward", folder).score(image_files, PROMPTS), scores + 1.0 / IMAGEREWARD_STD,
                       atol=1e-5)


def test_shorter_side_centre_square_is_torchvisions_resize_then_centre_crop():
    from PIL import Image
    from aigciqa.baselines.text_image import shorter_side_centre_square
    # torchvision: Resize(32) of 48 x 40 (w x h) -> 38 x 32 (int(32 * 48 / 40)); CenterCrop(32): left round(3.0)
    wide = Image.fromarray(np.arange(40 * 48 * 3, dtype=np.uint8).reshape(40, 48, 3))
    expected = np.asarray(wide.resize((38, 32), Image.Resampling.BICUBIC))[:, 3:35]
    assert np.array_equal(np.asarray(shorter_side_centre_square(wide, 32)), expected)
    tall = wide.transpose(Image.Transpose.TRANSPOSE)  # 40 x 48 -> 32 x 38, top round(3.0)
    expected = np.asarray(tall.resize((32, 38), Image.Resampling.BICUBIC))[3:35]
    assert np.array_equal(np.asarray(shorter_side_centre_square(tall, 32)), expected)
    square = wide.crop((0, 0, 32, 32))
    assert np.array_equal(np.asarray(shorter_side_centre_square(square, 32)), np.asarray(square))


def test_imagereward_crops_the_centre_square_as_its_own_code_does(tiny_blip, image_files, tmp_path):
    """ImageReward resizes the shorter side and crops the centre; a non-square image scores as its centre square
    and not as the whole image squashed to a square (what BLIP's processor alone would feed)."""
    from PIL import Image
    from aigciqa.baselines.text_image import shorter_side_centre_square
    folder, state = _with_head(tiny_blip, tmp_path, 32, "imagereward", prefix="mlp.")
    torch.manual_seed(2)  # a head with larger weights than its initialisation, so that the image shows in the score
    torch.save({f"mlp.{k}": torch.randn_like(v) * 0.5 for k, v in state.items()}, folder / "model.pt")
    reward = scorer("imagereward", folder)
    size = reward.processor.image_processor.size["height"]
    wide = image_files[0]  # 48 x 40
    centre, squashed = tmp_path / "centre.png", tmp_path / "squashed.png"
    shorter_side_centre_square(Image.open(wide).convert("RGB"), size).save(centre)
    Image.open(wide).convert("RGB").resize((size, size), Image.Resampling.BICUBIC).save(squashed)
    scores = reward.score([wide, centre, squashed], [PROMPTS[0]] * 3)
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)
    assert abs(scores[0] - scores[2]) > 1e-4


def test_aesthetic_scores_the_image_alone(tiny_clip, image_files, tmp_path):
    folder, _ = _with_head(tiny_clip, tmp_path, 16, "aesthetic")  # the LAION .pth layout: layers.*
    aesthetic = scorer("aesthetic", folder)
    scores = aesthetic.score(image_files, None)
    assert np.allclose(scores, aesthetic.score(image_files, PROMPTS))
    assert len(set(np.round(scores, 6))) == 3


class NotATensor:
    pass


def test_head_files_are_loaded_with_weights_only(tiny_clip, tmp_path):
    folder = tmp_path / "unsafe"
    folder.mkdir()
    torch.save({"layers.0.weight": NotATensor()}, folder / "head.pt")
    with pytest.raises(InputError, match="weights_only=True"):
        load_reward_head(folder, 16)
    (folder / "head.pt").unlink()
    torch.save(reward_head(8).state_dict(), folder / "head.pt")
    with pytest.raises(InputError, match="16-wide"):
        load_reward_head(folder, 16)


def test_missing_or_wrong_weights_are_named(hub_cache, tiny_clip, tmp_path, image_files):
    # without --weights: the default Hub id, absent from the (empty, offline) cache: what to download is named
    with pytest.raises(InputError, match=r"--weights clipscore: repo openai/clip-vit-large-patch14 revision main "
                                         r"is not in the Hugging Face cache .*'aigciqa weights download openai/clip-vit-large-patch14'"):
        scorer("clipscore", None)
    with pytest.raises(InputError, match="config.json is missing"):
        scorer("clipscore", tmp_path)
    with pytest.raises(InputError, match="repo someone/absent revision main is not in the Hugging Face cache"):
        scorer("clipscore", "someone/absent")
    with pytest.raises(InputError, match="'aigciqa weights download aesthetic-head'"):
        scorer("aesthetic", tiny_clip)  # a CLIP folder without the MLP head: the default head, not cached
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: cannot decode the image"):
        scorer("clipscore", tiny_clip).score([image_files[0], broken], PROMPTS[:2])


def test_weights_by_hub_id_come_from_the_cache_with_their_commit(put_in_hub_cache, tiny_clip, image_files,
                                                                 tmp_path):
    local = scorer("clipscore", tiny_clip).score(image_files, PROMPTS)
    commit = put_in_hub_cache("test-org/tiny-clip", tiny_clip)
    by_id = scorer("clipscore", "test-org/tiny-clip")
    assert np.allclose(by_id.score(image_files, PROMPTS), local)
    record = by_id.weights_record()["model"]
    assert (record["repo_id"], record["commit"]) == ("test-org/tiny-clip", commit)
    assert set(record["files_sha256"]) >= {"config.json", "model.safetensors"}
    # no --weights: the method's default Hub id (here a tiny model laid out under that id)
    put_in_hub_cache("openai/clip-vit-large-patch14", tiny_clip)
    assert scorer("clipscore", None).weights_record()["model"]["repo_id"] == "openai/clip-vit-large-patch14"
    # a second part by Hub file spec: the aesthetic head
    torch.manual_seed(2)
    torch.save(reward_head(16).state_dict(), tmp_path / "head.pth")
    put_in_hub_cache("test-org/aesthetic-head", tmp_path / "head.pth")
    aesthetic = scorer("aesthetic", {"model": "test-org/tiny-clip", "head": "test-org/aesthetic-head:head.pth"})
    assert aesthetic.weights_record()["head"]["filename"] == "head.pth"
    assert np.isfinite(aesthetic.score(image_files, None)).all()


def test_pickscore_takes_its_processor_from_the_processor_part_when_the_folder_has_none(hub_cache, tiny_clip,
                                                                                       tmp_path, image_files):
    bare = tmp_path / "pickscore"
    shutil.copytree(tiny_clip, bare, ignore=shutil.ignore_patterns("preprocessor_config.json"))
    with pytest.raises(InputError, match="'aigciqa weights download pickscore-processor'"):
        scorer("pickscore", bare)
    scores = scorer("pickscore", {"model": bare, "processor": tiny_clip}).score(image_files, PROMPTS)
    assert np.allclose(scores, scorer("pickscore", tiny_clip).score(image_files, PROMPTS))


def test_blip_methods_read_at_most_35_prompt_tokens(tiny_blip, image_files):
    blip = scorer("blipscore", tiny_blip)
    long_prompts = ["a " * 60 + "cat"] * 3
    assert blip.inputs(image_files, long_prompts)["input_ids"].shape[1] == 35
    assert np.allclose(blip.score(image_files, long_prompts),
                       blip.score(image_files, ["a " * 60 + "dog"] * 3))  # the end is cut off
