"""Export verification: re-score the validation set on an exported artefact and compare it with
the PyTorch model (output difference, prediction agreement, task metric, latency, size).

Agreement is counted in the task's own unit (``Task.agreement``: examples for a classifier,
entities for NER, answer tokens for QA), and gated by ``export.min_agreement`` or, when the recipe
leaves that unset, by the task's measured default (``Task.min_agreement``). The sentence-level
figure (whole prediction equal) is always reported as ``example_agreement``. Agreement compares
decisions, never scores: a classifier's key is its label, which is the argmax of the logits
(calibrated scores never choose it), so an fp32 file whose outputs differ by rounding agrees unless
two logits themselves swap. Batch-1 latency is a median after warm-up calls (``measure_latency``).

A report's ``status`` is ``verified`` (every gate met), ``rejected`` (an optional variant such as
int8 broke a gate; the run goes on with the reference variant, see ``engine/exporting.py``) or
``failed``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.batching import extra_inputs, pad_batch
from assistant_builder.contracts import ExportedArtifact, Feature, FeatureOutputs, GateResult, Runner, Task, evaluate_with_options
from assistant_builder.inference import max_abs_difference, run_features


@dataclass(frozen=True)
class Thresholds:
    """The gates of one export: ``min_agreement`` is already resolved (recipe value or the task's default)."""

    max_metric_drop: float
    min_agreement: float
    max_abs_diff: float | None
    #: where ``min_agreement`` came from, for messages: "export.min_agreement" or "the ner task's default"
    agreement_source: str = "export.min_agreement"


def resolve_thresholds(export: Any, task: Task) -> Thresholds:
    """The gates of ``export`` (a recipe's ``[export]`` section) for ``task``."""
    if export.min_agreement is None:
        return Thresholds(export.max_metric_drop, task.min_agreement, export.max_abs_diff,
                          f"the {task.name} task's default for export.min_agreement")
    return Thresholds(export.max_metric_drop, export.min_agreement, export.max_abs_diff)


@dataclass(frozen=True)
class VerificationReport:
    exporter: str
    variant: str
    path: str
    size_bytes: int
    metric: str
    reference_metric: float
    exported_metric: float
    metric_drop: float
    agreement: float
    max_abs_diff: float
    latency_batch1_ms_p50: float
    latency_batch1_ms_p95: float
    batch32_examples_per_second: float
    passed: bool
    failures: tuple[str, ...]
    #: what ``agreement`` counts ("examples", "entities", "answer tokens"...)
    agreement_unit: str = "examples"
    #: fraction of examples whose whole prediction equals PyTorch's (the sentence-level figure)
    example_agreement: float | None = None
    #: the agreement gate this export was held to
    min_agreement: float | None = None
    #: "verified", "rejected" (an optional variant that broke a gate; the run goes on) or "failed"
    status: str = ""
    #: the artefact is an optimisation of the reference export (int8), see ``ExportedArtifact.optional``
    optional: bool = False
    #: what the exporter recorded about the artefact (e.g. the nodes int8 keeps in fp32)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def verdict(self) -> str:
        """``status``, or for reports written before it existed, what ``passed`` said."""
        return self.status or ("verified" if self.passed else "failed")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


#: batch-1 timing (``measure_latency``): untimed warm-up calls, timed calls, and the time budget that may cut the latter short
LATENCY_WARMUP_CALLS = 3
LATENCY_CALLS = 15
LATENCY_BUDGET_S = 2.0


def measure_latency(runner: Runner, features: Sequence[Feature], pad_token_id: int, calls: int = LATENCY_CALLS,
                    input_keys: Sequence[str] = (), warmup: int = LATENCY_WARMUP_CALLS,
                    budget_s: float = LATENCY_BUDGET_S) -> tuple[float, float, float]:
    """Median and p95 batch-1 latency (ms), and batch-32 examples/s, of ``runner`` on ``features``.

    Batch 1: ``warmup`` untimed calls first (the first calls of a session allocate and pick kernels and
    can take 1000x longer), then up to ``calls`` timed single examples (cycling over ``features``),
    stopping early once ``budget_s`` seconds of timed calls have passed (at least one is timed). The
    median is reported, not the mean: one call slowed by another process moves it little. Batch 32:
    one untimed batch, then up to 8 length-sorted batches of 32, timed together. Zeros without features.
    """
    if not features:
        return 0.0, 0.0, 0.0
    for i in range(warmup):
        runner(pad_batch([features[i % len(features)]], pad_token_id, input_keys=input_keys))
    timings: list[float] = []
    began = time.perf_counter()
    for i in range(max(calls, 1)):
        batch = pad_batch([features[i % len(features)]], pad_token_id, input_keys=input_keys)
        start = time.perf_counter()
        runner(batch)
        timings.append((time.perf_counter() - start) * 1000)
        if time.perf_counter() - began >= budget_s:
            break
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
    ordered = sorted(features, key=lambda f: len(f["input_ids"]))
    batches = [pad_batch(ordered[i : i + 32], pad_token_id, input_keys=input_keys) for i in range(0, len(ordered), 32)][:8]
    runner(batches[0])  # warm-up at batch size 32
    start = time.perf_counter()
    count = 0
    for batch in batches:
        runner(batch)
        count += len(batch["input_ids"])
    return statistics.median(timings), p95, count / max(time.perf_counter() - start, 1e-9)


def check_gates(runner: Runner, variant: str, task: Task, task_options: Any, features: Sequence[Feature],
                examples: Sequence[Any], labels: Sequence[str], reference: FeatureOutputs,
                reference_predictions: Sequence[dict[str, Any]], metric: str, pad_token_id: int,
                thresholds: Thresholds, finish: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> GateResult:
    """Run ``runner`` over the validation features and hold the result to ``thresholds``.

    ``finish`` completes the decoded predictions before scoring (a generative task's answers
    generated by the artefact, see ``contracts.GenerativeTask``)."""
    outputs = run_features(runner, features, pad_token_id, task.output_names, task.sequence_outputs,
                           input_keys=extra_inputs(task.model_input_names(task_options)))
    predictions = task.decode(outputs, features, examples, labels, task_options)
    if finish is not None:
        predictions = finish(predictions)
    exported_metric = evaluate_with_options(task, predictions, examples, labels, task_options).metrics[metric]
    reference_metric = evaluate_with_options(task, reference_predictions, examples, labels, task_options).metrics[metric]
    agreement = task.agreement(predictions, reference_predictions)
    diff = max_abs_difference(reference, outputs)
    drop = reference_metric - exported_metric
    failures = []
    if drop > thresholds.max_metric_drop:
        failures.append(f"{metric} dropped by {drop:.4f} ({reference_metric:.4f} -> {exported_metric:.4f}); allowed: export.max_metric_drop = {thresholds.max_metric_drop}")
    if agreement.value < thresholds.min_agreement:
        failures.append(f"predictions agree with PyTorch on {agreement.value:.2%} of {agreement.unit}; "
                        f"required: {thresholds.min_agreement:.2%} ({thresholds.agreement_source})")
    if thresholds.max_abs_diff is not None and variant == "fp32" and diff > thresholds.max_abs_diff:
        failures.append(f"max abs output difference {diff:.2e} exceeds export.max_abs_diff = {thresholds.max_abs_diff}")
    return GateResult(reference_metric, exported_metric, drop, agreement, diff, tuple(failures))


def verify_artifact(artifact: ExportedArtifact, runner: Runner, task: Task, task_options: Any, features: Sequence[Feature],
                    examples: Sequence[Any], labels: Sequence[str], reference: FeatureOutputs,
                    reference_predictions: Sequence[dict[str, Any]], metric: str, pad_token_id: int,
                    thresholds: Thresholds, latency_calls: int = LATENCY_CALLS,
                    finish: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> VerificationReport:
    """Score ``artifact`` on the validation features, check it against the thresholds and time it.

    ``status`` is left empty: the engine decides between "verified", "rejected" and "failed".
    """
    gates = check_gates(runner, artifact.variant, task, task_options, features, examples, labels, reference,
                        reference_predictions, metric, pad_token_id, thresholds, finish)
    p50, p95, throughput = measure_latency(runner, features, pad_token_id, latency_calls, extra_inputs(task.model_input_names(task_options)))
    return VerificationReport(
        exporter=artifact.exporter, variant=artifact.variant, path=str(artifact.path), size_bytes=_size(artifact.path),
        metric=metric, reference_metric=gates.reference_metric, exported_metric=gates.exported_metric, metric_drop=gates.metric_drop,
        agreement=gates.agreement.value, max_abs_diff=gates.max_abs_diff, latency_batch1_ms_p50=p50, latency_batch1_ms_p95=p95,
        batch32_examples_per_second=throughput, passed=gates.passed, failures=gates.failures,
        agreement_unit=gates.agreement.unit, example_agreement=gates.agreement.examples, min_agreement=thresholds.min_agreement,
        optional=artifact.optional, details=dict(artifact.details),
    )


def _verdict_cell(report: VerificationReport) -> str:
    verdict = report.verdict
    if verdict == "verified":
        return "pass"
    reasons = "; ".join(report.failures)
    return f"rejected (not the default variant): {reasons}" if verdict == "rejected" else f"FAIL: {reasons}"


def _agreement_cell(report: VerificationReport) -> str:
    if report.agreement_unit == "examples" or report.example_agreement is None:
        return f"{report.agreement:.2%}"
    return f"{report.agreement:.2%} of {report.agreement_unit} ({report.example_agreement:.2%} of examples)"


def render_export_report(reports: Sequence[VerificationReport]) -> str:
    """Markdown table of every verified export, with a plain line for each rejected variant first."""
    lines = ["# Export report", ""]
    for r in reports:
        if r.verdict == "rejected":
            lines.append(f"**{r.exporter}/{r.variant} rejected**: {'; '.join(r.failures)}. The bundle's default variant is a "
                         f"verified one; `--variant {r.variant}` is refused (set `[export] on_failure = \"fail\"` to fail the run instead).")
    if len(lines) > 2:
        lines.append("")
    lines += ["| export | variant | metric | PyTorch | exported | drop | agreement | max abs diff | p50 ms (b=1) | p95 ms | ex/s (b=32) | size MB | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(
            f"| {r.exporter} | {r.variant} | {r.metric} | {r.reference_metric:.4f} | {r.exported_metric:.4f} | {r.metric_drop:+.4f} | "
            f"{_agreement_cell(r)} | {r.max_abs_diff:.2e} | {r.latency_batch1_ms_p50:.2f} | {r.latency_batch1_ms_p95:.2f} | "
            f"{r.batch32_examples_per_second:.0f} | {r.size_bytes / 1e6:.1f} | {_verdict_cell(r)} |"
        )
    notes = [f"- {r.exporter}/{r.variant}: {note}" for r in reports for note in _detail_notes(r)]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _detail_notes(report: VerificationReport) -> list[str]:
    """Readable lines for what an exporter recorded (the int8 search, fp32 nodes kept)."""
    notes = []
    kept = report.details.get("fp32_nodes")
    if kept:
        notes.append(f"{len(kept)} matrix product(s) kept in fp32 to meet the gates: {', '.join(kept)}")
    for line in report.details.get("search_log", ()):
        notes.append(str(line))
    return notes
