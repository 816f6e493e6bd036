"""Benchmark: how long the ``gristmill`` command takes to answer, against a bare interpreter.

Usage: ``.venv/bin/python bench/bench_cli_startup.py [--runs 7] [--home DIR]``

Each command runs as a fresh process (``python -m gristmill ...``, the interpreter running
this script), timed whole from start to exit, ``--runs`` times after one untimed run; the
median and the fastest are reported, with the median's ratio to ``python -c pass`` (the
interpreter alone) and to ``python -c "import typer"`` (what any typer CLI pays before its
first line). The commands: ``--help``, ``--version``, ``ls batches`` and ``show ID`` (the
newest batch) on a home made by ``gristmill run examples/penguins/pipeline.yaml`` (made
first in a temporary folder, untimed, unless ``--home`` names one). A floor row imports
what ``ls`` and ``show`` cannot do without (typer, rich, pydantic-settings, SQLAlchemy).
Each gristmill command is also run once with ``-X importtime`` to name the heavy libraries
it loads.

Byte-code is cached as in an installed package (``PYTHONDONTWRITEBYTECODE`` is dropped from
the commands' environment; ``--no-bytecode`` keeps it, and every run then compiles
gristmill's modules again). Nothing is asserted: the figures go to stdout and to
bench/results/cli_startup.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "penguins"
RESULTS = HERE / "results" / "cli_startup.md"
HEAVY = (
    "sklearn",
    "scipy",
    "pandas",
    "skops",
    "pyarrow",
    "numpy",
    "sqlalchemy",
    "alembic",
    "pydantic",
)


def _env() -> dict[str, str]:
    """This process's environment, with the repository's ``src`` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def _gristmill(*args: str) -> list[str]:
    return [sys.executable, "-m", "gristmill", *args]


def make_home(home: Path) -> None:
    """A home holding one run of the penguins example (its data made first if missing)."""
    if not (EXAMPLE / "data" / "penguins.csv").exists():
        subprocess.run([sys.executable, str(EXAMPLE / "make_data.py")], check=True, env=_env())
    subprocess.run(
        _gristmill("--home", str(home), "run", str(EXAMPLE / "pipeline.yaml")),
        check=True,
        env=_env(),
        stdout=subprocess.DEVNULL,
    )


def newest_batch(home: Path) -> str:
    done = subprocess.run(
        _gristmill("--home", str(home), "ls", "batches", "--json", "--limit", "1"),
        check=True,
        env=_env(),
        capture_output=True,
        text=True,
    )
    batch_id: str = json.loads(done.stdout)[0]["batch_id"]
    return batch_id


def timed(command: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``command`` (after one untimed run, which warms the
    file cache and writes the byte-code)."""
    subprocess.run(command, check=True, env=_env(), capture_output=True)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, env=_env(), capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def heavy_modules(command: list[str]) -> list[str]:
    """The top-level packages of ``HEAVY`` that ``command`` imports (``-X importtime``)."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        check=True,
        env=_env(),
        capture_output=True,
        text=True,
    )
    loaded = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [m for m in HEAVY if m in loaded]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command")
    parser.add_argument("--home", type=Path, help="a home with a run (default: made now)")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set"
    )
    args = parser.parse_args()
    if not args.no_bytecode:  # the commands below inherit this process's environment
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="gristmill-bench-cli-") as scratch:
        home = args.home or Path(scratch) / "home"
        if args.home is None:
            print(f"making a home with one penguins run in {home} (not timed) ...", flush=True)
            make_home(home)
        batch = newest_batch(home)
        at = ("--home", str(home))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import typer"': [sys.executable, "-c", "import typer"],
            "floor of ls/show (their libraries)": [
                sys.executable,
                "-c",
                "import typer, rich.table, pydantic_settings, sqlalchemy",
            ],
            "gristmill --help": _gristmill("--help"),
            "gristmill --version": _gristmill("--version"),
            "gristmill ls batches": _gristmill(*at, "ls", "batches"),
            "gristmill show BATCH": _gristmill(*at, "show", batch),
        }
        load = os.getloadavg()[0]
        rows = []
        for name, command in commands.items():
            seconds = timed(command, args.runs)
            heavy = heavy_modules(command) if name.startswith("gristmill") else []
            rows.append((name, statistics.median(seconds), min(seconds), heavy))
            print(f"{name:28} median {rows[-1][1]:.3f} s", flush=True)
    report(rows, args.runs, load, os.getloadavg()[0])


def report(rows: list[tuple[str, float, float, list[str]]], runs: int, *load: float) -> None:
    cached = "not cached" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "cached"
    bare, typer_floor = rows[0][1], rows[1][1]
    lines = [
        "# CLI start-up",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()} · median of {runs} runs "
        f"each, a fresh process per run · byte-code {cached} · load average {load[0]:.1f} at "
        f"the start, {load[1]:.1f} at the end",
        "",
        "| command | median | fastest | x `python -c pass` | x `import typer` "
        "| heavy libraries loaded |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, median, fastest, heavy in rows:
        shown = name if name.startswith("floor") else f"`{name}`"
        lines.append(
            f"| {shown} | {median:.3f} s | {fastest:.3f} s | {median / bare:.1f} "
            f"| {median / typer_floor:.2f} | {', '.join(heavy) or '-'} |"
        )
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
