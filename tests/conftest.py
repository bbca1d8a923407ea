import hashlib
import os
import shutil
import socket
import sys
import types
from pathlib import Path

import pytest

NO_NETWORK_DIR = Path(__file__).resolve().parent / "no_network"
sys.path.insert(0, str(NO_NETWORK_DIR))
import network_guard  # noqa: E402  (tests/no_network: shared with the subprocesses' sitecustomize)

# ../shared/data next to the checkout, or wherever AIGCIQA_SHARED_DATA points (a clone kept elsewhere).
SHARED_DATA = Path(os.environ.get("AIGCIQA_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture
def shared_data() -> Path:
    """The real published data in ../shared/data (see its README); skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set AIGCIQA_SHARED_DATA to its path)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test: a socket connect other than a local Unix socket raises NetworkBlockedError."""
    monkeypatch.setattr(socket.socket, "connect", network_guard.guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", network_guard.guarded_connect_ex)


@pytest.fixture(autouse=True)
def private_hash_cache(tmp_path, monkeypatch):
    """Every test (and its subprocesses) remembers file hashes in its own folder, never in ~/.cache."""
    monkeypatch.setenv("AIGCIQA_HASH_CACHE", str(tmp_path / "file-sha256.sqlite"))


@pytest.fixture
def offline_environment():
    """Environment for a subprocess that must not reach the network (same guard, and Hub offline mode)."""
    def make(**extra: str) -> dict:
        env = dict(os.environ, HF_HUB_OFFLINE="1", **extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NO_NETWORK_DIR), env.get("PYTHONPATH")]))
        return env
    return make


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face Hub cache at HF_HOME=tmp/hf/, in offline mode for this process (subprocesses
    get HF_HOME from the environment and offline mode from :func:`offline_environment`)."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as constants
    home = tmp_path / "hf"
    (home / "hub").mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


HUB_SMALL_FILE = 10_000   # below: a plain git blob (named by git sha1); above: a Git LFS file (named by sha256)


def hub_blob_name(file: Path) -> str:
    data = file.read_bytes()
    if len(data) < HUB_SMALL_FILE:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def put_in_hub_cache(hub_cache):
    """put(repo_id, folder_or_file, ref="main") -> commit: lays the files out as huggingface_hub does,
    ``models--ORG--NAME/blobs/<hash>``, ``snapshots/<commit>/<path>`` linking to the blobs, ``refs/<ref>``."""
    def put(repo_id: str, source: Path, ref: str = "main") -> str:
        source = Path(source)
        files = ({p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()}
                 if source.is_dir() else {source.name: source})
        commit = hashlib.sha1(repr(sorted((n, hub_blob_name(p)) for n, p in files.items())).encode()).hexdigest()
        repo = hub_cache / "hub" / ("models--" + repo_id.replace("/", "--"))
        for name, file in files.items():
            blob = repo / "blobs" / hub_blob_name(file)
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, blob)
            link = repo / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
        return commit
    return put


@pytest.fixture
def one_thread():
    """Tiny matrix products: a second thread only spins against other jobs (measured 40x slower under load)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Helpers of the VQA tests of several stages (model, baselines): fixtures, since tests import no helper modules.

def labels_and_vqa(folder, seed=0):
    """labels.csv with random levels (every card question) and vqa.jsonl from build-vqa's templates."""
    import numpy as np
    import pandas as pd
    from aigciqa.qa_builder.build import BuildOptions, build_vqa
    card = folder.read_card()
    images = folder.read_table("images")
    rng = np.random.default_rng(seed)
    labels = pd.DataFrame({"image_id": images["image_id"],
                           **{q["name"]: rng.integers(1, len(q["levels"]) + 1, len(images)) for q in card["questions"]}})
    folder.write({"labels": labels})
    build_vqa(folder, BuildOptions(use_llm=False, progress=False))
    return folder


@pytest.fixture
def add_labels_and_vqa():
    """labels_and_vqa(folder, seed=0) -> folder: random labels.csv and template vqa.jsonl added."""
    return labels_and_vqa


