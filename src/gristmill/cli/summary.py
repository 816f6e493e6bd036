"""Readable summaries: the end of a run (``run``, ``ingest``), a split, candidates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from gristmill.cli.console import console, err_console, styled
from gristmill.cli.tables import overflow_of, print_table
from gristmill.core.event_types import (
    DATA_ANOMALOUS,
    FEATURES_GENERATED,
    MODEL_DEPLOYED,
    MODEL_EVALUATED,
    MODEL_TRAINED,
    RAW_INGESTED,
    STAGE_FAILED,
)

if TYPE_CHECKING:  # imported by the verbs that run pipelines, not by --help, ls or show
    from gristmill.config.spec import PipelineSpec
    from gristmill.runtime.pipeline_run import RunReport
    from gristmill.segregation import SplitResult
    from gristmill.stores.features import FeatureSet
    from gristmill.stores.models import Candidate

SPEC_TYPES = {
    "double": "float64",
    "float": "float32",
    "date32[day]": "date",
    "large_string": "string",
}
STATUS_STYLE = {"succeeded": "green", "partial": "yellow", "failed": "red", "running": "cyan"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _other_metrics(row: dict[str, Any], metric: str) -> str:
    """The row's other single-number metrics (curves and matrices are left to pictures)."""
    metrics = row.get("metrics") or {}
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != metric and _number(v))


