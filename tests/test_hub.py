"""Mirror resolution, the fast offline fallback, and reachability through endpoints and proxies (real sockets)."""

from __future__ import annotations

import socket
import time

import huggingface_hub
import pytest

from emo_lightning.training import loggers
from emo_lightning.utils import hub

PROXY_VARS = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
]


@pytest.fixture
def no_proxies(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def listening_port():
    """A port on 127.0.0.1 that accepts TCP connections (the kernel completes them from the backlog)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on: connections are refused at once."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def online_env(monkeypatch, no_proxies):
    """As on a machine with network: no offline flags; the cached Hub check starts fresh and is cleared after."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub.go_offline_if_hub_unreachable.cache_clear()
    yield
    hub.go_offline_if_hub_unreachable.cache_clear()


def test_local_folder_then_mirror_then_hub_id(tmp_path):
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert hub.resolve_hub_path(str(tmp_path / "org"), None) == str(tmp_path / "org")
    assert hub.resolve_hub_path("org/name", str(tmp_path)) == str(tmp_path / "org" / "name")
    assert hub.resolve_hub_path("org/other", str(tmp_path)) == "org/other"  # unchanged, for the Hub


def test_unreachable_hub_switches_to_offline_fast(monkeypatch, caplog, online_env):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # a name that never resolves (RFC 2606)
    start = time.perf_counter()
    assert hub.go_offline_if_hub_unreachable() is True
    assert time.perf_counter() - start < 5
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert "Hugging Face Hub unreachable (https://hub.invalid:443: " in caplog.text and "working offline" in caplog.text
    assert hub.go_offline_if_hub_unreachable() is True  # checked once, then cached
    assert caplog.text.count("working offline") == 1


def test_listening_port_is_reachable_and_closed_port_is_not_fast(no_proxies, listening_port, closed_port):
    assert hub.reachable(f"http://127.0.0.1:{listening_port}", 2.0) == (True, f"http://127.0.0.1:{listening_port}")
    start = time.perf_counter()
    ok, what = hub.reachable(f"https://127.0.0.1:{closed_port}/api", 2.0)
    assert time.perf_counter() - start < 1
    assert not ok and what == f"https://127.0.0.1:{closed_port}: Connection refused"


def test_default_port_follows_the_scheme(no_proxies):
    assert hub.reachable("https://hub.invalid", 2.0)[1].startswith("https://hub.invalid:443: ")
    assert hub.reachable("http://hub.invalid", 2.0)[1].startswith("http://hub.invalid:80: ")


def test_hf_endpoint_is_the_server_checked(monkeypatch, online_env, listening_port):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listening_port}/")
    assert hub.go_offline_if_hub_unreachable() is False
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_https_proxy_is_checked_in_place_of_the_hub(monkeypatch, caplog, online_env, listening_port, closed_port):
    endpoint = f"https://127.0.0.1:{closed_port}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listening_port}")
    assert hub.reachable(endpoint, 2.0) == (True, f"{endpoint} via proxy http://127.0.0.1:{listening_port}")
    assert hub.go_offline_if_hub_unreachable() is False  # online through the proxy
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{closed_port}")  # a dead proxy, given without a scheme
    hub.go_offline_if_hub_unreachable.cache_clear()
    assert hub.go_offline_if_hub_unreachable() is True
    expected = f"Hugging Face Hub unreachable ({endpoint} via proxy 127.0.0.1:{closed_port}: Connection refused)"
    assert f"{expected}: working offline" in caplog.text


def test_no_proxy_host_is_reached_directly(monkeypatch, no_proxies, listening_port, closed_port):
    url = f"https://127.0.0.1:{listening_port}"
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port}")
    assert hub.reachable(url, 2.0)[0] is False  # the dead proxy is used
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert hub.reachable(url, 2.0) == (True, url)  # bypassed: straight to the server
    assert hub.reachable(f"https://127.0.0.2:{listening_port}", 2.0)[0] is False  # not covered: via the proxy


def test_http_url_uses_http_proxy_not_https_proxy(monkeypatch, no_proxies, listening_port, closed_port):
    url = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port}")
    assert hub.reachable(url, 2.0)[0] is False
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listening_port}")
    assert hub.reachable(url, 2.0) == (True, f"{url} via proxy http://127.0.0.1:{listening_port}")


@pytest.fixture
def wandb_env(monkeypatch, no_proxies):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    loggers.wandb_online_possible.cache_clear()
    yield monkeypatch
    loggers.wandb_online_possible.cache_clear()


def test_wandb_base_url_port_is_the_one_checked(wandb_env, listening_port):
    wandb_env.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{listening_port}")
    assert loggers.wandb_online_possible() is True


def test_wandb_offline_when_its_server_refuses(wandb_env, caplog, closed_port):
    wandb_env.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port}")
    assert loggers.wandb_online_possible() is False
    assert f"W&B offline: server unreachable (http://127.0.0.1:{closed_port}: Connection refused)" in caplog.text


def test_proxy_password_stays_out_of_the_message(monkeypatch, no_proxies, closed_port):
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:s3cret@127.0.0.1:{closed_port}")
    ok, what = hub.reachable("https://hub.invalid", 2.0)
    assert (
        not ok and what == f"https://hub.invalid:443 via proxy http://***@127.0.0.1:{closed_port}: Connection refused"
    )


def test_a_mirror_folder_is_announced_once_however_often_it_is_resolved(tmp_path, caplog):
    (tmp_path / "org" / "model").mkdir(parents=True)  # tokenizer, config and weights each resolve the same id
    with caplog.at_level("INFO", logger="emo_lightning.utils.hub"):
        for _ in range(3):
            assert hub.resolve_hub_path("org/model", str(tmp_path)) == str(tmp_path / "org" / "model")
    assert [r.getMessage() for r in caplog.records] == [f"org/model → {tmp_path / 'org' / 'model'} (local mirror)"]
