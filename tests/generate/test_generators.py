"""Every generator entry on tiny weights: the real diffusers pipeline code runs, seeds reproduce."""

import json

import numpy as np
import pytest

from aigciqa.errors import InputError
from aigciqa.generate.base import png_bytes
from aigciqa.generate.registry import FAMILIES, PAPER_GENERATORS, load_config, resolve

TINY_FAMILIES = ("stable_diffusion", "controlnet", "dalle", "unidiffuser")


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_tiny_generator_is_deterministic_per_seed(name, tiny_config):
    generator = resolve(name, tiny_config, {"*": "tiny"}, "cpu")
    generator.check_weights()
    generator.load()
    first = generator.generate("a red bicycle", 7, f"images/{name}/0-1.png")
    again = generator.generate("a red bicycle", 7, f"images/{name}/0-1.png")
    other = generator.generate("a red bicycle", 8, f"images/{name}/0-2.png")
    assert first.image.size == (32, 32) and first.image.mode == "RGB"
    assert png_bytes(first.image) == png_bytes(again.image)
    assert png_bytes(first.image) != png_bytes(other.image)
    assert len(generator.weights_sha256) == 64
    recorded = generator.recorded()
    assert recorded["steps"] == 2 and recorded["scheduler"].endswith("Scheduler")


def test_tiny_weights_digest_is_stable_across_builds(tiny_config):
    a = resolve("stable_diffusion", tiny_config, {"*": "tiny"}, "cpu")
    b = resolve("stable_diffusion", tiny_config, {"*": "tiny"}, "cpu")
    a.load()
    b.load()
    assert a.weights_sha256 == b.weights_sha256


def test_controlnet_records_its_conditioning_image(tiny_config):
    generator = resolve("controlnet", tiny_config, {"*": "tiny"}, "cpu")
    generator.load()
    output = generator.generate("a red bicycle", 3, "images/controlnet/5-2.png")
    assert output.columns["conditioning"] == "conditioning/controlnet/5-2.png"
    assert set(output.files) == {"conditioning/controlnet/5-2.png"}
    assert "canny" in output.columns["conditioning_method"]
    from io import BytesIO

    from PIL import Image
    edges = np.asarray(Image.open(BytesIO(output.files["conditioning/controlnet/5-2.png"])))
    assert set(np.unique(edges)) <= {0, 255}


def test_generic_pipeline_loads_a_saved_folder(tmp_path, tiny_config):
    sd = resolve("stable_diffusion", tiny_config, {"*": "tiny"}, "cpu")
    sd.load()
    sd.pipeline.save_pretrained(tmp_path / "sd")
    config = {"generators": {"my_model": {"family": "diffusion_pipeline", "width": 32, "height": 32, "steps": 2}}}
    generic = resolve("my_model", config, {"my_model": str(tmp_path / "sd")}, "cpu")
    generic.check_weights()
    generic.load()
    assert png_bytes(generic.generate("a cat", 5, "x").image) == png_bytes(sd.generate("a cat", 5, "x").image)
    assert len(generic.weights_sha256) == 64
    # A folder of another pipeline type is refused before loading, naming both types.
    dalle = resolve("dalle", {}, {"dalle": str(tmp_path / "sd")}, "cpu")
    with pytest.raises(InputError, match="StableDiffusionPipeline; expected UnCLIPPipeline"):
        dalle.check_weights()


def test_missing_weights_folder_says_what_to_put_there(tmp_path):
    generator = resolve("stable_diffusion", {}, {"stable_diffusion": str(tmp_path / "none")}, "cpu")
    with pytest.raises(InputError, match="not found.*model_index.json"):
        generator.check_weights()
    # Without --weights a paper generator takes its default Hub repo; a family without one says what to give.
    assert resolve("unidiffuser", {}, {}, "cpu").weights == "thu-ml/unidiffuser-v1"
    with pytest.raises(InputError, match="no weights for generator 'lafite'.*--weights lafite=PATH"):
        resolve("lafite", {}, {}, "cpu")


def test_unknown_generator_suggests_the_closest_name():
    with pytest.raises(InputError, match="did you mean 'stable_diffusion'"):
        resolve("stable_difusion", {}, {"*": "tiny"}, "cpu")


@pytest.mark.parametrize("name", ["glide", "lafite"])
def test_glide_and_lafite_say_what_to_install(name, tmp_path):
    assert name in PAPER_GENERATORS and name in FAMILIES
    with pytest.raises(InputError, match="no tiny mode"):
        resolve(name, {}, {"*": "tiny"}, "cpu").check_weights()
    (tmp_path / "w").mkdir()
    with pytest.raises(InputError) as error:
        resolve(name, {}, {"*": str(tmp_path / "w")}, "cpu").check_weights()
    message = str(error.value)
    assert "github.com/openai/glide-text2im" in message if name == "glide" else "github.com/drboog/Lafite" in message


def test_config_file_toml_and_json(tmp_path):
    toml = tmp_path / "gen.toml"
    toml.write_text('seed = 3\n[generators.stable_diffusion]\nsteps = 4\nscheduler = "EulerDiscreteScheduler"\n')
    config = load_config(toml)
    generator = resolve("stable_diffusion", config, {"*": "tiny"}, "cpu")
    assert generator.settings["steps"] == 4 and generator.settings["width"] == 64  # tiny default kept
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"generators": {"stable_diffusion": {"steps": 0}}}))
    with pytest.raises(InputError, match="generators.stable_diffusion.steps"):
        load_config(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[generators.dalle]\ncanny_low = 5\n")
    with pytest.raises(InputError, match="does not apply to the dalle family"):
        resolve("dalle", load_config(wrong), {"*": "tiny"}, "cpu")


def test_unknown_scheduler_is_an_input_error(tiny_config):
    tiny_config["generators"]["stable_diffusion"]["scheduler"] = "EulerDiscrete"
    generator = resolve("stable_diffusion", tiny_config, {"*": "tiny"}, "cpu")
    with pytest.raises(InputError, match="did you mean EulerDiscreteScheduler"):
        generator.load()
