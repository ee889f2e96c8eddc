"""Exporting as the TUI sees it (textual-free): which exporters and options to offer for a run, the
export report of a run, the commands that use an export, and the worker body that runs
``engine.reexport.export_run`` and only posts messages (``tui.messages``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.callbacks import Callback, ExportVerified, StageStarted
from assistant_builder.errors import BuilderError, ExportVerificationError
from assistant_builder.tui import messages as m
from assistant_builder.tui.project import display_path, read_json

Post = Callable[[Any], Any]

#: exporter whose bundle ``builder predict`` and ``builder serve`` read
RUNTIME_EXPORTER = "onnx"


@dataclass(frozen=True)
class OptionChoice:
    """A yes/no option of an exporter (a ``bool`` field of its ``Options`` model)."""

    name: str
    description: str
    value: bool


@dataclass(frozen=True)
class ExporterChoice:
    name: str
    description: str
    selected: bool
    options: list[OptionChoice] = field(default_factory=list)


def exporter_choices(registry: Any, run_dir: Path | None) -> list[ExporterChoice]:
    """Every installed exporter with its yes/no options; selections and values from the run's recipe
    (its ``export.formats`` and ``[export.options.<name>]``), else the option defaults. When the
    recipe exported nothing, ``onnx`` is preselected (``builder predict``/``serve`` need it)."""
    recipe = (read_json(run_dir / "recipe.resolved.json") if run_dir else None) or {}
    export = recipe.get("export") or {}
    formats = list(export.get("formats") or [])
    names = registry.names("exporter")
    if not formats and RUNTIME_EXPORTER in names:
        formats = [RUNTIME_EXPORTER]
    choices = []
    for name in names:
        component = registry.get("exporter", name).component
        given = (export.get("options") or {}).get(name) or {}
        options = [OptionChoice(key, info.description or "", bool(given.get(key, info.default)))
                   for key, info in component.Options.model_fields.items() if info.annotation is bool]
        choices.append(ExporterChoice(name, component.description, name in formats, options))
    return choices


def run_metric(run_dir: Path | None) -> str:
    """The metric the run was selected and its exports are verified on."""
    summary = (read_json(run_dir / "summary.json") if run_dir else None) or {}
    recipe = (read_json(run_dir / "recipe.resolved.json") if run_dir else None) or {}
    return str(summary.get("metric") or (recipe.get("train") or {}).get("metric") or "metric")


def thresholds_text(run_dir: Path | None) -> str:
    """The gates every export must pass (the recipe's ``[export]``), naming the run's metric."""
    recipe = (read_json(run_dir / "recipe.resolved.json") if run_dir else None) or {}
    export = recipe.get("export") or {}
    name = run_metric(run_dir)
    drop, agreement = export.get("max_metric_drop", 0.01), export.get("min_agreement")
    text = f"gates: {name} drop ≤ {drop:g}, agreement ≥ " + (f"{agreement:.0%}" if agreement is not None else "the task's default")
    if export.get("max_abs_diff") is not None:
        text += f", fp32 max abs diff ≤ {export['max_abs_diff']:g}"
    return text


def read_export_report(run_dir: Path | None) -> list[dict[str, Any]]:
    """The rows of ``export_report.json`` (one per exported variant), or [] if the run has none."""
    rows = (read_json(run_dir / "export_report.json") if run_dir else None) or []
    return [row for row in rows if isinstance(row, dict)]


def report_cells(row: dict[str, Any]) -> list[str]:
    """One row of the Export screen's report table (``REPORT_COLUMNS``; the metric is named above it)."""
    return [row.get("exporter", "?"), row.get("variant", "?"), f"{row.get('reference_metric', 0.0):.4f}",
            f"{row.get('exported_metric', 0.0):.4f}", f"{row.get('agreement', 0.0):.1%}", f"{row.get('latency_batch1_ms_p50', 0.0):.2f}",
            f"{row.get('size_bytes', 0) / 1e6:.1f}", verdict_text(row)]


def verdict_text(row: dict[str, Any]) -> str:
    """``pass``, ``rejected`` (an optional variant the bundle will not open; the run is still good) or ``FAIL``."""
    status = row.get("status") or ("verified" if row.get("passed") else "failed")
    return {"verified": "pass", "rejected": "rejected"}.get(status, "FAIL")


REPORT_COLUMNS = ("export", "variant", "PyTorch", "exported", "agree", "p50 ms", "MB", "verdict")


def usage_lines(run_dir: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Where each export is and the commands that use it."""
    summary = read_json(run_dir / "summary.json") or {}
    example = summary.get("predict_example") or '"your text here"'
    lines = []
    for exporter in dict.fromkeys(row.get("exporter", "?") for row in rows):
        folder = run_dir / "exports" / exporter
        variants = "+".join(row.get("variant", "?") for row in rows if row.get("exporter") == exporter)
        lines.append(f"{exporter} ({variants}): {display_path(folder)}" + ("" if folder.is_dir() else "  [b](missing)[/b]"))
    where = display_path(run_dir)
    if any(row.get("exporter") == RUNTIME_EXPORTER and row.get("passed") for row in rows):
        rejected = [row.get("variant", "?") for row in rows if row.get("exporter") == RUNTIME_EXPORTER and row.get("status") == "rejected"]
        if rejected:
            lines.append(f"rejected: {', '.join(rejected)} (broke a gate; the bundle opens its verified variant by default)")
        lines.append(f"try it:  builder predict {where} {example}")
        lines.append(f"serve:   builder serve {where}   (HTTP, torch-free)")
    else:
        lines.append("builder predict and builder serve read the onnx export: tick onnx and export (e)")
    return lines


class PostingExportCallback(Callback):
    """Engine callback that turns export events into small messages for the UI."""

    def __init__(self, post: Post) -> None:
        self.post = post

    def on_stage_start(self, event: StageStarted) -> None:
        self.post(m.ExportProgress(f"{event.stage}: {event.detail}" if event.detail else event.stage))

    def on_export_verified(self, event: ExportVerified) -> None:
        self.post(m.ExportVariantDone(dict(event.report)))


def run_export(run_dir: Path, registry: Any, formats: list[str], options: dict[str, dict[str, Any]], post: Post,
               exporter: Callable[..., Any] | None = None) -> None:
    """Worker body: export and verify, posting progress, then ``ExportFinished`` (never raises)."""
    if exporter is None:
        from assistant_builder.engine.reexport import export_run as exporter
    started = time.monotonic()
    try:
        outcome = exporter(run_dir, registry, formats, options, [PostingExportCallback(post)])
        post(m.ExportFinished(run_dir, [r.to_dict() for r in outcome.reports], notes=list(outcome.notes),
                              seconds=time.monotonic() - started))
    except ExportVerificationError as error:  # the reports were written; the table shows which variant failed
        post(m.ExportFinished(run_dir, [], error=error.render(), verification_failed=True, seconds=time.monotonic() - started))
    except BuilderError as error:
        post(m.ExportFinished(run_dir, [], error=error.render(), seconds=time.monotonic() - started))
    except Exception as error:  # noqa: BLE001 - shown on screen; the app stays usable
        post(m.ExportFinished(run_dir, [], error=f"{type(error).__name__}: {error}", seconds=time.monotonic() - started))
