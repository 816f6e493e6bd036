"""The pipeline spec: one YAML file describing a pipeline, validated up front.

Every stage reads its own section. Sections of stages not built yet are checked for form and
reported as skipped by ``gristmill run``. Errors name the key path and what was expected.
The documented schema is docs/spec.md; ``PipelineSpec.model_json_schema()`` is its source.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gristmill.config.features import FeatureSetSpec
from gristmill.config.monitoring import MonitorSpec
from gristmill.config.scoring import ScoreSpec
from gristmill.config.sources import SourceSpec
from gristmill.core.encoding import decode_utf8
from gristmill.core.ids import digest_json
from gristmill.core.names import NAME_PATTERN
from gristmill.core.user_code import make_importable
from gristmill.errors import SpecError


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"{kind} name {name!r} must start with a letter and hold only letters, digits, "
            "'_' and '-' (it names folders and keys)"
        )


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _subset_size(value: Any) -> Any:
    """A subset's size: a share (a number between 0 and 1) or a count (a whole number ≥ 1);
    anything else (0, 1.5, a negative count, text, true) is refused in one sentence that
    says both forms."""
    if value is None:
        return None
    share = isinstance(value, float) and 0 < value < 1
    count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if share or count:
        return value
    raise ValueError(
        f"{value!r} is neither a share of the rows (a number between 0 and 1, e.g. 0.25) "
        "nor a count of rows (a whole number of at least 1, e.g. 104)"
    )


class SplitSpec(_Section):
    """How the training set's input rows are split. ``test_size`` and ``validation_size``
    are a share of the rows (``0.25``) or a count of them (``104``): of groups for
    ``group``."""

    strategy: Literal["sequential", "random", "shuffled", "stratified", "time", "group", "custom"]
    test_size: int | float = Field(
        0.25, description="A share of the rows (0 < x < 1) or a count of rows (a whole number)."
    )
    validation_size: int | float | None = Field(
        None, description="A share of the rows (0 < x < 1) or a count of rows (a whole number)."
    )
    seed: int | None = None
    column: str | None = None
    custom: str | None = Field(
        None, description="the custom strategy's function, as an import path (pkg.mod:split)"
    )

    @field_validator("test_size", "validation_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return _subset_size(value)


class TuneSpec(_Section):
    """Hyper-parameter search with Optuna; trials run on the executor.

    ``space`` maps a parameter to ``[low, high]`` (ints or floats: a range; add ``log`` as a
    third item for a log scale) or to a list of choices (strings, or more than two values).
    """

    trials: int = Field(20, ge=1)
    space: dict[str, list[Any]] = Field(min_length=1)
    seed: int = 0


class CandidateSpec(_Section):
    name: str = Field(pattern=NAME_PATTERN)
    algorithm: str
    params: dict[str, Any] = Field(default_factory=dict)
    tune: TuneSpec | None = None


class TrainSpec(_Section):
    feature_set: str | None = Field(
        None, description="Which feature set to train on (default: the first with a label)."
    )
    task: Literal["classification", "regression", "clustering", "forecasting"] | None = None
    retries: int = Field(2, ge=0, description="Retries of a failing candidate (with back-off).")
    candidates: list[CandidateSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> TrainSpec:
        names = [c.name for c in self.candidates]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"candidate names must be unique; repeated: {', '.join(duplicated)}")
        return self


class EvaluateSpec(_Section):
    metric: str
    evaluators: list[str] = Field(default_factory=list)


DEFAULT_CANARY_SHARE = 0.1
"""The canary's share of requests under ``policy: canary`` when ``canary`` is not given."""


