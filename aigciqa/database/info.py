"""What a database folder holds, what is missing, and which stage can run next."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass, field

from aigciqa.common.files import file_sha256
from aigciqa.database.card import card_value
from aigciqa.database.folder import ANNOTATIONS_FILE, CACHE_DIR, SCREENING_FILE, VQA_FILE, DatabaseFolder
from aigciqa.database.journal import FolderLock, holder_of, recover
from aigciqa.database.tables import TABLES
from aigciqa.errors import InputError
from aigciqa.model.runs import CONFIG_FILE, run_progress


@dataclass
class FolderReport:
    root: str
    name: str
    synthetic: bool
    perspectives: list[str]
    rows: dict[str, int]
    images_listed: int = 0
    images_on_disk: int = 0
    missing_images: list[str] = field(default_factory=list)
    files: dict[str, bool] = field(default_factory=dict)
    provenance: dict[str, dict] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)
    split_columns: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # trained models under runs/ (finished runs)
    # runs stopped before their planned epochs: name, epochs_done, epochs_planned, resume_command, resume_caveat
    unfinished_runs: list[dict] = field(default_factory=list)
    images_verified: int | None = None  # images whose sha256 was checked (--verify)
    images_decoded: int | None = None  # images without a recorded sha256, decoded instead (--verify)
    cleaned: list[str] = field(default_factory=list)  # leftovers of killed commands, dealt with
    active_writer: str | None = None  # a command writing the folder now (its leftovers are kept)
    caches: list[dict] = field(default_factory=list)  # derived data under cache/ (see cache_report)


def clean_leftovers(folder: DatabaseFolder) -> tuple[list[str], str | None]:
    """Finish or undo a killed command's commit and delete its temporary files, unless a writer is
    active (its temporary files are in use). Returns what was done and the active writer, if any."""
    done = []
    if not folder.root.is_dir():
        return done, None
    held = FolderLock.try_acquire(folder.root)
    if held is None:
        return done, holder_of(folder.root)
    try:
        outcome = recover(folder.root)
        if outcome:
            done.append(outcome)
        for path in folder.leftover_files():
            path.unlink()
            done.append(f"removed {path.relative_to(folder.root).as_posix()} (a killed write's temporary file)")
    finally:
        held.release()
    return done, None


def inspect_folder(folder: DatabaseFolder, *, verify: bool = False) -> FolderReport:
    """Validate the folder (raises InputError on the first problem) and summarise it. ``verify``
    also checks every listed image against its recorded sha256."""
    cleaned, writer = clean_leftovers(folder)
    card = folder.read_card()
    tables = folder.validate()
    report = FolderReport(root=str(folder.root), name=card["name"], synthetic=bool(card_value(card, "synthetic")),
                          perspectives=list(card["perspectives"]),
                          rows={name: len(frame) for name, frame in tables.items()},
                          provenance=card_value(card, "provenance"), cleaned=cleaned, active_writer=writer)
    for name in (ANNOTATIONS_FILE, SCREENING_FILE, VQA_FILE):
        report.files[name] = (folder.root / name).is_file()
    if "images" in tables:
        paths = tables["images"]["path"]
        present = [folder.path(p).is_file() for p in paths]  # a link may not lead out of the folder
        report.images_listed = len(paths)
        report.images_on_disk = sum(present)
        report.missing_images = [p for p, ok in zip(paths, present) if not ok]
        if verify:
            report.images_verified, report.images_decoded = verify_images(folder, tables["images"], present)
    if "splits" in tables:
        report.split_columns = [c for c in tables["splits"].columns if c != "image_id"]
    runs = folder.root / "runs"
    if runs.is_dir():
        for run in sorted(p for p in runs.iterdir() if (p / CONFIG_FILE).is_file()):
            progress = run_progress(run)
            if progress.finished:
                report.runs.append(run.name)
            else:
                report.unfinished_runs.append({"name": run.name, "epochs_done": progress.epochs_done,
                                               "epochs_planned": progress.epochs_planned,
                                               "resume_command": progress.resume_command(shlex.quote(report.root)),
                                               "resume_caveat": progress.resume_caveat()})
    report.caches = cache_report(folder)
    report.next_steps = _next_steps(report, tables)
    return report


def cache_report(folder: DatabaseFolder) -> list[dict]:
    """Size of each cache under ``cache/<kind>/<key>/`` whose manifest.json counts its ``images``."""
    entries = []
    for manifest in sorted((folder.root / CACHE_DIR).glob("*/*/manifest.json")):
        try:
            described = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            described = {}
        size = sum(p.stat().st_size for p in manifest.parent.iterdir() if p.is_file())
        images = int(described.get("images", 0))
        entries.append({"path": manifest.parent.relative_to(folder.root).as_posix(), "images": images,
                        "bytes": size, "bytes_per_image": size // images if images else None,
                        "description": described.get("description", "")})
    return entries


def remove_caches(folder: DatabaseFolder) -> int:
    """Delete the folder's cache/ directory (derived data, rebuilt when needed); returns the bytes freed.
    Holds the writer lock, so a command filling the cache is not cut short (its name is the error)."""
    root = folder.root / CACHE_DIR
    with folder.lock("info --remove-cache"):
        freed = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
        shutil.rmtree(root, ignore_errors=True)
    return freed


def verify_images(folder: DatabaseFolder, images, present: list[bool]) -> tuple[int, int]:
    """Check each present image against its recorded sha256, and decode each one that has none (imported
    databases record none): (hashes checked, images decoded); InputError at the first mismatch or at a file
    that is not a readable image."""
    from aigciqa.database.images import open_image
    checked = decoded = 0
    for row, (path, sha256, ok) in enumerate(zip(images["path"], images["sha256"], present), start=1):
        if not ok:
            continue
        if not sha256:
            try:
                open_image(folder.path(path))
            except InputError as error:
                raise InputError(f"{path}: {error.message}", file=TABLES["images"].filename, row=row,
                                 field="path") from None
            decoded += 1
            continue
        actual = file_sha256(folder.path(path))
        if actual != sha256:
            raise InputError(f"{path} has sha256 {actual[:12]}..., the table records {sha256[:12]}... "
                             "(the file changed after it was listed)", file=TABLES["images"].filename,
                             row=row, field="sha256")
        checked += 1
    return checked, decoded


def _available_commands() -> set[str]:
    from aigciqa.cli import COMMANDS  # names only: no stage is imported
    return set(COMMANDS)


def _next_steps(report: FolderReport, tables) -> list[str]:
    steps = []
    root = shlex.quote(report.root)  # the suggestions are commands to paste
    available = _available_commands()
    has = tables.__contains__
    if has("prompts") and report.images_on_disk < max(report.images_listed, 1):
        steps.append(f"aigciqa generate {root}   # make the {report.images_listed - report.images_on_disk or 'missing'} "
                     "images (or copy the published images to the paths in images.csv)")
    if report.images_on_disk and not has("ratings"):
        steps.append(f"aigciqa annotate open {root}   # collect ratings from subjects")
    if has("ratings") and not has("mos"):
        steps.append(f"aigciqa build-mos {root}  # screen subjects and compute MOS")
    if (has("mos") or has("labels")) and not report.files.get(VQA_FILE):
        steps.append(f"aigciqa build-vqa {root}  # question/answer pairs for instruction tuning")
    if has("images") and not has("splits"):
        steps.append(f"aigciqa split {root}      # train/val/test splits by prompt")
    trainable = (has("mos") or has("pairs")) and has("splits") and report.images_on_disk
    split = report.split_columns[0] if report.split_columns else "SPLIT"
    if trainable and not report.runs and not report.unfinished_runs:
        steps.append(f"aigciqa train scorer {root} --split {split}      # train MINT-IQA")
    for run in report.unfinished_runs:  # finish these before evaluating them
        steps.append(f"{run['resume_command']}   # finish {run['name']} "
                     f"(epoch {run['epochs_done']} of {run['epochs_planned']}){run['resume_caveat']}")
    for run in report.runs if trainable else ():
        steps.append(f"aigciqa evaluate {root} --model {shlex.quote(report.root + '/runs/' + run)} --split {split} --part test   "
                     "# test metrics of a trained model")
    # Only suggest commands this installation has.
    return [step for step in steps if step.split()[1] in available]


def format_report(report: FolderReport) -> str:
    lines = [f"{report.root}: database '{report.name}'" + ("  [SYNTHETIC: simulated, not a real database]"
                                                            if report.synthetic else ""),
             f"  perspectives: {', '.join(report.perspectives)}"]
    for name, count in report.rows.items():
        lines.append(f"  {name + '.csv':<12} {count:>8} rows")
    for name, present in report.files.items():
        lines.append(f"  {name:<18} {'present' if present else 'absent'}")
    if report.images_listed:
        lines.append(f"  image files: {report.images_on_disk} of {report.images_listed} present")
        if report.missing_images:
            shown = ", ".join(report.missing_images[:3])
            more = f" and {len(report.missing_images) - 3} more" if len(report.missing_images) > 3 else ""
            lines.append(f"    missing: {shown}{more}")
    if report.images_verified is not None:
        lines.append(f"  sha256 checked: {report.images_verified} image files match images.csv")
        if report.images_decoded:
            lines.append(f"  no sha256 recorded: {report.images_decoded} image files decoded as images")
    if report.split_columns:
        lines.append(f"  split columns: {', '.join(report.split_columns)}")
    if report.runs:
        lines.append(f"  trained models (runs/): {', '.join(report.runs)}")
    for run in report.unfinished_runs:
        lines.append(f"  unfinished run runs/{run['name']}: {run['epochs_done']} of {run['epochs_planned']} epochs "
                     f"done; resume with: {run['resume_command']}{run['resume_caveat']}")
    if report.caches:
        total = sum(c["bytes"] for c in report.caches)
        lines.append(f"  cache/: {total / 1e6:.1f} MB (remove: aigciqa info {shlex.quote(report.root)} --remove-cache)")
        for cache in report.caches:
            per_image = f", {cache['bytes_per_image'] / 1e3:.1f} kB per image" if cache["images"] else ""
            lines.append(f"    {cache['path']}: {cache['images']} images, {cache['bytes'] / 1e6:.1f} MB{per_image}"
                         + (f"  ({cache['description']})" if cache["description"] else ""))
    for stage, entry in report.provenance.items():
        lines.append(f"  {stage}: {entry['command']}  ({entry['time']}, aigciqa {entry['tool_version']})")
    lines += [f"  cleaned: {entry}" for entry in report.cleaned]
    if report.active_writer:
        lines.append(f"  being written now by {report.active_writer}; what you see may change when it commits")
    lines.append("next:" if report.next_steps else "next: no further stage of this installation applies")
    lines += [f"  {step}" for step in report.next_steps]
    return "\n".join(lines)
