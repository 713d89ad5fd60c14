"""Run the app with uvicorn on an already bound socket; SIGTERM / SIGINT stop it gracefully (exit 0).

On a signal uvicorn stops accepting connections, answers the requests in flight, runs the app's shutdown, restores
the signal handlers it found and raises the signal again: the handlers installed here only note it, so the process
ends normally with one log line instead of being killed by the re-raised signal.
"""

from __future__ import annotations

import logging
import signal
import socket

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("emo_lightning.serve")


def run_server(
    app: FastAPI, sock: socket.socket, shutdown_timeout: float, access_log: bool = False, announce: str = ""
) -> str | None:
    """Serve `app` on `sock` until a signal; returns the signal's name (None: stopped otherwise)."""
    received: list[str] = []

    def note(signum: int, frame) -> None:
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, note)
    config = uvicorn.Config(
        app,
        log_config=None,  # keep Hydra's logging; uvicorn's own lines only from warnings up
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=shutdown_timeout,
        server_header=False,
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info("serving on http://%s:%d %s", shown, port, announce)
    server.run(sockets=[sock])
    return received[0] if received else None
