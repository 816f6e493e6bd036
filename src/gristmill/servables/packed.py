"""The names by which a graph takes its numeric raw columns as one tensor.

Kept apart from the graph builder (which imports ``onnx``), so that loading a servable
needs ONNX Runtime alone.
"""

from __future__ import annotations

PACKED_INPUT = "gm/inputs"
"""The name of the one input of a graph whose numeric raw columns come as one tensor."""

PACKED_COLUMNS = "gristmill.packed_columns"
"""The model metadata key naming, as a JSON list, the columns of ``PACKED_INPUT`` in order."""
