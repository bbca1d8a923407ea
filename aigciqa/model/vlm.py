"""Zero-shot vision-language models (paper Table VIII: InstructBLIP, LLaVA) answering the rating questions.

``--vlm`` takes a transformers model folder or a Hub spec ``ORG/NAME[@REVISION]`` (resolved through
:mod:`aigciqa.weights`: the Hub cache, ``HF_HUB_OFFLINE``). Its class comes from its config: any model type
that ``AutoModelForImageTextToText`` maps (InstructBlipForConditionalGeneration, LlavaForConditionalGeneration,
LLaVA-NeXT, Qwen2-VL, PaliGemma, ...). The question becomes the model's own prompt: its processor's chat
template when it has one (llava-hf's LLaVA-1.5 writes "USER: <image>\\n... ASSISTANT:"), else the prompt
its model card documents (:data:`PLAIN_PROMPTS`); a model with neither is refused rather than guessed at.
Answers are generated greedily with the decoding MINT-IQA's explanations use (:mod:`.explain`), so the
two are compared on equal terms.

Imports torch and transformers inside the functions only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from aigciqa.database.images import open_image
from aigciqa.errors import InputError
from aigciqa.weights.resolve import Resolved, resolve

WHERE = ("a transformers vision-language model folder (config.json, weights, tokenizer and processor files, as "
         "save_pretrained writes them)")
# The documented prompt of models whose processors ship no chat template ({question}: the question).
PLAIN_PROMPTS = {
    "instructblip": "{question}",  # InstructBLIP: the bare instruction (its model card, Salesforce/instructblip-*)
    "blip-2": "Question: {question} Answer:",  # BLIP-2's VQA prompt (its model card)
    "llava": "USER: <image>\n{question} ASSISTANT:",  # LLaVA-1.5 (llava-hf's model card)
}


def supported_types() -> dict[str, str]:
    """model_type -> class name of the vision-language models that transformers generates text with."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    return dict(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)


@dataclass
class VisionLanguageModel:
    """A loaded zero-shot VLM: model (eval, frozen), processor and how a question becomes its prompt."""
    model: object
    processor: object
    model_type: str
    class_name: str
    source: Resolved

    @property
    def label(self) -> str:
        """How reports name it: the Hub repo id (with the resolved commit), else the folder."""
        if self.source.repo_id:
            return f"{self.source.repo_id}@{self.source.commit[:12]}" if self.source.commit else self.source.repo_id
        return str(self.source.path.resolve())

    def record(self) -> dict:
        """Provenance for a report: class, spec, path, repo id, revision and commit (no file hashes: a 7B
        model's 14 GB are not read again for every evaluation)."""
        return {"class": self.class_name, **self.source.record(with_hashes=False)}

    def prompt(self, question: str) -> str:
        template = getattr(self.processor, "chat_template", None)
        if template:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return PLAIN_PROMPTS[self.model_type].format(question=question)

    def answer(self, image_paths: list[Path], questions: list[str], max_new_tokens: int,
               repetition_penalty: float = 1.0) -> list[str]:
        """Greedy answers, one per (image, question) pair."""
        import torch
        images = [open_image(path) for path in image_paths]
        inputs = self.processor(images=images, text=[self.prompt(q) for q in questions], padding=True,
                                return_tensors="pt")
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        tokenizer = self.processor.tokenizer
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*repetition_penalty.*")
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                      repetition_penalty=repetition_penalty, pad_token_id=tokenizer.pad_token_id)
        if not self.encoder_decoder:  # a decoder-only LLM returns the prompt before the answer
            out = out[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in tokenizer.batch_decode(out, skip_special_tokens=True)]

    @property
    def encoder_decoder(self) -> bool:
        config = self.model.config
        return bool(getattr(getattr(config, "text_config", None) or config, "is_encoder_decoder", False))


def load_vlm(spec: str, *, device: str = "cpu") -> VisionLanguageModel:
    """Resolve and load ``--vlm``; InputError (exit 2) for missing weights (naming the download command), a
    folder that is not a model, or a class that cannot answer questions about an image."""
    source = resolve(spec, what="--vlm", hint=WHERE)
    folder = source.path
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise InputError(f"not a transformers model folder (config.json is missing): {WHERE}", file=str(folder))
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"cannot read the model config: {str(error).splitlines()[0]}", file=str(folder)) from None
    types = supported_types()
    model_type = config.model_type
    class_name = (getattr(config, "architectures", None) or [types.get(model_type, type(config).__name__)])[0]
    if model_type not in types:
        raise InputError(f"{class_name} ({model_type}) is not a vision-language model that generates text "
                         "(AutoModelForImageTextToText); e.g. InstructBlipForConditionalGeneration or "
                         "LlavaForConditionalGeneration", file=str(folder / "config.json"))
    try:
        processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot load the processor of {class_name}: {str(error).splitlines()[0]}",
                         file=str(folder)) from None
    if not getattr(processor, "chat_template", None) and model_type not in PLAIN_PROMPTS:
        raise InputError(f"{class_name} has no chat template and no documented plain prompt here "
                         f"(known: {', '.join(sorted(PLAIN_PROMPTS))}): add chat_template.json to the folder",
                         file=str(folder))
    fill_processor(processor, config)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise InputError(f"the processor of {class_name} has no tokenizer", file=str(folder))
    tokenizer.padding_side = "left"  # a batch of prompts ends where generation starts
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Half precision on a GPU (a 7B model: 14 GB instead of 28); float32 on the CPU.
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        model = AutoModelForImageTextToText.from_pretrained(str(folder), local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"cannot load {class_name}: {str(error).splitlines()[0]} ({WHERE})",
                         file=str(folder)) from None
    model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return VisionLanguageModel(model, processor, model_type, class_name, source)


# Processor fields that older Hub folders lack (saved before transformers moved image-token expansion into
# the processor), and where the model's config holds the value.
PROCESSOR_FIELDS = {"num_query_tokens": ("num_query_tokens",), "patch_size": ("vision_config", "patch_size"),
                    "vision_feature_select_strategy": ("vision_feature_select_strategy",)}


def fill_processor(processor, config) -> None:
    """Give the processor the fields it has as None from the model's config (e.g. InstructBLIP's
    ``num_query_tokens``: without it no image token is inserted)."""
    for name, path in PROCESSOR_FIELDS.items():
        if hasattr(processor, name) and getattr(processor, name) is None:
            value = config
            for part in path:
                value = getattr(value, part, None)
            if value is not None:
                setattr(processor, name, value)
