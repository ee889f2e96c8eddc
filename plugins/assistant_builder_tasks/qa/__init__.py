"""The ``qa`` task plugin: extractive question answering (SQuAD v1.1 / v2.0, JSONL)."""

from __future__ import annotations

from assistant_builder.hookspecs import hookimpl
from assistant_builder_tasks.qa.task import QATask

__all__ = ["QATask"]


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(QATask)
