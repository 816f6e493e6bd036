"""The algorithm library: every algorithm behind one interface, chosen by name."""

from gristmill.learners.base import TASKS, Capability, FittedLearner, Learner, Task
from gristmill.learners.registry import algorithms_for, learner_names, make_learner

__all__ = [
    "TASKS",
    "Capability",
    "FittedLearner",
    "Learner",
    "Task",
    "algorithms_for",
    "learner_names",
    "make_learner",
]
