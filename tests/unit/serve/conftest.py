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


# -- bundles of the three built-in tasks (random tiny models, exported with the real ONNX exporter) --------------
TASK_LABELS = {"classification": ["alarm", "music", "weather"], "ner": ["O", "B-person", "I-person", "B-time", "I-time"], "qa": []}
TASK_INPUTS: dict[str, list[Any]] = {
    "classification": ["wake me up at 7", "play some music", "will it rain tomorrow"],
    "ner": ["call mom at 5 pm", "remind john tomorrow morning"],
    "qa": [{"question": "when does it open", "context": "The shop opens at 9 am and closes at 6 pm."}],
}


def build_run(task_name: str, run_dir: Path, model_dir: Path, *, seed: int = 0, labels: list[str] | None = None,
              verified: bool = True, recipe: str = "test", task_options: dict[str, Any] | None = None, registry: Any = None) -> Path:
    """A run directory (``recipe.resolved.json``, ``summary.json``, ``exports/onnx``) holding a random tiny
    ``task_name`` model exported to ONNX fp32, whose manifest records a passed (or failed) verification."""
    import json

    import torch

    from assistant_builder.contracts import ExportJob
    from assistant_builder.engine.exporting import write_bundle_files
    from assistant_builder.registry import build_registry
    from assistant_builder.tokenization import load_tokenizer, pad_token_id

    registry = registry or build_registry()
    task = registry.create("task", task_name)
    options = task.Options(**(task_options or {}))
    labels = list(TASK_LABELS.get(task_name, TASK_LABELS["classification"]) if labels is None else labels)
    torch.manual_seed(seed)
    model = task.build_model(model_dir, labels, options).eval()
    tokenizer = load_tokenizer(model_dir, 32)
    pad = pad_token_id(tokenizer)
    inputs = TASK_INPUTS.get(task_name, TASK_INPUTS["classification"])
    features = task.encode([task.parse_input(x) for x in inputs], tokenizer, labels, options, 32)
    batch = task.collate([{k: f[k] for k in ("input_ids", "token_type_ids") if k in f} for f in features[:2]], pad)
    example = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    bundle = run_dir / "exports" / "onnx"
    bundle.mkdir(parents=True)
    exporter = registry.create("exporter", "onnx")
    artifacts = exporter.export(ExportJob(model, example, ("input_ids", "attention_mask", "token_type_ids"), task.output_names, bundle,
                                          exporter.Options(prepare="none")))
    manifest = write_bundle_files(bundle, exporter="onnx", task=task, task_options=options, labels=labels, max_length=32, pad_id=pad,
                                  tokenizer=tokenizer, artifacts=artifacts, reports=[], base_model="tiny-bert")
    manifest["verification"] = {a.variant: {"passed": verified, "failures": [] if verified else ["agreement 50.00% < 99.00%"]}
                                for a in artifacts}
    manifest["created"] = f"{manifest['created']} seed {seed}"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "recipe.resolved.json").write_text(json.dumps({"name": recipe, "task": {"type": task_name}}))
    (run_dir / "summary.json").write_text(json.dumps({"task": task_name}))
    return run_dir


@pytest.fixture(scope="session")
def task_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    """One run directory per built-in task (random tiny models, seed 0)."""
    root = tmp_path_factory.mktemp("task-runs")
    return {name: build_run(name, root / f"{name}-a", tiny_model_dir) for name in TASK_LABELS}


@pytest.fixture
def task_client(task_runs: dict[str, Path], tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``task_client(task, **settings)``: a started ``TestClient`` serving that task's run, feedback to
    ``tmp_path/fb.labels.sqlite`` unless ``feedback=`` says otherwise."""
    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    opened: list[Any] = []

    def make(task: str, path: Path | None = None, **overrides: Any) -> Any:
        settings = ServeSettings(path=str(path or task_runs[task]), **{"threads": 1, "intra_op_threads": 1,
                                                                        "feedback": str(tmp_path / "fb.labels.sqlite"), **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)
