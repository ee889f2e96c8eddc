"""Accuracy-aware int8: keep the most sensitive matrix products in fp32 until int8 meets the gates.

Dynamic int8 quantises every weight matrix product (``MatMul`` with a constant weight) of the
graph. When the result breaks the run's verification gates (``ExportJob.gate``: metric drop and
agreement with PyTorch on the validation set), a few products are usually to blame. This module
finds them the way Optimum / Neural Compressor users expect, in two steps:

1. **Sensitivity** (``rank_matmuls``): run the fp32 graph once over calibration batches with the
   input activation of every weight product exposed, and measure each product's own int8 error by
   emulating ONNX Runtime's dynamic quantisation on it alone (activations: per-tensor asymmetric
   uint8 over the batch; weights: symmetric int8 per output column, or per tensor). The relative
   error ``||XW - q(X) q(W)|| / ||XW||`` ranks the products, most sensitive first.
2. **Search** (``search_fp32_set``): quantise with the top ``k`` products excluded
   (``nodes_to_exclude``) for k = 1, 2, 4, 8... up to a limit, checking each candidate with the
   gate, then bisect between the last failing and the first passing k: the smallest prefix of the
   ranking that meets the gates. Each try is logged; the caller records the set in the manifest
   and the export report.

Imports onnx and onnxruntime inside functions; numpy only at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Quantize = Callable[[Sequence[str]], Path]
"""Writes the int8 graph with the given nodes kept in fp32 and returns its path."""

Gate = Callable[[Path], Any]

#: an int8 graph with fp32 nodes must take at most this share of the fp32 graph's batch-1 time to be worth it
MIN_SPEEDUP = 0.9
"""Checks a candidate int8 graph against the run's gates; returns an object with ``passed`` and ``failures``."""


def weight_matmuls(model: Any) -> list[Any]:
    """The ``MatMul`` nodes of ``model`` (an ``onnx.ModelProto``) whose second input is a constant weight."""
    constants = {init.name for init in model.graph.initializer}
    return [node for node in model.graph.node if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in constants]


