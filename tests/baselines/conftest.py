"""Tiny random transformers models of the baselines' classes, saved as local folders (no network)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
    folder = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "<unk>": 2}
    for code in range(33, 127):  # byte-level pieces: every character alone and word-final, no merges
        vocab.setdefault(chr(code), len(vocab))
        vocab.setdefault(chr(code) + "</w>", len(vocab))
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory) -> Path:
    import torch
    from transformers import (BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor,
                              BlipProcessor)
    from aigciqa.model.presets.tiny import tiny_vocab
    folder = tmp_path_factory.mktemp("tiny-blip")
    torch.manual_seed(0)
    vocab = tiny_vocab()
    config = BlipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, encoder_hidden_size=32, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=2, sep_token_id=3),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16, image_text_hidden_size=16)
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=BertTokenizer(vocab=vocab)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def image_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):
        path = folder / f"{k}.png"
        Image.fromarray(rng.integers(0, 256, (40 + 8 * k, 48, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def distorted_template(tmp_path_factory) -> Path:
    """A small content-disjoint database of distorted scikit-image photographs (224 px, split by_content)."""
    pytest.importorskip("skimage")
    from aigciqa.datasets.distortions import build_distortion_folder
    root = tmp_path_factory.mktemp("distorted") / "db"
    build_distortion_folder(root, sources={"train": ["astronaut", "camera", "brick"], "val": ["clock"],
                                           "test": ["coffee", "rocket"]},
                            distortions={"blur": 1.0, "noise": 0.9})
    return root


@pytest.fixture
def distorted(distorted_template, tmp_path) -> Path:
    """A fresh copy of the distorted-photograph database for one test."""
    return Path(shutil.copytree(distorted_template, tmp_path / "db"))
