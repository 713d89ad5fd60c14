"""Mirror resolution and the fast offline fallback."""

from __future__ import annotations

import time

import huggingface_hub

from emo_lightning.utils import hub


def test_local_folder_then_mirror_then_hub_id(tmp_path):
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert hub.resolve_hub_path(str(tmp_path / "org"), None) == str(tmp_path / "org")
    assert hub.resolve_hub_path("org/name", str(tmp_path)) == str(tmp_path / "org" / "name")
    assert hub.resolve_hub_path("org/other", str(tmp_path)) == "org/other"  # unchanged, for the Hub


def test_unreachable_hub_switches_to_offline_fast(monkeypatch, caplog):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HUB_HOST", "hub.invalid")  # a name that never resolves (RFC 2606)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub.go_offline_if_hub_unreachable.cache_clear()
    start = time.perf_counter()
    try:
        assert hub.go_offline_if_hub_unreachable() is True
        assert time.perf_counter() - start < 5
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True
        assert "working offline" in caplog.text
        assert hub.go_offline_if_hub_unreachable() is True  # checked once, then cached
        assert caplog.text.count("working offline") == 1
    finally:
        hub.go_offline_if_hub_unreachable.cache_clear()