class DeploySpec(_Section):
    """How a model reaches production. The evaluation gate reads ``model`` and the margins:
    the best candidate must beat the champion by at least both of them, measured on a test
    subset of at least ``min_test_rows`` rows (default 30). The deployment stage
    reads ``policy`` and ``canary``: ``gated`` deploys the gate's winner, ``always`` the best
    candidate whatever the gate says, ``manual`` nothing; with ``canary`` (or ``policy:
    canary``) the winner starts as a canary at that share beside the champion instead of
    replacing it. ``canary_requests`` / ``canary_minutes`` say how long a canary must run
    without errors before the prediction servers' canary judge promotes it (it is pulled at
    its first error); without either a person promotes it (``gristmill deploy MODEL
    VERSION``)."""

    policy: Literal["manual", "gated", "always", "canary"] = "gated"
    model: str | None = Field(
        None, pattern=NAME_PATTERN, description="Registry name of the model (default: `name`)."
    )
    min_improvement: float = Field(
        0.0, ge=0, description="Least gain over the champion, in the metric's own units."
    )
    min_relative_improvement: float = Field(
        0.0, ge=0, description="Least gain over the champion as a fraction of its value."
    )
    canary: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Start the winner as a canary answering this share of requests.",
    )
    canary_requests: int | None = Field(
        None, ge=1, description="Requests a canary must answer without errors to be promoted."
    )
    canary_minutes: float | None = Field(
        None, gt=0, description="Minutes a canary must run without errors to be promoted."
    )
    min_test_rows: int = Field(
        30,
        ge=1,
        description="Least rows in the test subset for the gate to pass a candidate: a metric "
        "measured on fewer is noise, so such a run promotes nothing by itself.",
    )

    def canary_share(self) -> float | None:
        """The share the winner starts at as a canary, or ``None`` to replace the primary."""
        if self.canary is not None:
            return self.canary
        return DEFAULT_CANARY_SHARE if self.policy == "canary" else None


class ServeSpec(_Section):
    """How the prediction servers answer the versions this spec's runs train."""

    latency_budget_ms: float | None = Field(
        None,
        gt=0,
        description="Each request's latency budget for these versions, in milliseconds (a "
        "request's x-gristmill-latency-budget-ms header overrides it; it overrides the "
        "server's serve.latency_budget_ms setting).",
    )


class PipelineSpec(_Section):
    """A whole pipeline. Only ``name`` and ``sources`` are required."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    sources: dict[str, SourceSpec] = Field(min_length=1)
    features: dict[str, FeatureSetSpec] | None = None
    split: SplitSpec | None = None
    train: TrainSpec | None = None
    evaluate: EvaluateSpec | None = None
    deploy: DeploySpec | None = None
    serve: ServeSpec | None = None
    score: ScoreSpec | None = None
    monitor: MonitorSpec | None = None

    @field_validator("sources", mode="before")
    @classmethod
    def _name_sources(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                _check_name("source", name)
            return {
                name: ({**body, "name": name} if isinstance(body, dict) else body)
                for name, body in value.items()
            }
        return value

    @field_validator("features", mode="before")
    @classmethod
    def _check_feature_set_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                _check_name("feature set", name)
        return value

    @model_validator(mode="after")
    def _training_target_exists(self) -> PipelineSpec:
        target = self.train.feature_set if self.train else None
        if target is not None and target not in (self.features or {}):
            raise ValueError(
                f"train.feature_set names {target!r}, which is not a feature set; feature "
                f"sets: {', '.join(self.features or {}) or 'none'}"
            )
        return self

    @model_validator(mode="after")
    def _inputs_exist(self) -> PipelineSpec:
        for name, feature_set in (self.features or {}).items():
            for source in feature_set.from_:
                if source not in self.sources:
                    raise ValueError(
                        f"features.{name}.from names {source!r}, which is not a source; "
                        f"sources: {', '.join(self.sources)}"
                    )
        return self

    @model_validator(mode="after")
    def _score_input_exists(self) -> PipelineSpec:
        score = self.score
        if score is not None and score.source is not None and score.source not in self.sources:
            raise ValueError(
                f"score.source names {score.source!r}, which is not a source; sources: "
                f"{', '.join(self.sources)}"
            )
        features = self.features or {}
        if (
            score is not None
            and score.feature_set is not None
            and score.feature_set not in features
        ):
            raise ValueError(
                f"score.feature_set names {score.feature_set!r}, which is not a feature set; "
                f"feature sets: {', '.join(features) or 'none'}"
            )
        return self

    def scoring_model(self) -> str | None:
        """The model ``score:`` scores with: its ``model``, else ``deploy.model``, else the
        pipeline's name; ``None`` without a ``score:`` section."""
        if self.score is None:
            return None
        return self.score.model or (self.deploy.model if self.deploy else None) or self.name

    def skipped_sections(self) -> list[str]:
        """Sections present in this spec whose stages are not built yet (none now:
        ``monitor`` is the monitoring stage's, its ``rollback`` the deployment stage's,
        ``serve`` the prediction servers')."""
        return []


DEFAULT_SPLIT = SplitSpec(strategy="shuffled", test_size=0.25, seed=0)
"""The split when the spec has no ``split:`` section."""


def training_target(spec: PipelineSpec) -> str | None:
    """The feature set training uses: ``train.feature_set``, else the first with a label."""
    if spec.train is None:
        return None
    if spec.train.feature_set:
        return spec.train.feature_set
    labelled = [name for name, fs in (spec.features or {}).items() if fs.label]
    return labelled[0] if labelled else next(iter(spec.features or {}), None)


