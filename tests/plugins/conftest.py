"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest


@pytest.fixture
def scripted_accuracy(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sequence[float]], None]:
    """Make the classification task's validation accuracy follow a script: ``scripted_accuracy([0.5, 0.4])``
    gives 0.5 at the first evaluation, then 0.4 at every later one (the last value repeats)."""
    from assistant_builder_tasks.classification.task import ClassificationTask

    real = ClassificationTask.evaluate

    def script(scores: Sequence[float]) -> None:
        values = itertools.chain(scores, itertools.repeat(scores[-1]))

        def scripted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            evaluation = real(self, *args, **kwargs)
            evaluation.metrics["accuracy"] = next(values)
            return evaluation

        monkeypatch.setattr(ClassificationTask, "evaluate", scripted)

    return script
