"""The task registry's machinery: what ``@task`` records and what the workers look up.

Your tasks go in ``jobs/tasks.py`` (see its docstring); this module is the part you keep.
The handlers get the tasks with :func:`load_tasks`, which imports ``jobs.tasks`` once so
its ``@task`` decorators run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

# The module whose ``@task`` functions are the app's tasks.
APP_TASKS_MODULE = "jobs.tasks"


T = TypeVar("T")


class ProgressSink(Protocol):
    """What a task gets as ``progress`` (see ``jobs/tasks.py``)."""

    def report(self, percent: float, message: str | None = None) -> None: ...
    def step(self, name: str, function: Callable[[], T]) -> T: ...
    def wait(self, seconds: float) -> None: ...


TaskFunction = Callable[[dict[str, Any], ProgressSink], Any]


class TaskFailed(Exception):
    """The task cannot succeed with this input; the job fails with this message."""


class TransientTaskError(Exception):
    """A failure that may pass: the attempt ends and Lambda retries the job."""


@dataclass(frozen=True)
class TaskDefinition:
    name: str
    function: TaskFunction
    input_schema: dict[str, Any]
    description: str


REGISTRY: dict[str, TaskDefinition] = {}


def task(name: str, input_schema: dict[str, Any]) -> Callable[[TaskFunction], TaskFunction]:
    """Register ``function`` as the task ``name`` whose input must match ``input_schema``."""

    def register(function: TaskFunction) -> TaskFunction:
        if name in REGISTRY:
            raise ValueError(f"task {name!r} is registered twice")
        REGISTRY[name] = TaskDefinition(name, function, input_schema, (function.__doc__ or "").strip())
        return function

    return register


def load_tasks() -> Mapping[str, TaskDefinition]:
    """The app's tasks: ``jobs.tasks`` imported (once), its registrations read."""
    importlib.import_module(APP_TASKS_MODULE)
    return REGISTRY
