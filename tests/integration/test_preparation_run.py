"""Preparation inside ``run_pipeline``: feature sets stored, linked, served online, joined.

Every test runs on the embedded stack and on real services chosen by settings alone (Redis
online store, PostgreSQL metadata, a Redis or NATS bus), each in a namespace of its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import FEATURES_GENERATED, RAW_INGESTED
from gristmill.features.online_views import lookup
from gristmill.features.serialization import loads
from gristmill.runtime.pipeline_run import RunReport, run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.features import EntityVector
from gristmill.testing.data import write_parquet

FRESH, STALE = 40, 10  # customers seen within the TTL, customers seen only before it
CUSTOMERS = [f"c{i:03d}" for i in range(FRESH)] + [f"s{i:03d}" for i in range(STALE)]
KEPT = ["age", "income", "visits", "plan_basic", "plan_pro", "plan_team"]
REAL = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("redis", marks=REAL),
        pytest.param("nats", marks=[*REAL, pytest.mark.nats]),
    ]
)
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[Services]:
    """Opened services; the real ones use Redis online, PostgreSQL metadata and that bus."""
    overrides: dict[str, Any] = {"home": str(tmp_path / "home")}
    real = request.param != "embedded"
    if real:
        bus = request.param
        redis_url = request.getfixturevalue("redis_url")
        overrides["bus"] = {
            "backend": bus,
            "url": request.getfixturevalue(f"{bus}_url"),
            "namespace": namespace,
        }
        overrides["metadata"] = {
            "backend": "postgres",
            "url": request.getfixturevalue("postgres_url"),
            "db_schema": namespace,
        }
        overrides["online"] = {"backend": "redis", "url": redis_url, "namespace": namespace}
    try:
        async with open_services(load_settings(overrides=overrides)) as opened:
            yield opened
            purge = getattr(opened.bus, "purge", None)
            if purge is not None:
                await purge()
    finally:
        if real:
            _drop_namespace(overrides["metadata"]["url"], redis_url, namespace)


def _drop_namespace(postgres_url: str, redis_url: str, namespace: str) -> None:
    import redis
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"gristmill:{{{namespace}}}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def customers_table(seed: int = 0) -> pa.Table:
    """Three rows per customer: ``c…`` seen in the last day, ``s…`` only 3 to 6 days ago.

    ``age`` and ``region`` miss about 10 % of their values; ``noise`` is dropped by the spec.
    """
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = len(CUSTOMERS) * 3
    hours = np.concatenate(
        [rng.integers(1, 24, FRESH * 3), rng.integers(3 * 24, 6 * 24, STALE * 3)]
    )
    age = rng.normal(40, 10, rows).round(1)
    region = rng.choice(["north", "south", "east"], rows).astype(object)
    return pa.table(
        {
            "customer_id": [i for i in CUSTOMERS for _ in range(3)],
            "seen_at": pa.array(
                [now - timedelta(hours=int(h), minutes=i) for i, h in enumerate(hours)],
                pa.timestamp("us", tz="UTC"),
            ),
            "age": pa.array(age, mask=rng.random(rows) < 0.1),
            "income": rng.lognormal(10, 0.3, rows).round(2),
            "visits": rng.integers(0, 30, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "region": pa.array(region, pa.string(), mask=rng.random(rows) < 0.1),
            "noise": rng.random(rows),
            "churned": rng.choice(["yes", "no"], rows),
        }
    )


def customers_spec(folder: Path) -> dict[str, Any]:
    path = folder / "customers.parquet"
    if not path.exists():
        write_parquet(path, customers_table())
    return {
        "name": "churn",
        "sources": {"customers": {"format": "parquet", "path": str(path)}},
        "features": {
            "customers_v1": {
                "from": ["customers"],
                "entity": "customer_id",
                "timestamp": "seen_at",
                "label": "churned",
                "steps": [
                    {"impute": {"columns": ["age"], "strategy": "median"}},
                    {"impute": {"columns": ["region"], "strategy": "most_frequent"}},
                    {"one_hot": {"columns": ["plan", "region"]}},
                    {"log": {"columns": ["visits"]}},
                    {"standardize": {"columns": ["age", "income"]}},
                    {"drop": {"columns": ["noise"]}},
                ],
                "select": {"method": "list", "columns": KEPT},
                "online": {"ttl": "2d"},
            }
        },
    }


async def run(spec: dict[str, Any], services: Services) -> RunReport:
    return await run_pipeline(parse_spec(spec), services, actor="tester", timeout=120)


def one_generated(report: RunReport) -> dict[str, Any]:
    (event,) = report.of_type(FEATURES_GENERATED)
    return event.payload


async def test_a_run_stores_the_feature_set_and_links_batch_report_and_pipeline(
    services: Services, tmp_path: Path
) -> None:
    report = await run(customers_spec(tmp_path), services)

    assert report.run.status == "succeeded"
    (ingested,) = report.of_type(RAW_INGESTED)
    batch_id = ingested.payload["batch_id"]
    generated = one_generated(report)
    set_id = generated["feature_set_id"]
    assert generated["created"] is True and generated["inputs"] == [batch_id]
    fs = services.metadata.feature_sets.get_feature_set(set_id)
    assert (fs.name, fs.run_id, fs.row_count) == ("customers_v1", report.run.run_id, 150)

    table = services.offline.read(set_id)
    assert table.column_names == ["customer_id", "seen_at", *KEPT, "churned"]
    assert generated["columns"] == table.column_names and table.num_rows == 150
    assert fs.selection["kept"] == KEPT and "region_north" not in table.column_names
    assert pc.count(table["age"], mode="only_null").as_py() == 0  # imputed
    for column in ("age", "income"):  # standardized on this very batch
        values = table[column].to_numpy()
        assert abs(values.mean()) < 1e-9 and abs(values.std() - 1) < 1e-9
    raw = services.raw.read(batch_id)
    assert table["visits"].to_pylist() == np.log1p(raw["visits"].to_numpy()).tolist()
    assert table["customer_id"].to_pylist() == raw["customer_id"].to_pylist()

    lineage = services.metadata.lineage
    parents = [(e.parent_id, e.parent_kind, e.relation) for e in lineage.parents(set_id)]
    assert parents == [(batch_id, "raw_batch", "computed_from")]
    (fitted_edge,) = lineage.children(set_id)
    assert (fitted_edge.child_id, fitted_edge.relation) == (fs.pipeline_artifact, "fitted")
    assert pipeline_of(services, fs.pipeline_artifact).feature_names == KEPT

    reports = services.metadata.reports.list_reports(subject=batch_id, kind="validation")
    assert [r.report_id for r in reports] == generated["reports"] == [fs.validation_report]
    assert (reports[0].status, reports[0].run_id) == ("passed", report.run.run_id)
    assert reports[0].body["row_count"] == 150 and reports[0].body["anomalies"] == []
    validated = [(e.child_id, e.relation) for e in lineage.children(batch_id)]
    assert (reports[0].report_id, "validated_by") in validated
    assert (set_id, "computed_from") in validated


def pipeline_of(services: Services, digest: str | None) -> Any:
    """The fitted pipeline stored under ``digest``, loaded with skops (verified on read)."""
    ref = services.artifacts.find(digest or "")
    assert ref is not None, f"no artifact {digest}"
    return loads(services.artifacts.get(ref))


async def test_the_same_spec_twice_finds_the_same_feature_set(
    services: Services, tmp_path: Path
) -> None:
    spec = customers_spec(tmp_path)
    first = one_generated(await run(spec, services))
    state = stored_state(services, tmp_path, first["feature_set_id"], first["inputs"][0])

    second_report = await run(spec, services)
    second = one_generated(second_report)

    assert second_report.run.status == "succeeded"
    assert second["feature_set_id"] == first["feature_set_id"]
    assert (first["created"], second["created"]) == (True, False)
    assert second["reports"] == first["reports"]
    assert stored_state(services, tmp_path, first["feature_set_id"], first["inputs"][0]) == state
    (fs,) = services.metadata.feature_sets.list_feature_sets(name="customers_v1")
    assert fs.run_id != second_report.run.run_id  # recorded by the first run, not again


def stored_state(services: Services, folder: Path, set_id: str, batch_id: str) -> Any:
    """Everything a second computation could duplicate, as comparable values."""
    metadata = services.metadata
    home = folder / "home"
    return (
        [f.feature_set_id for f in metadata.feature_sets.list_feature_sets()],
        [r.report_id for r in metadata.reports.list_reports()],
        [(e.parent_id, e.child_id) for e in metadata.lineage.parents(set_id)],
        [(e.parent_id, e.child_id) for e in metadata.lineage.children(set_id)],
        [(e.parent_id, e.child_id) for e in metadata.lineage.children(batch_id)],
        sorted(p.name for p in (home / "features" / "customers_v1").iterdir()),
        sorted(p.name for p in (home / "artifacts").rglob("*") if p.is_file()),
        [b.batch_id for b in metadata.batches.list_batches()],
        online_vectors(services, CUSTOMERS),
    )


async def test_a_known_set_is_put_online_again_when_the_online_store_lost_it(
    services: Services, tmp_path: Path
) -> None:
    spec = customers_spec(tmp_path)
    await run(spec, services)
    online = online_vectors(services, CUSTOMERS)
    services.online.delete_view("customers_v1")
    assert online_vectors(services, CUSTOMERS[:1]) == [None]

    second = one_generated(await run(spec, services))

    assert second["created"] is False and second["materialized"] >= FRESH
    assert online_vectors(services, CUSTOMERS) == online


async def test_vectors_older_than_the_ttl_are_not_materialized(
    services: Services, tmp_path: Path
) -> None:
    spec = customers_spec(tmp_path)
    first, second = [one_generated(await run(spec, services)) for _ in range(2)]
    assert (first["materialized"], second["materialized"]) == (FRESH, 0)


async def test_online_vectors_are_the_newest_offline_rows_and_the_stored_pipeline_agrees(
    services: Services, tmp_path: Path
) -> None:
    report = await run(customers_spec(tmp_path), services)
    generated = one_generated(report)
    offline = services.offline.read(generated["feature_set_id"]).to_pylist()
    newest: dict[str, dict[str, Any]] = {}
    for row in offline:
        held = newest.get(row["customer_id"])
        if held is None or row["seen_at"] > held["seen_at"]:
            newest[row["customer_id"]] = row
    fresh, stale = CUSTOMERS[:FRESH], CUSTOMERS[FRESH:]
    assert generated["materialized"] >= FRESH

    vectors = online_vectors(services, [*fresh, "nobody", *stale])
    assert vectors[FRESH:] == [None] * (STALE + 1)  # unknown, and older than the 2-day TTL
    for entity, vector in zip(fresh, vectors, strict=False):
        assert vector is not None, f"{entity} is missing online"
        assert vector.event_time == newest[entity]["seen_at"]
        assert vector.values == {name: newest[entity][name] for name in KEPT}

    # Parity: the stored pipeline, fed raw rows as JSON requests, computes the offline rows.
    fs = services.metadata.feature_sets.get_feature_set(generated["feature_set_id"])
    fitted = pipeline_of(services, fs.pipeline_artifact)
    raw = services.raw.read(generated["inputs"][0])
    assert fitted.transform_table(raw).equals(services.offline.read(fs.feature_set_id))
    for record, stored in zip(raw.to_pylist(), offline, strict=True):
        request = json.loads(json.dumps(record, default=str))  # timestamps as text
        served = fitted.transform_one(request)
        row = {k: v for k, v in stored.items() if k != "churned"}  # the label is no input
        assert served is not None and list(served) == list(row)
        differing = {k: (v, served[k]) for k, v in row.items() if not same(v, served[k])}
        assert not differing, f"{record['customer_id']}: {differing}"


def online_vectors(services: Services, entities: list[str]) -> list[EntityVector | None]:
    """The newest feature set's vectors of ``entities`` (``None`` where not found)."""
    _, found = lookup(services.feature_stores(), "customers_v1", entities)
    return [item.vector for item in found]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def ts(hours: int) -> datetime:
    return datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=hours)


