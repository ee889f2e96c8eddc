"""The component registry: validated tasks, trainers, exporters and loggers, keyed by name.

Components are collected by calling each plugin's ``register_*`` hook separately, so every
component (and every failure) is attributed to the plugin that provided it.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel

from assistant_builder.contracts import Component, ComponentOptions, Exporter, Logger, Task, Trainer
from assistant_builder.errors import PluginError, suggest
from assistant_builder.plugins import LoadFailure, make_plugin_manager

KINDS: dict[str, tuple[str, type[Component]]] = {
    "task": ("register_tasks", Task),
    "trainer": ("register_trainers", Trainer),
    "exporter": ("register_exporters", Exporter),
    "logger": ("register_loggers", Logger),
}
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
_REQUIRED_TASK_ATTRS = ("labelling_kind", "primary_metric", "output_names")


@dataclass(frozen=True)
class Registration:
    """A component class and the plugin that registered it."""

    kind: str
    name: str
    component: type[Component]
    plugin: str


@dataclass
class Registry:
    """All registered components, plus the plugins that failed to load or register."""

    components: dict[str, dict[str, Registration]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[LoadFailure] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

    def names(self, kind: str) -> list[str]:
        """Sorted names of the registered components of ``kind``."""
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> Registration:
        """Return the registration of ``name`` or raise ``PluginError`` listing the available ones."""
        found = self.components[kind].get(name)
        if found is not None:
            return found
        available = self.names(kind)
        failed = [f.name for f in self.failures]
        message = f"unknown {kind} '{name}'; {suggest(name, available)}available: {', '.join(available) or 'none'}"
        hint = f"plugins that failed to load: {', '.join(failed)} (see `builder plugins`)" if failed else None
        raise PluginError(message, hint=hint)

    def create(self, kind: str, name: str) -> Any:
        """Instantiate the component ``name`` of ``kind``."""
        return self.get(kind, name).component()

    def by_plugin(self) -> dict[str, list[Registration]]:
        """Registrations grouped by plugin name."""
        grouped: dict[str, list[Registration]] = {}
        for per_kind in self.components.values():
            for reg in per_kind.values():
                grouped.setdefault(reg.plugin, []).append(reg)
        return grouped


def _validate(kind: str, component: Any, plugin: str) -> str:
    expected = KINDS[kind][1]
    if not (isinstance(component, type) and issubclass(component, expected)):
        raise PluginError(f"plugin '{plugin}' registered {component!r} as a {kind}; expected a subclass of {expected.__name__}")
    name = getattr(component, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"plugin '{plugin}' registered {kind} {component.__name__} with name {name!r}; "
            "expected a lowercase identifier such as 'my_task'"
        )
    options = getattr(component, "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise PluginError(f"plugin '{plugin}': {kind} '{name}' has no pydantic Options model")
    if not issubclass(options, ComponentOptions) and options.model_config.get("extra") != "forbid":
        raise PluginError(f"plugin '{plugin}': {kind} '{name}'.Options must forbid unknown keys (extra='forbid')")
    if kind == "task":
        missing = [attr for attr in _REQUIRED_TASK_ATTRS if not hasattr(component, attr)]
        if missing:
            raise PluginError(f"plugin '{plugin}': task '{name}' does not set {', '.join(missing)}")
    if getattr(component, "__abstractmethods__", None):
        missing = ", ".join(sorted(component.__abstractmethods__))
        raise PluginError(f"plugin '{plugin}': {kind} '{name}' does not implement {missing}")
    return name


def build_registry(manager: pluggy.PluginManager | None = None) -> Registry:
    """Collect and validate every component from ``manager`` (a fresh one by default).

    A plugin whose hook raises, or which registers an invalid component, is recorded in
    ``failures`` and its components are dropped. A name registered by two plugins raises
    ``PluginError`` naming both.
    """
    manager = manager or make_plugin_manager()
    registry = Registry(manager=manager, failures=list(getattr(manager, "load_failures", [])))
    info = getattr(manager, "plugin_info", {})
    for kind, (hook_name, _) in KINDS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            collected: list[type[Component]] = []
            try:
                impl.function(register=collected.append)
                names = [_validate(kind, component, plugin) for component in collected]
            except Exception as exc:  # noqa: BLE001 - isolate the broken plugin
                dist = info[plugin].distribution if plugin in info else "unknown"
                registry.failures.append(
                    LoadFailure(plugin, dist, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                )
                continue
            for name, component in zip(names, collected):
                existing = registry.components[kind].get(name)
                if existing is not None:
                    raise PluginError(
                        f"{kind} name '{name}' is registered by both plugin '{existing.plugin}' and plugin '{plugin}'",
                        hint="uninstall or block one of them (ASSISTANT_BUILDER_BLOCK_PLUGINS=name)",
                    )
                registry.components[kind][name] = Registration(kind, name, component, plugin)
    return registry
