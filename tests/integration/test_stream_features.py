"""The stream layer pushes fresh entities online through the newest fitted pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

from palmerpenguins import load_penguins

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.features.online_views import lookup
from gristmill.features.prepare import load_pipeline
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.stages import build_workers
from gristmill.runtime.stream import records_event
from gristmill.runtime.wiring import open_services


def penguin_spec(csv: Path) -> dict[str, object]:
    return {
        "name": "birds",
        "sources": {"penguins": {"format": "csv", "path": str(csv)}},
        "features": {
            "penguins_v1": {
                "from": ["penguins"],
                "entity": "penguin_id",
                "label": "species",
                "steps": [
                    {"impute": {"columns": ["bill_length_mm", "body_mass_g"]}},
                    {"one_hot": {"columns": ["island"]}},
                    {"standardize": {"columns": ["bill_length_mm", "body_mass_g"]}},
                    {"drop": {"columns": ["sex", "year", "bill_depth_mm", "flipper_length_mm"]}},
                ],
                "online": {"ttl": "1d"},
            }
        },
    }


async def test_streamed_records_reach_the_online_store_without_a_refit(tmp_path: Path) -> None:
    frame = load_penguins()
    frame.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(frame))])
    frame.iloc[:300].to_csv(tmp_path / "penguins.csv", index=False)
    fresh = frame.iloc[300:310]
    spec = parse_spec(penguin_spec(tmp_path / "penguins.csv"))
    settings = load_settings(
        overrides={
            "home": str(tmp_path / "home"),
            "bus": {"ack_wait": 5.0},
            "stream": {"max_rows": 10, "max_seconds": 0.5},
        }
    )
    async with open_services(settings) as services:
        report = await run_pipeline(spec, services, timeout=60)
        assert report.run.status == "succeeded"
        (feature_set,) = services.metadata.feature_sets.list_feature_sets()
        fresh_ids = list(fresh["penguin_id"])
        stores = services.feature_stores()
        _, before = lookup(stores, "penguins_v1", fresh_ids)
        assert [item.status for item in before] == ["missing"] * 10

        records = [
            {k: (None if v != v else v) for k, v in row.items()}  # NaN -> null
            for row in fresh.to_dict(orient="records")
        ]
        await services.bus.publish([records_event("penguins", records)])
        stop = asyncio.Event()
        workers = build_workers(services, ("stream-ingestion", "preparation"), spec=spec)
        tasks = [asyncio.create_task(w.run(stop, poll=0.05)) for w in workers]
        for _ in range(100):
            await asyncio.sleep(0.1)
            if all(item.found for item in lookup(stores, "penguins_v1", fresh_ids)[1]):
                break
        stop.set()
        await asyncio.gather(*tasks)

        vectors = [item.vector for item in lookup(stores, "penguins_v1", fresh_ids)[1]]
        assert None not in vectors
        # no refit: still one feature set, and the vectors are what its pipeline computes
        assert len(services.metadata.feature_sets.list_feature_sets()) == 1
        expected = load_pipeline(services.feature_stores(), feature_set).transform(fresh)
        first = vectors[0]
        assert first is not None
        for column, value in first.values.items():
            assert value == expected.iloc[0][column]
        streamed = [
            b for b in services.raw.list(source="penguins") if b.origin.startswith("stream:")
        ]
        assert sum(b.row_count for b in streamed) == 10
