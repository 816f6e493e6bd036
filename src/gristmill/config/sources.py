"""The `sources:` section of the pipeline spec: where raw data comes from and how to read it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gristmill.config.schedules import cron_text

SourceFormat = Literal["csv", "parquet", "jsonl", "sql", "folder"]
FileFormat = Literal["csv", "parquet", "jsonl"]
ColumnType = Literal["string", "int64", "int32", "float64", "float32", "bool", "date", "timestamp"]


class SourceSpec(BaseModel):
    """One data source. ``name`` is filled from its key under ``sources:``.

    ``columns`` declares expected column types; values that do not parse as declared are bad
    rows, handled by ``on_bad_rows``. Without it, types are inferred from the data.
    ``names`` reads a CSV file without a header row: its first line is data. ``delimiter``
    defaults to a tab for a ``.tsv`` file and to a comma otherwise. How a file is read
    (``delimiter``, ``names``, ``columns``) is part of its batch's identity: the same bytes
    read with other options are another batch.

    ``stream`` marks a source that also takes records appended one message at a time
    (``gristmill send``, ``records.appended`` events) besides what is read from its ``path``
    or ``query``; ``send`` refuses any other source, and records that do not fit ``columns``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    format: SourceFormat
    path: str | None = Field(None, description="File or folder path / fsspec URL (not for sql).")
    url: str | None = Field(None, description="SQLAlchemy URL (sql only).")
    query: str | None = Field(None, description="SELECT statement (sql only).")
    pattern: str = Field("*", description="Glob of files inside a folder source.")
    file_format: FileFormat | None = Field(
        None, description="Format of the files in a folder source; default: by file extension."
    )
    columns: dict[str, ColumnType] | None = None
    names: list[str] | None = Field(
        None,
        description="CSV without a header row: its columns' names, in order (its first line "
        "is data, as with pandas' names= or DuckDB's names with header=false).",
    )
    delimiter: str | None = Field(
        None,
        description="CSV field separator (default: a tab for a `.tsv` file, else a comma).",
    )
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    on_schema_change: Literal["fail", "allow"] = "fail"
    partition_rows: int = Field(500_000, gt=0, description="Rows per Parquet part file.")
    schedule: str | None = Field(
        None,
        description="Cron expression (UTC): `gristmill worker` ingests the source again at "
        "each tick.",
    )
    stream: bool = Field(
        False, description="Also takes records sent to it (`gristmill send`, records.appended)."
    )

    @field_validator("schedule", mode="before")
    @classmethod
    def _cron(cls, value: Any) -> str | None:
        return None if value is None else cron_text(value)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 1 or value in '"\r\n':
            raise ValueError(
                f"the delimiter must be one character other than a quote or a line break, "
                f'not {value!r} (a tab: "\\t")'
            )
        return value

    @field_validator("names")
    @classmethod
    def _names_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value or any(not name.strip() for name in value):
            raise ValueError("give every column a name (names: [id, age, ...])")
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"names {', '.join(map(repr, twice))} more than one column")
        return value

    @model_validator(mode="after")
    def _check_fields_for_format(self) -> SourceSpec:
        if self.names is not None and self.format not in ("csv", "folder"):
            raise ValueError(f"'names' is for CSV files without a header, not {self.format}")
        if self.format == "sql":
            if not self.url or not self.query:
                raise ValueError("a sql source needs both 'url' (SQLAlchemy URL) and 'query'")
            try:
                make_url(self.url)
            except ArgumentError:
                raise ValueError(
                    f"url {self.url!r} is not a SQLAlchemy URL; write e.g. "
                    "postgresql+psycopg://user@host:5432/db or sqlite:///path/to/file.db"
                ) from None
        elif not self.path:
            raise ValueError(f"a {self.format} source needs 'path'")
        return self
