"""The generate step of ``aigciqa demo``: tiny random-weight pipelines make the demo folder's images.

The demo's generator names (``aigciqa.demo.DEMO_GENERATORS``) are given diffusers families in turn,
so the images get the ids and paths the other demo steps expect; rows that the demo listed before
any image existed are filled in place.
"""

from __future__ import annotations

DEMO_FAMILIES = ("stable_diffusion", "unidiffuser", "dalle", "controlnet")


def demo_step(context) -> str:
    """Make every image of the demo folder: its prompts x the demo generators x context.samples, 64 px."""
    from aigciqa.demo import DEMO_GENERATORS
    from aigciqa.generate.run import run_generate
    families = {name: DEMO_FAMILIES[k % len(DEMO_FAMILIES)] for k, name in enumerate(DEMO_GENERATORS)}
    config = {"generators": {name: {"family": family} for name, family in families.items()}}
    summary = run_generate(context.folder.root, generators=list(families), per_prompt=context.samples,
                           limit_prompts=context.n_prompts, weights={"*": "tiny"}, config=config, progress=False)
    used = ", ".join(f"{name}={family}" for name, family in families.items())
    return f"{summary.line()}; tiny random-weight pipelines at 64 px ({used}) -> images/, images.csv"
