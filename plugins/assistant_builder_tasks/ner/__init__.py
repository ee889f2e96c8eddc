"""The ``ner`` task plugin: named-entity recognition / slot filling."""

from __future__ import annotations

from assistant_builder.hookspecs import hookimpl
from assistant_builder_tasks.ner.task import NerTask

__all__ = ["NerTask"]


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(NerTask)
