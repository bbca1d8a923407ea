"""Small random-weight components for the diffusers pipelines, built in code (no download).

They let tests and ``aigciqa demo`` run the real pipeline code on a CPU in seconds. Sizes follow
diffusers' own unit tests (32-wide text encoders, 4/8-channel UNets, a VAE that halves the image).
Weights come from a fixed torch seed, so a tiny pipeline is identical on every build and its weights
digest (recorded in the manifest) is stable. Images made with them are noise: the card is marked
``synthetic`` and every row's ``weights`` column says ``tiny``.
"""

from __future__ import annotations

import contextlib
import hashlib

TINY_SEED = 0
TEXT_HIDDEN = 32
TEXT_POSITIONS = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte as a printable character."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(keep), 0
    for byte in range(256):
        if byte not in keep:
            keep.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def clip_tokenizer():
    """A CLIP tokenizer over single bytes (no merges): any prompt tokenizes, ids < 514."""
    from transformers import CLIPTokenizer
    alphabet = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(alphabet)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TEXT_POSITIONS)


def gpt2_tokenizer():
    from transformers import GPT2Tokenizer
    vocab = {c: i for i, c in enumerate(_bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = 256
    return GPT2Tokenizer(vocab=vocab, merges=[])


def clip_text_config(**overrides):
    from transformers import CLIPTextConfig
    settings = dict(bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=TEXT_HIDDEN,
                    intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
                    vocab_size=514, max_position_embeddings=TEXT_POSITIONS)
    settings.update(overrides)
    return CLIPTextConfig(**settings)


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' warnings about the tiny components themselves (a GPT-2 config whose default
    bos/eos ids lie outside the 257-token vocabulary, the image processor's backend): they concern
    random test weights, not the user's run."""
    from transformers.utils import logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _seeded():
    import torch
    torch.manual_seed(TINY_SEED)


def vae():
    from diffusers import AutoencoderKL
    _seeded()
    return AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         latent_channels=4, norm_num_groups=2)


def unet(size: int):
    from diffusers import UNet2DConditionModel
    _seeded()
    return UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=size // 2,
                                in_channels=4, out_channels=4, norm_num_groups=2,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_HIDDEN)


def scheduler():
    from diffusers import DDIMScheduler
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def stable_diffusion_components(size: int) -> dict:
    from transformers import CLIPTextModel
    _seeded()
    text_encoder = CLIPTextModel(clip_text_config())
    return dict(unet=unet(size), scheduler=scheduler(), vae=vae(), text_encoder=text_encoder,
                tokenizer=clip_tokenizer(), safety_checker=None, feature_extractor=None,
                requires_safety_checker=False)


def controlnet_model():
    from diffusers import ControlNetModel
    _seeded()
    return ControlNetModel(block_out_channels=(4, 8), layers_per_block=1, in_channels=4, norm_num_groups=2,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                           cross_attention_dim=TEXT_HIDDEN, conditioning_embedding_out_channels=(16, 32))


def unclip_components(size: int) -> dict:
    from diffusers import PriorTransformer, UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    from transformers import CLIPTextModelWithProjection
    _seeded()
    text_encoder = CLIPTextModelWithProjection(clip_text_config(projection_dim=TEXT_HIDDEN))
    _seeded()
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=TEXT_HIDDEN, num_layers=1)
    _seeded()
    text_proj = UnCLIPTextProjModel(clip_embeddings_dim=TEXT_HIDDEN, time_embed_dim=128, cross_attention_dim=100)
    _seeded()
    decoder = UNet2DConditionModel(
        sample_size=size // 2, in_channels=3, out_channels=6, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=100, attention_head_dim=4,
        resnet_time_scale_shift="scale_shift", class_embed_type="identity")
    super_res = {}
    for part in ("super_res_first", "super_res_last"):
        _seeded()
        super_res[part] = UNet2DModel(
            sample_size=size, layers_per_block=1, block_out_channels=(32, 64), in_channels=6, out_channels=3,
            down_block_types=("ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D"),
            up_block_types=("ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D"))
    return dict(prior=prior, decoder=decoder, text_proj=text_proj, text_encoder=text_encoder,
                tokenizer=clip_tokenizer(), **super_res,
                prior_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample",
                                                num_train_timesteps=1000, clip_sample_range=5.0),
                decoder_scheduler=UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon",
                                                  num_train_timesteps=1000),
                super_res_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="epsilon",
                                                    num_train_timesteps=1000))


def unidiffuser_components(size: int) -> dict:
    with _quiet_transformers():
        from diffusers import DPMSolverMultistepScheduler
        from diffusers.pipelines.deprecated.unidiffuser.modeling_text_decoder import UniDiffuserTextDecoder
        from diffusers.pipelines.deprecated.unidiffuser.modeling_uvit import UniDiffuserModel
        from transformers import CLIPImageProcessor, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection
        _seeded()
        text_encoder = CLIPTextModel(clip_text_config())
        _seeded()
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=TEXT_HIDDEN, projection_dim=TEXT_HIDDEN, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, image_size=32, patch_size=8))
        text_tokenizer = gpt2_tokenizer()
        _seeded()
        text_decoder = UniDiffuserTextDecoder(prefix_length=TEXT_POSITIONS, prefix_inner_dim=TEXT_HIDDEN,
                                              vocab_size=len(text_tokenizer), n_positions=128, n_embd=TEXT_HIDDEN,
                                              n_layer=1, n_head=2)
        _seeded()
        model = UniDiffuserModel(text_dim=TEXT_HIDDEN, clip_img_dim=TEXT_HIDDEN, num_text_tokens=TEXT_POSITIONS,
                                 num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                                 num_layers=2, norm_num_groups=2, sample_size=size // 2, patch_size=4,
                                 block_type="unidiffuser", pre_layer_norm=False, use_timestep_embedding=False,
                                 norm_type="layer_norm", ff_final_dropout=True, use_data_type_embedding=False)
        return dict(vae=vae(), text_encoder=text_encoder, image_encoder=image_encoder,
                    clip_image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                            crop_size={"height": 32, "width": 32}),
                    clip_tokenizer=clip_tokenizer(), text_decoder=text_decoder, text_tokenizer=text_tokenizer,
                    unet=model, scheduler=DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012,
                                                                      beta_schedule="scaled_linear",
                                                                      solver_order=3))


def weights_digest(pipeline) -> str:
    """sha256 over every parameter and buffer of the pipeline's torch modules (name order)."""
    import torch
    digest = hashlib.sha256()
    for name, component in sorted(pipeline.components.items()):
        if isinstance(component, torch.nn.Module):
            for key, tensor in sorted(component.state_dict().items()):
                digest.update(f"{name}.{key}".encode())
                digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()
