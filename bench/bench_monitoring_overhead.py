"""Benchmark: what monitoring costs a prediction server — serving with it on against off.

Usage: ``.venv/bin/python bench/bench_monitoring_overhead.py [--folder DIR] [--duration 10]
[--rounds 5] [--processes 2] [--models logreg,forest]``

Issue 11's target: with monitoring on — Prometheus counters and histograms, serving figures
flushed to the metadata store, the prediction log at 100 % sampling announced on the bus —
``gristmill serve`` answers ≥ 0.95 x the requests/s of the same server with it off, and its
p99 latency is ≤ 1.1 x off's. *Off* is ``serve.metrics = false`` (nothing counted),
``serve.log_sample = 0`` (nothing logged) and ``serve.stats_flush_seconds = 0`` (nothing
flushed); everything else (routing, micro-batching) is the same.

The models and the workload are bench_serving's (the same folder can be reused with
``--folder``: ``make_classification`` 200,000 x 20, a logistic regression and a random
forest trained through gristmill): single-row JSON requests from wrk at 8 connections.
Both servers run side by side (one worker each) and take turns, ``--rounds`` times, the
order alternating, so a change in the machine's background load hits both alike. Two
processes of the very same server differ by a few percent in requests/s (where the
interpreter's and libraries' objects land in memory), as much as the target's margin, so
each variant runs as ``--processes`` servers (2) and the median of all its runs is kept.
Results are printed and written to bench/results/monitoring_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_serving as serving  # the serving benchmark's machinery

RESULTS = serving.HERE / "results" / "monitoring_overhead.md"
TARGET_RPS = 0.95
TARGET_P99 = 1.1
OFF = {
    "GRISTMILL_SERVE__METRICS": "false",
    "GRISTMILL_SERVE__LOG_SAMPLE": "0",
    "GRISTMILL_SERVE__STATS_FLUSH_SECONDS": "0",
}
ON = {"GRISTMILL_SERVE__LOG_SAMPLE": "1", "GRISTMILL_SERVE__STATS_FLUSH_SECONDS": "10"}


def compare(
    folder: Path, exported: serving.Exported, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Median figures of monitoring on and off for one model."""
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    servers = {  # (variant, process number): a server of its own
        (name, number): replace(serving.gristmill_server(folder, exported, 1), system=name, env=env)
        for number in range(args.processes)
        for name, env in (("on", ON), ("off", OFF))
    }
    taken: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    with ExitStack() as stack:
        for (name, number), server in servers.items():
            print(f"  starting {exported.model} with monitoring {name} ...", file=sys.stderr)
            log = logs / f"overhead_{exported.key}_{name}_{number}.log"
            stack.enter_context(serving.running(server, log))
        for server in servers.values():
            serving.wrk(server.predict, body, 8, 2)  # warm-up
        for turn in range(args.rounds):
            order = ["on", "off"] if turn % 2 == 0 else ["off", "on"]
            for number in range(args.processes):
                for name in order:
                    run = serving.wrk(servers[(name, number)].predict, body, 8, args.duration)
                    taken[name].append(run)
                    print(
                        f"    {name} #{number}: {run['rps']:,.0f} rps, p99 {run['p99_ms']:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    out: dict[str, Any] = {}
    for name, runs in taken.items():
        ordered = sorted(runs, key=lambda r: r["rps"])
        median = ordered[len(ordered) // 2]
        p99s = sorted(r["p99_ms"] for r in runs)
        out[name] = {**median, "p99_median_ms": p99s[len(p99s) // 2], "rounds": runs}
    return out


def report(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Monitoring overhead benchmark",
        "",
        f"- date: {meta['began']:%Y-%m-%d %H:%M} UTC",
        f"- machine: {serving.machine()}; load average {meta['load'][0]:.1f} when the run "
        f"began, {meta['load_end'][0]:.1f} when it ended (the machine is shared; wrk runs on "
        "the same 2 cores as the servers)",
        f"- load: wrk, one thread, 8 connections, single-row JSON (native API, rows), "
        f"{meta['duration']} s per run, {meta['rounds']} rounds alternating on/off over "
        f"{meta['processes']} server processes of each (two processes of the very same server "
        "differ by a few percent); the median run per variant",
        "- on: the defaults — metrics, serving figures flushed every 10 s, the prediction log "
        "at 100 % (Parquet, announced on the bus); off: `serve.metrics = false`, "
        "`serve.log_sample = 0`, `serve.stats_flush_seconds = 0`",
        "",
        "| model | rps on / off | ratio (target ≥ 0.95) | p99 ms on / off (median of rounds) "
        "| ratio (target ≤ 1.1) | met? |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key, figures in results.items():
        on, off = figures["on"], figures["off"]
        rps = on["rps"] / off["rps"]
        p99 = on["p99_median_ms"] / off["p99_median_ms"]
        met = rps >= TARGET_RPS and p99 <= TARGET_P99
        lines.append(
            f"| {serving.LABELS[key]} | {on['rps']:,.0f} / {off['rps']:,.0f} | {rps:.2f} "
            f"| {on['p99_median_ms']:.2f} / {off['p99_median_ms']:.2f} | {p99:.2f} "
            f"| {'met' if met else '**missed**'} |"
        )
    lines += ["", "Every round (rps, p99 ms):", ""]
    for key, figures in results.items():
        for name in ("on", "off"):
            rounds = ", ".join(
                f"{r['rps']:,.0f} / {r['p99_ms']:.1f}" for r in figures[name]["rounds"]
            )
            lines.append(f"- {serving.LABELS[key]}, {name}: {rounds}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="servers started per variant: two processes of the same server differ by a few "
        "percent (memory layout), so each variant's median is taken over several",
    )
    parser.add_argument("--models", default=",".join(serving.MODELS))
    parser.add_argument("--folder", type=Path, help="work here (kept); reused when trained")
    args = parser.parse_args()
    load = os.getloadavg()
    began = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / ".gristmill").exists():
            print(f"training both models through gristmill in {folder} ...", file=sys.stderr)
            rows, _ = serving.train(folder, args.rows)
            rows.to_parquet(folder / "held_out.parquet")
        rows = pd.read_parquet(folder / "held_out.parquet")
        exported = serving.export(folder, rows)
        body = serving.bodies(folder, rows)["rows_1"]
        results = {
            key: compare(folder, exported[key], body, args) for key in args.models.split(",")
        }
    meta = {
        "began": began,
        "load": load,
        "load_end": os.getloadavg(),
        "duration": args.duration,
        "rounds": args.rounds,
        "processes": args.processes,
    }
    text = report(results, meta)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
