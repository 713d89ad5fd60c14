"""Resolve Hub ids against local mirrors, and fall back to offline mode fast when the Hub is unreachable."""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

log = logging.getLogger(__name__)

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"
DEFAULT_PORTS = {"https": 443, "http": 80, "socks5": 1080, "socks5h": 1080, "socks4": 1080}


_ANNOUNCED: set[str] = set()  # mirror folders this process has said it uses


def resolve_hub_path(name_or_path: str, mirror_dir: str | None) -> str:
    """Return a local folder for `name_or_path` if there is one, else the Hub id unchanged.

    A local path wins; then `<mirror_dir>/<hub id>`; otherwise the id goes to the Hub as given.
    """
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return str(local)
    if mirror_dir:
        mirrored = Path(mirror_dir).expanduser() / name_or_path
        if mirrored.is_dir():
            if str(mirrored) not in _ANNOUNCED:  # tokenizer, config and weights all resolve it: one line
                _ANNOUNCED.add(str(mirrored))
                log.info("%s → %s (local mirror)", name_or_path, mirrored)
            return str(mirrored)
    go_offline_if_hub_unreachable()
    return name_or_path


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").upper() in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    """The Hub's URL: `HF_ENDPOINT` (a mirror such as https://hf-mirror.com) or huggingface.co."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_HUB_ENDPOINT).rstrip("/")


def proxy_for(url: str) -> str | None:
    """The proxy that HTTP clients (httpx, requests) would use for `url` from the environment, or None.

    `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http ones, `ALL_PROXY` for either; `NO_PROXY` exempts hosts.
    """
    parts = urlsplit(url)
    proxies = getproxies_environment()
    if not parts.hostname or proxy_bypass_environment(parts.netloc, proxies):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def _host_port(url: str) -> tuple[str, int]:
    """(host, port) of `url`, the port defaulting by scheme; ValueError when it is not a URL."""
    parts = urlsplit(url if "://" in url else f"http://{url}")  # proxies are often given as host:port
    if not parts.hostname:
        raise ValueError("not a URL like https://host[:port]")
    return parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme, 443)


def _without_password(url: str) -> str:
    """`url` for a log line: user:password@ of a proxy URL shown as ***@."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.rpartition("://")
    return f"{scheme}://***@{tail}" if scheme else f"***@{tail}"


def reachable(url: str, timeout: float) -> tuple[bool, str]:
    """Whether a TCP connection to `url`'s server (or to the proxy the environment names for it) opens.

    Returns (ok, what): `what` names the server and the proxy, and on failure why, e.g.
    "https://hf.example:8443 via proxy http://127.0.0.1:3128: Connection refused".
    """
    proxy = proxy_for(url)
    try:
        host, port = _host_port(url)
        target = f"{urlsplit(url).scheme}://{host}:{port}"
        what = f"{target} via proxy {_without_password(proxy)}" if proxy else target
        connect_to = _host_port(proxy) if proxy else (host, port)
    except ValueError as err:  # a malformed URL or port
        return False, f"{url}{f' via proxy {_without_password(proxy)}' if proxy else ''}: {err}"
    try:
        socket.create_connection(connect_to, timeout=timeout).close()
    except OSError as err:
        return False, f"{what}: {err.strerror or err}"
    return True, what


@functools.cache
def go_offline_if_hub_unreachable(timeout: float = 2.0) -> bool:
    """Switch huggingface_hub, transformers and datasets to offline mode when the Hub can't be reached.

    Without this, every `from_pretrained` / `load_dataset` on an air-gapped machine waits for network
    timeouts. Honours `HF_ENDPOINT` and HTTPS proxies. Checked once per process; returns True when offline.
    """
    if not hub_is_offline():
        ok, what = reachable(hub_endpoint(), timeout)
        if ok:
            return False
        log.warning("Hugging Face Hub unreachable (%s): working offline", what)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    _set_offline_in_imported_libraries()
    return True


def _set_offline_in_imported_libraries() -> None:
    """huggingface_hub and datasets read HF_HUB_OFFLINE at import; a library imported before it was set would still
    try the network (and retry with backoff for ~20 s)."""
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        config = sys.modules["datasets"].config
        config.HF_HUB_OFFLINE = config.HF_DATASETS_OFFLINE = True


def not_found_hint(name: str, mirror_dir: str | None, key: str, env: str) -> str:
    """The fix to print when `name` is neither a local folder, in the mirror, nor reachable on the Hub."""
    where = f"{mirror_dir}/{name}" if mirror_dir else f"a mirror folder holding {name}/"
    state = "the Hub is offline" if hub_is_offline() else "the Hub did not have it"
    return f"'{name}' is not a local folder, not in the mirror and {state}: set {key} (env {env}) so {where} exists"
