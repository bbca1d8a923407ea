"""``aigciqa demo -o OUT``: every stage that exists, end to end, on a small embedded example.

The example is a database folder built from the embedded AIGCIQA2023 prompt list. Everything the
demo makes is simulated or made by random-weight models, and the card says so (``synthetic``).
Each stage contributes one step, in its own ``demo`` module: a function ``step(context) -> str`` that
returns a one-line summary naming its outputs.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aigciqa.database import DatabaseFolder, default_card

# Stage steps in pipeline order: "module:function".
DEMO_STEPS: tuple[str, ...] = (
    "aigciqa.demo:example_folder",
    "aigciqa.generate.demo:demo_step",
    "aigciqa.datasets.demo:demo_step",
    "aigciqa.annotate.demo:demo_step",
    "aigciqa.mos.demo:demo_step",
    "aigciqa.qa_builder.demo:demo_step",
    "aigciqa.model.demo:scorer_step",
    "aigciqa.model.demo:instruction_step",
)

DEMO_GENERATORS = ("demo_gen_a", "demo_gen_b", "demo_gen_c")


@dataclass
class DemoContext:
    out: Path
    seed: int = 0
    n_prompts: int = 10
    samples: int = 2
    extras: dict = field(default_factory=dict)

    @property
    def folder(self) -> DatabaseFolder:
        return DatabaseFolder(self.out / "db")

    def rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])


def example_folder(context: DemoContext) -> str:
    """The example database: prompts from the embedded set, one per category, and an image table."""
    from aigciqa.datasets.prompt_sets import load_prompt_set
    prompts = load_prompt_set("aigciqa2023").drop_duplicates("category").head(context.n_prompts)
    rows = [{"image_id": f"{generator}-{pid}-{k}",
             "path": DatabaseFolder.image_relpath(generator, pid, k), "prompt_id": pid,
             "generator": generator, "sample": k}
            for generator in DEMO_GENERATORS for pid in prompts["prompt_id"] for k in range(1, context.samples + 1)]
    images = pd.DataFrame(rows).assign(seed=pd.NA, width=pd.NA, height=pd.NA, sha256="")
    card = default_card("aigciqa-demo", synthetic=True, generators=list(DEMO_GENERATORS),
                        description="Simulated demo database made by 'aigciqa demo': not real data.")
    context.folder.write({"prompts": prompts, "images": images}, card=card, stage="demo")
    return (f"{context.folder.root}: {len(prompts)} prompts x {len(DEMO_GENERATORS)} generators x "
            f"{context.samples} samples = {len(images)} images listed (prompts.csv, images.csv, dataset.json)")


def check_out_folder(out: Path) -> None:
    """Refuse an OUT that holds anything: the demo has no resume, and its steps over an earlier demo's (or
    anyone's) files would leave a mixture of two runs (old ratings exported, a run name that exists)."""
    from aigciqa.errors import InputError
    if out.exists() and not out.is_dir():
        raise InputError("is not a folder: choose a new folder for -o OUT", file=out)
    if out.is_dir() and any(out.iterdir()):
        raise InputError("the folder is not empty (an earlier demo's outputs?): choose a new folder for -o OUT, "
                         "or remove this one first", file=out)


def run_demo(out: str | Path, seed: int = 0, echo=print) -> DemoContext:
    context = DemoContext(out=Path(out), seed=seed)
    check_out_folder(context.out)
    context.out.mkdir(parents=True, exist_ok=True)
    for spec in DEMO_STEPS:
        module, function = spec.split(":")
        started = time.perf_counter()
        summary = getattr(importlib.import_module(module), function)(context)
        label = function if module == __name__ else module.split(".")[1]  # the stage's subpackage
        echo(f"[{label}] {summary}  ({time.perf_counter() - started:.1f} s)")
    echo(f"demo outputs are in {context.out} (inspect them with: aigciqa info {context.folder.root})")
    return context


def register(subparsers) -> None:
    from aigciqa.cli import add_command, add_out_argument
    parser = add_command(
        subparsers, "demo",
        description="""
        Input: nothing but the package (embedded prompts; simulated subjects; random-weight models).
        Output: -o OUT, a new or empty folder (a non-empty one is refused, exit 2: the demo does not
        resume): OUT/db, a database folder written by each stage in turn, and what each stage writes
        beside it. Everything is marked synthetic: it shows the pipeline, not real quality data.""",
        example="aigciqa demo -o demo-out")
    add_out_argument(parser, "OUT", "output folder (created; must be new or empty)", required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of every simulated step (default 0)")
    parser.set_defaults(func=run)


def upgrade_argv(argv: list[str]) -> list[str]:
    """The old spelling ``demo OUT`` as ``demo -o OUT``."""
    from aigciqa.cli import upgrade_positional_out
    return upgrade_positional_out(argv, position=0, old="'aigciqa demo OUT'", new="'aigciqa demo -o OUT'")


def run(args) -> int:
    run_demo(args.out, args.seed)
    return 0
