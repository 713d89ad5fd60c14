"""serve.py's settings, checked before anything loads, and the listening socket (bound before the model loads)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from emo_lightning.serving.payloads import Limits
from emo_lightning.utils.errors import ConfigError


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

    @classmethod
    def from_cfg(cls, cfg: Mapping) -> ServeSettings:
        """Settings from conf/serve.yaml's keys; one-line ConfigError for a bad value (backend and precision are
        checked by `EmotionPredictor`)."""
        port = cfg["port"]
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"port={port} is not a port: give port=<1..65535> (or port=0 for any free port)")
        threshold = cfg["threshold"]
        if threshold is not None and not (isinstance(threshold, int | float) and 0 < threshold < 1):
            raise ConfigError(f"threshold={threshold} is not a probability: give 0 < threshold < 1, or threshold=null")
        limits = cfg["limits"]
        if not isinstance(limits, Mapping):
            raise ConfigError(
                f"limits={limits} is not a group of limits: set one with limits.max_texts=<n> "
                "(or limits.max_body_bytes, limits.max_text_chars)"
            )
        return cls(
            host=str(cfg["host"]),
            port=port,
            backend=str(cfg["backend"]),
            precision=str(cfg["precision"]),
            threshold=threshold,
            batch_size=positive_int(cfg, "batch_size"),
            max_batch_size=positive_int(cfg, "max_batch_size"),
            batch_timeout=seconds(cfg, "batch_timeout", allow_zero=True),
            shutdown_timeout=seconds(cfg, "shutdown_timeout", allow_zero=False),
            limits=Limits(
                max_body_bytes=positive_int(limits, "max_body_bytes", "limits."),
                max_texts=positive_int(limits, "max_texts", "limits."),
                max_text_chars=positive_int(limits, "max_text_chars", "limits."),
            ),
            access_log=bool(cfg["access_log"]),
        )


def positive_int(cfg: Mapping, key: str, prefix: str = "") -> int:
    value = cfg[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{prefix}{key}={value} is not a positive integer: give {prefix}{key}=<n> with n >= 1")
    return value


def seconds(cfg: Mapping, key: str, allow_zero: bool) -> float:
    value = cfg[key]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not value >= 0 or (value == 0 and not allow_zero):  # `not >=`: NaN too
        wanted = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
        raise ConfigError(f"{key}={value} is not {wanted}: give {key}=<seconds>")
    return float(value)


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
