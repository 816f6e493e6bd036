"""``NotConvertible``: why a version has no ONNX form, so it is served natively."""

from __future__ import annotations


class NotConvertible(Exception):  # noqa: N818 - a reason recorded in a manifest, not an error a user sees
    """Why a pipeline step or learner has no ONNX form (the reason goes to the manifest)."""
