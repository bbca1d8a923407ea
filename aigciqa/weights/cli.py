"""``aigciqa weights``: list the default weights, prefetch them (into the Hub cache or a folder), verify files."""

from __future__ import annotations

from pathlib import Path

from aigciqa.common.deps import installed
from aigciqa.errors import InputError


def targets(names: list[str], stage: str | None = None) -> list[tuple[str, str]]:
    """(folder name, spec) to download: every default on the Hub (of ``stage``, when given) when ``names`` is
    empty; a default's base model (ControlNet's Stable Diffusion) comes along."""
    from aigciqa.weights.defaults import DEFAULTS, lookup_default
    from aigciqa.weights.spec import HubSpec, parse
    if names and stage:
        raise InputError(f"give default names or --stage {stage}, not both")
    chosen: dict[str, str] = {}
    for name in names or [n for n, e in DEFAULTS.items() if e.on_hub and stage in (None, e.stage)]:
        parsed = parse(name) if "/" in name else None
        if isinstance(parsed, HubSpec):
            chosen[parsed.repo_id.replace("/", "--") + (f"--{parsed.filename}" if parsed.filename else "")] = name
            continue
        entry = lookup_default(name)
        if not entry.on_hub and not entry.extra.get("official"):
            raise InputError(f"'{entry.name}' is not on the Hugging Face Hub: {entry.source}")
        chosen[entry.name] = entry.spec or entry.name
        base = entry.extra.get("base")
        if base:
            chosen[base] = DEFAULTS[base].spec
    return list(chosen.items())


def run_list(args) -> int:
    from aigciqa.weights.defaults import DEFAULTS
    from aigciqa.weights.resolve import cache_dir, official_folder, resolve
    print(f"Hugging Face cache: {cache_dir()}")
    for entry in DEFAULTS.values():
        if args.stage and entry.stage != args.stage:
            continue
        if entry.on_hub:
            try:
                resolved = resolve(entry.spec, local_only=True)
                size = sum(p.stat().st_size for p in resolved.files().values())
                state = f"cached at {resolved.commit[:12] or '?'} ({size / 1e9:.2f} GB on disk)"
            except InputError:
                state = f"not cached ({entry.size})"
            where = entry.spec
        elif entry.extra.get("official"):
            folder = official_folder(entry.name)
            where = entry.source
            state = f"fetched in {folder}" if folder.is_dir() else f"not fetched ({entry.size})"
        elif entry.extra.get("packages"):  # weights that ship inside pip packages
            where = entry.source
            missing = [name for name in entry.extra["packages"] if not installed(name)]
            state = f"not installed: {', '.join(missing)} ({entry.size})" if missing else f"installed ({entry.size})"
        else:
            where, state = entry.source, entry.size
        print(f"{entry.name:<22} {entry.stage:<10} {where}\n{'':<33}{state}; licence: {entry.licence}")
    return 0


def run_download(args) -> int:
    from aigciqa.weights.defaults import DEFAULTS
    from aigciqa.weights.resolve import copy_to, fetch_official, official_folder, resolve
    for folder_name, spec in targets(args.names, args.stage):
        entry = DEFAULTS.get(folder_name)
        if entry is not None and not entry.on_hub:   # fetched by the model's official code
            folder = Path(args.to) / folder_name if args.to is not None else official_folder(folder_name)
            resolved = fetch_official(entry, folder)
            print(f"{folder_name}: {', '.join(sorted(resolved.files()))} -> {resolved.path}")
            continue
        resolved = resolve(spec, what=f"weights '{folder_name}'")
        if args.to is not None:
            resolved = copy_to(resolved, Path(args.to) / folder_name)
        print(f"{folder_name}: {resolved.label} at {resolved.commit or '?'} -> {resolved.path}")
    return 0


def run_verify(args) -> int:
    from aigciqa.weights.defaults import DEFAULTS
    from aigciqa.weights.resolve import resolve, verify
    chosen = list(args.targets)
    if not chosen:  # every default that is in the cache
        for entry in DEFAULTS.values():
            if entry.on_hub:
                try:
                    resolve(entry.spec, local_only=True)
                    chosen.append(entry.spec)
                except InputError:
                    pass
        if not chosen:
            print("no default weights in the Hugging Face cache: nothing to verify")
            return 0
    failed = 0
    for target in chosen:
        for check in verify(target):
            print(check.line())
            failed += bool(check.problems)
    return 1 if failed else 0


