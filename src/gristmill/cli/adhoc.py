"""``gristmill ingest PATH``: the source a path is read as, its options, and why a
SOURCE that is neither a path nor a spec's source cannot be ingested."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, SpecError

if TYPE_CHECKING:  # the spec models are imported when the verb runs (`--help` stays fast)
    from gristmill.config.sources import SourceSpec
    from gristmill.config.spec import PipelineSpec

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
}


def _name_of(path: Path) -> str:
    """A valid source name from a file name: ``2024 sales.csv`` -> ``s_2024_sales``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_") or "source"
    return name if name[0].isalpha() else f"s_{name}"


def adhoc_source(target: Path, name: str | None, fmt: str | None, **options: Any) -> SourceSpec:
    """The source ``ingest PATH`` reads: its format from ``fmt`` or the extension, its
    name from ``name`` or the file's; an option that does not fit is named as such."""
    from gristmill.config.spec import parse_spec

    kind = fmt or ("folder" if target.is_dir() else EXTENSIONS.get(target.suffix.lower()))
    if kind is None:
        raise ConfigError(
            f"cannot tell the format of {str(target)!r} from its extension; "
            "pass --format csv|parquet|jsonl|folder"
        )
    body = {"name": name or _name_of(target), "format": kind, "path": str(target.resolve())}
    body.update({key: value for key, value in options.items() if value is not None})
    try:
        spec = parse_spec({"name": "adhoc", "sources": {body["name"]: body}})
    except SpecError as exc:  # said in the words of the command line: its options
        problems = [f"  {_option(path)}: {message}" for path, message in exc.problems]
        raise ConfigError(f"cannot ingest {target}:\n" + "\n".join(problems)) from exc
    return spec.sources[body["name"]]


def _option(key_path: str) -> str:
    """The ``ingest`` option that sets a source's key (``sources.x.names``: --columns)."""
    key = key_path.rsplit(".", 1)[-1]
    return {"names": "--columns", "format": "--format", "name": "--name"}.get(
        key, f"--{key.replace('_', '-')}"
    )


def delimiter_of(given: str | None) -> str | None:
    """``--delimiter`` as a character: ``\\t`` and ``tab`` are a tab."""
    return "\t" if given in ("\\t", "tab", "TAB") else given


def names_of(given: str | None) -> list[str] | None:
    """``--columns a,b,c`` as a list of names."""
    return None if given is None else [name.strip() for name in given.split(",")]


def unknown_source(source: str, spec_path: Path | None, spec: PipelineSpec | None) -> str:
    """Why ``ingest SOURCE`` has nothing to read: a path-like SOURCE (a slash, a suffix) is a
    missing file first; a name is not one of the spec's sources."""
    known = ", ".join(spec.sources) if spec is not None else ""
    if "/" in source or os.sep in source or Path(source).suffix:
        if spec_path is None:
            return f"file {source} not found; check the path (no spec names sources here)"
        return (
            f"file {source} not found; check the path (it is not a source of {spec_path} "
            f"either; its sources: {known or 'none'})"
        )
    if spec_path is None:
        return (
            f"{source!r} is neither an existing path nor a source of a spec; "
            "pass --spec FILE, or a path to a file"
        )
    return f"{spec_path} has no source named {source!r}; known: {known}"