ORDERS = pa.table(
    {
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "seen_at": pa.array([ts(1), ts(5), ts(9), ts(2), ts(8), ts(3)], pa.timestamp("us", "UTC")),
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
    }
)
# "a" changes score at 0, 4 and 6; "b" at 3 (after its first order) and 20 (after both);
# "c" at the very time of its order (seen) and an hour later (not seen). A value stamped
# after an order must never reach it.
PROFILES = pa.table(
    {
        "customer_id": ["a", "a", "a", "b", "b", "c", "c"],
        "seen_at": pa.array(
            [ts(0), ts(4), ts(6), ts(3), ts(20), ts(3), ts(4)], pa.timestamp("us", "UTC")
        ),
        "score": [1.0, 2.0, 3.0, 7.0, 8.0, 9.0, 10.0],
    }
)


def expected_scores() -> list[float | None]:
    """For each order, the score of the newest profile at or before it (by brute force)."""
    profiles = PROFILES.to_pylist()
    scores: list[float | None] = []
    for order in ORDERS.to_pylist():
        seen = [
            p
            for p in profiles
            if p["customer_id"] == order["customer_id"] and p["seen_at"] <= order["seen_at"]
        ]
        scores.append(max(seen, key=lambda p: p["seen_at"])["score"] if seen else None)
    return scores


