"""A repo that several stages use (CLIP ViT-L/14: the clip preset, CLIPScore, the aesthetic encoder)."""

from collections import Counter

from aigciqa.weights.defaults import DEFAULTS, for_repo
from aigciqa.weights.resolve import download_command, patterns
from aigciqa.weights.spec import parse


def test_a_shared_repo_downloads_what_every_stage_needs_and_is_named_by_its_id():
    shared = [repo for repo, n in Counter(e.repo_id for e in DEFAULTS.values() if e.on_hub and not e.filename).items()
              if n > 1]
    assert "openai/clip-vit-large-patch14" in shared
    for repo in shared:
        allow, _ = patterns(repo)
        for entry in for_repo(repo):
            assert allow is None or set(entry.allow) <= set(allow), entry.name
        assert download_command(parse(repo)) == f"aigciqa weights download {repo}"
    single = next(e for e in DEFAULTS.values() if e.on_hub and len(for_repo(e.repo_id)) == 1)
    assert download_command(parse(single.spec)) == f"aigciqa weights download {single.name}"
