"""Weights specs resolve through huggingface_hub against a cache laid out by the test, never the network."""

import json
import socket

import pytest

from aigciqa.errors import InputError
from aigciqa.weights import defaults
from aigciqa.weights.resolve import MANIFEST, copy_to, resolve, verify
from aigciqa.weights.spec import HubSpec, parse


def model_folder(root):
    """A small model folder: a config (a plain git blob) and a 'weights' file (an LFS blob)."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"hidden": 4}')
    (root / "unet").mkdir()
    (root / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(bytes(range(256)) * 100)
    return root


def test_spec_syntax(tmp_path):
    assert parse("org/name") == HubSpec("org/name", "main", "")
    assert parse("org/name@v1.0:model.Q4.gguf") == HubSpec("org/name", "v1.0", "model.Q4.gguf")
    assert parse("org/name:model.gguf") == HubSpec("org/name", "main", "model.gguf")
    assert str(HubSpec("org/name", "abc", "f.gguf")) == "org/name@abc:f.gguf"
    assert parse("./org/name") == parse("./org/name")  # written like a path: a local path
    assert not isinstance(parse("./org/name"), HubSpec)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert parse(str(tmp_path / "org" / "name")) == tmp_path / "org" / "name"   # an existing path wins
    assert not isinstance(parse("a/b/c"), HubSpec)   # two slashes: not a repo id
    with pytest.raises(InputError, match="empty revision or file name"):
        parse("org/name@")


def test_a_repo_id_resolves_to_its_cached_snapshot_and_commit(put_in_hub_cache, tmp_path):
    commit = put_in_hub_cache("org/model", model_folder(tmp_path / "src"))
    resolved = resolve("org/model")
    assert resolved.commit == commit and resolved.repo_id == "org/model" and resolved.label == "org/model"
    assert resolved.path.name == commit and (resolved.path / "config.json").read_text() == '{"hidden": 4}'
    assert resolve(f"org/model@{commit}").path == resolved.path         # pinned to the commit
    hashes = resolved.record()["files_sha256"]
    assert sorted(hashes) == ["config.json", "unet/diffusion_pytorch_model.safetensors"]
    import hashlib
    assert hashes["config.json"] == hashlib.sha256(b'{"hidden": 4}').hexdigest()


def test_one_file_of_a_repo(put_in_hub_cache, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(20000))
    commit = put_in_hub_cache("org/llm-gguf", gguf)
    resolved = resolve("org/llm-gguf:m.gguf")
    assert resolved.path.is_file() and resolved.path.name == "m.gguf" and resolved.commit == commit
    assert resolved.label == "org/llm-gguf:m.gguf"
    copied = copy_to(resolved, tmp_path / "out" / "llm")   # download --to: the file and its manifest
    assert copied.path == tmp_path / "out" / "llm" / "m.gguf" and copied.commit == commit
    assert resolve(tmp_path / "out" / "llm" / "m.gguf").label == "org/llm-gguf:m.gguf"
    assert verify(str(copied.path))[0].checked == 1


def test_an_absent_repo_names_repo_revision_and_the_download_command(hub_cache):
    with pytest.raises(InputError) as error:
        resolve("org/absent@v2", what="weights for 'x'")
    message = str(error.value)
    assert "\n" not in message
    assert "org/absent" in message and "revision v2" in message and "HF_HUB_OFFLINE=1" in message
    assert "aigciqa weights download org/absent@v2" in message
    entry = defaults.DEFAULTS["stable_diffusion"]
    with pytest.raises(InputError, match=f"'aigciqa weights download {entry.name}'"):
        resolve(entry.spec)   # a default is named by its short name
    with pytest.raises(InputError, match="file x.gguf"):
        resolve("org/absent:x.gguf")


def test_download_to_a_folder_then_resolve_and_verify_it(put_in_hub_cache, tmp_path):
    commit = put_in_hub_cache("org/model", model_folder(tmp_path / "src"))
    copied = copy_to(resolve("org/model"), tmp_path / "out" / "model")
    assert copied.commit == commit and copied.repo_id == "org/model" and copied.label == "org/model"
    manifest = json.loads((tmp_path / "out" / "model" / MANIFEST).read_text())
    assert manifest["commit"] == commit and len(manifest["files_sha256"]) == 2
    assert not list((tmp_path / "out").glob(".*partial*"))
    assert resolve(tmp_path / "out" / "model").commit == commit      # a local folder keeps its provenance
    assert verify(str(tmp_path / "out" / "model"))[0].problems == []
    weights = tmp_path / "out" / "model" / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[1234] ^= 1
    weights.write_bytes(bytes(data))
    check = verify(str(tmp_path / "out" / "model"))[0]
    assert check.problems and "unet/diffusion_pytorch_model.safetensors changed" in check.problems[0]


def test_verify_a_cached_snapshot_against_the_hubs_blob_hashes(put_in_hub_cache, tmp_path):
    put_in_hub_cache("org/model", model_folder(tmp_path / "src"))
    check = verify("org/model")[0]
    assert check.problems == [] and check.checked == 2   # one sha256 (LFS) and one git sha1 blob
    config = resolve("org/model").path / "config.json"
    config.resolve().write_text('{"hidden": 5}')
    assert "config.json changed" in verify("org/model")[0].problems[0]


def test_the_defaults_table_is_the_docs_table():
    from pathlib import Path
    docs = (Path(__file__).resolve().parents[2] / "docs" / "weights.md").read_text()
    assert defaults.markdown_table() in docs
    assert all(e.licence and e.size for e in defaults.DEFAULTS.values())
    assert all(e.on_hub or e.source for e in defaults.DEFAULTS.values())


def test_no_test_reaches_the_network():
    with pytest.raises(OSError, match="must not use the network"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
