"""Benchmark the EventBus backends: batched throughput, paced latency, and bare-driver peers.

Run: ``.venv/bin/python bench/bench_bus.py [--events N] [--backends sqlite,redis,nats]``.
Needs Redis on 127.0.0.1:6379 and NATS with JetStream on 127.0.0.1:4222 for those rows
(override with GRISTMILL_TEST_REDIS_URL / GRISTMILL_TEST_NATS_URL); unreachable ones are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill.bus.port import EventBus
from gristmill.core.events import Event

REDIS_URL = os.environ.get("GRISTMILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("GRISTMILL_TEST_NATS_URL", "nats://127.0.0.1:4222")
TYPE = "bench.happened"
PACED = "bench.paced"  # its own type: the latency group must not meet the throughput events
TARGET_THROUGHPUT = {"sqlite": 2_000, "redis": 10_000, "nats": 10_000}
TARGET_P99_MS = 20.0


@dataclass
class Row:
    backend: str
    throughput: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    peer: float | None = None
    peer_name: str = ""
    note: str = ""


def events(n: int, type: str = TYPE) -> list[Event]:
    return [Event(type=type, key=f"k{i}", payload={"n": i, "pad": "x" * 64}) for i in range(n)]


# -- our buses ---------------------------------------------------------------------------------


async def throughput(make: Callable[[], EventBus], n: int, batch: int) -> float:
    """Events/s from the first publish to the last ack, publisher and consumer running together."""
    batches = [events(batch) for _ in range(n // batch)]
    publisher, consumer = make(), make()
    await publisher.open()
    await consumer.open()
    try:
        await consumer.consume("bench", TYPE, "c1", wait=0.01)  # the group exists before timing

        async def publish() -> None:
            for chunk in batches:
                await publisher.publish(chunk)

        async def consume() -> None:
            handled = 0
            while handled < len(batches) * batch:
                got = await consumer.consume("bench", TYPE, "c1", max_events=batch, wait=5.0)
                if not got:
                    raise RuntimeError(f"stalled after {handled} events")
                await asyncio.gather(*(consumer.ack(d) for d in got))
                handled += len(got)

        start = time.perf_counter()
        await asyncio.gather(publish(), consume())
        return len(batches) * batch / (time.perf_counter() - start)
    finally:
        await publisher.close()
        await consumer.close()


async def latency(make: Callable[[], EventBus], n: int, rate: float) -> tuple[float, float]:
    """p50 and p99 (ms) from the publish call to the consumer holding the event, at ``rate``/s."""
    paced = events(n, PACED)
    sent: dict[str, float] = {}
    seen: list[float] = []
    publisher, consumer = make(), make()
    await publisher.open()
    await consumer.open()
    try:
        await consumer.consume("lat", PACED, "c1", wait=0.01)

        async def publish() -> None:
            start = time.perf_counter()
            for i, event in enumerate(paced):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                sent[event.id] = time.perf_counter()
                await publisher.publish([event])

        async def consume() -> None:
            while len(seen) < n:
                got = await consumer.consume("lat", PACED, "c1", max_events=10, wait=5.0)
                now = time.perf_counter()
                if not got:
                    raise RuntimeError(f"stalled after {len(seen)} events")
                seen.extend(now - sent[d.event.id] for d in got)
                await asyncio.gather(*(consumer.ack(d) for d in got))

        await asyncio.gather(publish(), consume())
    finally:
        await publisher.close()
        await consumer.close()
    ms = sorted(x * 1000 for x in seen)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


# -- bare drivers: what the backend can do without us ------------------------------------------


async def bare_sqlite(path: str, n: int, batch: int) -> float:
    """Raw sqlite3: batched inserts (fsync per batch) then batched select+delete, same thread."""
    bodies = [[(e.to_bytes(),) for e in events(batch)] for _ in range(n // batch)]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE q (seq INTEGER PRIMARY KEY, body BLOB)")
    start = time.perf_counter()
    for chunk in bodies:
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO q (body) VALUES (?)", chunk)
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute("SELECT seq, body FROM q ORDER BY seq LIMIT ?", (batch,)).fetchall()
        db.execute("DELETE FROM q WHERE seq <= ?", (rows[-1][0],))
        db.execute("COMMIT")
        for _, body in rows:
            Event.from_bytes(body)
    elapsed = time.perf_counter() - start
    db.close()
    return len(bodies) * batch / elapsed


async def bare_redis(n: int, batch: int) -> float:
    """redis-py: pipelined XADD batches, XREADGROUP COUNT batch, one XACK per batch."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    key = f"gristmill-bench-bare-{uuid.uuid4().hex}"
    bodies = [[e.to_bytes() for e in events(batch)] for _ in range(n // batch)]
    await client.xgroup_create(key, "g", id="0", mkstream=True)
    try:

        async def publish() -> None:
            for chunk in bodies:
                async with client.pipeline(transaction=True) as pipe:
                    for body in chunk:
                        pipe.xadd(key, {b"e": body})
                    await pipe.execute()

        async def consume() -> None:
            handled = 0
            while handled < len(bodies) * batch:
                reply: Any = await client.xreadgroup("g", "c", {key: ">"}, count=batch, block=5000)
                entries = reply[0][1]
                for _, fields in entries:
                    Event.from_bytes(fields[b"e"])
                await client.xack(key, "g", *(entry_id for entry_id, _ in entries))
                handled += len(entries)

        start = time.perf_counter()
        await asyncio.gather(publish(), consume())
        return len(bodies) * batch / (time.perf_counter() - start)
    finally:
        await client.delete(key)
        await client.aclose()


async def bare_nats(n: int, batch: int) -> float:
    """nats-py: publish_async batches with gathered acks, pull fetch(batch), ack each."""
    import nats
    from nats.js import api

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    stream = f"bench-bare-{uuid.uuid4().hex[:12]}"
    bodies = [[e.to_bytes() for e in events(batch)] for _ in range(n // batch)]
    await js.add_stream(name=stream, subjects=[f"{stream}.x"], storage=api.StorageType.FILE)
    try:
        sub = await js.pull_subscribe(f"{stream}.x", durable="d", stream=stream)

        async def publish() -> None:
            for chunk in bodies:
                acks = [await js.publish_async(f"{stream}.x", body) for body in chunk]
                await asyncio.gather(*acks)

        async def consume() -> None:
            handled = 0
            while handled < len(bodies) * batch:
                msgs = await sub.fetch(batch, timeout=5.0)
                for msg in msgs:
                    Event.from_bytes(msg.data)
                    await msg.ack()
                handled += len(msgs)

        start = time.perf_counter()
        await asyncio.gather(publish(), consume())
        return len(bodies) * batch / (time.perf_counter() - start)
    finally:
        await js.delete_stream(stream)
        await nc.close()


# -- the run -----------------------------------------------------------------------------------


async def bench_backend(name: str, args: argparse.Namespace, workdir: Path) -> Row:
    namespace = f"bench_{uuid.uuid4().hex[:10]}"
    row = Row(name)
    make: Callable[[], EventBus]
    purge: Callable[[], Awaitable[None]] | None = None
    if name == "sqlite":
        from gristmill.backends.sqlite.bus import SqliteBus

        path = str(workdir / "bus.db")
        make = lambda: SqliteBus(path, namespace=namespace)  # noqa: E731
        peer = lambda: bare_sqlite(str(workdir / "bare.db"), args.events, args.batch)  # noqa: E731
        row.peer_name = "raw sqlite3"
    elif name == "redis":
        from gristmill.backends.redis.bus import RedisStreamsBus

        make = lambda: RedisStreamsBus(REDIS_URL, namespace=namespace)  # noqa: E731
        peer = lambda: bare_redis(args.events, args.batch)  # noqa: E731
        row.peer_name = "redis-py XADD/XREADGROUP"
    else:
        from gristmill.backends.nats.bus import NatsJetStreamBus

        make = lambda: NatsJetStreamBus(NATS_URL, namespace=namespace)  # noqa: E731
        peer = lambda: bare_nats(args.events, args.batch)  # noqa: E731
        row.peer_name = "nats-py JetStream"
    if name != "sqlite":
        purge = lambda: _purge(make())  # noqa: E731
    try:
        row.throughput = await throughput(make, args.events, args.batch)
        row.p50_ms, row.p99_ms = await latency(make, args.latency_events, args.rate)
        row.peer = await peer()
    except Exception as exc:  # a bench reports what failed and goes on with the next backend
        row.note = f"{type(exc).__name__}: {exc}"
    finally:
        if purge is not None:
            try:
                await purge()
            except Exception as exc:
                row.note += f" (cleanup failed: {exc})"
    return row


async def _purge(bus: Any) -> None:
    await bus.open()
    try:
        await bus.purge()
    finally:
        await bus.close()


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"# EventBus benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, {_cpu()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}.",
        f"Throughput: {args.events} events in publish batches of {args.batch}, consumed with "
        f"max_events={args.batch}, acks gathered; publisher and consumer are separate bus "
        f"instances in one process. Latency: {args.latency_events} single events paced at "
        f"{args.rate:g}/s, publish call → consume returns.",
        "",
        "| backend | throughput ev/s | target | p50 ms | p99 ms | target | peer ev/s | ours/peer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ok_t = r.throughput is not None and r.throughput >= TARGET_THROUGHPUT[r.backend]
        ok_l = r.p99_ms is not None and r.p99_ms <= TARGET_P99_MS
        ratio = r.throughput / r.peer if r.throughput and r.peer else None
        lines.append(
            f"| {r.backend} | {_fmt(r.throughput, ',.0f')} {'✓' if ok_t else '✗'} "
            f"| ≥ {TARGET_THROUGHPUT[r.backend]:,} | {_fmt(r.p50_ms, '.2f')} "
            f"| {_fmt(r.p99_ms, '.2f')} {'✓' if ok_l else '✗'} | ≤ {TARGET_P99_MS:g} "
            f"| {_fmt(r.peer, ',.0f')} ({r.peer_name}) | {_fmt(ratio, '.2f')} |"
        )
    lines += [f"\n{r.backend}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per throughput run")
    parser.add_argument("--batch", type=int, default=250, help="publish and consume batch size")
    parser.add_argument("--latency-events", type=int, default=500, help="paced events")
    parser.add_argument("--rate", type=float, default=100.0, help="paced events per second")
    parser.add_argument("--backends", default="sqlite,redis,nats")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gristmill-bench-") as tmp:
        for name in args.backends.split(","):
            rows.append(await bench_backend(name.strip(), args, Path(tmp)))
    text = report(rows, args)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())
