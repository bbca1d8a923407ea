"""Fixtures of the model tests: a tiny database folder with real PNG files."""

import io

import pytest

import numpy as np
import pandas as pd

from aigciqa.database import DatabaseFolder, default_card


def build_folder(root, n_prompts=8, per_prompt=4, seed=0, perspectives=("quality", "authenticity"),
                segments=True, write_images=True):
    """A tiny database folder: random 16x16 PNGs whose brightness sets a learnable MOS.

    Each prompt's images go to one split part (by prompt, like the real splits): 5 train, 1 val, 2 test
    prompts for the default 8.
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    prompts, images, mos, splits, files = [], [], [], [], {}
    parts = ["train"] * 5 + ["val"] + ["test"] * 2
    for p in range(n_prompts):
        pid = f"p{p}"
        prompts.append({"prompt_id": pid, "prompt": f"a photo of thing {p}", "category": "", "challenge": "",
                        "style": "photo" if segments else "", "content": f"thing {p}", "atmosphere": ""})
        for k in range(per_prompt):
            level = rng.uniform(0.1, 0.9)
            pixels = np.clip(rng.normal(level * 255, 30, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            path = DatabaseFolder.image_relpath("gen", pid, k + 1)
            if write_images:
                files[path] = buffer.getvalue()
            image_id = f"{pid}-{k}"
            images.append({"image_id": image_id, "path": path, "prompt_id": pid, "generator": "gen",
                           "sample": k + 1})
            row = {"image_id": image_id}
            for j, name in enumerate(perspectives):
                row[f"{name}_mos"] = 100 * level if j == 0 else 100 * (1 - level) * 0.5 + 20
            mos.append(row)
            splits.append({"image_id": image_id, "split1": parts[p % len(parts)]})
    card = default_card("tiny-test", perspectives=list(perspectives), synthetic=True)
    folder = DatabaseFolder(root)
    folder.write({"prompts": pd.DataFrame(prompts), "images": pd.DataFrame(images), "mos": pd.DataFrame(mos),
                  "splits": pd.DataFrame(splits)}, card=card, stage="test", files=files)
    return folder


@pytest.fixture
def make_folder():
    """The folder builder (a fixture, because tests import no helper modules under importlib mode)."""
    return build_folder


def add_labels_and_vqa(folder, seed=0):
    """labels.csv with random levels (every card question) and vqa.jsonl from build-vqa's templates."""
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
def make_vqa_folder(tmp_path):
    """A tiny folder with labels.csv and vqa.jsonl (416 template pairs for 32 images)."""
    def make(name="db", **kwargs):
        return add_labels_and_vqa(build_folder(tmp_path / name, **kwargs))
    return make


@pytest.fixture
def one_thread():
    """Tiny matrix products: a second thread only spins against other jobs (measured 40x slower under load)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
