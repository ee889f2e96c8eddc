"""Export the trained model with each exporter, verify every artefact, and write the bundles.

Each ``exports/<exporter>/`` folder is built in a temporary folder and renamed into place, so it
is complete or absent. It holds the model file(s), ``tokenizer.json``, ``labels.json`` and
``manifest.json``: everything the torch-free runtime needs.

Verdicts. The reference artefact of an exporter (fp32) must meet every gate, or the run fails.
An *optional* artefact (``ExportedArtifact.optional``: int8) that breaks a gate is *rejected*
when ``export.on_failure = "fallback"`` (the default): the run succeeds, the manifest records
``rejected: {variant: [reasons]}`` and a ``default_variant`` that was verified, the runtime refuses
``--variant int8`` with those reasons, and the reports say so. ``on_failure = "fail"`` makes any
broken gate fail the run (for CI).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant_builder import __version__
from assistant_builder.atomic import atomic_directory, atomic_write_json, atomic_write_text
from assistant_builder.callbacks import CallbackList, ExportVerified
from assistant_builder.contracts import ExportedArtifact, ExportJob, Exporter, GateResult, Task
from assistant_builder.engine.verify import (VerificationReport, check_gates, render_export_report, resolve_thresholds,
                                             verify_artifact)
from assistant_builder.errors import ExportVerificationError

BUNDLE_VERSION = 1
MANIFEST = "manifest.json"


def write_bundle_files(directory: Path, *, exporter: str, task: Task, task_options: Any, labels: Sequence[str], max_length: int,
                       pad_id: int, tokenizer: Any, artifacts: Sequence[ExportedArtifact], reports: Sequence[VerificationReport],
                       base_model: str) -> dict[str, Any]:
    """Write tokenizer, labels and manifest next to the exported model files; return the manifest.

    ``reports`` carry each artefact's verdict: rejected variants are listed under ``rejected``
    and ``default_variant`` names the variant the runtime opens by default (the preferred one among
    those not rejected).
    """
    tokenizer.save(str(directory / "tokenizer.json"))
    atomic_write_json(directory / "labels.json", list(labels))
    rejected = {r.variant: list(r.failures) for r in reports if r.verdict == "rejected"}
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
        "input_names": list(task.model_input_names(task_options)),
        "output_names": list(task.output_names),
        "sequence_outputs": list(task.sequence_outputs),
        "models": {a.variant: a.path.name for a in artifacts},
        "model_details": {a.variant: dict(a.details) for a in artifacts if a.details},
        "verification": {r.variant: {k: v for k, v in r.to_dict().items() if k != "path"} for r in reports},
        "base_model": base_model,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "assistant_builder_version": __version__,
    }
    if rejected:
        manifest["rejected"] = rejected
        manifest["default_variant"] = default_variant([a.variant for a in artifacts if a.variant not in rejected])
    atomic_write_json(directory / MANIFEST, manifest)
    return manifest


def default_variant(usable: Sequence[str]) -> str:
    """The variant the runtime opens by default among ``usable`` ones (its preference order, then the first)."""
    from assistant_builder.runtime.bundle import VARIANT_PREFERENCE

    return next((v for v in VARIANT_PREFERENCE if v in usable), usable[0])


def _with_verdict(report: VerificationReport, on_failure: str) -> VerificationReport:
    """``report`` with its status: verified, rejected (an optional variant under ``on_failure = "fallback"``) or failed."""
    if report.passed:
        status = "verified"
    elif report.optional and on_failure == "fallback":
        status = "rejected"
    else:
        status = "failed"
    return replace(report, status=status)


def _gate(exporter: Exporter, check: Callable[..., GateResult], output_names: Sequence[str],
          finisher: Callable[[Exporter, ExportedArtifact], Any]) -> Callable[[ExportedArtifact], GateResult]:
    """The ``ExportJob.gate`` of ``exporter``: load a candidate artefact with its runner and check it."""
    def gate(artifact: ExportedArtifact) -> GateResult:
        return check(exporter.load_runner(artifact, output_names), artifact.variant, finisher(exporter, artifact))

    return gate


def calibration_batches(features: Sequence[dict[str, Any]], pad_id: int, input_names: Sequence[str],
                        batch_size: int = 32) -> list[dict[str, Any]]:
    """The validation features as padded numpy batches of model inputs (``ExportJob.calibration``), length-sorted."""
    from assistant_builder.batching import extra_inputs, pad_batch, sorted_batches

    batches = []
    for indices in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
        batch = pad_batch([features[i] for i in indices], pad_id, input_keys=extra_inputs(input_names))
        batches.append({name: batch[name] for name in input_names})
    return batches


def export_and_verify(*, exporters: Sequence[Exporter], recipe: Any, registry_task: Task, task_options: Any, model: Any,
                      example_batch: dict[str, Any], run_dir: Path, features: Sequence[dict[str, Any]], examples: Sequence[Any],
                      labels: Sequence[str], reference: Any, reference_predictions: Sequence[dict[str, Any]], metric: str,
                      pad_id: int, tokenizer: Any, base_model: str, callbacks: CallbackList,
                      make_job: Callable[[Exporter, Path], ExportJob],
                      complete: Callable[[Exporter, ExportedArtifact, list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
                      ) -> list[VerificationReport]:
    """Export with every exporter, verify each artefact, write bundles and reports; raise if a run-failing gate broke.

    ``make_job`` builds the exporter's job; ``calibration`` and ``gate`` are filled in here.
    ``complete`` (a generative task, see ``contracts.GenerativeTask``) adds an artefact's generated
    answers to its decoded predictions before they are scored and compared.
    """
    thresholds = resolve_thresholds(recipe.export, registry_task)
    on_failure = getattr(recipe.export, "on_failure", "fallback")
    calibration = calibration_batches(features, pad_id, registry_task.model_input_names(task_options))

    def check(runner: Any, variant: str, finish: Any = None) -> GateResult:
        return check_gates(runner, variant, registry_task, task_options, features, examples, labels, reference,
                           reference_predictions, metric, pad_id, thresholds, finish)

    def finisher(exporter: Exporter, artifact: ExportedArtifact) -> Any:
        return None if complete is None else (lambda predictions: complete(exporter, artifact, predictions))

    all_reports: list[VerificationReport] = []
    for exporter in exporters:
        final_dir = run_dir / "exports" / exporter.name
        with atomic_directory(final_dir) as work_dir:
            job = replace(make_job(exporter, work_dir), calibration=calibration, gate=_gate(exporter, check, registry_task.output_names, finisher))
            artifacts = exporter.export(job)
            reports = []
            for artifact in artifacts:
                runner = exporter.load_runner(artifact, registry_task.output_names)
                report = verify_artifact(artifact, runner, registry_task, task_options, features, examples, labels, reference,
                                         reference_predictions, metric, pad_id, thresholds, finish=finisher(exporter, artifact))
                final_path = final_dir / artifact.path.relative_to(work_dir)
                report = _with_verdict(replace(report, path=str(final_path)), on_failure)
                reports.append(report)
                callbacks.on_export_verified(ExportVerified(exporter.name, artifact.variant, final_path, report.to_dict(), report.passed,
                                                            report.status))
            if reports and all(r.verdict == "rejected" for r in reports):  # nothing verified to fall back to
                reports = [replace(r, status="failed") for r in reports]
            write_bundle_files(work_dir, exporter=exporter.name, task=registry_task, task_options=task_options, labels=labels,
                               max_length=recipe.model.max_length, pad_id=pad_id, tokenizer=tokenizer, artifacts=artifacts,
                               reports=reports, base_model=base_model)
        all_reports.extend(reports)
    atomic_write_json(run_dir / "export_report.json", [r.to_dict() for r in all_reports])
    atomic_write_text(run_dir / "export_report.md", render_export_report(all_reports))
    failed = [r for r in all_reports if r.verdict == "failed"]
    if failed:
        details = "\n".join(f"  {r.exporter}/{r.variant}: {'; '.join(r.failures)}" for r in failed)
        strict = any(r.optional for r in failed) and on_failure == "fail"
        raise ExportVerificationError(
            f"{len(failed)} export(s) broke the recipe's thresholds:\n{details}\n  see {run_dir / 'export_report.md'}",
            hint=("export.on_failure = \"fail\" makes a rejected optional variant fail the run; set it to \"fallback\" to keep "
                  "the verified fp32 model as the default instead" if strict else
                  "loosen [export] thresholds only if the drop is acceptable; for int8, try per_channel = true or keep fp32"),
        )
    return all_reports
