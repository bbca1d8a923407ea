import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")


@pytest.fixture
def read_pngs():
    """folder -> {relative path: bytes} of every PNG under it."""
    def read(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}
    return read


@pytest.fixture
def tiny_config():
    """Fast settings: 2 steps, 32 px, the manifest written every 2 images."""
    return {"flush_every": 2, "generators": {
        name: {"width": 32, "height": 32, "steps": 2}
        for name in ("stable_diffusion", "controlnet", "dalle", "unidiffuser")}}
