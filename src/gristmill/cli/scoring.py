"""Scoring verbs: ``predict`` a file with a registered version, ``compile`` its servable.

Both go through the version's servable (``gristmill.servables``), the very object the
prediction server runs: what a person checks here is what the server answers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.cli.tables import print_table
from gristmill.errors import ConfigError, DataError

if TYPE_CHECKING:  # numpy and the servables are imported when a verb runs
    import numpy as np

    from gristmill.servables.port import Predictions, Servable, ServableManifest

MODEL_HELP = (
    "The model: NAME (its @champion), NAME@ALIAS (@latest: the newest version) or "
    "NAME/VERSION; list them with `gristmill models`."
)
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json"}
FORMATS |= {".ndjson": "json", ".json": "json"}


def predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=MODEL_HELP)],
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="Rows to score: a .csv, .parquet or .jsonl file of raw columns."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write every prediction to this .csv, .parquet or .jsonl file."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows shown on screen.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print predictions as JSON.")] = False,
) -> None:
    """Score a small file of raw rows with a registered model version.

    The rows go through the version's servable — its fitted feature pipeline and learner,
    compiled to ONNX or served natively — exactly as the prediction server runs it. The
    file needs the columns the model reads (`gristmill compile MODEL` lists them); others
    are ignored.

    \b
        gristmill predict penguins new_birds.csv
        gristmill predict penguins@challenger new_birds.parquet --limit 5
        gristmill predict penguins/3 new_birds.jsonl -o scored.csv
        gristmill predict penguins new_birds.csv --json
    """
    if output is not None:
        check_output_folder(output)
    _format(file)
    servable = _servable(ctx, model, force=False)
    columns, rows = _read(file, servable.manifest)
    answer = servable.predict(columns)
    table = _answers(servable.manifest, answer, rows)
    if output is not None:
        _write(table, output)
        console.print(f"wrote {rows} prediction(s) to {output}", highlight=False)
    elif as_json:
        console.print_json(json.dumps(_records(table), default=str))
    else:
        print_table(_shown(table, limit), console)
    console.print(_scored_by(servable.manifest, rows), style="dim", highlight=False)


def compile_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=MODEL_HELP)],
    force: Annotated[
        bool, typer.Option("--force", help="Compile again even if a servable is recorded.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Compile a registered version into its servable (once), and show its manifest.

    A version is compiled when it is promoted, or on first load. ONNX is tried first (the
    fitted feature pipeline and the learner as one graph), kept only if it answers the
    held-out rows as the native scorer does; otherwise the version is served natively, and
    the manifest says why. --force compiles again (e.g. after a damaged artifact was refused).

    \b
        gristmill compile penguins                 kind, reason, parity, input columns
        gristmill compile penguins/3 --force
        gristmill compile penguins@challenger --json
    """
    servable = _servable(ctx, model, force=force)
    manifest = servable.manifest
    if as_json:
        from gristmill.servables.compiling import manifest_json

        console.print_json(manifest_json(manifest))
        return
    for line in describe(manifest):
        console.print(line, highlight=False)
    print_table(_inputs(manifest), console)


def describe(manifest: ServableManifest) -> list[str]:
    """What a person needs to know of a servable, a line each."""
    from gristmill.servables.parity import describe as parity_line

    lines = [
        f"{manifest.ref}: {manifest.kind} servable {manifest.digest}",
        f"why: {manifest.reason}",
        f"output: {manifest.output}"
        + (f" ({', '.join(map(str, manifest.classes))})" if manifest.classes else ""),
    ]
    if manifest.parity is not None:
        lines.append(f"parity: {parity_line(manifest.parity)}")
    if manifest.entity:
        lines.append(
            f"entity: {manifest.entity} (features of an entity from online view {manifest.view})"
        )
    return lines


def _servable(ctx: typer.Context, model: str, *, force: bool) -> Servable:
    from gristmill.runtime.wiring import open_stores
    from gristmill.servables import compile_version, load_servable, parse_ref, resolve_version

    name, which = parse_ref(model)
    with open_stores(settings_from(ctx)) as stores:
        if force:
            return compile_version(stores, resolve_version(stores, name, which)).servable
        return load_servable(stores, name, which)


