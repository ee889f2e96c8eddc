"""Export the trained model with each exporter, verify every artefact, and write the bundles.

Each ``exports/<exporter>/`` folder is built in a temporary folder and renamed into place, so it
is complete or absent. It holds the model file(s), ``tokenizer.json``, ``labels.json`` and
``manifest.json``: everything the torch-free runtime needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant_builder import __version__
from assistant_builder.atomic import atomic_directory, atomic_write_json, atomic_write_text
from assistant_builder.callbacks import CallbackList, ExportVerified
from assistant_builder.contracts import ExportedArtifact, ExportJob, Exporter, Task
from assistant_builder.engine.verify import Thresholds, VerificationReport, render_export_report, verify_artifact
from assistant_builder.errors import ExportVerificationError

BUNDLE_VERSION = 1
MANIFEST = "manifest.json"


def write_bundle_files(directory: Path, *, exporter: str, task: Task, task_options: Any, labels: Sequence[str], max_length: int,
                       pad_id: int, tokenizer: Any, artifacts: Sequence[ExportedArtifact], reports: Sequence[VerificationReport],
                       base_model: str) -> dict[str, Any]:
    """Write tokenizer, labels and manifest next to the exported model files; return the manifest."""
    tokenizer.save(str(directory / "tokenizer.json"))
    atomic_write_json(directory / "labels.json", list(labels))
    manifest = {
        "bundle_version": BUNDLE_VERSION,
        "exporter": exporter,
        "task": task.name,
        # lets the runtime import just this task instead of scanning every installed plugin
        "task_class": f"{type(task).__module__}:{type(task).__qualname__}",
        "task_options": task_options.model_dump(mode="json"),
        "labels": list(labels),
        "max_length": max_length,
        "pad_token_id": pad_id,
        "input_names": ["input_ids", "attention_mask", "token_type_ids"],
        "output_names": list(task.output_names),
        "sequence_outputs": list(task.sequence_outputs),
        "models": {a.variant: a.path.name for a in artifacts},
        "model_details": {a.variant: dict(a.details) for a in artifacts if a.details},
        "verification": {r.variant: {k: v for k, v in r.to_dict().items() if k != "path"} for r in reports},
        "base_model": base_model,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "assistant_builder_version": __version__,
    }
    atomic_write_json(directory / MANIFEST, manifest)
    return manifest


def export_and_verify(*, exporters: Sequence[Exporter], recipe: Any, registry_task: Task, task_options: Any, model: Any,
                      example_batch: dict[str, Any], run_dir: Path, features: Sequence[dict[str, Any]], examples: Sequence[Any],
                      labels: Sequence[str], reference: Any, reference_predictions: Sequence[dict[str, Any]], metric: str,
                      pad_id: int, tokenizer: Any, base_model: str, callbacks: CallbackList,
                      make_job: Callable[[Exporter, Path], ExportJob]) -> list[VerificationReport]:
    """Export with every exporter, verify each artefact, write reports; raise if any breaks a threshold."""
    thresholds = Thresholds(recipe.export.max_metric_drop, recipe.export.min_agreement, recipe.export.max_abs_diff)
    all_reports: list[VerificationReport] = []
    for exporter in exporters:
        final_dir = run_dir / "exports" / exporter.name
        with atomic_directory(final_dir) as work_dir:
            artifacts = exporter.export(make_job(exporter, work_dir))
            reports = []
            for artifact in artifacts:
                runner = exporter.load_runner(artifact, registry_task.output_names)
                report = verify_artifact(artifact, runner, registry_task, task_options, features, examples, labels, reference,
                                         reference_predictions, metric, pad_id, thresholds)
                final_path = final_dir / artifact.path.relative_to(work_dir)
                report = VerificationReport(**{**report.to_dict(), "path": str(final_path)})
                reports.append(report)
                callbacks.on_export_verified(ExportVerified(exporter.name, artifact.variant, final_path, report.to_dict(), report.passed))
            write_bundle_files(work_dir, exporter=exporter.name, task=registry_task, task_options=task_options, labels=labels,
                               max_length=recipe.model.max_length, pad_id=pad_id, tokenizer=tokenizer, artifacts=artifacts,
                               reports=reports, base_model=base_model)
        all_reports.extend(reports)
    atomic_write_json(run_dir / "export_report.json", [r.to_dict() for r in all_reports])
    atomic_write_text(run_dir / "export_report.md", render_export_report(all_reports))
    failed = [r for r in all_reports if not r.passed]
    if failed:
        details = "\n".join(f"  {r.exporter}/{r.variant}: {'; '.join(r.failures)}" for r in failed)
        raise ExportVerificationError(
            f"{len(failed)} export(s) broke the recipe's thresholds:\n{details}\n  see {run_dir / 'export_report.md'}",
            hint="loosen [export] thresholds only if the drop is acceptable; for int8, try per_channel = true or keep fp32",
        )
    return all_reports