def save_tiny_vlm(kind: str, folder, *, chat_template: bool = True):
    """A tiny random vision-language model with its real processor, saved as the Hub's folders are
    (save_pretrained): ``instructblip`` (InstructBlipForConditionalGeneration: vision tower, Q-Former, 2-layer
    Llama; BlipImageProcessor, the LLM's and the Q-Former's tokenizers; no chat template, as published) or
    ``llava`` (LlavaForConditionalGeneration: a 1-layer CLIP vision tower, projector, 2-layer Llama;
    CLIPImageProcessor and, with ``chat_template``, LLaVA-1.5's "USER: <image>\\n... ASSISTANT:" template)."""
    import torch
    from transformers import BertTokenizer, LlamaConfig
    from aigciqa.model.presets.tiny import tiny_vocab
    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    tokenizer = BertTokenizer(vocab=vocab, eos_token="[SEP]")
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=vocab["[PAD]"], bos_token_id=vocab["[CLS]"], eos_token_id=vocab["[SEP]"])
    torch.manual_seed(5)
    if kind == "instructblip":
        from transformers import (BlipImageProcessor, InstructBlipConfig, InstructBlipForConditionalGeneration,
                                  InstructBlipProcessor, InstructBlipQFormerConfig, InstructBlipVisionConfig)
        vision = InstructBlipVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                          num_attention_heads=4, image_size=32, patch_size=16)
        qformer = InstructBlipQFormerConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                            num_attention_heads=4, encoder_hidden_size=32, vocab_size=len(vocab),
                                            max_position_embeddings=160)
        config = InstructBlipConfig(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                                    text_config=text.to_dict(), num_query_tokens=4, image_token_index=image_token)
        model = InstructBlipForConditionalGeneration(config)
        qformer_tokenizer = BertTokenizer(vocab=vocab)
        processor = InstructBlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer,
                                          qformer_tokenizer, num_query_tokens=4)
    elif kind == "llava":
        from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration,
                                  LlavaProcessor)
        vision = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4,
                                  image_size=32, patch_size=16, projection_dim=32)
        config = LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                             image_token_index=image_token, vision_feature_layer=-1,
                             vision_feature_select_strategy="default")
        model = LlavaForConditionalGeneration(config)
        template = ("{% for message in messages %}{% if message['role'] == 'user' %}USER: {% for item in "
                    "message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}"
                    "{% endif %}{% endfor %} {% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:"
                    "{% endif %}") if chat_template else None
        processor = LlavaProcessor(CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                                   tokenizer, patch_size=16, vision_feature_select_strategy="default",
                                   chat_template=template, num_additional_image_tokens=1)
    else:
        raise ValueError(kind)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


@pytest.fixture
def tiny_vlm():
    """save_tiny_vlm(kind, folder, chat_template=True) -> folder."""
    return save_tiny_vlm
def write_tiny_clip(folder: Path, *, image_size: int = 32, patch_size: int = 8, vision_layers: int = 2,
                    seed: int = 0) -> Path:
    """A random CLIPModel with tokenizer and image processor, saved as ``save_pretrained`` writes it."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
    torch.manual_seed(seed)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "<unk>": 2}
    for code in range(33, 127):  # byte-level pieces: every character alone and word-final, no merges
        vocab.setdefault(chr(code), len(vocab))
        vocab.setdefault(chr(code) + "</w>", len(vocab))
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=vision_layers,
                           num_attention_heads=2, image_size=image_size, patch_size=patch_size),
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return Path(folder)


def write_tiny_blip(folder: Path, *, image_size: int = 32, patch_size: int = 8, vision_layers: int = 2,
                    text_positions: int = 64, seed: int = 0) -> Path:
    """A random BlipForImageTextRetrieval with its processor (BERT tokenizer), saved as ``save_pretrained`` does."""
    import torch
    from transformers import (BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor,
                              BlipProcessor)
    from aigciqa.model.presets.tiny import tiny_vocab
    torch.manual_seed(seed)
    vocab = tiny_vocab()
    config = BlipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, encoder_hidden_size=32, max_position_embeddings=text_positions,
                         pad_token_id=0, bos_token_id=2, sep_token_id=3),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=vision_layers,
                           num_attention_heads=2, image_size=image_size, patch_size=patch_size),
        projection_dim=16, image_text_hidden_size=16)
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}),
                  tokenizer=BertTokenizer(vocab=vocab)).save_pretrained(folder)
    return Path(folder)


@pytest.fixture(scope="session")
def tiny_image_text():
    """Writers of tiny random CLIP and BLIP folders of the published classes and layout (the baselines' and
    the clip/blip presets' tests): ``.clip(folder, image_size=..., ...)``, ``.blip(folder, ...)``."""
    pytest.importorskip("transformers")
    return types.SimpleNamespace(clip=write_tiny_clip, blip=write_tiny_blip)
