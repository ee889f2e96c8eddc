"""Accuracy-aware int8: sensitivity ranking, the smallest fp32 set that meets the gates, and the exporter wiring."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from assistant_builder_exporters import int8_search
from assistant_builder_exporters.int8_search import matmul_error, rank_matmuls, search_fp32_set


def test_an_outlier_activation_makes_a_product_sensitive() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 8)).astype(np.float32)
    plain = rng.normal(size=(64, 16)).astype(np.float32)
    outlier = plain.copy()
    outlier[:, 3] *= 60  # one activation channel far outside the rest: per-tensor uint8 loses the small ones
    relative = [matmul_error(x, w, per_channel=True) for x in (plain, outlier)]
    errors = [(squared / norm) ** 0.5 for squared, norm in relative]
    assert 0 < errors[0] < 0.02 and errors[1] > 3 * errors[0]


def tiny_graph(path: Path) -> None:
    """x -> MatMul(w_plain) -> y1; x_wide (outlier channel) -> MatMul(w) -> y2; names 'plain' and 'wide'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w")
    scale = numpy_helper.from_array(np.array([1, 1, 1, 80, 1, 1, 1, 1], dtype=np.float32), "scale")
    nodes = [helper.make_node("Cast", ["input_ids"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xf", "scale"], ["x_wide"]),
             helper.make_node("MatMul", ["xf", "w"], ["y1"], name="plain"),
             helper.make_node("MatMul", ["x_wide", "w"], ["y2"], name="wide")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", 8])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 4]) for n in ("y1", "y2")], [w, scale])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_rank_matmuls_puts_the_product_with_the_outlier_first(tmp_path: Path) -> None:
    tiny_graph(tmp_path / "g.onnx")
    rng = np.random.default_rng(2)
    batches = [{"input_ids": rng.integers(0, 100, size=(16, 8)), "attention_mask": np.ones((16, 8), dtype=np.int64),
                "token_type_ids": np.zeros((16, 8), dtype=np.int64)} for _ in range(3)]
    ranked = rank_matmuls(tmp_path / "g.onnx", batches, per_channel=True)
    assert [name for name, _ in ranked] == ["wide", "plain"]
    assert ranked[0][1] > ranked[1][1] > 0


def test_search_finds_the_smallest_prefix_with_few_tries() -> None:
    ranked = [f"n{i}" for i in range(37)]
    needed = {"n4", "n10"}  # the gate passes once both are kept in fp32: the smallest prefix is 11 nodes
    calls: list[list[str]] = []
    current: list[list[str]] = [[]]

    def quantize(nodes):
        calls.append(list(nodes))
        current[0] = list(nodes)
        return Path("cand.onnx")

    def gate(path):
        passed = needed <= set(current[0])
        return SimpleNamespace(passed=passed, failures=() if passed else ("f1 dropped by 0.02",))

    outcome = search_fp32_set(ranked, quantize, gate, limit=12)
    assert outcome.fp32_nodes == ranked[:11]
    assert current[0] == ranked[:11]  # the file left on disk is the chosen candidate
    assert len(calls) <= 8 and outcome.log[0] == "1 fp32 node: failed (f1 dropped by 0.02)"
    assert "11 fp32 nodes: passed" in outcome.log


def test_search_gives_up_at_the_limit() -> None:
    def gate(path):
        return SimpleNamespace(passed=False, failures=("agreement too low",))

    outcome = search_fp32_set([f"n{i}" for i in range(37)], lambda nodes: Path("c"), gate, limit=6)
    assert outcome.fp32_nodes is None and outcome.path is None
    assert [line.split(":")[0] for line in outcome.log] == ["1 fp32 node", "2 fp32 nodes", "4 fp32 nodes", "6 fp32 nodes"]


@pytest.fixture
def intent_recipe(tmp_path, write_recipe):
    from assistant_builder.testing import write_intent_data

    write_intent_data(tmp_path, per_label=24, seed=1)
    return write_recipe(
        tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
               "early_stopping_patience": 0, "seed": 7},
        export={"formats": ["onnx"], "max_metric_drop": 0.05, "options": {"onnx": {"quantize": True}}},
        output={"runs_dir": "runs"},
    )


def test_the_exporter_keeps_sensitive_products_in_fp32_until_int8_passes(intent_recipe, tmp_path, monkeypatch):
    """int8 is made to break unless one product stays fp32: the run keeps one node in fp32, verifies int8, records it."""
    from assistant_builder.cli.main import main
    from assistant_builder_exporters import onnx_exporter

    real = onnx_exporter._quantize
    from tests.integration.test_export_fallback import broken_copy  # noqa: E402 - shared test helper

    def quantize(source, target, per_channel, embeddings, fp32_nodes=()):
        real(source, target, per_channel, embeddings, fp32_nodes)
        if not fp32_nodes:
            broken_copy(Path(target), Path(target))

    monkeypatch.setattr(onnx_exporter, "_quantize", quantize)
    monkeypatch.setattr(int8_search, "batch1_latency_ms", lambda path, calibration: 1.0 if "int8" in Path(path).name else 2.0)
    assert main(["run", str(intent_recipe), "-q"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    reports = {r["variant"]: r for r in json.loads((run_dir / "export_report.json").read_text())}
    assert reports["int8"]["status"] == "verified"
    kept = reports["int8"]["details"]["fp32_nodes"]
    assert len(kept) == 1 and "MatMul" in kept[0]
    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert manifest["model_details"]["int8"]["fp32_nodes"] == kept and "rejected" not in manifest
    report = (run_dir / "export_report.md").read_text()
    assert "1 matrix product(s) kept in fp32 to meet the gates" in report and "1 fp32 node: passed" in report
