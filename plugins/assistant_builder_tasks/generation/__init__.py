"""The ``generation`` task plugin: supervised fine-tuning of a causal LM on prompt / response data."""

from __future__ import annotations

from assistant_builder.hookspecs import hookimpl
from assistant_builder_tasks.generation.task import GenerationTask

__all__ = ["GenerationTask"]


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(GenerationTask)
