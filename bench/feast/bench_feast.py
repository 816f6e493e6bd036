"""Feast's side of bench/bench_online.py; run with bench/.venv-feast/bin/python, not gristmill's.

Usage: ``bench_feast.py --data DATA.parquet --lookups LOOKUPS.json --redis HOST:PORT,db=N``

Builds a throwaway Feast repo (local provider, file offline store over ``DATA``, Redis online
store), times ``materialize`` of every entity, then times ``get_online_features`` over the
entity lists in ``LOOKUPS`` (``{"one": [[e], …], "many": [[e x 100], …]}``), and prints
one JSON object of figures. The project's keys are removed from Redis at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

REPO_YAML = """project: {project}
registry: {registry}
provider: local
online_store:
  type: redis
  connection_string: "{redis}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def percentiles(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": ordered[len(ordered) // 2] / 1000,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--lookups", required=True)
    parser.add_argument("--redis", required=True, help="Feast connection string host:port,db=N")
    parser.add_argument("--project", default="gmbench")
    args = parser.parse_args()

    schema = pq.read_schema(args.data)
    features = [name for name in schema.names if name.startswith("f")]
    lookups = json.loads(Path(args.lookups).read_text())
    with tempfile.TemporaryDirectory(prefix="gristmill-feast-") as repo:
        (Path(repo) / "feature_store.yaml").write_text(
            REPO_YAML.format(
                project=args.project, registry=Path(repo) / "registry.db", redis=args.redis
            )
        )
        store = FeatureStore(repo_path=repo)
        entity = Entity(name="entity_id", join_keys=["entity_id"], value_type=ValueType.STRING)
        view = FeatureView(
            name="bench",
            entities=[entity],
            ttl=timedelta(days=2),
            schema=[Field(name=name, dtype=Float64) for name in features],
            source=FileSource(path=str(Path(args.data).resolve()), timestamp_field="at"),
            online=True,
        )
        store.apply([entity, view])
        try:
            now = datetime.now(UTC)
            start = time.perf_counter()
            store.materialize(now - timedelta(days=3), now + timedelta(minutes=1))
            materialize_s = time.perf_counter() - start
            refs = [f"bench:{name}" for name in features]
            check = store.get_online_features(refs, {"entity_id": lookups["one"][0]}).to_dict()
            if check[features[0]][0] is None:
                raise SystemExit("feast materialized nothing: the benchmark would be void")
            results = {"materialize_s": materialize_s}
            for label in ("one", "many"):
                samples = []
                for entities in lookups[label]:
                    begin = time.perf_counter_ns()
                    store.get_online_features(refs, {"entity_id": entities}).to_dict()
                    samples.append(time.perf_counter_ns() - begin)
                results[label] = percentiles(samples)
        finally:
            store.teardown()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