def leaderboard_payload(report: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard report (``lb_…``, as a dict) in the shape of the ``model.evaluated``
    payload ``print_leaderboard`` renders; its standings carry every candidate's metrics."""
    body = report.get("body", {})
    return {
        "metric": body.get("metric"),
        "leaderboard": body.get("standings", []),
        "failed": body.get("failed", []),
        "gate": body.get("gate", {}),
        "images": body.get("images", {}),
        "report": report.get("report_id"),
    }


def print_leaderboard(
    payload: dict[str, Any], *, best_pictures: bool = True, promote_hint: bool = True
) -> None:
    """The ranking (best ★, other metrics when the rows carry them), the candidates that
    failed to train (when the payload lists them), the gate's decision, how to serve a
    winner (unless not ``promote_hint``: the deployment stage did it) and (unless not
    ``best_pictures``) the pictures of the best candidate, named as drawn for its task
    (ROC, PR… or residuals)."""
    metric = str(payload.get("metric"))
    rows = payload.get("leaderboard", [])
    others = [_other_metrics(row, metric) for row in rows]
    table = Table(title=f"leaderboard ({metric}, test subset)", title_justify="left")
    columns = ("rank", "candidate", metric, *(("other metrics",) if any(others) else ()), "id")
    for column in columns:
        table.add_column(column, no_wrap=column == "id", overflow=overflow_of(column == "id"))
    for row, other in zip(rows, others, strict=True):
        value = row.get("value")
        mark = " ★" if row.get("best") else ""
        cells = [str(row.get("rank") or "-"), f"{row.get('candidate')}{mark}"]
        cells.append("-" if value is None else f"{value:.4f}")
        table.add_row(
            *cells, *((other or "-",) if any(others) else ()), str(row.get("candidate_id"))
        )
    print_table(table, console)
    for failed in payload.get("failed", []):
        error = str(failed.get("error"))
        evaluation = failed.get("stage") == "evaluation" or error.startswith("evaluation: ")
        what = "its evaluation failed" if evaluation else "it failed to train"
        console.print(
            styled(
                (f"✗ {failed.get('candidate')} is not ranked:", "red"),
                f" {what} ({error.removeprefix('evaluation: ')})",
            ),
            highlight=False,
            soft_wrap=True,
        )
    gate = payload.get("gate", {})
    verdict = ("passed", "green") if gate.get("passed") else ("failed", "red")
    console.print(styled("gate: ", verdict, f" — {gate.get('reason')}"), soft_wrap=True)
    images = payload.get("images", {})
    best = next((r["candidate"] for r in rows if r.get("best")), None)
    best_id = next((r.get("candidate_id") for r in rows if r.get("best")), None)
    if promote_hint and gate.get("passed") and best_id and gate.get("model"):
        model = gate["model"]
        console.print(
            f"serve it: gristmill promote {best_id} --model {model} · "
            f"gristmill serve --model {model}",
            style="dim",
            soft_wrap=True,
            highlight=False,
        )
    if best_pictures and best and images.get(best):
        files = [Path(f) for f in images[best].values()]
        console.print(
            f"pictures of {best}: {', '.join(f.name for f in files)} in {files[0].parent}",
            style="dim",
            soft_wrap=True,
        )


def print_leaderboard_report(report: dict[str, Any]) -> None:
    """A leaderboard report (``gristmill show lb_…``): what it ranked, the ranking, the
    failures, the gate, every picture's file; the curves' points only in ``--json``."""
    body = report.get("body", {})
    created = report.get("created_at")
    when = created.strftime("%Y-%m-%d %H:%M") if created else "-"
    console.print(f"leaderboard {report.get('report_id')}", style="bold", highlight=False)
    for key, value in (
        ("split", report.get("subject")),
        ("metric", body.get("metric")),
        ("task", body.get("task")),
        ("created", when),
        ("run", report.get("run_id") or "-"),
    ):
        console.print(f"  {key}: {value}", highlight=False, soft_wrap=True)
    print_leaderboard(leaderboard_payload(report), best_pictures=False)
    pictures = Table(title="pictures (PNG)", title_justify="left")
    for column in ("candidate", "picture", "file"):
        pictures.add_column(
            column, no_wrap=column == "file", overflow=overflow_of(column == "file")
        )
    for candidate, drawn in body.get("images", {}).items():
        for name, path in drawn.items():
            pictures.add_row(candidate, name, str(path))
    if pictures.row_count:
        print_table(pictures, console)
    curves = body.get("curves", {})
    names = list(dict.fromkeys(name for drawn in curves.values() for name in drawn))
    if names:
        console.print(
            f"curves: {', '.join(names)} for each candidate — see --json",
            style="dim",
            highlight=False,
        )


def deployed_line(p: dict[str, Any]) -> Text:
    """One line on what the deployment stage deployed (a ``model.deployed`` payload)."""
    model, version = p.get("model"), p.get("version")
    if p.get("mode") == "canary":
        share = float(p.get("canary_share") or 0)
        what = (
            f"version {version} as a canary ({share:.0%} of requests) beside version "
            f"{p.get('primary')}; promote it with: gristmill deploy {model} {version}"
        )
    else:
        previous = p.get("previous")
        kept = f", version {previous} kept as @previous" if previous not in (None, version) else ""
        what = f"version {version} is {model}@champion, answering every request{kept}"
    return styled(
        ("deployed", "green"),
        f" {model}: {what} (policy revision {p.get('revision')}) · "
        f"gristmill deployments {model} · gristmill serve --model {model}",
    )


def print_run_summary(report: RunReport) -> None:
    from gristmill.training.task import describe_task

    run = report.run
    style = STATUS_STYLE.get(run.status, "white")
    console.print(
        styled(
            "\n",
            (f"run {run.run_id}", "bold"),
            " of ",
            (run.pipeline, "bold"),
            ": ",
            (run.status, style),
            f" in {report.seconds:.2f}s",
        )
    )
    ingested = report.of_type(RAW_INGESTED)
    if ingested:
        table = Table(title="ingested", title_justify="left")
        for column in ("source", "batch", "rows", "columns", "bad rows", "note"):
            table.add_column(
                column,
                justify="right" if column in ("rows", "columns") else "left",
                no_wrap=column == "batch",
                overflow=overflow_of(column == "batch"),
            )
        for event in ingested:
            p = event.payload
            note = "new" if p.get("created", True) else "same bytes and options as before"
            table.add_row(
                str(p.get("source")),
                str(p.get("batch_id")),
                f"{p.get('rows', 0):,}",
                str(len(p.get("schema", []))),
                str(p.get("bad_rows", 0)) + (" (quarantined)" if p.get("quarantine") else ""),
                note,
            )
        print_table(table, console)
    generated = report.of_type(FEATURES_GENERATED)
    if generated:
        table = Table(title="feature sets", title_justify="left")
        for column in ("set", "id", "rows", "cols", "online", "checks"):
            table.add_column(
                column,
                no_wrap=column == "id",
                overflow=overflow_of(column == "id"),
                justify="right" if column in ("rows", "cols", "online") else "left",
            )
        for event in generated:
            p = event.payload
            warnings = p.get("warnings", 0)
            table.add_row(
                str(p.get("name")),
                str(p.get("feature_set_id")),
                f"{p.get('rows', 0):,}",
                str(len(p.get("columns", []))),
                f"{p.get('materialized', 0):,}",
                (f"{warnings} warning(s)" if warnings else "passed")
                + ("" if p.get("created") else " (known)"),
            )
        print_table(table, console)
        for event in generated:
            if event.payload.get("online_warning"):
                console.print(
                    styled(
                        (f"online {event.payload.get('name')}:", "yellow"),
                        " ",
                        str(event.payload["online_warning"]),
                    ),
                    highlight=False,
                    soft_wrap=True,
                )
        from gristmill.stores.features import series_gaps_line, unlabelled_line

        for event in generated:
            name, label = str(event.payload.get("name")), event.payload.get("label")
            gaps = event.payload.get("series_gaps")
            for line in (
                unlabelled_line(name, label) if label else None,
                series_gaps_line(name, gaps) if gaps else None,
            ):
                if line:
                    console.print(line, style="yellow", highlight=False, soft_wrap=True)
    for event in report.of_type(DATA_ANOMALOUS):
        p = event.payload
        report_id = (p.get("reports") or ["?"])[0]
        err_console.print(
            styled(
                (f"✗ validation stopped feature set {p.get('feature_set')}:", "red"),
                f" {len(p.get('anomalies', []))} anomalies; see gristmill show {report_id}",
            ),
            highlight=False,
            soft_wrap=True,
        )
    for event in report.of_type(MODEL_TRAINED):
        task, reason = event.payload.get("task"), event.payload.get("task_reason")
        console.print(
            f"task: {describe_task(str(task), None if reason is None else str(reason))}",
            highlight=False,
            soft_wrap=True,
        )
        for c in event.payload.get("candidates", []):
            if c.get("status") != "trained":
                console.print(
                    styled((f"✗ candidate {c.get('name')} failed:", "red"), f" {c.get('error')}"),
                    highlight=False,
                    soft_wrap=True,
                )
        for warning in event.payload.get("warnings", []):
            console.print(
                styled(("split warning:", "yellow"), f" {warning}"), highlight=False, soft_wrap=True
            )
        for note in event.payload.get("notes", []):
            console.print(f"split note: {note}", style="dim", highlight=False, soft_wrap=True)
    deployed = report.of_type(MODEL_DEPLOYED)
    for event in report.of_type(MODEL_EVALUATED):
        print_leaderboard(event.payload, promote_hint=not deployed)
    for event in deployed:
        console.print(deployed_line(event.payload), highlight=False, soft_wrap=True)
    heard = {e.key for e in report.events if e.type in (RAW_INGESTED, STAGE_FAILED)}
    quiet = [name for name in report.sources if name not in heard]
    if quiet:
        console.print("nothing new from: " + ", ".join(quiet), style="dim")
    for event in report.of_type(STAGE_FAILED):
        err_console.print(
            styled(
                (f"✗ {event.payload.get('stage')} failed for {event.key}:", "red"),
                f" {event.payload.get('error')}",
            ),
            highlight=False,
            soft_wrap=True,
        )
    if report.skipped_sections:
        console.print(
            "skipped (stages not built yet): " + ", ".join(report.skipped_sections),
            style="dim",
        )
    if ingested:
        console.print(
            f"next: gristmill ls batches · gristmill show {ingested[0].payload.get('batch_id')}"
            f" · gristmill lineage {ingested[0].payload.get('batch_id')}",
            style="dim",
            soft_wrap=True,
        )


def print_column_types(report: RunReport, spec: PipelineSpec) -> None:
    """Per ingested source, the type each column was read as, and whether it was inferred
    from the data or declared by the source's ``columns``."""
    for event in report.of_type(RAW_INGESTED):
        p = event.payload
        source = spec.sources.get(str(p.get("source")))
        declared = set((source.columns if source else None) or {})
        schema = p.get("schema") or []
        types = " · ".join(f"{c.get('name')} {_spec_type(str(c.get('type')))}" for c in schema)
        names = {str(c.get("name")) for c in schema}
        if not declared & names:
            how = "inferred from the data; a spec's `columns:` declares them"
        elif names <= declared:
            how = "as declared"
        else:
            how = f"declared: {', '.join(sorted(declared & names))}; the others inferred"
        console.print(
            f"types of {p.get('source')}: {types} ({how})", highlight=False, soft_wrap=True
        )


def _spec_type(arrow: str) -> str:
    """An Arrow type as a spec's ``columns:`` names it (``double`` is ``float64``)."""
    if arrow.startswith("timestamp"):
        return "timestamp"
    return SPEC_TYPES.get(arrow, arrow)


def print_split(result: SplitResult, feature_set: FeatureSet) -> None:
    """A split's id, strategy, rows per subset and warnings."""
    from gristmill.segregation import SUBSETS

    manifest = result.manifest
    console.print(
        styled(
            (f"split {manifest.split_id}", "bold"),
            f" of {feature_set.name} ({feature_set.feature_set_id})",
        ),
        highlight=False,
        soft_wrap=True,
    )
    params = " · ".join(f"{k} {v}" for k, v in manifest.params.items() if v is not None)
    console.print(f"strategy: {manifest.strategy}" + (f" · {params}" if params else ""))
    total = sum(manifest.sizes.values()) or 1
    table = Table(title="subsets", title_justify="left")
    for column in ("subset", "rows", "share"):
        table.add_column(column, justify="left" if column == "subset" else "right", overflow="fold")
    for subset in SUBSETS:
        if subset in manifest.sizes:
            rows = manifest.sizes[subset]
            table.add_row(subset, f"{rows:,}", f"{rows / total:.0%}")
    print_table(table, console)
    for warning in result.warnings:
        console.print(
            styled(
                (f"warning ({warning.kind}, {warning.subset}):", "yellow"), f" {warning.message}"
            ),
            highlight=False,
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"note ({note.kind}): {note.message}", highlight=False, soft_wrap=True)
    if not result.warnings:
        console.print("no warnings: subsets balanced, large enough, no train/test shift")


def candidate_seconds(candidate: Candidate) -> str:
    if candidate.finished_at is None:
        return "-"
    return f"{(candidate.finished_at - candidate.started_at).total_seconds():.2f}"


def candidates_table(candidates: list[Candidate], fresh: set[str]) -> Table:
    """Trained and failed candidates; those not in ``fresh`` were found from earlier."""
    table = Table(title="candidates", title_justify="left")
    for column in ("candidate", "algorithm", "status", "attempts", "seconds", "error", "id"):
        table.add_column(
            column,
            no_wrap=column == "id",
            overflow=overflow_of(column == "id"),
            justify="right" if column in ("attempts", "seconds") else "left",
        )
    for c in candidates:
        status = Text("trained", "green") if c.status == "trained" else Text("failed", "red")
        if c.candidate_id not in fresh:
            status.append(" (earlier)")
        table.add_row(
            c.name,
            c.algorithm,
            status,
            str(c.attempts),
            candidate_seconds(c),
            c.error or "",
            c.candidate_id,
        )
    return table
