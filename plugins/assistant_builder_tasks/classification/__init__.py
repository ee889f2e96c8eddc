"""The ``classification`` task plugin: text classification / intent detection."""

from __future__ import annotations

from assistant_builder.hookspecs import hookimpl
from assistant_builder_tasks.classification.task import ClassificationTask

__all__ = ["ClassificationTask"]


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(ClassificationTask)
