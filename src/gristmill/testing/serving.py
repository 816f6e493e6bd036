"""Server processes for tests (``gristmill serve``, a package's ``serve.py``): on a free
port, ready when yielded, stopped after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerProcess:
    """A running ``gristmill serve``: its base URL, its (supervising) process and the file
    its output goes to."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    def workers(self) -> list[int]:
        """The pids of its uvicorn worker processes (none with one worker)."""
        found = []
        for child in (
            Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        ):
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                found.append(int(child))
        return found


@contextmanager
def running_server(
    cwd: Path, *args: str, timeout: float = 90, script: bool = False
) -> Iterator[ServerProcess]:
    """``gristmill serve --port <free> ARGS`` in ``cwd``, yielded once ``/readyz`` answers
    200; SIGTERM after. Its output goes to ``serve-<port>.log`` in ``cwd`` (shown if it died
    early). ``script``: run the ``gristmill`` console script beside this interpreter, as a
    user does, rather than ``python -m gristmill`` (a spawned worker re-imports the script,
    never ``gristmill.__main__``)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    program = [str(Path(sys.executable).parent / "gristmill")]
    if not script:
        program = [sys.executable, "-m", "gristmill"]
    command = [*program, "serve", "--port", str(port), *args]
    with _serving(command, port, cwd, env, "gristmill serve", timeout) as server:
        yield server


@contextmanager
def running_package(
    package: Path, cwd: Path, env: dict[str, str], *, timeout: float = 90
) -> Iterator[ServerProcess]:
    """A packaged model's entry point (``python PACKAGE/serve.py --port <free>``) run in
    ``cwd`` with exactly ``env``, yielded once ``/readyz`` answers 200; SIGTERM after."""
    port = free_port()
    command = [sys.executable, str(package / "serve.py"), "--port", str(port)]
    with _serving(command, port, cwd, env, "serve.py", timeout) as server:
        yield server


@contextmanager
def _serving(
    command: list[str], port: int, cwd: Path, env: dict[str, str], what: str, timeout: float
) -> Iterator[ServerProcess]:
    import httpx

    log = cwd / f"serve-{port}.log"  # a file, not a pipe nobody reads while it runs
    with log.open("w") as output:
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{what} exited {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} was not ready within {timeout}s")
            time.sleep(0.1)
        yield ServerProcess(url, proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()
