"""Feature steps (extract, transform, select) and the registry that makes them by name."""

from gristmill.features.steps.base import FeatureStep, StepKind
from gristmill.features.steps.registry import STEPS, CustomStep, make_step, step_names

__all__ = ["STEPS", "CustomStep", "FeatureStep", "StepKind", "make_step", "step_names"]
