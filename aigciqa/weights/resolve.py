"""Resolve a weights spec to local files, and say exactly which files those are.

- A local folder or file is used as it is. When it holds a ``.aigciqa-weights.json`` manifest (written by
  ``aigciqa weights download --to DIR``), the repo id and commit it was copied from come with it.
- A Hub spec goes through ``huggingface_hub``: ``snapshot_download`` for a repo, ``hf_hub_download`` for one
  file (GGUF). Both use the standard cache (``HF_HOME``/``HF_HUB_CACHE``), honour ``HF_HUB_OFFLINE`` and the
  user's token, and fall back to the cache when the Hub cannot be reached. A spec that is neither cached
  nor reachable is an :class:`InputError` naming the repo, the revision and the ``aigciqa weights download``
  command to run where there is a network.

The result (:class:`Resolved`) carries the resolved commit hash (the snapshot folder's name) and, on
request, the sha256 of every file, for the provenance that stages write next to their outputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from aigciqa.common.files import file_sha256, remembered_sha256
from aigciqa.errors import InputError
from aigciqa.weights import defaults
from aigciqa.weights.spec import HubSpec, parse

MANIFEST = ".aigciqa-weights.json"   # hidden: folder hashes (which skip dot files) are the same as the cache's
COMMIT = re.compile(r"^[0-9a-f]{40}$")
INSTALL = "pip install huggingface_hub"


@dataclass
class Resolved:
    """Local weights and where they came from (repo id and commit are empty for a plain local path)."""
    spec: str
    path: Path
    repo_id: str = ""
    revision: str = ""
    commit: str = ""
    filename: str = ""

    @property
    def label(self) -> str:
        """What a table records as 'weights': the repo id (and file) for Hub weights, else the path."""
        if self.repo_id:
            return self.repo_id + (f":{self.filename}" if self.filename else "")
        return str(self.path.resolve())

    def files(self) -> dict[str, Path]:
        """Relative name -> file: every non-hidden file of a folder (links followed), or the one file."""
        if self.path.is_file():
            return {self.path.name: self.path}
        return {p.relative_to(self.path).as_posix(): p for p in sorted(self.path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)}

    def sha256s(self, cache: dict | None = None) -> dict[str, str]:
        """sha256 of every file, remembered per user (:func:`~aigciqa.common.files.remembered_sha256`), so
        gigabytes are read again only when a file changed. ``cache`` (kept by the caller in a card) maps a
        file's real path to its size, modification time and hash, for cards that carry their own."""
        hashes = {}
        for name, path in self.files().items():
            real = os.path.realpath(path)
            stat = os.stat(real)
            fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
            entry = (cache or {}).get(real)
            if entry is None or entry.get("fingerprint") != fingerprint:
                entry = {"fingerprint": fingerprint, "sha256": remembered_sha256(real)}
                if cache is not None:
                    cache[real] = entry
            hashes[name] = entry["sha256"]
        return hashes

    def record(self, with_hashes: bool = True, cache: dict | None = None) -> dict:
        """The provenance a stage writes into its card or config."""
        record = {"spec": self.spec, "path": str(self.path.resolve()), "repo_id": self.repo_id,
                  "revision": self.revision, "commit": self.commit, "filename": self.filename}
        if with_hashes:
            record["files_sha256"] = self.sha256s(cache)
        return record


def hub():
    """huggingface_hub with the submodules used here loaded (its package imports them lazily)."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401
        import huggingface_hub.errors  # noqa: F401
    except ImportError:
        raise InputError(f"weights given as a Hub repo id need the huggingface_hub package ({INSTALL})") from None
    return huggingface_hub


def cache_dir() -> str:
    """The Hub cache this process uses (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    return hub().constants.HF_HUB_CACHE


def offline() -> bool:
    return bool(hub().constants.HF_HUB_OFFLINE)


def commit_of(path: Path) -> str:
    """The commit hash of a file or folder inside a Hub cache snapshot (``.../snapshots/<commit>/...``)."""
    parts = path.parts
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] == "snapshots" and COMMIT.match(parts[index + 1]):
            return parts[index + 1]
    return ""


