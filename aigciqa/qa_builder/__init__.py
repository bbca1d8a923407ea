"""Stage build-vqa: instruction pairs from MOS, labels and explanations; LLM expansion; prompt
segmentation; VQA accuracy (see docs/build-vqa.md)."""
