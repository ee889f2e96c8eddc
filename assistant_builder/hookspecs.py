"""Hook specifications: the only way plugins extend assistant-builder.

Every hook receives a ``register`` callback. The host validates each component handed to it
(contract type, unique lowercase name, an ``Options`` model) and names the plugin on failure.
Per-step training events are callbacks (``callbacks.py``), not hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from assistant_builder.contracts import Exporter, Logger, Task, Trainer

PROJECT_NAME = "assistant_builder"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Register task types.

    Called once when the plugin manager is built. Call ``register(TaskClass)`` for each
    ``Task`` subclass the plugin provides. The class must set ``name`` (lowercase, unique across
    all plugins), ``Options``, ``labelling_kind``, ``primary_metric`` and ``output_names``.
    Must not import torch at module level: this hook runs on torch-free paths.
    """


@hookspec
def register_trainers(register: Callable[[type[Trainer]], None]) -> None:
    """Register training backends.

    Called once when the plugin manager is built. Call ``register(TrainerClass)`` for each
    ``Trainer`` subclass; ``name`` must be lowercase and unique, ``Options`` a
    ``ComponentOptions`` model validating the recipe's ``[train.options]`` table.
    """


@hookspec
def register_exporters(register: Callable[[type[Exporter]], None]) -> None:
    """Register exporters.

    Called once when the plugin manager is built. Call ``register(ExporterClass)`` for each
    ``Exporter`` subclass; ``name`` must be lowercase and unique, ``Options`` validates the
    recipe's ``[export.options.<name>]`` table.
    """


@hookspec
def register_loggers(register: Callable[[type[Logger]], None]) -> None:
    """Register metrics loggers (TensorBoard, experiment trackers...).

    Called once when the plugin manager is built. Call ``register(LoggerClass)`` for each
    ``Logger`` subclass; a recipe enables it by name in its ``[log]`` table (``name = true``, or a
    ``[log.<name>]`` table validated by ``Options``). ``create(run_dir, options)`` returns a
    ``Callback`` that receives the run's events. Import the logging library inside ``create``.
    """
