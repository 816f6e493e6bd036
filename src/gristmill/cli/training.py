"""Learning verbs: ``split`` a feature set, ``train`` its candidates, ``evaluate`` them.

Each does by hand what the training and evaluation stages do on ``features.generated``
and ``model.trained``, with the same functions. ``train`` and ``evaluate`` record a run that
holds the spec and announce ``model.trained`` / ``model.evaluated`` as events of that run, so
workers downstream react (and find the spec) as they do in ``gristmill run``. What they do
is ``cli.learning``, imported when a verb runs: `gristmill --help` imports no learning library.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

SpecArgument = Annotated[Path, typer.Argument(help="The pipeline spec (YAML).")]
FeatureSetOption = Annotated[
    str | None,
    typer.Option(
        "--feature-set",
        "-f",
        help="A feature set id (fs_…, from `gristmill ls feature-sets`) instead of the "
        "newest set named by the spec's train.feature_set.",
    ),
]


class ExecutorChoice(StrEnum):
    inline = "inline"
    local = "local"
    dask = "dask"


def split_command(
    ctx: typer.Context, spec: SpecArgument, feature_set: FeatureSetOption = None
) -> None:
    """Show how a feature set is split into train / test (and validation) subsets.

    The split is decided when the feature set training uses is prepared, before its
    pipeline is fitted, so nothing fitted sees the test rows: the spec's split: section
    (default: shuffled, 25 % test, seed 0) on the input rows, recorded by row key. This
    prints that split (gristmill show sp_…): the rows of each subset and the warnings that
    travel with it: class imbalance, subsets too small, a shift between train and test. It
    is the split `gristmill train` uses; the newest feature set named by the spec's
    train.feature_set, or the one given by --feature-set.

    \b
        gristmill split examples/penguins/pipeline.yaml
        gristmill split pipeline.yaml --feature-set fs_3f2a…
    """
    from gristmill.cli.learning import show_split

    show_split(ctx, spec, feature_set)


def train_command(
    ctx: typer.Context,
    spec: SpecArgument,
    feature_set: FeatureSetOption = None,
    executor: Annotated[
        ExecutorChoice | None,
        typer.Option(
            help="Where candidates train: inline (this process), local (a process pool) or "
            "dask (executor.address, else a LocalCluster). Default: the settings' executor."
        ),
    ] = None,
) -> None:
    """Train the spec's candidates on a feature set, side by side on the executor.

    Splits the newest feature set named by train.feature_set (or the one given by
    --feature-set) as `gristmill split` does, trains every candidate (tuning those with
    tune:), retries a failing one with back-off and records each, trained or failed, with
    its artifact. Candidates already trained on the same feature set and split are found,
    not retrained. Announces model.trained, so a running evaluation worker ranks them; or
    run `gristmill evaluate`. Exits with 1 when every candidate failed.

    \b
        gristmill train examples/penguins/pipeline.yaml
        gristmill train pipeline.yaml --executor dask
        gristmill train pipeline.yaml --feature-set fs_3f2a… --executor inline
    """
    from gristmill.cli.learning import train_and_show

    train_and_show(ctx, spec, feature_set, executor.value if executor else None)


def evaluate_command(
    ctx: typer.Context, spec: SpecArgument, feature_set: FeatureSetOption = None
) -> None:
    """Evaluate the trained candidates on the test subset and print the leaderboard.

    Takes the spec's candidates trained on the newest feature set named by
    train.feature_set (or the one given by --feature-set), from the newest split they were
    trained on; scores each with evaluate.metric and evaluate.evaluators, draws ROC, PR,
    calibration and confusion-matrix pictures (PNG files), ranks the candidates, marks the
    best and records the gate's decision (gristmill show lb_…). Announces model.evaluated.

    \b
        gristmill evaluate examples/penguins/pipeline.yaml
        gristmill evaluate pipeline.yaml --feature-set fs_3f2a…
    """
    from gristmill.cli.learning import evaluate_and_show

    evaluate_and_show(ctx, spec, feature_set)


def register(app: typer.Typer) -> None:
    app.command("split", rich_help_panel="Learn")(split_command)
    app.command("train", rich_help_panel="Learn")(train_command)
    app.command("evaluate", rich_help_panel="Learn")(evaluate_command)
