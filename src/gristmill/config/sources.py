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
    delimiter: str = ","
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

    @model_validator(mode="after")
    def _check_fields_for_format(self) -> SourceSpec:
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