async def test_a_join_in_one_run_gives_one_point_in_time_correct_feature_set(
    services: Services, tmp_path: Path
) -> None:
    write_parquet(tmp_path / "orders.parquet", ORDERS)
    write_parquet(tmp_path / "profiles.parquet", PROFILES)
    spec = {
        "name": "joined",
        "sources": {
            name: {"format": "parquet", "path": str(tmp_path / f"{name}.parquet")}
            for name in ("orders", "profiles")
        },
        "features": {
            "orders_v1": {
                "from": ["orders", "profiles"],
                "entity": "customer_id",
                "timestamp": "seen_at",
                "join": {"on": "customer_id", "timestamp": "seen_at"},
                "steps": [{"standardize": {"columns": ["amount"]}}],
            }
        },
    }
    report = await run(spec, services)

    assert report.run.status == "succeeded"
    batches = {e.payload["source"]: e.payload["batch_id"] for e in report.of_type(RAW_INGESTED)}
    # Both raw.ingested events may find both inputs (and both compute): one announces it.
    (generated,) = report.of_type(FEATURES_GENERATED)
    assert generated.payload["created"] is True
    (fs,) = services.metadata.feature_sets.list_feature_sets(name="orders_v1")
    assert generated.payload["feature_set_id"] == fs.feature_set_id
    assert fs.inputs == [batches["orders"], batches["profiles"]]
    parents = {e.parent_id for e in services.metadata.lineage.parents(fs.feature_set_id)}
    assert parents == set(batches.values())
    assert len(generated.payload["reports"]) == 2  # one validation report per input batch

    table = services.offline.read(fs.feature_set_id)
    assert table.column_names == ["customer_id", "seen_at", "amount", "score"]
    assert table["seen_at"].to_pylist() == ORDERS["seen_at"].to_pylist()  # the spine's rows
    assert table["score"].to_pylist() == expected_scores() == [1.0, 2.0, 3.0, None, 7.0, 9.0]
