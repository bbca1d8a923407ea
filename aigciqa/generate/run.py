"""The run: plan every (generator, prompt, sample) image, skip finished ones, make the rest.

- Plan: images ``<generator>-<prompt_id>-<sample>`` at ``images/<generator>/<prompt_id>-<sample>.png``,
  each with a seed derived from (base seed, generator, prompt id, sample) alone.
- Resume: an image is finished when images.csv has its row with the same settings and the file on
  disk has the row's sha256. Missing or corrupt files are made again; rows are replaced, never added
  twice. A row made with other settings (seed, steps, guidance, dtype, scheduler, weights) stops the
  run with an InputError: one database is made one way.
- Writes: each PNG (and a ControlNet's conditioning image) is written atomically. The manifest is
  written every ``flush_every`` images, at the end, and on Ctrl-C or an error, through
  ``DatabaseFolder.write``; a kill loses at most the rows since the last write, and the rerun
  finds those images by their absence from images.csv and makes them again (same seed, same bytes).
- Several processes (``accelerate launch`` or ``torchrun``): every process plans the same list and
  takes every world_size-th unfinished image; each writes its rows to its own shard file
  (``.generate-shards/rank-<r>.csv``, atomically) and rank 0 merges the shards into images.csv at the
  end (and at the start of a later run, if a kill left some).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from aigciqa.database import DatabaseFolder, default_card
from aigciqa.database.card import card_value
from aigciqa.database.atomic import Transaction, write_text_atomic
from aigciqa.database.tables import TABLES, coerce_table, read_csv_text, to_csv_text
from aigciqa.errors import InputError
from aigciqa.generate.base import Generator, derive_seed, file_sha256, png_bytes, writable_folder
from aigciqa.generate.registry import load_config, resolve

SHARDS_DIR = ".generate-shards"
DEFAULT_FLUSH_EVERY = 25
COMPARED = ("seed", "steps", "guidance", "dtype", "weights", "weights_revision")  # + scheduler when configured


@dataclass(frozen=True)
class Task:
    generator: str
    prompt_id: str
    prompt: str
    sample: int
    seed: int

    @property
    def image_id(self) -> str:
        return f"{self.generator}-{self.prompt_id}-{self.sample}"

    @property
    def relpath(self) -> str:
        return DatabaseFolder.image_relpath(self.generator, self.prompt_id, self.sample)


@dataclass
class RunSummary:
    folder: Path
    planned: int = 0
    finished_before: int = 0
    generated: int = 0
    seconds: float = 0.0
    rank: int = 0
    world_size: int = 1
    generated_ids: list[str] = field(default_factory=list)

    def line(self) -> str:
        rate = self.generated / self.seconds if self.seconds > 0 else 0.0
        by = f" by process {self.rank} of {self.world_size}" if self.world_size > 1 else ""
        return (f"{self.folder}: {self.planned} images planned, {self.finished_before} already finished, "
                f"{self.generated} generated{by} ({rate:.2f} images/s)")


# ---- prompts ------------------------------------------------------------------------------------
def load_prompts(spec: str, card: dict) -> pd.DataFrame:
    """An embedded prompt set by name, or a prompts CSV file (checked like prompts.csv)."""
    from aigciqa.datasets.prompt_sets import EMBEDDED_PROMPT_SETS, load_prompt_set
    if spec.strip().lower() in EMBEDDED_PROMPT_SETS:
        return load_prompt_set(spec)
    path = Path(spec)
    if not path.is_file():
        close = difflib.get_close_matches(spec.lower(), list(EMBEDDED_PROMPT_SETS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"no prompt file '{spec}' and no embedded prompt set of that name{hint} "
                         f"(embedded sets: {', '.join(EMBEDDED_PROMPT_SETS)})")
    return coerce_table(TABLES["prompts"], read_csv_text(path), card, file=str(path))


def merge_prompts(existing: pd.DataFrame, given: pd.DataFrame, file: str) -> pd.DataFrame:
    """The folder's prompts plus new ones from ``given``; a known id must keep its text."""
    known = dict(zip(existing["prompt_id"], existing["prompt"]))
    for row, (pid, text) in enumerate(zip(given["prompt_id"], given["prompt"]), start=1):
        if pid in known and known[pid] != text:
            raise InputError(f"prompt {pid} differs from the folder's prompts.csv ('{known[pid]}')",
                             file=file, row=row, field="prompt")
    new = given[~given["prompt_id"].isin(set(known))]
    return pd.concat([existing, new], ignore_index=True) if len(new) else existing