def chosen_split(spec: PipelineSpec) -> SplitSpec:
    """The spec's ``split:``, else ``DEFAULT_SPLIT``."""
    return spec.split or DEFAULT_SPLIT


def _describe(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{error['input']!r} is not one of {expected}"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling, or see docs/spec.md for the keys allowed here)"
    if kind == "missing":
        return "required key is missing"
    bounds = {
        "greater_than": ("gt", "greater than"),
        "greater_than_equal": ("ge", "at least"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "at most"),
    }
    if kind in bounds:
        key, words = bounds[kind]
        return f"{error['input']!r} is out of range: give a number {words} {ctx.get(key)}"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type"):
        whole = kind.startswith("int")
        return f"{error['input']!r} is not a {'whole ' if whole else ''}number"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _reference_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The names the spec's sections refer to that do not exist, read off the raw data: so
    a spec with other errors reports these too, in the same round (the model's own checks
    run only once every field is valid)."""
    sources = _mapping(data.get("sources"))
    features = _mapping(data.get("features"))
    problems = []
    for name, section in features.items():
        inputs = section.get("from") if isinstance(section, dict) else None
        for source in inputs if isinstance(inputs, list) else []:
            if isinstance(source, str) and source not in sources:
                problems.append(
                    (
                        f"features.{name}.from",
                        f"names {source!r}, which is not a source; "
                        f"sources: {', '.join(map(str, sources))}",
                    )
                )
    train = data.get("train")
    target = train.get("feature_set") if isinstance(train, dict) else None
    if isinstance(target, str) and target not in features:
        problems.append(
            (
                "train.feature_set",
                f"names {target!r}, which is not a feature set; feature "
                f"sets: {', '.join(map(str, features)) or 'none'}",
            )
        )
    return problems


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("function-after",)) or "(top)"


def parse_spec(data: Any, *, origin: str = "<spec>", base_dir: Path | None = None) -> PipelineSpec:
    """Validate already-parsed YAML data; relative source paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a pipeline spec must be a mapping with 'name' and 'sources'")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = [(_key_path(e["loc"]), _describe(e)) for e in exc.errors()]
        references = _reference_problems(data)  # with the rest, not in a round of their own
        repeated = {f"{path} {message}" for path, message in references}
        problems = [p for p in problems if p[1] not in repeated] + references
        text = "\n".join(f"  {path}: {message}" for path, message in problems)
        raise SpecError(f"{origin} is not a valid pipeline spec:\n{text}", problems) from exc
    return _resolve_paths(spec, base_dir) if base_dir else spec


def _resolve_paths(spec: PipelineSpec, base_dir: Path) -> PipelineSpec:
    sources = {}
    for name, source in spec.sources.items():
        path = source.path
        if path and "://" not in path and not Path(path).is_absolute():
            path = str((base_dir / path).resolve())
        sources[name] = source.model_copy(update={"path": path})
    return spec.model_copy(update={"sources": sources})


def load_spec(path: Path | str) -> PipelineSpec:
    """Read and validate a spec file; ``SpecError`` names the file, line or key path.

    Modules next to the spec are importable: once the spec is valid, its folder is put at
    the front of ``sys.path`` (once; not if it is there already), so the import paths it
    names (a custom split, evaluator or feature step, an estimator) may point at code kept
    beside it (``mysplits.py`` → ``custom: mysplits:by_region``) without setting
    ``PYTHONPATH``. Worker processes started afterwards inherit it (multiprocessing hands
    the parent's ``sys.path`` to the local executor's workers and to those of the dask
    executor's own LocalCluster); the local executor's tasks also carry the folders known
    when they were submitted, so its workers started before the spec was loaded see it too.
    Those of a dask cluster started before, or of a remote one, do not see that folder.
    """
    file = Path(path)
    try:
        text = decode_utf8(file.read_bytes(), str(file))
    except OSError as exc:
        raise SpecError(f"cannot read pipeline spec {str(file)!r}: {exc.strerror}") from exc
    except ValueError as exc:
        raise SpecError(str(exc)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{file}:{where} is not valid YAML: {exc}") from exc
    spec = parse_spec(data, origin=str(file), base_dir=file.parent)
    make_importable(file.parent)
    return spec


def spec_digest(spec: PipelineSpec) -> str:
    """The id of a spec's content: what a run records to name the spec it follows."""
    return digest_json(spec.model_dump(mode="json"))
