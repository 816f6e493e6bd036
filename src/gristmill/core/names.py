"""The form of a name a person gives a pipeline, source, feature set or model (it names
folders and keys): a letter, then letters, digits, ``_`` and ``-``."""

from __future__ import annotations

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
