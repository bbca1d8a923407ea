"""build-vqa's step of ``aigciqa demo``: template pairs, and LLM rewording of 2 images when an LLM is installed."""

from __future__ import annotations

from aigciqa.qa_builder.build import BuildOptions, build_vqa


def demo_step(context) -> str:
    """Demo: template pairs for the demo folder; LLM expansion on 2 images when an LLM is installed."""
    folder = context.folder
    if not folder.has("mos") and not folder.has("labels"):
        return "skipped: the demo folder has no mos.csv or labels.csv yet (build-mos did not run)"
    from aigciqa.qa_builder.llm import default_model_path, llama_cpp_available
    use_llm = default_model_path() is not None and llama_cpp_available()
    # Few LLM requests, so the demo stays quick on a laptop: the rating questions of 2 images.
    report = build_vqa(folder, BuildOptions(use_llm=use_llm, llm_limit=2, llm_kinds=("rating",),
                                            segment_prompts=True, segment_with_llm=False, progress=False))
    return report.summary()
