"""--quiet's hold on the libraries' own progress bars (huggingface_hub, transformers): off inside, as before after."""

import sys

import pytest

from aigciqa.common.progress import library_bars

hub = pytest.importorskip("huggingface_hub.utils.tqdm", reason="huggingface_hub not installed")
transformers_logging = pytest.importorskip("transformers.utils.logging")


@pytest.fixture(autouse=True)
def bars_restored(monkeypatch):
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    states, transformers_on = dict(hub.progress_bar_states), transformers_logging.is_progress_bar_enabled()
    yield
    hub.progress_bar_states.clear()
    hub.progress_bar_states.update(states)
    (transformers_logging.enable_progress_bar if transformers_on else transformers_logging.disable_progress_bar)()
    hub.progress_bar_states.clear()
    hub.progress_bar_states.update(states)


def test_off_inside_and_each_library_as_it_was_after():
    transformers_logging.enable_progress_bar()
    hub.disable_progress_bars("huggingface_hub.http_get")  # a user's per-group choice
    with library_bars(False):
        assert hub.are_progress_bars_disabled() and not transformers_logging.is_progress_bar_enabled()
    assert transformers_logging.is_progress_bar_enabled() and not hub.are_progress_bars_disabled()
    assert hub.are_progress_bars_disabled("huggingface_hub.http_get")


def test_a_user_who_turned_the_hub_bars_off_keeps_them_off():
    transformers_logging.enable_progress_bar()
    hub.disable_progress_bars()
    with library_bars(False):
        pass
    assert hub.are_progress_bars_disabled() and transformers_logging.is_progress_bar_enabled()


def test_the_environment_variable_is_left_to_the_user(monkeypatch, recwarn):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    transformers_logging.enable_progress_bar()
    with library_bars(False):
        assert transformers_logging.is_progress_bar_enabled()
    assert not [w for w in recwarn if "progress bars" in str(w.message)]


def test_without_huggingface_hub_quiet_still_runs(monkeypatch):
    ran = False
    with monkeypatch.context() as patch:
        for name in ("huggingface_hub", "huggingface_hub.utils", "huggingface_hub.utils.tqdm"):
            patch.setitem(sys.modules, name, None)  # imports fail as if it were not installed
        with library_bars(False):
            ran = True
    assert ran