def register(subparsers) -> None:
    from aigciqa.cli import add_command
    parser = add_command(
        subparsers, "weights",
        summary="List, prefetch and verify model weights (Hugging Face Hub ids, the paper's defaults).",
        description="""
        Input: the Hugging Face cache (HF_HOME, HF_HUB_CACHE; HF_HUB_OFFLINE=1 and tokens are honoured),
        the Hub when reachable, and folders written by 'download --to'. Output: 'download' fills the cache,
        or with --to DIR copies each model into DIR/<name>/ with a .aigciqa-weights.json manifest (repo id,
        commit, sha256 of every file); 'list' and 'verify' only print.
          list      the default weights of every stage: Hub id, cached or not, size, licence
          download  prefetch NAMES (as 'list' shows them) or Hub specs ORG/NAME[@REVISION][:FILE];
                    no NAMES: every default on the Hub (about 60 GB for the stages, 11 GB more
                    for the baselines), or --stage STAGE's; 'glide' runs GLIDE's official
                    downloader into HF_HOME/aigciqa/glide (or DIR/glide)
          verify    recorded hashes against the files: a --to folder's manifest, a database's card (the
                    weights its images were made with), or a cached Hub spec against the hashes its
                    blobs are named by; exit status 1 when a file changed""",
        example="""
        aigciqa weights list
        aigciqa weights download --stage baseline                                     # the baselines' weights
        aigciqa weights download stable_diffusion controlnet --to /scratch/weights   # on a login node
        HF_HUB_OFFLINE=1 aigciqa generate db/ --generators stable_diffusion,controlnet \\
            --weights stable_diffusion=/scratch/weights/stable_diffusion \\
            --weights controlnet=/scratch/weights/controlnet                           # on the GPU node
        aigciqa weights verify /scratch/weights/controlnet""")
    commands = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    listing = add_command(commands, "list", summary="The default weights of every stage: cached or not.",
                          description="""
        Input: the weights table (aigciqa/weights/defaults.py), the Hugging Face cache, installed packages.
        Output: one entry per default: name, stage, Hub id (or how to get it), cached/installed or not with
        the commit and size on disk, licence. Reads only; nothing is downloaded.""",
                          example="""
        aigciqa weights list
        aigciqa weights list --stage baseline""")
    from aigciqa.weights.defaults import DEFAULTS
    stages = list(dict.fromkeys(entry.stage for entry in DEFAULTS.values()))
    listing.add_argument("--stage", choices=stages, help="only this stage's weights")
    listing.set_defaults(func=run_list)
    download = add_command(commands, "download", summary="Prefetch weights into the Hub cache or a folder.",
                           description="""
        Input: default NAMES (as 'list' shows them) or Hub specs ORG/NAME[@REVISION][:FILE]; none: every
        default on the Hub (or --stage STAGE's). Output: the Hugging Face cache, or with --to DIR a copy of
        each model in DIR/<name>/ with a .aigciqa-weights.json manifest (repo id, commit, sha256 of every
        file). Weights that ship in pip packages (small, smollm2, niqe, brisque) are refused with their pip
        command.""",
                           example="""
        aigciqa weights download instructblip
        aigciqa weights download --stage baseline --to /scratch/weights""")
    download.add_argument("names", nargs="*", metavar="NAME|SPEC", help="default names or Hub specs")
    download.add_argument("--stage", choices=stages, help="without NAMES: only this stage's defaults")
    download.add_argument("--to", type=Path, metavar="DIR", help="copy each model into DIR/<name>/ (with a manifest)")
    download.set_defaults(func=run_download)
    check = add_command(commands, "verify", summary="Check weight files against their recorded hashes.",
                        description="""
        Input: a folder written by 'download --to' (its manifest), a database folder (the weights its card
        records), or a cached Hub spec (the hashes its blobs are named by); none: every cached default.
        Output: one line per target; exit status 1 when a file changed. Reads every byte.""",
                        example="""
        aigciqa weights verify /scratch/weights/controlnet
        aigciqa weights verify db/""")
    check.add_argument("targets", nargs="*", metavar="FOLDER|DB|SPEC",
                       help="a folder written by 'download --to', a database folder, or a cached Hub spec "
                       "(default: the cached defaults)")
    check.set_defaults(func=run_verify)
