"""Export verification: re-score the validation set on an exported artefact and compare it with
the PyTorch model (output difference, prediction agreement, task metric, latency, size).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant_builder.batching import pad_batch
from assistant_builder.contracts import ExportedArtifact, Feature, FeatureOutputs, Runner, Task
from assistant_builder.inference import max_abs_difference, run_features


@dataclass(frozen=True)
class Thresholds:
    max_metric_drop: float
    min_agreement: float
    max_abs_diff: float | None


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure_latency(runner: Runner, features: Sequence[Feature], pad_token_id: int, calls: int = 50) -> tuple[float, float, float]:
    """Median and p95 batch-1 latency (ms) over ``calls`` single examples, and batch-32 examples/s."""
    if not features:
        return 0.0, 0.0, 0.0
    runner(pad_batch([features[0]], pad_token_id))  # warm-up
    timings = []
    for i in range(calls):
        batch = pad_batch([features[i % len(features)]], pad_token_id)
        start = time.perf_counter()
        runner(batch)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
    ordered = sorted(features, key=lambda f: len(f["input_ids"]))
    batches = [ordered[i : i + 32] for i in range(0, len(ordered), 32)][:8]
    start = time.perf_counter()
    count = 0
    for batch in batches:
        runner(pad_batch(batch, pad_token_id))
        count += len(batch)
    return statistics.median(timings), p95, count / max(time.perf_counter() - start, 1e-9)


def verify_artifact(artifact: ExportedArtifact, runner: Runner, task: Task, task_options: Any, features: Sequence[Feature],
                    examples: Sequence[Any], labels: Sequence[str], reference: FeatureOutputs,
                    reference_predictions: Sequence[dict[str, Any]], metric: str, pad_token_id: int,
                    thresholds: Thresholds, latency_calls: int = 50) -> VerificationReport:
    """Score ``artifact`` on the validation features and check it against the thresholds."""
    outputs = run_features(runner, features, pad_token_id, task.output_names, task.sequence_outputs)
    predictions = task.decode(outputs, features, examples, labels, task_options)
    exported_metric = task.evaluate(predictions, examples, labels).metrics[metric]
    reference_metric = task.evaluate(reference_predictions, examples, labels).metrics[metric]
    agree = sum(task.prediction_key(a) == task.prediction_key(b) for a, b in zip(predictions, reference_predictions))
    agreement = agree / max(1, len(predictions))
    diff = max_abs_difference(reference, outputs)
    p50, p95, throughput = measure_latency(runner, features, pad_token_id, latency_calls)
    drop = reference_metric - exported_metric
    failures = []
    if drop > thresholds.max_metric_drop:
        failures.append(f"{metric} dropped by {drop:.4f} ({reference_metric:.4f} -> {exported_metric:.4f}); allowed: export.max_metric_drop = {thresholds.max_metric_drop}")
    if agreement < thresholds.min_agreement:
        failures.append(f"predictions agree with PyTorch on {agreement:.2%} of examples; required: export.min_agreement = {thresholds.min_agreement}")
    if thresholds.max_abs_diff is not None and artifact.variant == "fp32" and diff > thresholds.max_abs_diff:
        failures.append(f"max abs output difference {diff:.2e} exceeds export.max_abs_diff = {thresholds.max_abs_diff}")
    return VerificationReport(
        exporter=artifact.exporter, variant=artifact.variant, path=str(artifact.path), size_bytes=_size(artifact.path),
        metric=metric, reference_metric=reference_metric, exported_metric=exported_metric, metric_drop=drop,
        agreement=agreement, max_abs_diff=diff, latency_batch1_ms_p50=p50, latency_batch1_ms_p95=p95,
        batch32_examples_per_second=throughput, passed=not failures, failures=tuple(failures),
    )


def render_export_report(reports: Sequence[VerificationReport]) -> str:
    """Markdown table of every verified export."""
    lines = ["# Export report", "",
             "| export | variant | metric | PyTorch | exported | drop | agreement | max abs diff | p50 ms (b=1) | p95 ms | ex/s (b=32) | size MB | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        verdict = "pass" if r.passed else "FAIL: " + "; ".join(r.failures)
        lines.append(
            f"| {r.exporter} | {r.variant} | {r.metric} | {r.reference_metric:.4f} | {r.exported_metric:.4f} | {r.metric_drop:+.4f} | "
            f"{r.agreement:.2%} | {r.max_abs_diff:.2e} | {r.latency_batch1_ms_p50:.2f} | {r.latency_batch1_ms_p95:.2f} | "
            f"{r.batch32_examples_per_second:.0f} | {r.size_bytes / 1e6:.1f} | {verdict} |"
        )
    return "\n".join(lines) + "\n"