def _format(file: Path) -> str:
    """``csv``, ``parquet`` or ``json`` by the file's suffix; ``ConfigError`` when it is
    none of them or there is no such file."""
    kind = FORMATS.get(file.suffix.lower())
    if kind is None:
        raise ConfigError(f"cannot tell the format of {file}: name it .csv, .parquet or .jsonl")
    if not file.is_file():
        raise ConfigError(f"no file {file}")
    return kind


def _read(file: Path, manifest: ServableManifest) -> tuple[dict[str, np.ndarray], int]:
    """The file's columns as arrays (no pandas), and its row count. A CSV file's input
    columns are read as the manifest types them (``servables.csv_columns``): a field of
    the wrong kind is named by column and row."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    kind = _format(file)
    try:
        if kind == "csv":
            table = _csv(file, manifest)
        else:
            table = (pa.parquet.read_table if kind == "parquet" else pa.json.read_json)(str(file))
    except DataError as exc:
        raise DataError(f"{file}: {exc}", file=str(file), row=exc.row, column=exc.column) from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read {file} as {kind}: {exc}", file=str(file)) from exc
    columns = {name: table.column(name).to_numpy() for name in table.column_names}
    return columns, table.num_rows


def _csv(file: Path, manifest: ServableManifest) -> Any:
    import csv

    from gristmill.servables.csv_columns import read_csv

    data = file.read_bytes().lstrip(b"\xef\xbb\xbf")
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip("\r")
    header = next(csv.reader([first]), [])
    return read_csv(data, manifest.inputs, header)


def _answers(manifest: ServableManifest, answer: Predictions, rows: int) -> dict[str, list[Any]]:
    """The predictions as named columns: row, prediction, one probability per class."""
    values = [_plain(v) for v in answer.values]
    out: dict[str, list[Any]] = {"row": list(range(rows)), "prediction": values}
    if answer.rejected is not None:
        out["rejected"] = [bool(r) for r in answer.rejected]
    if answer.probabilities is not None and manifest.classes:
        for index, label in enumerate(manifest.classes):
            out[f"p_{label}"] = [_plain(v) for v in answer.probabilities[:, index]]
    return out


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):  # no prediction (a rejected row)
        return None
    return value


def _records(table: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(table)
    return [dict(zip(names, row, strict=True)) for row in zip(*table.values(), strict=True)]


def _shown(table: dict[str, list[Any]], limit: int) -> Table:
    shown = Table()
    for name in table:
        shown.add_column(name, justify="right" if name != "prediction" else "left")
    for row in list(zip(*table.values(), strict=True))[:limit]:
        shown.add_row(*(_cell(v) for v in row))
    return shown


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def check_output_folder(output: Path | str) -> None:
    """``ConfigError`` before any work when the folder ``output`` would go in is missing (a
    local path; a URL's folder is made by its filesystem)."""
    text = str(output)
    if "://" in text:
        return
    folder = Path(text).parent
    if not folder.is_dir():
        raise ConfigError(
            f"cannot write {text}: the folder {folder} does not exist; create it or name "
            "another file"
        )


def _write(table: dict[str, list[Any]], output: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    kind = FORMATS.get(output.suffix.lower())
    if kind is None:
        raise ConfigError(f"cannot tell the format of {output}: name it .csv, .parquet or .jsonl")
    arrow = pa.table(table)
    if kind == "csv":
        pa.csv.write_csv(arrow, str(output))
    elif kind == "parquet":
        pa.parquet.write_table(arrow, str(output))
    else:
        lines = (json.dumps(r, default=str) for r in _records(table))
        output.write_text("".join(f"{line}\n" for line in lines))


def _scored_by(manifest: ServableManifest, rows: int) -> str:
    return f"{rows} row(s) scored by {manifest.ref} ({manifest.kind} servable)"


def _inputs(manifest: ServableManifest) -> Table:
    table = Table(title="input columns")
    for name in ("column", "type", "may be missing"):
        table.add_column(name)
    for column in manifest.inputs:
        table.add_row(column.name, column.type, "yes" if column.nullable else "no")
    return table


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models")(predict)
    app.command("compile", rich_help_panel="Models")(compile_command)
