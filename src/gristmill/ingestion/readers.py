"""Which reader reads which input: file formats by name or extension, folders file by file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from gristmill.config.sources import FileFormat, SourceSpec
from gristmill.core.ids import digest_json
from gristmill.errors import DataError
from gristmill.ingestion.csv_reader import read_csv
from gristmill.ingestion.extract import STREAM_ABOVE_BYTES, Extract
from gristmill.ingestion.files import InputFile, list_folder, stat_file
from gristmill.ingestion.jsonl_reader import read_jsonl
from gristmill.ingestion.parquet_reader import read_parquet

FileReader = Callable[..., Extract]

FILE_READERS: dict[FileFormat, FileReader] = {
    "csv": read_csv,
    "parquet": read_parquet,
    "jsonl": read_jsonl,
}

EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def input_files(spec: SourceSpec, file: str | None = None) -> list[InputFile]:
    """The files a file or folder source reads now: ``file`` if given, else its path's files."""
    if file is not None:
        return [stat_file(file)]
    if spec.format == "folder":
        return list_folder(str(spec.path), spec.pattern)
    return [stat_file(str(spec.path))]


def file_format(spec: SourceSpec, file: InputFile) -> FileFormat:
    """The format to read ``file`` with: the source's, its ``file_format``, or the extension."""
    if spec.format in FILE_READERS:
        return spec.format
    if spec.file_format is not None:
        return spec.file_format
    suffix = PurePosixPath(file.path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise DataError(
        f"cannot tell the format of {file.url} from its extension {suffix!r}; set the "
        f"source's `file_format` (one of {sorted(FILE_READERS)}) or narrow its `pattern`",
        file=file.url,
    )


def delimiter_of(spec: SourceSpec, file: InputFile) -> str:
    """The field separator of a CSV ``file``: the source's, else a tab for ``.tsv``, else ','."""
    if spec.delimiter is not None:
        return spec.delimiter
    return "\t" if PurePosixPath(file.path).suffix.lower() == ".tsv" else ","


def read_options(spec: SourceSpec, file: InputFile) -> dict[str, Any]:
    """How ``file`` is parsed, where that differs from a plain read of its bytes: the
    delimiter (when not a comma), ``names`` and declared ``columns``."""
    options: dict[str, Any] = {}
    if file_format(spec, file) == "csv" and delimiter_of(spec, file) != ",":
        options["delimiter"] = delimiter_of(spec, file)
    if spec.names:
        options["names"] = list(spec.names)
    if spec.columns:
        options["columns"] = dict(spec.columns)
    return options


def batch_digest(spec: SourceSpec, file: InputFile, bytes_digest: str) -> str:
    """A batch's identity: the digest of ``file``'s bytes, combined with its parse options
    when it has some (the same bytes read with another delimiter, other names or declared
    types make another batch). Without options it is the bytes' digest itself, so batches
    ingested before options counted keep their identity."""
    options = read_options(spec, file)
    if not options:
        return bytes_digest
    return digest_json({"bytes": bytes_digest, "read_with": options})


def read_file(
    file: InputFile,
    spec: SourceSpec,
    *,
    content_digest: str,
    stream_above: int = STREAM_ABOVE_BYTES,
) -> Extract:
    """Read one file of a file or folder source with the reader of its format."""
    fmt = file_format(spec, file)
    if fmt == "csv" and spec.delimiter is None:
        spec = spec.model_copy(update={"delimiter": delimiter_of(spec, file)})
    reader = FILE_READERS[fmt]
    return reader(file, spec, content_digest=content_digest, stream_above=stream_above)
