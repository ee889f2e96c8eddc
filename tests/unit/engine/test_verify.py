"""engine/verify.py: classification agreement is on labels from the logits; batch-1 timing warms up and takes a median."""

from __future__ import annotations

import time

import numpy as np
import pytest

from assistant_builder.engine.verify import Thresholds, check_gates, measure_latency
from assistant_builder_tasks.classification.data import TextExample
from assistant_builder_tasks.classification.task import ClassificationTask

LABELS = ["neg", "pos"]


class TableRunner:
    """A runner that answers each example's row of ``logits`` (the example index is its second token id)."""

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits
        self.calls = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"logits": self.logits[batch["input_ids"][:, 1] - 10]}


def features(n: int) -> list[dict]:
    return [{"input_ids": [2, 10 + i, 3], "token_type_ids": [0, 0, 0], "example_index": i} for i in range(n)]


def test_a_float_difference_at_a_calibrated_tie_cannot_fail_an_fp32_export() -> None:
    """The isotonic map raises every top score only up to the second (an exact tie); the exported model's logits
    differ by 1.8e-7. Labels come from the logits, so the two agree on every example and the export is verified."""
    rng = np.random.default_rng(0)
    n = 40
    reference = np.zeros((n, 2), dtype=np.float32)
    reference[:, 1] = rng.uniform(-0.5, 0.5, n).astype(np.float32)  # small margins, either way
    exported = reference + rng.choice([-1.8e-7, 1.8e-7], size=reference.shape).astype(np.float32)
    task = ClassificationTask()
    options = task.Options(confidence_map=[(0.5, 0.05), (1.0, 0.1)])  # far below every top score: all tied at the floor
    examples = [TextExample(f"text {i}", LABELS[int(i % 3 == 0)]) for i in range(n)]
    feats = features(n)
    reference_outputs = {"logits": list(reference)}
    reference_predictions = task.decode(reference_outputs, feats, examples, LABELS, options)
    assert [p["label"] for p in reference_predictions] == [LABELS[i] for i in reference.argmax(axis=1)]
    gates = check_gates(TableRunner(exported), "fp32", task, options, feats, examples, LABELS, reference_outputs,
                        reference_predictions, "accuracy", 0, Thresholds(max_metric_drop=0.01, min_agreement=0.99, max_abs_diff=1e-4))
    assert gates.failures == () and gates.agreement.value == 1.0 and gates.metric_drop == 0.0
    assert gates.max_abs_diff == pytest.approx(1.8e-7, rel=0.1)


class SlowStart:
    """A runner whose first ``slow`` calls take ``first_s`` seconds and later ones ``then_s``."""

    def __init__(self, slow: int, first_s: float, then_s: float = 0.0) -> None:
        self.slow, self.first_s, self.then_s, self.calls = slow, first_s, then_s, 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        time.sleep(self.first_s if self.calls <= self.slow else self.then_s)
        return {"logits": np.zeros((len(batch["input_ids"]), 2))}


def test_batch1_latency_warms_up_then_reports_the_median() -> None:
    runner = SlowStart(slow=3, first_s=0.05)
    p50, p95, throughput = measure_latency(runner, features(4), 0, calls=9, warmup=3)
    assert p50 < 5.0 and p95 < 5.0  # the three slow first calls were warm-up, not timed
    assert runner.calls == 3 + 9 + 1 + 1  # warm-up, timed batch-1 calls, batch-32 warm-up, one batch of 4
    assert throughput > 0


def test_batch1_latency_stops_at_its_time_budget() -> None:
    runner = SlowStart(slow=0, first_s=0.0, then_s=0.02)
    p50, _, _ = measure_latency(runner, features(2), 0, calls=1000, warmup=0, budget_s=0.1)
    assert 1 + 1 < runner.calls <= 10  # a handful of timed calls, not 1000
    assert p50 >= 15.0
    assert measure_latency(runner, [], 0) == (0.0, 0.0, 0.0)
