"""A ``gristmill serve`` process for tests: on a free port, ready when yielded, stopped after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(cwd: Path, *args: str, timeout: float = 90) -> Iterator[str]:
    """``gristmill serve --port <free> ARGS`` in ``cwd``; yields its base URL once
    ``/readyz`` answers 200; SIGTERM after. Its output goes to ``serve-<port>.log`` in
    ``cwd`` (shown if it died early)."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    log = cwd / f"serve-{port}.log"  # a file, not a pipe nobody reads while it runs
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gristmill", "serve", "--port", str(port), *args],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"gristmill serve exited {proc.returncode}:\n{log.read_text()}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gristmill serve was not ready within {timeout}s")
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()
