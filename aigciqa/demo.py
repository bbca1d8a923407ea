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


def run_demo(out: str | Path, seed: int = 0, echo=print) -> DemoContext:
    context = DemoContext(out=Path(out), seed=seed)
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
        Output: -o OUT: OUT/db, a database folder written by each stage in turn, and what each stage writes
        beside it. Everything is marked synthetic: it shows the pipeline, not real quality data.""",
        example="aigciqa demo -o demo-out")
    add_out_argument(parser, "OUT", "output folder (created)", old_positional=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of every simulated step (default 0)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.cli import out_of
    run_demo(out_of(args, old="'aigciqa demo OUT'", new="'aigciqa demo -o OUT'",
                    needed="-o OUT is needed: the folder the demo writes"), args.seed)
    return 0
