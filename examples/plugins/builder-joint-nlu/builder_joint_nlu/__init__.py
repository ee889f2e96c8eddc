"""builder-joint-nlu: a third-party assistant-builder plugin adding the ``joint_nlu`` task.

Registered through the ``assistant_builder`` entry-point group (see ``pyproject.toml``). Importing
this package must stay cheap and torch-free: ``builder plugins`` and ``builder predict`` import it.
"""

from __future__ import annotations

from assistant_builder.hookspecs import hookimpl
from builder_joint_nlu.task import JointNluTask

__all__ = ["JointNluTask"]
__version__ = "0.1.0"


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(JointNluTask)
