"""Raw inputs to a loaded model's examples, with errors that say which input was wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_builder.errors import DataError


def parse_inputs(task: Any, inputs: Sequence[Any], sources: Sequence[str] | None = None) -> list[Any]:
    """``task.parse_input`` each raw input, in order; a ``DataError`` is re-raised naming ``sources[i]``
    (default ``input N``, counted from 1) in front of its message."""
    examples = []
    for index, raw in enumerate(inputs):
        try:
            examples.append(task.parse_input(raw))
        except DataError as exc:
            where = sources[index] if sources is not None else f"input {index + 1}"
            raise DataError(f"{where}: {exc.message}", hint=exc.hint) from exc
    return examples
