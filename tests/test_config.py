"""Where kenning keeps its cache: one folder, under $XDG_CACHE_HOME unless $KENNING_CACHE
says otherwise, used by every part that caches."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_one_cache_folder_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kenning.config import cache_dir

    monkeypatch.delenv("KENNING_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kenning"
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    import kenning.embedders
    import kenning.eval.evaluate

    assert not hasattr(kenning.embedders, "_cache_dir")  # both use config.cache_dir
    assert kenning.eval.evaluate.cache_dir is cache_dir
