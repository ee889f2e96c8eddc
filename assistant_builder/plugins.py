"""Plugin manager construction: built-in plugins plus the ``assistant_builder`` entry points.

Environment switches:

* ``ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS=1`` loads only ``DEFAULT_PLUGINS`` (used in tests).
* ``ASSISTANT_BUILDER_PLUGINS=a,b`` allow-lists plugins by name; ``ASSISTANT_BUILDER_BLOCK_PLUGINS=c``
  blocks them.

A plugin that fails to import is recorded (``LoadFailure``) and reported, never raised here: it
fails only a recipe that asks for one of its components.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import traceback
from dataclasses import dataclass

import pluggy

from assistant_builder import hookspecs

ENTRY_POINT_GROUP = "assistant_builder"

#: Built-in plugins: module name -> plugin name. Loaded directly when entry points are disabled.
DEFAULT_PLUGINS: dict[str, str] = {
    "classification": "assistant_builder_tasks.classification",
    "ner": "assistant_builder_tasks.ner",
    "qa": "assistant_builder_tasks.qa",
    "generation": "assistant_builder_tasks.generation",
    "full": "assistant_builder_trainers.full",
    "lora": "assistant_builder_trainers.lora",
    "onnx": "assistant_builder_exporters.onnx_exporter",
    "torchscript": "assistant_builder_exporters.torchscript_exporter",
    "tensorboard": "assistant_builder_loggers.tensorboard",
}


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be imported: its name, distribution and the original error."""

    name: str
    distribution: str
    error: str
    traceback: str


@dataclass(frozen=True)
class PluginInfo:
    """Where a loaded plugin came from."""

    name: str
    distribution: str
    version: str
    module: str


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable, "").strip()
    return {item.strip() for item in value.split(",") if item.strip()} if value else None


def _allowed(name: str) -> bool:
    allow = _names_from_env("ASSISTANT_BUILDER_PLUGINS")
    block = _names_from_env("ASSISTANT_BUILDER_BLOCK_PLUGINS") or set()
    return (allow is None or name in allow) and name not in block


def _reject_unknown_hooks(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Unregister ``plugin`` and raise if it implements a hook that no hookspec declares (a typo).

    Done per plugin so that the final ``check_pending()`` never takes the host down for one
    misspelled plugin; the failure is recorded like an import error instead.
    """
    from assistant_builder.errors import PluginError, suggest

    unknown = [caller.name for caller in manager.get_hookcallers(plugin) or []
               if caller.spec is None and not any(i.optionalhook for i in caller.get_hookimpls() if i.plugin is plugin)]
    if unknown:
        manager.unregister(plugin)
        known = sorted(n for n in dir(hookspecs) if n.startswith("register_"))
        raise PluginError(f"plugin '{name}' implements unknown hook(s) {', '.join(unknown)}; "
                          f"{suggest(unknown[0], known)}expected one of: {', '.join(known)}")


def make_plugin_manager(*, entry_points: bool | None = None) -> pluggy.PluginManager:
    """Return a fresh plugin manager with the built-in and installed plugins registered.

    The manager carries two extra attributes: ``plugin_info`` (name -> ``PluginInfo``) and
    ``load_failures`` (list of ``LoadFailure``). Misspelled hook implementations are rejected.
    """
    if entry_points is None:
        entry_points = os.environ.get("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "") not in ("1", "true")
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.plugin_info = {}  # type: ignore[attr-defined]
    manager.load_failures = []  # type: ignore[attr-defined]

    sources: list[tuple[str, str, str, str]] = []  # (name, module, distribution, version)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "unknown"
            sources.append((ep.name, ep.value, dist, version))
    else:
        from assistant_builder import __version__

        sources = [(name, module, "assistant-builder", __version__) for name, module in DEFAULT_PLUGINS.items()]

    for name, module_name, dist, version in sources:
        if not _allowed(name) or manager.get_plugin(name) is not None:
            continue
        try:
            module = importlib.import_module(module_name)
            manager.register(module, name=name)
            _reject_unknown_hooks(manager, module, name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the host down
            manager.load_failures.append(  # type: ignore[attr-defined]
                LoadFailure(name, dist, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            )
            continue
        manager.plugin_info[name] = PluginInfo(name, dist, version, module_name)  # type: ignore[attr-defined]
    manager.check_pending()
    return manager
