"""Fixtures for the ``builder serve`` tests: a tiny classification bundle built in code, and clients.

The bundle is built with the helpers of ``tests/unit/runtime/test_predictor.py`` (a 2-layer BERT
exported to ONNX, fp32 + int8), loaded by path because tests run in importlib mode.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

RUNTIME_TESTS = Path(__file__).resolve().parents[1] / "runtime" / "test_predictor.py"


def _runtime_helpers() -> Any:
    spec = importlib.util.spec_from_file_location("_serve_tiny_bundle_helpers", RUNTIME_TESTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def serve_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run directory with exports/onnx (fp32 + int8) of a tiny 3-label classifier."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from assistant_builder.contracts import ExportedArtifact

    helpers = _runtime_helpers()
    run_dir = tmp_path_factory.mktemp("serve-run")
    bundle = run_dir / "exports" / "onnx"
    bundle.mkdir(parents=True)
    helpers.export_onnx(helpers.make_model(), bundle / "model.onnx", ("input_ids", "attention_mask", "token_type_ids"))
    quantize_dynamic(str(bundle / "model.onnx"), str(bundle / "model.int8.onnx"), weight_type=QuantType.QInt8)
    helpers.write_bundle(bundle, [ExportedArtifact("onnx", "fp32", bundle / "model.onnx"),
                                  ExportedArtifact("onnx", "int8", bundle / "model.int8.onnx")])
    return {"run": run_dir, "bundle": bundle, "labels": list(helpers.LABELS), "texts": list(helpers.TEXTS)}


@pytest.fixture(scope="session")
def serve_predictor(serve_bundle: dict[str, Any]) -> Any:
    """One fp32 predictor shared by the in-process tests (ONNX Runtime sessions are thread-safe)."""
    from assistant_builder.runtime import load_predictor

    return load_predictor(serve_bundle["run"], "fp32", threads=1)


@pytest.fixture
def make_client(serve_bundle: dict[str, Any], serve_predictor: Any) -> Iterator[Callable[..., Any]]:
    """``make_client(engine=None, **settings)``: a started ``TestClient`` (lifespan run) for a fresh app."""
    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    opened: list[Any] = []

    def make(engine: Any = None, **overrides: Any) -> Any:
        settings = ServeSettings(path=str(serve_bundle["run"]), **{"threads": 2, **overrides})
        client = TestClient(create_app(settings, predictor=serve_predictor, engine=engine))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)