def read_manifest(path: Path) -> dict:
    """The download manifest next to a local folder or file ({} when there is none or it is not ours)."""
    file = path / MANIFEST if path.is_dir() else path.parent / MANIFEST
    if not file.is_file():
        return {}
    try:
        manifest = json.loads(file.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("malformed weights manifest (written by 'aigciqa weights download --to')",
                         file=file) from None
    if path.is_file() and manifest.get("filename") not in ("", None, path.name):
        return {}  # the manifest describes another file of that folder
    return manifest


def patterns(repo_id: str) -> tuple[list[str] | None, list[str]]:
    """(allow, ignore) file patterns: the table's for a repo it lists, else everything but other formats."""
    entries = defaults.for_repo(repo_id)
    if not entries:
        return None, list(defaults.GENERIC_IGNORE)
    if any(entry.allow is None for entry in entries):
        allow = None
    else:  # what every stage using the repo needs
        allow = list(dict.fromkeys(pattern for entry in entries for pattern in entry.allow))
    ignore = [pattern for pattern in entries[0].ignore if all(pattern in entry.ignore for entry in entries)]
    return allow, ignore


def download_command(spec: HubSpec) -> str:
    entries = [entry for entry in defaults.for_repo(spec.repo_id)
               if entry.filename == spec.filename and spec.revision == entry.revision]
    if len(entries) == 1:
        return f"aigciqa weights download {entries[0].name}"
    return f"aigciqa weights download {spec}"  # the same for every table name of a shared repo


def resolve(spec: str | Path, *, what: str = "weights", local_only: bool = False, hint: str = "") -> Resolved:
    """Local weights for ``spec`` (downloaded into the Hub cache when needed and allowed).

    ``what`` names the weights in messages ("weights for 'dalle'"); ``hint`` says what a local path
    should hold. ``local_only`` never asks the Hub (``aigciqa weights list`` and ``verify`` use it to
    look at the cache alone).
    """
    parsed = parse(spec)
    if isinstance(parsed, Path):
        if not parsed.exists():
            raise InputError(f"{what} not found ({hint or 'a local folder or file'}; or a Hub repo id "
                             "ORG/NAME[@REVISION][:FILE])", file=parsed)
        manifest = read_manifest(parsed)
        return Resolved(str(spec), parsed, manifest.get("repo_id", ""), manifest.get("revision", ""),
                        manifest.get("commit", ""), manifest.get("filename", ""))
    return resolve_hub(parsed, str(spec), what=what, local_only=local_only)


def resolve_hub(spec: HubSpec, text: str = "", *, what: str = "weights", local_only: bool = False) -> Resolved:
    hf = hub()
    errors = hf.errors
    where = what if what != "weights" else f"weights '{spec}'"
    try:
        if spec.filename:
            path = Path(hf.hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision,
                                           local_files_only=local_only))
        else:
            allow, ignore = patterns(spec.repo_id)
            path = Path(hf.snapshot_download(spec.repo_id, revision=spec.revision, allow_patterns=allow,
                                             ignore_patterns=ignore, local_files_only=local_only))
    except errors.LocalEntryNotFoundError:
        reason = "HF_HUB_OFFLINE=1" if offline() else ("cache only" if local_only else "the Hub cannot be reached")
        raise InputError(f"{where}: repo {spec.repo_id} revision {spec.revision}"
                         f"{' file ' + spec.filename if spec.filename else ''} is not in the Hugging Face cache "
                         f"{cache_dir()} ({reason}); run '{download_command(spec)}' on a machine with a network, "
                         "then copy the cache (or the folder of --to DIR) here") from None
    except errors.GatedRepoError:
        raise InputError(f"{where}: repo {spec.repo_id} is gated: accept its licence on "
                         f"https://huggingface.co/{spec.repo_id} and log in ('hf auth login' or HF_TOKEN)") from None
    except errors.RepositoryNotFoundError:
        raise InputError(f"{where}: no repo {spec.repo_id} on the Hub (or it is private: log in with "
                         "'hf auth login' or set HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise InputError(f"{where}: repo {spec.repo_id} has no revision {spec.revision}") from None
    except errors.EntryNotFoundError:
        raise InputError(f"{where}: repo {spec.repo_id} revision {spec.revision} has no file "
                         f"{spec.filename}") from None
    except errors.HfHubHTTPError as error:
        raise InputError(f"{where}: the Hub refused the request: {str(error).splitlines()[0]}") from None
    except OSError as error:  # e.g. a full disk while downloading
        raise InputError(f"{where}: cannot write the Hub cache {cache_dir()}: {error}") from None
    commit = commit_of(path) or (spec.revision if COMMIT.match(spec.revision) else "")
    return Resolved(text or str(spec), path, spec.repo_id, spec.revision, commit, spec.filename)


def official_folder(name: str) -> Path:
    """Where ``aigciqa weights download NAME`` puts weights fetched by a model's official code (not on the
    Hub): next to the Hub cache, ``HF_HOME/aigciqa/NAME``, so one copied HF_HOME carries everything."""
    return Path(hub().constants.HF_HOME) / "aigciqa" / name


def fetch_official(entry: defaults.DefaultWeights, folder: Path) -> Resolved:
    """Fetch a default's files with its official code's own downloader (GLIDE: ``glide_text2im.download``)
    into ``folder``, with a manifest of the source URLs and file hashes (the folder appears when complete)."""
    import importlib
    from aigciqa.database.atomic import write_text_atomic
    module_name = entry.extra["official"]
    try:
        official = importlib.import_module(module_name)
    except ImportError:
        raise InputError(f"'{entry.name}' is fetched by its official code, which is not installed: "
                         f"{entry.source}") from None
    if folder.is_dir() and all((folder / name).is_file() for name in entry.extra["parts"]):
        return resolve(folder)
    staging = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        urls = {}
        for name, part in entry.extra["parts"].items():
            urls[name] = official.MODEL_PATHS[part]
            fetched = Path(official.fetch_file_cached(urls[name], progress=True, cache_dir=str(staging)))
            if fetched.name != name:
                fetched.rename(staging / name)
        for lock in staging.glob("*.lock"):
            lock.unlink()
        record = {"repo_id": "", "revision": "", "commit": "", "filename": "", "source": urls,
                  "files_sha256": Resolved(entry.name, staging).sha256s()}
        write_text_atomic(staging / MANIFEST, json.dumps(record, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(folder)
    except OSError as error:
        raise InputError(f"'{entry.name}': fetching with {module_name} failed: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return resolve(folder)


# ---- aigciqa weights download / verify -------------------------------------------------------------
def copy_to(resolved: Resolved, folder: Path) -> Resolved:
    """Copy resolved Hub weights into ``folder`` (created; replaced when it holds another commit) with a
    manifest of the repo, commit and file hashes, so a machine without the cache can use the folder."""
    from aigciqa.database.atomic import write_text_atomic
    manifest = folder / MANIFEST
    if manifest.is_file():
        old = read_manifest(folder)
        if old.get("commit") == resolved.commit and old.get("repo_id") == resolved.repo_id and all(
                (folder / name).is_file() for name in old.get("files_sha256", {})):
            return resolve(folder / resolved.filename if resolved.filename else folder)
    staging = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name, source in resolved.files().items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)  # follows the cache's links to blobs
        record = {key: value for key, value in resolved.record().items() if key not in ("path", "spec")}
        write_text_atomic(staging / MANIFEST, json.dumps(record, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)  # the folder appears complete or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return resolve(folder / resolved.filename if resolved.filename else folder)


@dataclass
class Check:
    target: str
    checked: int = 0
    unverifiable: int = 0
    problems: list[str] | None = None

    def line(self) -> str:
        if self.problems:
            return f"{self.target}: FAILED: " + "; ".join(self.problems)
        extra = f", {self.unverifiable} without a recorded hash" if self.unverifiable else ""
        return f"{self.target}: ok ({self.checked} files match their recorded hashes{extra})"


def verify_hashes(base: Path, hashes: dict[str, str], target: str) -> Check:
    """Every file of ``hashes`` (relative to ``base``, a folder or the one file) has its recorded sha256."""
    check = Check(target, problems=[])
    for name, expected in sorted(hashes.items()):
        file = base / name if base.is_dir() else base
        actual = file_sha256(file) if file.is_file() else None
        if actual is None:
            check.problems.append(f"{name} is missing")
        elif actual != expected:
            check.problems.append(f"{name} changed (sha256 {actual[:12]}..., recorded {expected[:12]}...)")
        else:
            check.checked += 1
    return check


def verify_manifest(path: Path, target: str) -> Check:
    """A folder (or a file of it) written by ``download --to`` against its manifest."""
    return verify_hashes(path if path.is_dir() else path.parent, read_manifest(path).get("files_sha256", {}), target)


def verify_database(folder: Path, target: str) -> list[Check]:
    """The weights a database's images were made with (the card's ``generate`` records) against their files."""
    from aigciqa.database import DatabaseFolder
    card = DatabaseFolder(folder).read_card()
    generators = card.get("generate", {}).get("generators", {})
    checks = []
    for name, entry in sorted(generators.items()):
        for key in ("weights_files", "base_weights_files"):
            record = entry.get(key)
            if record:
                checks.append(verify_hashes(Path(record["path"]), record.get("files_sha256", {}),
                                            f"{target}: {name}{' (base)' if key.startswith('base') else ''} "
                                            f"{record.get('repo_id') or record['path']}"))
    if not checks:
        made = "imported, not generated here" if "generate" not in card.get("provenance", {}) else \
            "generated with the random 'tiny' pipelines, which have no files"
        raise InputError(f"the card records no weights files, so there is nothing to verify: its images were {made} "
                         "(generate records the files of real weights)", file=folder / "dataset.json",
                         field="generate.generators")
    return checks


def verify_snapshot(resolved: Resolved, target: str) -> Check:
    """Files of a cache snapshot against the hashes the Hub gave them: a blob is named by its sha256
    (large files, Git LFS) or by its git blob sha1 (small files)."""
    from huggingface_hub.utils import sha
    check = Check(target, problems=[])
    for name, file in resolved.files().items():
        link = resolved.path / name if resolved.path.is_dir() else resolved.path
        blob = Path(os.path.realpath(link)).name
        if re.fullmatch(r"[0-9a-f]{64}", blob):
            actual = file_sha256(file)
        elif COMMIT.match(blob):
            actual = sha.git_hash(Path(file).read_bytes())
        else:
            check.unverifiable += 1
            continue
        if actual != blob:
            check.problems.append(f"{name} changed (hash {actual[:12]}..., the Hub's {blob[:12]}...)")
        else:
            check.checked += 1
    return check


def verify(target: str) -> list[Check]:
    """Check a folder or file written by ``download --to`` (its manifest), a database folder (the weights
    its card records), or a cached Hub spec (the Hub's blob hashes)."""
    parsed = parse(target)
    if isinstance(parsed, Path):
        if not parsed.exists():
            raise InputError("not found", file=parsed)
        if (parsed / "dataset.json").is_file():
            return verify_database(parsed, target)
        if not read_manifest(parsed):
            raise InputError(f"no {MANIFEST} manifest here: only folders written by 'aigciqa weights download "
                             "--to', database folders and Hub cache entries (by repo id) have recorded hashes",
                             file=parsed)
        return [verify_manifest(parsed, target)]
    return [verify_snapshot(resolve_hub(parsed, target, local_only=True), target)]