# ---- planning and resume ------------------------------------------------------------------------
def plan_tasks(generators: Iterable[str], prompts: pd.DataFrame, per_prompt: int, base_seed: int) -> list[Task]:
    return [Task(name, pid, text, sample, derive_seed(name, pid, sample, base_seed))
            for name in generators for pid, text in zip(prompts["prompt_id"], prompts["prompt"])
            for sample in range(1, per_prompt + 1)]


def _planned_values(generator: Generator, task: Task) -> dict[str, str]:
    values = {"seed": str(task.seed), "steps": str(generator.settings.get("steps", "")),
              "guidance": str(generator.settings.get("guidance", "")), "dtype": str(generator.settings["dtype"]),
              "weights": generator.weights_label, "weights_revision": generator.weights_revision}
    if generator.settings.get("scheduler"):
        values["scheduler"] = generator.settings["scheduler"]
    return values


def _same(old, new: str) -> bool:
    if old is None or old is pd.NA or (isinstance(old, float) and pd.isna(old)):
        return new == ""
    try:
        return float(old) == float(new)
    except (TypeError, ValueError):
        return str(old) == new


def finished_images(folder: DatabaseFolder, tasks: list[Task], images: pd.DataFrame | None,
                    generators: dict[str, Generator]) -> set[str]:
    """Image ids whose row matches the plan and whose file has the recorded sha256."""
    if images is None or images.empty:
        return set()
    position = {image_id: index for index, image_id in enumerate(images["image_id"])}
    done = set()
    file = str(folder.table_path("images"))
    for task in tasks:
        index = position.get(task.image_id)
        if index is None:
            continue
        row = images.iloc[index]
        if row["path"] != task.relpath:
            raise InputError(f"image {task.image_id} is listed at '{row['path']}', but generate writes it to "
                             f"'{task.relpath}'", file=file, row=index + 1, field="path")
        sha = row["sha256"]
        if not sha:
            continue  # a row listed before any image was made (an import or the demo's plan): fill it
        for name, value in _planned_values(generators[task.generator], task).items():
            old = row[name] if name in images.columns else None
            if not _same(old, value):
                raise InputError(f"image {task.image_id} was made with {name}={'' if old is None else old}, this "
                                 f"run asks for {name}={value}; keep the settings of the folder's images "
                                 "(or generate into a new folder)", file=file, row=index + 1, field=name)
        path = folder.root / task.relpath
        if path.is_file() and file_sha256(path) == sha:
            done.add(task.image_id)
    return done


def merge_rows(existing: pd.DataFrame | None, rows: list[dict]) -> pd.DataFrame:
    """Existing rows with same-id rows replaced in place, new ids appended in order: never duplicates."""
    new = pd.DataFrame(rows)
    if existing is None or existing.empty:
        return new.drop_duplicates("image_id", keep="last").reset_index(drop=True)
    new = new.drop_duplicates("image_id", keep="last")
    order = {image_id: i for i, image_id in enumerate(existing["image_id"])}
    key = [order.get(image_id, len(order) + i) for i, image_id in enumerate(new["image_id"])]
    kept = existing[~existing["image_id"].isin(set(new["image_id"]))]
    merged = pd.concat([kept.assign(_order=[order[i] for i in kept["image_id"]]), new.assign(_order=key)],
                       ignore_index=True)
    return merged.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


# ---- processes ----------------------------------------------------------------------------------
@dataclass
class Processes:
    rank: int = 0
    world_size: int = 1
    barrier: Callable[[], None] = lambda: None
    device: str | None = None


