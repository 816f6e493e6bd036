"""Benchmark: how long the ``gristmill`` command takes to answer, against a bare interpreter.

Usage: ``.venv/bin/python bench/bench_cli_startup.py [--runs 7] [--home DIR]``

Each command runs as a fresh process (``python -m gristmill ...``, the interpreter running
this script), timed whole from start to exit, ``--runs`` times after one untimed run; the
median and the fastest wall time are reported, with the median CPU time (user + system:
what the machine's load moves least), the median's ratio to ``python -c pass`` (the
interpreter alone) and to ``python -c "import typer"`` (what any typer CLI pays before its
first line). The commands: ``--help``, ``--version``, ``ls`` of runs, batches, feature sets
and candidates, ``show`` of a run, a batch, a feature set, a model candidate and a
leaderboard, and ``lineage`` of a source, on a home made by ``gristmill run
examples/penguins/pipeline.yaml`` (made first in a temporary folder, untimed, unless
``--home`` names one). Floor rows import what ``ls`` and ``show`` cannot do without (typer
and the pydantic it parses options with, rich, pydantic-settings for the settings, sqlite3
for the metadata reader), and SQLAlchemy alone (what the reader spares them, ADR 28). Each
gristmill command is also run once with ``-X importtime`` to name the heavy libraries it
loads.

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
import resource
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


def newest(home: Path, listing: str, key: str, **where: str) -> str:
    """The id (``key``) of the newest of ``ls LISTING`` (with ``where``'s field values)."""
    done = subprocess.run(
        _gristmill("--home", str(home), "ls", listing, "--json", "--limit", "100"),
        check=True,
        env=_env(),
        capture_output=True,
        text=True,
    )
    rows = [r for r in json.loads(done.stdout) if all(r.get(k) == v for k, v in where.items())]
    found: str = rows[0][key]
    return found


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=_env(), capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def timings(commands: dict[str, list[str]], runs: int) -> dict[str, list[tuple[float, float]]]:
    """``runs`` timings of each command, the commands taking turns (one round runs each
    once), so a change of the machine's load falls on all of them alike; one untimed run of
    each first warms the file cache and writes the byte-code."""
    for command in commands.values():
        subprocess.run(command, check=True, env=_env(), capture_output=True)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            found[name].append(timed(command))
    return found


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
        at = ("--home", str(home))
        floor = "import typer, typer._adapters, rich.table, pydantic_settings, sqlite3"
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import typer"': [sys.executable, "-c", "import typer"],
            "floor of ls/show (their libraries)": [sys.executable, "-c", floor],
            'python -c "import sqlalchemy"': [sys.executable, "-c", "import sqlalchemy"],
            "gristmill --help": _gristmill("--help"),
            "gristmill --version": _gristmill("--version"),
            "gristmill ls runs": _gristmill(*at, "ls", "runs"),
            "gristmill ls batches": _gristmill(*at, "ls", "batches"),
            "gristmill ls feature-sets": _gristmill(*at, "ls", "feature-sets"),
            "gristmill ls candidates": _gristmill(*at, "ls", "candidates"),
            "gristmill show RUN": _gristmill(*at, "show", newest(home, "runs", "run_id")),
            "gristmill show BATCH": _gristmill(*at, "show", newest(home, "batches", "batch_id")),
            "gristmill show FEATURE_SET": _gristmill(
                *at, "show", newest(home, "feature-sets", "feature_set_id")
            ),
            "gristmill show CANDIDATE": _gristmill(
                *at, "show", newest(home, "candidates", "candidate_id")
            ),
            "gristmill show LEADERBOARD": _gristmill(
                *at, "show", newest(home, "reports", "report_id", kind="leaderboard")
            ),
            "gristmill lineage SOURCE": _gristmill(*at, "lineage", "penguins"),
        }
        load = os.getloadavg()[0]
        rows = []
        for name, seconds in timings(commands, args.runs).items():
            heavy = heavy_modules(commands[name]) if name.startswith("gristmill") else []
            walls, cpus = [w for w, _ in seconds], [c for _, c in seconds]
            rows.append(
                (name, statistics.median(walls), min(walls), statistics.median(cpus), heavy)
            )
            print(f"{name:30} median {rows[-1][1]:.3f} s, CPU {rows[-1][3]:.3f} s", flush=True)
    report(rows, args.runs, load, os.getloadavg()[0])


def report(rows: list[tuple[str, float, float, float, list[str]]], runs: int, *load: float) -> None:
    cached = "not cached" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "cached"
    bare, typer_floor = rows[0][1], rows[1][1]
    lines = [
        "# CLI start-up",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()} · median of {runs} runs "
        f"each, a fresh process per run, the commands taking turns · byte-code {cached} · "
        f"load average {load[0]:.1f} at the start, {load[1]:.1f} at the end",
        "",
        "| command | median | fastest | CPU (median) | x `python -c pass` | x `import typer` "
        "| heavy libraries loaded |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, median, fastest, cpu, heavy in rows:
        shown = name if name.startswith("floor") else f"`{name}`"
        lines.append(
            f"| {shown} | {median:.3f} s | {fastest:.3f} s | {cpu:.3f} s | {median / bare:.1f} "
            f"| {median / typer_floor:.2f} | {', '.join(heavy) or '-'} |"
        )
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
