"""The update process's CPU priority (``serve/learn.py``: ``background``; ``--learn-priority``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant_builder.errors import BuilderError
from assistant_builder.serve.learn import background
from assistant_builder.serve.settings import ServeSettings

PROBE = "import os; print(os.sched_getscheduler(0), os.nice(0), len(os.sched_getaffinity(0)))"
linux_only = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE and CPU affinity are Linux features")


def _child(priority: str, threads: int = 1) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], preexec_fn=background(threads, priority), check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


@linux_only
def test_idle_priority_runs_the_update_under_sched_idle_on_one_core() -> None:
    policy, _, cores = _child("idle")
    assert policy == os.SCHED_IDLE
    assert cores == 1 if len(os.sched_getaffinity(0)) > 1 else cores == len(os.sched_getaffinity(0))


@linux_only
def test_low_priority_is_nice_10_under_the_normal_policy() -> None:
    policy, niceness, _ = _child("low")
    assert policy == os.sched_getscheduler(0) and niceness == min(os.nice(0) + 10, 19)


def test_an_unknown_priority_is_refused_with_the_choices() -> None:
    with pytest.raises(BuilderError, match="learn_priority: expected one of idle, low, got 'fast'"):
        ServeSettings(path="run", learn_priority="fast")
