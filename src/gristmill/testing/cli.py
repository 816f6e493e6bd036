"""Driving the CLI from tests as a user does: a real process, or the entry point in-process.

``run_cli`` starts ``python -m gristmill`` (no ``GRISTMILL_`` variables leak in from the
test's environment, a wide terminal so tables do not wrap); ``cli_stdout`` is the same that
fails with both outputs unless the command succeeds. ``run_cli_here`` calls the CLI's
``main()`` in this process (argument parsing, error display and exit codes included),
sparing a start-up per case. ``found`` pulls an id out of printed output.
``running_worker`` is a ``gristmill worker`` process for the length of a block.
``modules_imported`` runs a command in a fresh interpreter and says which modules it
imported (a command that must answer at once is held to that, not to a timing).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def run_cli(
    *args: str, cwd: Path, check: bool = False, timeout: float = 180, pythonpath: bool = True
) -> subprocess.CompletedProcess[str]:
    """``gristmill ARGS`` as a subprocess in ``cwd``; ``pythonpath=False`` drops PYTHONPATH
    (to prove something is importable without it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GRISTMILL_") and (pythonpath or k != "PYTHONPATH")
    }
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        raise AssertionError(f"gristmill {command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def cli_stdout(*args: str, cwd: Path, timeout: float = 180, pythonpath: bool = True) -> str:
    """The stdout of ``gristmill ARGS``, which must succeed."""
    return run_cli(*args, cwd=cwd, check=True, timeout=timeout, pythonpath=pythonpath).stdout


def run_cli_here(*args: str, cwd: Path, monkeypatch: Any, capsys: Any) -> tuple[int, str, str]:
    """``gristmill ARGS`` through ``main()`` in this process: (exit code, stdout, stderr).

    ``monkeypatch`` and ``capsys`` are pytest's fixtures of the calling test.
    """
    from gristmill.cli.app import main

    monkeypatch.chdir(cwd)
    for name in [k for k in os.environ if k.startswith("GRISTMILL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "argv", ["gristmill", *args])
    capsys.readouterr()
    try:
        main()
        code: object = 0
    except SystemExit as exited:
        code = exited.code
    out = capsys.readouterr()
    return code if isinstance(code, int) else (0 if code is None else 1), out.out, out.err


def modules_imported(*args: str, cwd: Path, code: str = "") -> tuple[str, list[str]]:
    """``gristmill ARGS`` (or, given ``code``, that Python code instead) in a fresh
    interpreter in ``cwd``, which must succeed: (its stdout, the names of every module
    imported by the end). The command runs as ``python -m gristmill`` runs it."""
    if not code:
        code = (
            "import runpy\n"
            f"sys.argv = ['gristmill', *{list(args)!r}]\n"
            "try:\n"
            "    runpy.run_module('gristmill', run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    assert exc.code in (0, None), f'exit code {exc.code}'\n"
        )
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    *printed, modules = done.stdout.splitlines()
    return "\n".join(printed), json.loads(modules)


def found(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text``; fails showing the text when absent."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return match.group(1)


@contextmanager
def running_worker(cwd: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``gristmill worker ARGS`` (``--all`` when none) in ``cwd``, as a user starts it:
    ready when yielded, stopped by SIGTERM after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "worker", *(args or ("--all",))],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline, line = time.monotonic() + 60, ""
        while "ready" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert "ready" in line, proc.stderr.read() if proc.stderr else ""
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()
