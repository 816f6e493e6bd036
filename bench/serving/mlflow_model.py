"""Save the benchmark's scikit-learn pipeline as an MLflow model (run in MLflow's own venv).

Usage: ``<mlflow venv>/bin/python bench/serving/mlflow_model.py MODEL.joblib OUT_DIR``

The pipeline is the one gristmill trained, exported by bench/bench_serving.py (its fitted
StandardScaler and learner, unchanged). ``mlflow.sklearn.save_model`` writes it with the
pyfunc flavour answering ``predict_proba`` (what gristmill's answers carry besides the
class); ``mlflow models serve --env-manager local`` then serves OUT_DIR.
"""

from __future__ import annotations

import sys

import joblib
import mlflow.sklearn


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    pipeline = joblib.load(source)
    # MLflow 3 saves with skops, which asks to name the tree type: this file is our own
    mlflow.sklearn.save_model(
        pipeline,
        target,
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    print(f"saved {target} with mlflow {mlflow.__version__}")


if __name__ == "__main__":
    main()