def processes_from_environment() -> Processes:
    """accelerate's PartialState when launched with several processes (accelerate launch/torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        from accelerate import PartialState
        state = PartialState(cpu=not torch.cuda.is_available())  # on CPUs: gloo processes
        return Processes(state.process_index, state.num_processes, state.wait_for_everyone, str(state.device))
    return Processes()


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _clean_temporary_files(root: Path) -> None:
    """Temp files that a kill left behind (atomic writes never leave a partial file under a real name)."""
    for pattern in ("images/*/.*.tmp", "conditioning/*/.*.tmp", f"{SHARDS_DIR}/.*.tmp", ".*.tmp"):
        for path in root.glob(pattern):
            path.unlink(missing_ok=True)


def _read_shards(folder: DatabaseFolder, card: dict) -> tuple[list[dict], list[Path]]:
    """Rows in shard files whose image file still has the recorded hash."""
    rows, paths = [], sorted((folder.root / SHARDS_DIR).glob("rank-*.csv"))
    for path in paths:
        frame = coerce_table(TABLES["images"], read_csv_text(path), card, file=str(path))
        for record in frame.to_dict("records"):
            image = folder.root / record["path"]
            if record["sha256"] and image.is_file() and file_sha256(image) == record["sha256"]:
                rows.append(record)
    return rows, paths


def _merge_shards(folder: DatabaseFolder, card: dict) -> dict:
    rows, paths = _read_shards(folder, card)
    if rows:
        images = folder.read_table("images", card) if folder.has("images") else None
        card = _with_generators(card, sorted({r["generator"] for r in rows}))
        folder.write({"images": merge_rows(images, rows)}, card=card, stage="generate")
    for path in paths:
        path.unlink(missing_ok=True)
    try:
        (folder.root / SHARDS_DIR).rmdir()
    except OSError:  # absent, or a shard of a running process
        pass
    return card


def _with_generators(card: dict, names: Iterable[str]) -> dict:
    card = dict(card)
    card["generators"] = list(dict.fromkeys([*card_value(card, "generators"), *names]))
    return card


# ---- the run ------------------------------------------------------------------------------------
def run_generate(root: str | Path, *, generators: list[str], prompts: str | None = None, per_prompt: int = 4,
                 limit_prompts: int | None = None, weights: dict[str, str] | None = None,
                 config: dict | str | Path | None = None, only: list[str] | None = None,
                 processes: Processes | None = None, progress: bool = True, command: str | None = None,
                 on_image: Callable[[str], None] | None = None) -> RunSummary:
    """Generate the images of ``generators`` x prompts x ``per_prompt`` samples into the folder ``root``.

    ``weights`` maps generator names (or "*", every generator) to a local folder or "tiny".
    ``config`` is a config dict or the path of a JSON/TOML config file. ``on_image`` is called with
    each image id once its file is written (tests use it to interrupt a run).
    """
    started = time.perf_counter()
    config = config if isinstance(config, dict) else load_config(config)
    processes = processes or processes_from_environment()
    folder = DatabaseFolder(root)
    if per_prompt < 1:
        raise InputError("images per prompt must be at least 1", field="--images-per-prompt")
    if limit_prompts is not None and limit_prompts < 1:
        raise InputError("--limit-prompts must be at least 1", field="--limit-prompts")
    if not generators:
        raise InputError("no generators named (--generators)")
    # Several processes: each its own device (accelerate's choice); one process: the config's, else the best.
    device = processes.device if processes.world_size > 1 and processes.device else (
        config.get("device") or default_device())
    built = {name: resolve(name, config, weights or {}, device) for name in dict.fromkeys(generators)}
    for generator in built.values():
        generator.check_weights()
    any_tiny = any(g.is_tiny for g in built.values())

    # One writer at a time: rank 0 holds the folder's lock for the whole run (the other ranks
    # write only their image files and shard files).
    with contextlib.ExitStack() as stack:
        if processes.rank == 0:
            stack.enter_context(folder.lock(command))
        # The folder: created when absent (card + prompts), its prompts extended when --prompts adds some.
        if folder.exists():
            card = folder.read_card()
            if any_tiny and not card_value(card, "synthetic"):
                raise InputError("tiny weights make noise images, and this folder is not marked synthetic; "
                                 "generate tiny images into a new folder", file=folder.root / "dataset.json",
                                 field="synthetic")
            existing_prompts = folder.read_table("prompts", card) if folder.has("prompts") else None
        else:
            card = default_card(folder.root.resolve().name or "database", generators=[])
            if any_tiny:
                card.update(synthetic=True, description="Images made by random-weight 'tiny' pipelines: not real data.")
            existing_prompts = None
        if prompts is not None:
            given = load_prompts(prompts, card)
            table = given if existing_prompts is None else merge_prompts(existing_prompts, given, prompts)
            selected = given
        elif existing_prompts is not None:
            table = selected = existing_prompts
        else:
            table = selected = load_prompts("aigciqa2023", card)
        if limit_prompts is not None:
            selected = selected.head(limit_prompts)
            if existing_prompts is None:
                table = selected  # a new folder lists only the prompts it is made from

        section = dict(card.get("generate", {}))
        base_seed = int(config.get("seed", section.get("seed", 0)))
        if "seed" in section and int(section["seed"]) != base_seed:
            raise InputError(f"the folder's images use base seed {section['seed']}, the config asks for {base_seed}",
                             field="seed")
        hash_cache = dict(section.get("hash_cache", {}))
        section.update(seed=base_seed, hash_cache=hash_cache)
        section["generators"] = {**section.get("generators", {}), **{
            name: {"family": g.family, "weights": g.weights_label, "weights_revision": g.weights_revision,
                   "settings": g.settings, **g.provenance(hash_cache)} for name, g in built.items()}}
        card = _with_generators({**card, "generate": section}, built)

        if processes.rank == 0:
            writable_folder(folder.root)
            if not folder.exists() or prompts is not None:
                folder.write({"prompts": table}, card=card, stage="generate", command=command)
            _clean_temporary_files(folder.root)
            card = _merge_shards(folder, card)
        processes.barrier()
        card = folder.read_card() if processes.world_size > 1 else card
        images = folder.read_table("images", card) if folder.has("images") else None

        tasks = plan_tasks(built, selected, per_prompt, base_seed)
        if only:
            by_id = {t.image_id: t for t in tasks}
            for image_id in only:
                if image_id not in by_id:
                    close = difflib.get_close_matches(image_id, list(by_id), n=3)
                    hint = f"; did you mean {' or '.join(close)}?" if close else ""
                    raise InputError(f"image '{image_id}' is not in this run's plan{hint} (ids are "
                                     "<generator>-<prompt_id>-<sample>)", field="--only")
            tasks = [by_id[i] for i in dict.fromkeys(only)]
        done = finished_images(folder, tasks, images, built)
        todo = [t for t in tasks if t.image_id not in done]
        for task in todo:  # before any image is made: no file may land outside the folder
            folder.path(task.relpath, for_writing=True)
        mine = todo[processes.rank::processes.world_size]
        summary = RunSummary(folder.root, len(tasks), len(done), rank=processes.rank, world_size=processes.world_size)

        flush_every = int(config.get("flush_every", DEFAULT_FLUSH_EVERY))
        rows: list[dict] = []      # every row this process made in this run
        unflushed = 0
        shard = folder.root / SHARDS_DIR / f"rank-{processes.rank}.csv"

        def flush() -> None:
            nonlocal unflushed, card
            if not unflushed:
                return
            if processes.world_size == 1:
                current = folder.read_table("images", card) if folder.has("images") else None
                card = {**card, "generate": {**card["generate"], "hash_cache": hash_cache}}
                folder.write({"images": merge_rows(current, rows)}, card=card, stage="generate", command=command)
            else:
                frame = coerce_table(TABLES["images"], pd.DataFrame(rows), card, file=str(shard))
                write_text_atomic(shard, to_csv_text(frame))
            unflushed = 0

        from tqdm import tqdm
        bar = tqdm(total=len(mine), unit="img", desc=f"generate[{processes.rank}]" if processes.world_size > 1
                   else "generate", disable=not progress, position=processes.rank, dynamic_ncols=True)
        try:
            for name, generator in built.items():
                share = [t for t in mine if t.generator == name]
                if not share:
                    continue
                bar.set_postfix_str(f"loading {name}")
                generator.load(hash_cache)
                bar.set_postfix_str(name)
                for task in share:
                    try:
                        output = generator.generate(task.prompt, task.seed, task.relpath)
                    except Exception as error:  # out of memory is the one failure a user can fix by settings
                        if type(error).__name__ == "OutOfMemoryError":
                            raise InputError(f"out of memory making {task.image_id} at "
                                             f"{generator.settings['width']}x{generator.settings['height']}: lower "
                                             "width/height, use dtype float16, or fewer processes per device",
                                             field=f"generators.{name}") from None
                        raise
                    data = png_bytes(output.image)
                    with Transaction() as transaction:
                        transaction.stage_bytes(folder.path(task.relpath), data)
                        for relative, content in output.files.items():
                            transaction.stage_bytes(folder.path(relative), content)
                    rows.append({"image_id": task.image_id, "path": task.relpath, "prompt_id": task.prompt_id,
                                 "generator": name, "sample": task.sample, "seed": task.seed,
                                 "width": output.image.width, "height": output.image.height,
                                 "sha256": hashlib.sha256(data).hexdigest(), **generator.recorded(),
                                 "weights": generator.weights_label, "weights_revision": generator.weights_revision,
                                 "weights_sha256": generator.weights_sha256,
                                 **output.columns})
                    unflushed += 1
                    summary.generated += 1
                    summary.generated_ids.append(task.image_id)
                    bar.update(1)
                    if on_image is not None:
                        on_image(task.image_id)
                    if unflushed >= flush_every:
                        flush()
        finally:
            bar.close()
            flush()  # also on Ctrl-C or an error: the finished images stay listed
        if processes.world_size > 1:
            processes.barrier()
            if processes.rank == 0:
                _merge_shards(folder, card)
            processes.barrier()
    summary.seconds = time.perf_counter() - started
    return summary
