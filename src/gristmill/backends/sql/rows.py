"""Rows to domain objects and back, by name: each column is named after a dataclass field."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def to_object(cls: type[T], row: sa.Row[Any]) -> T:
    """The domain object a row stores."""
    return cls(**row._mapping)


def to_values(obj: DataclassInstance) -> dict[str, Any]:
    """The column values of a domain object (JSON fields are serialized by the column type)."""
    return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
