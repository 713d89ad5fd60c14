"""serve.py's settings, checked before anything loads, and the listening socket (bound before the model loads)."""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from emo_lightning.serving.payloads import Limits
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import SERVE, check_values


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    backend: str
    precision: str
    threshold: float | None
    batch_size: int
    max_batch_size: int
    batch_timeout: float
    shutdown_timeout: float
    limits: Limits
    access_log: bool = False
    api_key_env: str = "EMO_API_KEY"
    api_key: str | None = field(default=None, repr=False)  # from the environment; never logged or saved

    @classmethod
    def from_cfg(cls, cfg: Mapping, environ: Mapping[str, str] = os.environ) -> ServeSettings:
        """Settings from conf/serve.yaml's keys and the API key from `environ`; one-line ConfigError for a bad value
        (ranges: `utils.rules.SERVE`; backend and precision are checked by `EmotionPredictor`), or for a host other
        machines reach without a key (unless allow_unauthenticated=true)."""
        limits = cfg["limits"]
        if not isinstance(limits, Mapping):
            raise ConfigError(
                f"limits={limits} is not a group of limits: set one with limits.max_texts=<n> "
                "(or limits.max_body_bytes, limits.max_text_chars)"
            )
        check_values(cfg, SERVE)
        host = str(cfg["host"])
        api_key_env = variable_name(cfg["api_key_env"])
        api_key = key_from(environ, api_key_env)
        allow_unauthenticated = cfg["allow_unauthenticated"]
        if not isinstance(allow_unauthenticated, bool):
            raise ConfigError(
                f"allow_unauthenticated={allow_unauthenticated} is not true or false: give allow_unauthenticated=true "
                "to serve a public host without an API key, or leave it false"
            )
        if api_key is None and not allow_unauthenticated and not is_loopback(host):
            raise ConfigError(
                f"host={host} is reachable from other machines and {api_key_env} is not set or is empty: "
                f"start with {api_key_env}=<key> (clients then send Authorization: Bearer <key>), keep "
                "host=127.0.0.1, or give allow_unauthenticated=true on a network you trust"
            )
        return cls(
            host=host,
            port=cfg["port"],
            backend=str(cfg["backend"]),
            precision=str(cfg["precision"]),
            threshold=cfg["threshold"],
            batch_size=cfg["batch_size"],
            max_batch_size=cfg["max_batch_size"],
            batch_timeout=float(cfg["batch_timeout"]),
            shutdown_timeout=float(cfg["shutdown_timeout"]),
            limits=Limits(limits["max_body_bytes"], limits["max_texts"], limits["max_text_chars"]),
            access_log=bool(cfg["access_log"]),
            api_key_env=api_key_env,
            api_key=api_key,
        )

    def access(self) -> str:
        """Whether callers need the key, for the start-up line (never the key itself)."""
        if self.api_key:
            return f"API key required ({self.api_key_env})"
        if is_loopback(self.host):
            return f"no API key: set {self.api_key_env} to require one"
        return f"no API key: anyone who reaches {self.host} may call it"


VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEY_CHARACTERS = re.compile(r"[!-~]+")  # printable ASCII without spaces: what a header carries unchanged
MIN_KEY_CHARS = 16
NEW_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def variable_name(value: object) -> str:
    if not isinstance(value, str) or not VARIABLE.fullmatch(value):
        raise ConfigError(
            f"api_key_env={value} is not the name of an environment variable: give api_key_env=EMO_API_KEY "
            "(letters, digits and _, not starting with a digit)"
        )
    return value


def key_from(environ: Mapping[str, str], name: str) -> str | None:
    """The API key in the environment variable `name`: None when unset or empty. The messages never show it."""
    key = environ.get(name, "")
    if not key:
        return None
    if not KEY_CHARACTERS.fullmatch(key):
        raise ConfigError(
            f"{name} holds a character that an Authorization header cannot carry (a space, a control character or "
            f"non-ASCII): use printable ASCII, e.g. a key from {NEW_KEY}"
        )
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(
            f"{name} holds {len(key)} characters, fewer than {MIN_KEY_CHARS}: use a longer key, e.g. one from {NEW_KEY}"
        )
    return key


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (127.0.0.0/8, ::1), so only this machine reaches it.
    A host that names no address counts as loopback here: `bind_socket` refuses it with its own message."""
    try:
        infos = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return True
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    return all((getattr(address, "ipv4_mapped", None) or address).is_loopback for address in addresses)


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening (uvicorn listens once the model is loaded)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(
            f"host={host} is not an address of this machine ({err.strerror}): give host=127.0.0.1"
        ) from err
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop may rebind
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use: stop what listens there, or give port=<another> (port=0: any)"
            ) from err
        if err.errno == errno.EACCES:
            raise ConfigError(f"port {port} needs root: give port=<1024..65535>") from err
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror}): give host=127.0.0.1") from err
    sock.set_inheritable(True)
    return sock
