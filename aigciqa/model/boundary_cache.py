"""The boundary-activation cache: the frozen lower part of the image encoder runs once per image.

Training has no augmentation, so the steps of the image encoder below the fix-rate boundary (patch
embedding, the frozen blocks, and the final norm when every block is frozen; see
:func:`network.vision_steps`) compute the same activations for an image in every epoch. They are
computed once, stored in the database folder, and the trainable steps run on top of them.

Layout: ``DB/cache/boundary/<digest>/`` with ``manifest.json`` (the key, the tensor shape, and which
shard holds which image) and ``shard-NNNN.safetensors`` files of one tensor per image, named by the
sha256 of the image file. The digest covers everything that changes the activations: the preset, the
weights of the cached steps (a sha256 of their tensors), how many steps, the input size and
normalisation, and the precision. Shards are memory-mapped when read (safetensors), so a large
database does not need RAM for its cache. Each shard is written together with the manifest that
lists it, in one all-or-nothing transaction of :mod:`aigciqa.database.atomic`.

A cache is checked when opened: its manifest must name the same key, its shards must exist with the
recorded shape, and one cached image is recomputed and compared; otherwise (stale, foreign or damaged)
it is removed and rebuilt, never used.

The cache is exact for training only when nothing random runs below the boundary (no dropout or drop
path there); :func:`training_inputs` refuses it otherwise, naming the module. ``evaluate`` and
``score`` run in eval mode (no dropout) and read whatever the folder has cached; stages 2 and 3 use
the stage-1 run's boundary (recorded on :class:`instruct.InstructIQA` before the scorer is frozen).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from aigciqa.common.files import file_sha256
from aigciqa.database.atomic import Transaction
from aigciqa.database.folder import CACHE_DIR

BOUNDARY_DIR = "boundary"
MANIFEST = "manifest.json"
FORMAT = 2  # 2: images decoded as shown (EXIF orientation, 16-bit grey, alpha over white)
SHARD_BYTES = 64 << 20  # a shard is written once this much is pending (bounds the RAM of a fill)
# Parameters that are part of a cached step but never used on the path the model runs (Dinov2's
# masked-image-modelling token: it is random in the small preset, so hashing it would split caches by seed).
UNUSED_TENSORS = ("mask_token",)


@dataclass(frozen=True)
class BoundaryKey:
    """Everything the cached activations depend on."""
    preset: str
    steps: int  # leading steps of network.vision_steps that are cached
    image_size: int
    mean: tuple
    std: tuple
    precision: str  # the training's mixed precision ("no", "fp16", "bf16")
    weights_sha256: str  # the tensors of those steps
    format: int = FORMAT

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def cache_root(root: str | Path) -> Path:
    """Where a database folder keeps its boundary caches (one subfolder per key)."""
    return Path(root) / CACHE_DIR / BOUNDARY_DIR


def steps_weights_sha256(vision, steps: int) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the parameters and buffers of the first steps."""
    import torch
    from aigciqa.model.network import vision_steps
    digest = hashlib.sha256()
    for index, step in enumerate(vision_steps(vision)[:steps]):
        for name, tensor in sorted(step.state_dict().items()):
            if name.rsplit(".", 1)[-1] in UNUSED_TENSORS:
                continue
            data = tensor.detach().cpu().contiguous()
            digest.update(f"{index}.{name}:{data.dtype}:{tuple(data.shape)};".encode())
            digest.update(data.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def randomness_below(vision, steps: int, training: bool) -> str | None:
    """Why the cached activations would differ from those training computes (dropout or drop path
    below the boundary in train mode), or None when the cache is exact."""
    if not training:
        return None
    from torch import nn
    from aigciqa.model.network import vision_steps
    for index, step in enumerate(vision_steps(vision)[:steps]):
        for name, module in step.named_modules():
            rates = {"p": module.p} if isinstance(module, nn.Dropout) else {
                key: value for key, value in vars(module).items()
                if "drop" in key and isinstance(value, float)}
            for key, value in rates.items():
                if value > 0:
                    where = f"step {index} ({type(step).__name__}){'.' + name if name else ''}"
                    return f"{where} has {key}={value} (random in training)"
    return None


class BoundaryCache:
    """One key's cache folder: read (memory-mapped), checked, and extended shard by shard."""

    def __init__(self, root: str | Path, key: BoundaryKey):
        self.key = key
        self.directory = cache_root(root) / key.digest()
        self.shape: list[int] | None = None
        self.dtype: str | None = None
        self.where: dict[str, str] = {}  # image sha256 -> shard file name
        self._handles: dict[str, object] = {}
        self.problem = self._load()

    def _load(self) -> str | None:
        """Read the manifest; returns why the folder cannot be used (None when it can or is absent)."""
        from safetensors import SafetensorError
        path = self.directory / MANIFEST
        if not path.is_file():
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest.get("key") != json.loads(json.dumps(asdict(self.key))):
                return "its manifest records another key (a foreign cache)"
            self.shape, self.dtype = manifest["shape"], manifest["dtype"]
            for shard, hashes in manifest["shards"].items():
                handle = self._open(shard)
                for sha in hashes:
                    if list(handle.get_slice(sha).get_shape()) != self.shape:
                        return f"{shard} holds a tensor of another shape"
                    self.where[sha] = shard
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            self.where.clear()
            return f"unreadable ({type(error).__name__}: {error})"
        return None

    def _open(self, shard: str):
        if shard not in self._handles:
            from safetensors import safe_open
            self._handles[shard] = safe_open(str(self.directory / shard), framework="pt")  # memory-mapped
        return self._handles[shard]

    def get(self, sha: str):
        return self._open(self.where[sha]).get_tensor(sha)

    def reset(self, reason: str) -> None:
        """Remove the folder (stale, foreign or damaged): it is rebuilt from nothing."""
        print(f"boundary cache {self.directory}: {reason}; rebuilding it", file=sys.stderr)
        self._handles.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.where.clear()
        self.shape = self.dtype = None
        self.problem = None

    def add(self, tensors: dict) -> None:
        """Write one shard of new tensors and the manifest that lists it, all or nothing."""
        from safetensors.torch import save
        if not tensors:
            return
        first = next(iter(tensors.values()))
        shards = {}
        for sha, shard in self.where.items():
            shards.setdefault(shard, []).append(sha)
        # A shard file the manifest does not list (left by a crash between two renames) is overwritten.
        name = f"shard-{1 + max((int(s[6:10]) for s in shards), default=0):04d}.safetensors"
        shards[name] = sorted(tensors)
        manifest = {"format": FORMAT, "key": asdict(self.key), "shape": list(first.shape),
                    "dtype": str(first.dtype).removeprefix("torch."), "images": len(self.where) + len(tensors),
                    "description": f"image-encoder activations after {self.key.steps} steps ({self.key.preset})",
                    "shards": shards}
        with Transaction() as transaction:
            transaction.stage_bytes(self.directory / name, save({k: v.contiguous() for k, v in tensors.items()}))
            transaction.stage_text(self.directory / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        self.shape, self.dtype = manifest["shape"], manifest["dtype"]
        self.where.update({sha: name for sha in tensors})


class BoundaryInputs:
    """What a model's image encoder starts from for database rows: the boundary activations, read from
    the cache, or computed (and, when ``fill``, stored) for images it lacks.

    Opened lazily at first use, so a resumed run hashes the weights it resumed, not the ones it was built with.
    """

    def __init__(self, vision, steps: int, pixels, device, *, root, preset, precision: str = "no",
                 fill: bool, rows=(), batch_size: int = 8, keep_embeds: bool = False):
        self.vision, self.steps, self.pixels, self.device = vision, steps, pixels, device
        self.root, self.preset, self.precision, self.fill = root, preset, precision, fill
        self.rows, self.batch_size, self.keep_embeds = [int(r) for r in rows], batch_size, keep_embeds
        self.cache: BoundaryCache | None = None
        self._sha: dict[int, str] = {}
        self._embeds: dict[int, object] = {}  # full encoder outputs (keep_embeds: a fully frozen encoder)

    # ---- the API the model code calls ---------------------------------------------------------------
    def inputs(self, rows) -> dict:
        """Keyword arguments of MintIQA's forward: the trainable steps run on the boundary activations."""
        return {"boundary": (self.steps, self.activations(rows))}

    def image_embeds(self, rows):
        """The encoder's output for rows, without gradients (evaluation, stages 2 and 3)."""
        import torch
        from aigciqa.model.network import run_vision_steps
        todo = [r for r in dict.fromkeys(rows) if r not in self._embeds]
        if not todo:
            return torch.stack([self._embeds[r] for r in rows])
        with torch.no_grad():
            embeds = run_vision_steps(self.vision, self.activations(todo), self.steps)
        if not self.keep_embeds:
            order = {r: k for k, r in enumerate(todo)}
            return embeds[[order[r] for r in rows]]
        self._embeds.update(zip(todo, embeds))
        return torch.stack([self._embeds[r] for r in rows])

    def activations(self, rows):
        """Boundary activations [rows, tokens, hidden] on the device."""
        import torch
        self._open(rows)
        if not self.fill and not self.cache.where:
            return self._compute(rows)  # nothing cached for this key: no need to hash the images
        missing = [r for r in dict.fromkeys(rows) if self._hash(r) not in self.cache.where]
        computed = dict(zip(missing, self._compute(missing))) if missing else {}
        if computed and self.fill:
            self.cache.add({self._hash(r): t.cpu() for r, t in computed.items()})
        return torch.stack([computed[r] if r in computed else self.cache.get(self._hash(r)).to(self.device)
                            for r in rows])

    # ---- internals --------------------------------------------------------------------------------------
    def key(self) -> BoundaryKey:
        return BoundaryKey(preset=self.preset.name, steps=self.steps, image_size=self.preset.image_size,
                           mean=tuple(self.preset.mean), std=tuple(self.preset.std), precision=self.precision,
                           weights_sha256=steps_weights_sha256(self.vision, self.steps))

    def _open(self, rows) -> None:
        """Open and check the cache (and fill it when asked). In a distributed run the main process checks,
        rebuilds and writes while the others wait, then they read what it wrote."""
        if self.cache is not None:
            return
        state = None
        if self.fill:
            from accelerate import PartialState
            state = PartialState()
        if state is None or state.is_main_process:
            self.cache = BoundaryCache(self.root, self.key())
            if self.cache.problem is None:
                self.cache.problem = self._spot_check(self.rows or list(rows))
            if self.cache.problem is not None:
                self.cache.reset(self.cache.problem)
            if self.fill:
                self._fill()
        if state is not None:
            state.wait_for_everyone()
            if not state.is_main_process:
                self.cache = BoundaryCache(self.root, self.key())

    def _spot_check(self, rows) -> str | None:
        """Recompute one cached image of the rows in use and compare (catches a cache whose manifest matches
        but whose numbers do not, e.g. written by another implementation)."""
        import torch
        row = next((r for r in rows if self._hash(r) in self.cache.where), None)
        if row is None:
            return None
        cached = self.cache.get(self._hash(row)).float()
        fresh = self._compute([row])[0].float().cpu()
        tolerance = 1e-3 if self.precision == "no" else 5e-2
        if fresh.shape != cached.shape or not torch.allclose(fresh, cached, rtol=tolerance,
                                                             atol=tolerance * float(fresh.abs().max())):
            return "its activations differ from the encoder's (a stale cache)"
        return None

    def _fill(self) -> None:
        """Compute and store every row in use that the cache lacks, a shard at a time."""
        missing = [r for r in dict.fromkeys(self.rows) if self._hash(r) not in self.cache.where]
        pending, pending_bytes = {}, 0
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            for row, tensor in zip(chunk, self._compute(chunk)):
                pending[self._hash(row)] = tensor.cpu()
                pending_bytes += tensor.numel() * tensor.element_size()
            self.pixels.forget(chunk)  # decoded pixels are not needed again
            if pending_bytes >= SHARD_BYTES:
                self.cache.add(pending)
                pending, pending_bytes = {}, 0
        self.cache.add(pending)

    def _compute(self, rows):
        import contextlib
        import torch
        from aigciqa.model.network import run_vision_steps
        pixels = self.pixels.get(rows).to(self.device)
        precision = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        autocast = (torch.autocast(device_type=torch.device(self.device).type, dtype=precision) if precision
                    else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            return run_vision_steps(self.vision, pixels, 0, self.steps)

    def _hash(self, row: int) -> str:
        if row not in self._sha:
            self._sha[row] = file_sha256(self.pixels.data.paths[row])
        return self._sha[row]


def scorer_boundary(model) -> tuple[object, int]:
    """(image encoder, cached steps) of a stage-1, 2 or 3 model: a stage-1 scorer's leading frozen steps;
    for stages 2 and 3, those of the stage-1 scorer they froze (recorded before freezing)."""
    from aigciqa.model.network import MultiHeadScorer, frozen_step_count
    if isinstance(model, MultiHeadScorer):
        return model.vision, frozen_step_count(model.vision)
    explainer = getattr(model, "explainer", model)
    return explainer.scorer.vision, explainer.boundary_steps


def training_inputs(model, pixels, device, *, root, preset, rows, batch_size: int, precision: str = "no",
                    enabled: bool = True) -> BoundaryInputs | None:
    """The boundary cache for stage-1 training, or None (uncached): turned off, nothing frozen, or not exact
    (then the reason goes to stderr)."""
    if not enabled:
        return None
    vision, steps = scorer_boundary(model)
    if steps == 0:
        return None  # fix rate 0: nothing is frozen, nothing to cache
    reason = randomness_below(vision, steps, training=True)
    if reason:
        print(f"boundary cache off: not exact, {reason}", file=sys.stderr)
        return None
    return BoundaryInputs(vision, steps, pixels, device, root=root, preset=preset, precision=precision, fill=True,
                          rows=rows, batch_size=batch_size)


def frozen_inputs(model, pixels, device, *, root, preset, rows=(), batch_size: int = 8,
                  fill: bool = False) -> BoundaryInputs:
    """Image inputs of a model whose image encoder is frozen (evaluation, scoring, stages 2 and 3): the
    stage-1 boundary cache of ``root`` (stored to when ``fill``), the steps above it computed once per image."""
    vision, steps = scorer_boundary(model)
    return BoundaryInputs(vision, steps, pixels, device, root=root, preset=preset, fill=fill, rows=rows,
                          batch_size=batch_size, keep_embeds=fill)

