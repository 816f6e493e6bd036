"""Writes the example's input files from data sets bundled with installed packages (no download).

- data/penguins.csv       Palmer penguins (palmerpenguins package), as CSV, with a
                          ``penguin_id`` per bird (the entity key of its features)
- data/wine.parquet       scikit-learn's wine recognition data, as Parquet
- data/landing/*.jsonl    the penguins again, one JSON Lines file per study year (a folder
                          source: each new file becomes its own batch)
"""

from __future__ import annotations

from pathlib import Path

from palmerpenguins import load_penguins
from sklearn.datasets import load_wine

HERE = Path(__file__).parent / "data"


def main() -> None:
    landing = HERE / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    penguins = load_penguins()
    penguins.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(penguins))])
    penguins.to_csv(HERE / "penguins.csv", index=False)
    wine = load_wine(as_frame=True).frame
    wine.to_parquet(HERE / "wine.parquet", index=False)
    for year, rows in penguins.groupby("year"):
        rows.to_json(landing / f"penguins-{year}.jsonl", orient="records", lines=True)
    print(f"example data written to {HERE}")


if __name__ == "__main__":
    main()
