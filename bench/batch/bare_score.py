"""The limit of batch scoring: read a Parquet file, score it, write Parquet — nothing else.

Usage: ``python bench/batch/bare_score.py MODEL.joblib INPUT.parquet OUT.parquet``

The scikit-learn pipeline is gristmill's own fitted objects (the standardize step's
``StandardScaler`` and the learner), dumped with joblib by bench/bench_batch.py. One
``predict_proba`` over the whole file; the class is the column of the largest probability
(what ``predict`` answers, without computing everything twice). Run as its own process so
its wall time, like gristmill's, includes starting Python and importing scikit-learn.
"""

from __future__ import annotations

import sys

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    model, source, target = sys.argv[1:4]
    pipeline = joblib.load(model)
    frame = pq.read_table(source).to_pandas()
    proba = pipeline.predict_proba(frame)
    classes = pipeline.classes_
    out = {"prediction": classes[np.argmax(proba, axis=1)]}
    out |= {f"p_{label}": proba[:, number] for number, label in enumerate(classes)}
    pq.write_table(pa.table(out), target)


if __name__ == "__main__":
    main()
