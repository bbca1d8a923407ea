"""GPU check with random-weight full-size models: what one GPU does with the paper's shapes, no network.

A GPU machine lent to this project has no network and no real weights, so every model is built from
its published configuration with random weights (speed and memory do not depend on the values):

1. Stable Diffusion 1.5 shapes (UNet2DConditionModel 320-640-1280-1280, AutoencoderKL, CLIP ViT-L/14 text
   encoder) in a diffusers StableDiffusionPipeline, fp16, 512x512, 50 steps, guidance 7.5: images/s and
   peak GPU memory.
2. The `paper` preset's shapes: InstructBLIP's vision tower (EVA-CLIP ViT-g/14: 39 layers, width 1408)
   + its Q-Former (12 layers, 32 queries, the instruction as text input) + a 3-perspective regression
   head; one training step (forward, L1 loss, backward, Adam) at batch 8 in fp32 with the lowest
   floor(rate x 39) vision blocks frozen, fix rates 1.0, 0.7 and 0.5: peak GPU memory against the
   paper's Table XII (9.5 / 17.6 / 22.3 GB).
3. Stage 2 shapes: the same tower and Q-Former, InstructBLIP's language projection and a 7B Llama
   (Vicuna-7B: 32 layers, width 4096) in bf16, frozen; one step of the language-model loss on the
   answer tokens with gradients into the Q-Former and the projection. Skipped (and said so) when it
   does not fit.

4. The boundary cache (docs/model.md) on the `paper` preset's shapes at fix rate 0.7 (27 of 39 blocks frozen):
   aigciqa's own scorer (``MintIQA`` on the same tower and Q-Former, ``apply_fix_rate``) and cache
   (``BoundaryCache``: safetensors shards on disk, read memory-mapped), one training step at batch 8 with
   and without the cache, alternated step by step: median step time and peak GPU memory of each, the
   fill's time per image and the cache's bytes per image.

Parts 1-3 use only public transformers/diffusers classes, so they do not depend on aigciqa's model code;
part 4 measures aigciqa's cache path itself.
Writes benchmarks/RESULTS-gpu.md (or --out). ``--dry-run`` runs the same code on the CPU with tiny
shapes (the test suite runs it) and writes its report to the temporary folder unless --out is given.

    bash benchmarks/gpu_check.sh            # on the GPU machine, < 8 minutes on one 80 GB GPU
    python benchmarks/gpu_check.py --dry-run --out /tmp/RESULTS-gpu.md
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import traceback
from pathlib import Path

PAPER_TABLE_XII_GB = {1.0: 9.5, 0.7: 17.6, 0.5: 22.3}
BATCH = 8            # the paper's batch size
NUM_QUERIES = 32
INSTRUCTION = "Rate the quality of this image generated from the prompt: a red bicycle leaning on a wall at sunset."


class Device:
    """Where the check runs, and its peak-memory counter (GPU) or none (CPU dry run)."""

    def __init__(self, dry_run: bool, cpu: bool = False):
        import torch
        self.torch = torch
        self.cuda = torch.cuda.is_available() and not (dry_run or cpu)  # cpu: full shapes on the CPU
        self.name = torch.cuda.get_device_name(0) if self.cuda else f"CPU ({platform.processor() or 'dry run'})"
        self.device = torch.device("cuda" if self.cuda else "cpu")

    def reset(self) -> None:
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def peak_gb(self) -> float | None:
        return self.torch.cuda.max_memory_allocated() / 1e9 if self.cuda else None

    def is_oom(self, error: BaseException) -> bool:
        return isinstance(error, self.torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def gb(value: float | None) -> str:
    return "n/a (CPU)" if value is None else f"{value:.1f} GB"


# ---- 1. Stable Diffusion 1.5 shapes -------------------------------------------------------------
def stable_diffusion(dev: Device, dry_run: bool) -> dict:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    from aigciqa.generate.tiny import clip_tokenizer   # a byte-level CLIP tokenizer built in code (no files)
    if dry_run:
        size, steps, images = 32, 2, 2
        unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, cross_attention_dim=16,
                                    attention_head_dim=2, norm_num_groups=4, sample_size=size // 8,
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
        vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=4, latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        text = CLIPTextConfig(vocab_size=49408, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, max_position_embeddings=77)
    else:
        size, steps, images = 512, 50, 4
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD 1.5's
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            sample_size=512,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        text = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
    dtype = torch.float16 if dev.cuda else torch.float32
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipeline = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=CLIPTextModel(text), tokenizer=clip_tokenizer(),
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False).to(dev.device, dtype)
    pipeline.set_progress_bar_config(disable=True)
    params = sum(p.numel() for p in unet.parameters()) / 1e6

    def make(seed: int):
        return pipeline(prompt="a red bicycle leaning on a wall at sunset", height=size, width=size,
                        num_inference_steps=steps, guidance_scale=7.5, output_type="np",
                        generator=torch.Generator("cpu").manual_seed(seed)).images

    make(0)  # warm-up (kernels, allocator)
    dev.reset()
    dev.sync()
    started = time.perf_counter()
    for seed in range(1, images + 1):
        out = make(seed)
    dev.sync()
    seconds = time.perf_counter() - started
    assert out.shape == (1, size, size, 3) and math.isfinite(float(out.mean()))
    return {"size": size, "steps": steps, "images": images, "images_per_s": images / seconds,
            "s_per_image": seconds / images, "peak_gb": dev.peak_gb(), "unet_params_m": params,
            "dtype": str(dtype).replace("torch.", "")}


# ---- 2./3. the paper preset's shapes ------------------------------------------------------------
def paper_configs(dry_run: bool):
    from transformers import InstructBlipQFormerConfig, InstructBlipVisionConfig, LlamaConfig
    if dry_run:
        vision = InstructBlipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                          num_attention_heads=4, image_size=28, patch_size=14)
        qformer = InstructBlipQFormerConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, encoder_hidden_size=32, vocab_size=30522)
        llm = LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=4)
    else:  # InstructBLIP Vicuna-7B's published configuration
        vision = InstructBlipVisionConfig()          # ViT-g/14: 39 layers, width 1408, 224 px
        qformer = InstructBlipQFormerConfig()        # 12 layers, width 768, cross-attention every 2nd layer
        llm = LlamaConfig(vocab_size=32001, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                          num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048)
    return vision, qformer, llm


def build_encoder(dev: Device, dry_run: bool):
    """Vision tower + Q-Former + learned queries + a 3-perspective head, fp32, on the device."""
    import torch
    from transformers import InstructBlipQFormerModel, InstructBlipVisionModel
    vision_config, qformer_config, _ = paper_configs(dry_run)
    torch.manual_seed(0)
    with dev.device:  # initialised on the device: a billion random values are drawn in well under a second
        vision = InstructBlipVisionModel(vision_config)
        qformer = InstructBlipQFormerModel(qformer_config)
        queries = torch.nn.Parameter(torch.randn(1, NUM_QUERIES, qformer_config.hidden_size) * 0.02)
        head = torch.nn.Linear(qformer_config.hidden_size, 3)
    return vision, qformer, queries, head, vision_config, qformer_config


def freeze(vision, rate: float) -> int:
    """Freeze the patch embedding and the lowest floor(rate x layers) blocks (rate 1: the whole tower)."""
    layers = vision.encoder.layers
    count = min(len(layers), int(math.floor(rate * len(layers) + 1e-9)))
    for module in [vision.embeddings, *layers[:count]] + ([vision.post_layernorm] if count == len(layers) else []):
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return count


def q_former_tokens(vision, qformer, queries, pixels, instruction):
    """The Q-Former's query outputs for images and an instruction (InstructBLIP's forward up to the queries)."""
    import torch
    image = vision(pixel_values=pixels).last_hidden_state
    batch = len(pixels)
    query_mask = torch.ones(batch, queries.shape[1], dtype=torch.long, device=image.device)
    out = qformer(input_ids=instruction["input_ids"],
                  attention_mask=torch.cat([query_mask, instruction["attention_mask"]], dim=1),
                  query_embeds=queries.expand(batch, -1, -1), encoder_hidden_states=image,
                  encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long, device=image.device))
    return out.last_hidden_state[:, : queries.shape[1]]


def instruction_batch(dev: Device, qformer_config, batch: int, length: int = 32) -> dict:
    import torch
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, qformer_config.vocab_size, (batch, length), generator=generator)
    return {"input_ids": ids.to(dev.device), "attention_mask": torch.ones_like(ids).to(dev.device)}


def encoder_step(dev: Device, dry_run: bool, rate: float) -> dict:
    import torch
    from aigciqa.model.loop import adam_kernel
    vision, qformer, queries, head, vision_config, qformer_config = build_encoder(dev, dry_run)
    frozen = freeze(vision, rate)
    trainable = [p for m in (vision, qformer, head) for p in m.parameters() if p.requires_grad] + [queries]
    optimizer = torch.optim.Adam(trainable, lr=1e-5, **adam_kernel(trainable))
    pixels = torch.randn(BATCH, 3, vision_config.image_size, vision_config.image_size, device=dev.device)
    instruction = instruction_batch(dev, qformer_config, BATCH)
    target = torch.rand(BATCH, 3, device=dev.device)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        tokens = q_former_tokens(vision, qformer, queries, pixels, instruction)
        loss = torch.nn.functional.l1_loss(head(tokens.mean(dim=1)), target)
        loss.backward()
        optimizer.step()
        return loss.item()

    step()  # the first step allocates Adam's state: the peak is measured on the second
    dev.reset()
    dev.sync()
    started = time.perf_counter()
    loss = step()
    dev.sync()
    result = {"rate": rate, "frozen": f"{frozen}/{len(vision.encoder.layers)}", "peak_gb": dev.peak_gb(),
              "step_s": time.perf_counter() - started, "loss_finite": math.isfinite(loss),
              "trainable_m": sum(p.numel() for p in trainable) / 1e6,
              "total_m": sum(p.numel() for m in (vision, qformer, head) for p in m.parameters()) / 1e6}
    del vision, qformer, queries, head, optimizer
    return result


def stage2_step(dev: Device, dry_run: bool) -> dict:
    """Frozen 7B-shaped Llama in bf16 fed [projected queries; instruction; answer]: LM loss on the answer,
    gradients into the Q-Former, the queries and the language projection (vision tower frozen)."""
    import torch
    from aigciqa.model.loop import adam_kernel
    from transformers import LlamaForCausalLM
    vision, qformer, queries, _, vision_config, qformer_config = build_encoder(dev, dry_run)
    freeze(vision, 1.0)
    _, _, llm_config = paper_configs(dry_run)
    dtype = torch.bfloat16
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)   # build the 7B model directly in bf16 (13.5 GB, not 27 GB in fp32 first)
    try:
        with dev.device:
            llm = LlamaForCausalLM(llm_config)
    finally:
        torch.set_default_dtype(previous)
    llm.requires_grad_(False)
    llm.gradient_checkpointing_enable()   # what a 7B stage-2 step on one GPU uses; activations recomputed
    llm.config.use_cache = False
    projection = torch.nn.Linear(qformer_config.hidden_size, llm_config.hidden_size).to(dev.device)
    trainable = [p for p in qformer.parameters()] + [queries] + list(projection.parameters())
    optimizer = torch.optim.Adam(trainable, lr=1e-5, **adam_kernel(trainable))
    pixels = torch.randn(BATCH, 3, vision_config.image_size, vision_config.image_size, device=dev.device)
    instruction = instruction_batch(dev, qformer_config, BATCH)
    generator = torch.Generator().manual_seed(2)
    text = torch.randint(2, llm_config.vocab_size, (BATCH, 64), generator=generator).to(dev.device)
    answer_start = 48   # instruction 48 tokens, answer 16

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        tokens = q_former_tokens(vision, qformer, queries, pixels, instruction)
        with torch.autocast(dev.device.type, dtype=dtype):
            prefix = projection(tokens).to(dtype)
            embeds = torch.cat([prefix, llm.get_input_embeddings()(text)], dim=1)
            labels = torch.full(embeds.shape[:2], -100, dtype=torch.long, device=dev.device)
            labels[:, prefix.shape[1] + answer_start:] = text[:, answer_start:]
            loss = llm(inputs_embeds=embeds, labels=labels).loss
        loss.backward()
        optimizer.step()
        return loss.item()

    step()
    dev.reset()
    dev.sync()
    started = time.perf_counter()
    loss = step()
    dev.sync()
    return {"peak_gb": dev.peak_gb(), "step_s": time.perf_counter() - started, "loss_finite": math.isfinite(loss),
            "llm_params_b": sum(p.numel() for p in llm.parameters()) / 1e9,
            "trainable_m": sum(p.numel() for p in trainable) / 1e6}


# ---- 4. the boundary cache on the paper preset's shapes ----------------------------------------
CACHE_RATE = 0.7       # the paper's best fix rate (Table XII)
CACHE_BATCHES = 2      # images cached: CACHE_BATCHES x BATCH
CACHE_STEPS = 5        # measured steps of each kind (alternated), after one warm-up step of each


def boundary_cache_step(dev: Device, dry_run: bool, measured_steps: int = CACHE_STEPS) -> dict:
    """One training step of aigciqa's scorer with the paper's shapes at fix rate 0.7, on the boundary cache
    (activations of the frozen steps read from safetensors shards on disk) and without it (pixels through
    the whole tower), alternated step by step on the same model: median step time and peak memory of each."""
    import statistics
    import tempfile
    import torch
    from aigciqa.model.loop import adam_kernel
    from aigciqa.model.boundary_cache import BoundaryCache, BoundaryKey, steps_weights_sha256
    from aigciqa.model.network import MintIQA, apply_fix_rate, frozen_step_count, run_vision_steps
    vision, qformer, _, _, vision_config, qformer_config = build_encoder(dev, dry_run)
    model = MintIQA(vision, qformer, num_queries=NUM_QUERIES, perspectives=["quality", "authenticity", "correspondence"])
    model.to(dev.device).train()
    frozen = apply_fix_rate(model, CACHE_RATE)
    steps = frozen_step_count(model.vision)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-5, **adam_kernel(trainable))
    size = vision_config.image_size
    images = CACHE_BATCHES * BATCH
    pixels = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(3))
    instruction = instruction_batch(dev, qformer_config, BATCH)
    target = torch.rand(BATCH, 3, device=dev.device)
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        key = BoundaryKey(preset="paper (random weights)", steps=steps, image_size=size, mean=(), std=(),
                          precision="no", weights_sha256=steps_weights_sha256(model.vision, steps))
        key_seconds = time.perf_counter() - started
        cache = BoundaryCache(root, key)
        dev.sync()
        started = time.perf_counter()
        for start in range(0, images, BATCH):  # the fill: the frozen steps once per image, stored
            with torch.no_grad():
                activations = run_vision_steps(model.vision, pixels[start:start + BATCH].to(dev.device), 0, steps)
            cache.add({f"image-{start + k}": tensor.cpu() for k, tensor in enumerate(activations)})
        dev.sync()
        fill_seconds = time.perf_counter() - started
        cache_bytes = sum(f.stat().st_size for f in cache.directory.glob("shard-*.safetensors"))

        def step(index: int, cached: bool) -> float:
            rows = range((index % CACHE_BATCHES) * BATCH, (index % CACHE_BATCHES + 1) * BATCH)
            optimizer.zero_grad(set_to_none=True)
            if cached:  # what training reads: the shards (memory-mapped), stacked and moved to the device
                boundary = torch.stack([cache.get(f"image-{r}") for r in rows]).to(dev.device)
                outputs = model(instruction["input_ids"], instruction["attention_mask"], boundary=(steps, boundary))
            else:
                outputs = model(instruction["input_ids"], instruction["attention_mask"],
                                pixel_values=pixels[rows.start:rows.stop].to(dev.device))
            loss = torch.nn.functional.l1_loss(outputs, target)
            loss.backward()
            optimizer.step()
            return loss.item()

        peaks, times, cpu_times = {}, {True: [], False: []}, {True: [], False: []}
        for cached in (False, True):  # warm-up (Adam's state, kernels), then the peak of one step of each kind
            step(0, cached)
            dev.reset()
            step(1, cached)
            dev.sync()
            peaks[cached] = dev.peak_gb()
        for index in range(2 * measured_steps):  # alternated: both kinds see the same state of the machine
            cached = index % 2 == 1
            dev.sync()
            started, cpu = time.perf_counter(), time.process_time()
            loss = step(index // 2, cached)
            dev.sync()
            times[cached].append(time.perf_counter() - started)
            cpu_times[cached].append(time.process_time() - cpu)  # what a CPU run costs, whatever else runs
        assert math.isfinite(loss)
    plain, on_cache = statistics.median(times[False]), statistics.median(times[True])
    return {"frozen": f"{frozen}/{len(vision.encoder.layers)}", "steps": steps, "step_plain": plain,
            "step_cached": on_cache, "speed_up": plain / on_cache, "peak_plain": peaks[False],
            "step_cpu_plain": statistics.median(cpu_times[False]), "step_cpu_cached": statistics.median(cpu_times[True]),
            "peak_cached": peaks[True], "fill_per_image": fill_seconds / images, "key_s": key_seconds,
            "bytes_per_image": cache_bytes / images, "images": images}


# ---- report ------------------------------------------------------------------------------------
def attempt(dev: Device, name: str, function, *args) -> tuple[dict | None, str]:
    """(result, '') or (None, why it did not run): an out-of-memory is a finding, not a crash."""
    started = time.perf_counter()
    try:
        result = function(*args)
        print(f"{name}: done in {time.perf_counter() - started:.0f} s: {result}", flush=True)
        return result, ""
    except Exception as error:  # noqa: BLE001 - each part reports its own failure and the rest still runs
        why = ("did not fit in GPU memory" if dev.is_oom(error) else
               f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        print(f"{name}: {why}", flush=True)
        traceback.print_exc()
        return None, why
    finally:
        dev.reset()


def report(dev: Device, dry_run: bool, sd, sd_why, encoder, stage2, stage2_why, seconds: float,
           cache=None, cache_why: str = "") -> str:
    import diffusers
    import torch
    import transformers
    mode = "DRY RUN on the CPU with tiny shapes: these figures say nothing about a GPU" if dry_run else \
        "random-weight full-size models"
    lines = ["# GPU check", "",
             f"Written by `bash benchmarks/gpu_check.sh` ({mode}) on **{dev.name}**, torch {torch.__version__}, "
             f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, Python "
             f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; whole check "
             f"{seconds:.0f} s. Weights are random (no network, no real checkpoints): speed and memory depend on "
             "the shapes, not on the values.", "",
             "## Stable Diffusion 1.5 shapes (diffusers StableDiffusionPipeline)", ""]
    if sd:
        lines += ["| size | steps | guidance | dtype | UNet params | images | images/s | s/image | peak memory |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| {sd['size']} px | {sd['steps']} | 7.5 (batch 2) | {sd['dtype']} | {sd['unet_params_m']:.0f} M | "
                  f"{sd['images']} | {sd['images_per_s']:.3f} | {sd['s_per_image']:.2f} | {gb(sd['peak_gb'])} |"]
    else:
        lines.append(f"Not measured: {sd_why}.")
    lines += ["", "## The `paper` preset's shapes: ViT-g/14 + Q-Former training step (Table XII)", "",
              f"Batch {BATCH}, fp32, Adam, {NUM_QUERIES} queries, instruction of 32 tokens; the lowest floor(rate x "
              "39) vision blocks frozen.", "",
              "| fix rate | frozen blocks | trainable params | peak memory | paper (Table XII) | ratio | step |",
              "|---|---|---|---|---|---|---|"]
    for rate in PAPER_TABLE_XII_GB:
        result, why = encoder[rate]
        paper = PAPER_TABLE_XII_GB[rate]
        if result is None:
            lines.append(f"| {rate} | | | {why} | {paper} GB | | |")
            continue
        ratio = "" if result["peak_gb"] is None else f"{result['peak_gb'] / paper:.2f}"
        lines.append(f"| {rate} | {result['frozen']} | {result['trainable_m']:.0f} M of {result['total_m']:.0f} M | "
                     f"{gb(result['peak_gb'])} | {paper} GB | {ratio} | {result['step_s']:.2f} s |")
    lines += ["", "The paper's setting (precision, framework, what else was on the GPU) is not stated beyond the "
              "fix rate; the ratio compares the same architecture and batch, not the same code.", "",
              "## Stage 2 shapes: Q-Former + 7B Llama (Vicuna-7B) in bf16", ""]
    if stage2:
        lines += ["| LLM params | trainable (Q-Former, queries, projection) | peak memory | step |", "|---|---|---|---|",
                  f"| {stage2['llm_params_b']:.2f} B (frozen, bf16, gradient checkpointing) | "
                  f"{stage2['trainable_m']:.0f} M | {gb(stage2['peak_gb'])} | {stage2['step_s']:.2f} s |"]
    else:
        lines.append(f"Not measured: {stage2_why}.")
    lines += ["", f"## Boundary cache on the `paper` preset's shapes (fix rate {CACHE_RATE})", ""]
    if cache:
        lines += [f"aigciqa's scorer (`MintIQA`, `apply_fix_rate`) on the tower and Q-Former above, fp32, Adam, batch "
                  f"{BATCH}; {cache['frozen']} blocks frozen, so the cache holds the output of the first "
                  f"{cache['steps']} steps (patch embedding and frozen blocks) for {cache['images']} images in "
                  "`BoundaryCache` safetensors shards on disk, read memory-mapped and moved to the GPU each step. "
                  f"Median of {CACHE_STEPS} steps of each kind, alternated; peak memory of one step of each after a "
                  "warm-up step.", "",
                  "| | step | peak memory |", "|---|---|---|",
                  f"| without the cache (pixels through the whole tower) | {cache['step_plain']:.3f} s | "
                  f"{gb(cache['peak_plain'])} |",
                  f"| with the cache (trainable blocks on stored activations) | {cache['step_cached']:.3f} s | "
                  f"{gb(cache['peak_cached'])} |", "",
                  f"Speed-up per step: **{cache['speed_up']:.2f}x**. Filling the cache: {cache['fill_per_image']:.3f} s "
                  f"per image (once); hashing the frozen weights for its key: {cache['key_s']:.1f} s (once per run); "
                  f"{cache['bytes_per_image']:,.0f} bytes per image on disk."]
    else:
        lines.append(f"Not measured: {cache_why}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes: checks the script, not a GPU")
    parser.add_argument("--out", type=Path, help="the report (default: benchmarks/RESULTS-gpu.md; a dry run's "
                                                 "goes to the temporary folder, never over the GPU figures)")
    parser.add_argument("--skip", action="append", default=[], choices=["sd", "encoder", "stage2", "cache"])
    args = parser.parse_args(argv)
    if args.out is None:
        import tempfile
        args.out = (Path(tempfile.gettempdir()) / "RESULTS-gpu-dry-run.md" if args.dry_run
                    else Path(__file__).resolve().parent / "RESULTS-gpu.md")
    import torch
    torch.manual_seed(0)
    dev = Device(args.dry_run)
    if not dev.cuda and not args.dry_run:
        print("no CUDA GPU: run on a GPU machine, or use --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    started = time.perf_counter()
    sd, sd_why = (None, "skipped (--skip sd)") if "sd" in args.skip else \
        attempt(dev, "stable diffusion", stable_diffusion, dev, args.dry_run)
    encoder = {rate: ((None, "skipped") if "encoder" in args.skip else
                      attempt(dev, f"encoder fix rate {rate}", encoder_step, dev, args.dry_run, rate))
               for rate in PAPER_TABLE_XII_GB}
    stage2, stage2_why = (None, "skipped (--skip stage2)") if "stage2" in args.skip else \
        attempt(dev, "stage 2", stage2_step, dev, args.dry_run)
    cache, cache_why = (None, "skipped (--skip cache)") if "cache" in args.skip else \
        attempt(dev, "boundary cache", boundary_cache_step, dev, args.dry_run)
    text = report(dev, args.dry_run, sd, sd_why, encoder, stage2, stage2_why, time.perf_counter() - started,
                  cache, cache_why)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    failed = [name for name, (result, why) in [("sd", (sd, sd_why)), ("stage2", (stage2, stage2_why)),
                                               ("cache", (cache, cache_why))] +
              [(f"encoder {r}", encoder[r]) for r in encoder] if result is None and why.startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