def _quantize_activation(x: np.ndarray) -> np.ndarray:
    """What ONNX Runtime's ``DynamicQuantizeLinear`` does to ``x``: uint8, asymmetric, range over the whole tensor (incl. 0)."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255.0 or 1.0
    zero = np.clip(np.round(-low / scale), 0, 255)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def _quantize_weight(w: np.ndarray, per_channel: bool) -> np.ndarray:
    """Symmetric int8 weights: one scale per output column (``per_channel``) or one for the matrix."""
    peak = np.abs(w).max(axis=0, keepdims=True) if per_channel else np.abs(w).max()
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    return np.clip(np.round(w / scale), -127, 127) * scale


def matmul_error(x: np.ndarray, w: np.ndarray, per_channel: bool) -> tuple[float, float]:
    """``(squared error, squared norm)`` of ``x @ w`` when both are quantised as dynamic int8 does."""
    exact = x.astype(np.float64) @ w.astype(np.float64)
    approx = _quantize_activation(x).astype(np.float64) @ _quantize_weight(w, per_channel).astype(np.float64)
    return float(np.sum((exact - approx) ** 2)), float(np.sum(exact**2))


def rank_matmuls(fp32_path: Path, calibration: Sequence[Mapping[str, np.ndarray]], per_channel: bool,
                 max_rows: int = 256) -> list[tuple[str, float]]:
    """Weight ``MatMul`` nodes of the graph at ``fp32_path`` with their relative int8 error, most sensitive first.

    Uses the first ``max_rows`` rows of ``calibration`` (padded model-input batches). Unnamed nodes
    cannot be excluded from quantisation and are left out.
    """
    import tempfile

    import onnx
    from onnx import helper, numpy_helper

    from assistant_builder.runtime.sessions import CPU, open_session

    model = onnx.load(str(fp32_path))
    nodes = [n for n in weight_matmuls(model) if n.name]
    if not nodes or not calibration:
        return []
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer if init.name in {n.input[1] for n in nodes}}
    activations = list(dict.fromkeys(n.input[0] for n in nodes))
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in activations if name not in present)
    with tempfile.TemporaryDirectory(prefix=".int8-rank-") as scratch:
        probe = Path(scratch) / "probe.onnx"
        onnx.save(model, str(probe))
        session, _ = open_session(probe, providers=[CPU])
        declared = [i.name for i in session.get_inputs()]
        errors = {n.name: [0.0, 0.0] for n in nodes}
        rows = 0
        for batch in calibration:
            if rows >= max_rows:
                break
            rows += len(batch["input_ids"])
            values = dict(zip(activations, session.run(activations, {name: batch[name] for name in declared})))
            for node in nodes:
                x = values[node.input[0]]
                x = x.reshape(-1, x.shape[-1])
                squared, norm = matmul_error(x, weights[node.input[1]], per_channel)
                errors[node.name][0] += squared
                errors[node.name][1] += norm
    ranked = [(name, (sq / norm) ** 0.5 if norm else 0.0) for name, (sq, norm) in errors.items()]
    return sorted(ranked, key=lambda item: -item[1])


@dataclass
class SearchOutcome:
    """What the search found: the fp32 set (None if no set up to the limit met the gates) and its log."""

    fp32_nodes: list[str] | None
    path: Path | None
    log: list[str] = field(default_factory=list)


def _tries(limit: int) -> list[int]:
    """k = 1, 2, 4, 8 ... and finally ``limit``."""
    counts, k = [], 1
    while k < limit:
        counts.append(k)
        k *= 2
    return [*counts, limit] if limit > 0 else []


def search_fp32_set(ranked: Sequence[str], quantize: Quantize, gate: Gate, limit: int) -> SearchOutcome:
    """The smallest prefix of ``ranked`` (at most ``limit`` nodes) whose exclusion makes ``gate`` pass.

    Doubling then bisection: O(log limit) quantisations. ``quantize`` may write every candidate to
    the same file: when the search ends, that file holds the chosen candidate. Every try is logged
    as ``"k fp32 nodes: passed"`` or ``"k fp32 nodes: failed (<first failure>)"``.
    """
    outcome = SearchOutcome(None, None)
    limit = min(limit, len(ranked))
    last: list[int] = []

    def attempt(k: int) -> bool:
        path = quantize(list(ranked[:k]))
        result = gate(path)
        last[:] = [k]
        outcome.path = path
        outcome.log.append(f"{k} fp32 node{'s' if k != 1 else ''}: " + ("passed" if result.passed else f"failed ({result.failures[0]})"))
        return bool(result.passed)

    failing, passing = 0, None
    for k in _tries(limit):
        if attempt(k):
            passing = k
            break
        failing = k
    if passing is None:
        outcome.path = None
        return outcome
    while passing - failing > 1:
        middle = (passing + failing) // 2
        if attempt(middle):
            passing = middle
        else:
            failing = middle
    if last != [passing]:
        outcome.path = quantize(list(ranked[:passing]))
    outcome.fp32_nodes = list(ranked[:passing])
    return outcome


def batch1_latency_ms(path: Path, calibration: Sequence[Mapping[str, np.ndarray]], rows: int = 24) -> float:
    """Median time (ms) of one example at a time over the first ``rows`` rows of ``calibration`` (padding trimmed),
    each timed twice after three untimed warm-up calls."""
    import time

    from assistant_builder.runtime.sessions import CPU, open_session

    session, _ = open_session(path, providers=[CPU])
    declared = [i.name for i in session.get_inputs()]
    singles = []
    for batch in calibration:
        for row in range(len(batch["input_ids"])):
            length = int(batch["attention_mask"][row].sum())
            singles.append({name: batch[name][row : row + 1, :length] for name in declared})
            if len(singles) >= rows:
                break
        if len(singles) >= rows:
            break
    if not singles:
        return 0.0
    outputs = [o.name for o in session.get_outputs()]
    for feed in singles[:3]:  # warm-up: a session's first calls allocate and pick kernels
        session.run(outputs, feed)
    timings = []
    for _ in range(2):
        for feed in singles:
            start = time.perf_counter()
            session.run(outputs, feed)
            timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000)


@dataclass
class Int8Plan:
    """The outcome of ``accuracy_aware_int8``: whether the int8 file on disk meets the gates, and what to record."""

    meets_gates: bool
    details: dict[str, Any]


def accuracy_aware_int8(raw: Path, target: Path, quantize: Callable[[Sequence[str]], None], gate: Gate,
                        calibration: Sequence[Mapping[str, np.ndarray]], *, per_channel: bool, fixed: Sequence[str],
                        max_fp32_nodes: int) -> Int8Plan:
    """Write ``target`` (int8 of ``raw``, ``fixed`` nodes kept in fp32); if it breaks the gates, search for the
    smallest set of sensitive matrix products to keep in fp32 as well (see the module docstring).

    ``quantize(nodes)`` writes ``target`` with ``nodes`` kept in fp32. A set is accepted only if its
    int8 graph still takes at most ``MIN_SPEEDUP`` of ``raw``'s batch-1 time; otherwise, or when no set up to
    ``max_fp32_nodes`` meets the gates, ``target`` is left fully quantised (the engine then rejects
    it with its own reasons) and the details say why.
    """
    fixed = list(fixed)
    quantize(fixed)
    details: dict[str, Any] = {"fp32_nodes": fixed} if fixed else {}
    first = gate(target)
    if first.passed:
        return Int8Plan(True, details)
    log = [f"{len(fixed)} fp32 nodes (every weight product in int8): failed ({first.failures[0]})"]
    if max_fp32_nodes <= 0 or not calibration:
        return Int8Plan(False, {**details, "search_log": [*log, "no search (max_fp32_nodes = 0 or no validation data)"]})
    ranked = [name for name, _ in rank_matmuls(raw, calibration, per_channel) if name not in fixed]

    def candidate(nodes: Sequence[str]) -> Path:
        quantize([*fixed, *nodes])
        return target

    outcome = search_fp32_set(ranked, candidate, gate, max_fp32_nodes)
    log += outcome.log
    if outcome.fp32_nodes is None:
        quantize(fixed)
        log.append(f"no set of up to {min(max_fp32_nodes, len(ranked))} fp32 nodes met the gates; int8 left fully quantised")
        return Int8Plan(False, {**details, "search_log": log})
    int8_ms, fp32_ms = batch1_latency_ms(target, calibration), batch1_latency_ms(raw, calibration)
    log.append(f"batch-1 latency with {len(outcome.fp32_nodes)} fp32 nodes: {int8_ms:.2f} ms (fp32 graph {fp32_ms:.2f} ms)")
    if int8_ms > MIN_SPEEDUP * fp32_ms:
        quantize(fixed)
        log.append(f"not at least {1 / MIN_SPEEDUP:.2f}x faster than fp32: int8 left fully quantised")
        return Int8Plan(False, {**details, "search_log": log})
    return Int8Plan(True, {"fp32_nodes": [*fixed, *outcome.fp32_nodes], "search_log": log})
