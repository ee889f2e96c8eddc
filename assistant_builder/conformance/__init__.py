"""The conformance suite: checks any task, trainer, exporter or logger plugin against its contract.

Two ways in:

* ``run_conformance(MyTask)`` returns a list of ``CheckResult`` (for plugin authors' tests; see
  ``assistant_builder.testing.assert_conforms`` and ``conformance_tests``);
* ``builder plugins check [NAME ...]`` runs ``check_registry`` on the installed plugins.

Every component gets the torch-free checks (contract, name, description, ``Options``, import
hygiene, and a task's class attributes); with ``functional=True`` it is also exercised with a tiny
random BERT built in code: a task's round trip on its ``sample_data``, a trainer's short training
run, an exporter's export-and-reload, a logger's event stream. Imports torch only inside the
functional checks.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from assistant_builder.conformance.bench import Workspace
from assistant_builder.conformance.imports import check_imports
from assistant_builder.conformance.results import FAIL, PASS, SKIP, WARN, CheckResult, Recorder
from assistant_builder.conformance.static import check_common, check_task_attributes, check_trainer_attributes
from assistant_builder.errors import PluginError, suggest

__all__ = ["CheckResult", "PASS", "FAIL", "SKIP", "WARN", "Workspace", "run_conformance", "check_registry", "kind_of"]

NEEDS_TORCH = ("task", "trainer", "exporter")


def _kinds() -> dict[str, type[Any]]:
    from assistant_builder.registry import KINDS

    return {kind: contract for kind, (_, contract) in KINDS.items()}


def kind_of(component: Any) -> str | None:
    """``task``, ``trainer``, ``exporter`` or ``logger``: the contract ``component`` implements (None if none)."""
    for kind, contract in _kinds().items():
        if isinstance(component, type) and issubclass(component, contract):
            return kind
    return None


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _functional(kind: str) -> Callable[[Recorder, Any, Workspace], None] | None:
    if kind == "task":
        from assistant_builder.conformance.task_check import check_task_round_trip
        return check_task_round_trip
    if kind == "trainer":
        from assistant_builder.conformance.trainer_check import check_trainer
        return check_trainer
    if kind == "exporter":
        from assistant_builder.conformance.exporter_check import check_exporter
        return check_exporter
    if kind == "logger":
        from assistant_builder.conformance.logger_check import check_logger
        return check_logger
    return None


def run_conformance(component: type[Any], *, model_dir: Path | None = None, work_dir: Path | None = None, plugin: str = "",
                    modules: Iterable[str] = (), functional: bool = True, workspace: Workspace | None = None) -> list[CheckResult]:
    """Run every check that applies to ``component`` (a Task, Trainer, Exporter or Logger subclass).

    ``model_dir`` is a tiny model folder to reuse (one is built in code otherwise); ``work_dir`` a
    scratch folder (a temporary one otherwise); ``modules`` extra module names whose import must
    stay torch-free (the plugin's entry-point module). ``functional=False`` runs only the
    torch-free checks. Never raises for a non-conforming component: every problem is a result.
    """
    kind = kind_of(component)
    name = str(getattr(component, "name", getattr(component, "__name__", repr(component))))
    recorder = Recorder(name, kind or "?", plugin)
    if kind is None:
        expected = ", ".join(c.__name__ for c in _kinds().values())
        recorder.add("contract", FAIL, f"expected a subclass of one of {expected}, got {component!r}")
        return recorder.results
    check_common(recorder, component, _kinds()[kind])
    if kind == "task":
        check_task_attributes(recorder, component)
    elif kind == "trainer":
        check_trainer_attributes(recorder, component)
    check_imports(recorder, [getattr(component, "__module__", ""), *modules])
    if not functional:
        return recorder.results
    if kind in NEEDS_TORCH and not torch_available():
        recorder.add("functional", SKIP, "torch is not installed: pip install 'assistant-builder[train]'")
        return recorder.results
    if recorder.results and any(r.check == "contract" and r.failed for r in recorder.results):
        recorder.add("functional", SKIP, "needs 'contract', which did not pass")
        return recorder.results
    checker = _functional(kind)
    if checker is None:
        recorder.add("functional", SKIP, f"no functional checks for {kind} plugins yet")
        return recorder.results
    own = workspace is None
    workspace = workspace or Workspace(model_dir=model_dir, work_dir=work_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checker(recorder, component, workspace)
            if kind == "task":  # the optional feedback contract (builder serve --feedback, data.extra)
                from assistant_builder.conformance.feedback_check import check_task_feedback
                check_task_feedback(recorder, component, workspace)
    finally:
        if own:
            workspace.close()
    return recorder.results


def select(registry: Any, names: Sequence[str]) -> list[Any]:
    """Registrations named (by component or plugin name) in ``names``; all of them if ``names`` is empty."""
    order = {kind: i for i, kind in enumerate(_kinds())}
    registrations = sorted((reg for regs in registry.by_plugin().values() for reg in regs),
                           key=lambda reg: (order.get(reg.kind, 99), reg.name))
    if not names:
        return registrations
    known = sorted({r.name for r in registrations} | {r.plugin for r in registrations} | {f.name for f in registry.failures})
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PluginError(f"no installed plugin or component named {', '.join(repr(n) for n in unknown)}; "
                          f"{suggest(unknown[0], known)}installed: {', '.join(known)}", hint="see `builder plugins`")
    return [r for r in registrations if r.name in names or r.plugin in names]


def check_registry(registry: Any, names: Sequence[str] = (), *, functional: bool = True,
                   progress: Callable[[Any], None] | None = None, model_dir: Path | None = None) -> list[CheckResult]:
    """Check the installed components (all, or those named by component or plugin); plugins that
    failed to load are reported as failed ``load`` checks."""
    chosen = select(registry, names)
    results = [CheckResult("-", "plugin", "load", FAIL, failure.error, failure.name, failure.traceback)
               for failure in registry.failures if not names or failure.name in names]
    info = getattr(registry.manager, "plugin_info", {})
    workspace = Workspace(model_dir=model_dir)
    try:
        for registration in chosen:
            if progress is not None:
                progress(registration)
            plugin_module = info[registration.plugin].module if registration.plugin in info else ""
            results.extend(run_conformance(registration.component, plugin=registration.plugin, modules=[plugin_module],
                                           functional=functional, workspace=workspace))
    finally:
        workspace.close()
    return results
