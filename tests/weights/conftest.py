import pytest


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache under HF_HOME=tmp/hf, used in offline mode by this process (and by
    subprocesses that get HF_HOME from :func:`offline_environment`)."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as constants
    home = tmp_path / "hf"
    (home / "hub").mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home
