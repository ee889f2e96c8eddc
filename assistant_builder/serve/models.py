"""The model a server answers with, as one swappable unit: a ``ModelSlot``.

A slot bundles what a prediction needs (predictor, engine, task-options cache) with the model's
identity (``ModelRef``: version id, path, task, labels). Its ``kind`` is ``prediction`` (an encoder
bundle: a ``runtime.predictor.Predictor`` answering ``POST /predict``) or ``generation`` (a causal
LM bundle: a ``serve.generation.GenerationModel`` answering ``POST /generate``); ``load_model``
picks it from the bundle. The app reads ``state.slot`` once per request, so a request runs,
decodes and is answered entirely with the model it started on; a hot swap (``serve/reload.py``)
only rebinds ``state.slot``.

The version id is the first 12 hex digits of the SHA-256 of the bundle's manifest (which records
the export time, the model files and their verification): two exports never share one, and the
same bundle always has the same.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from assistant_builder.contracts import ComponentOptions, Task
from assistant_builder.runtime.predictor import Predictor
from assistant_builder.serve.engine import Engine
from assistant_builder.serve.generation import GENERATION, GenerationEngine, GenerationModel
from assistant_builder.serve.payload import OptionsCache

#: ``ModelSlot.kind`` of an encoder model, and the route each kind answers on
PREDICTION = "prediction"
ENDPOINTS = {PREDICTION: "/predict", GENERATION: "/generate"}

#: what a slot serves: an encoder bundle's predictor, or a generation bundle's model
Model = Predictor | GenerationModel


def model_version(manifest: dict[str, Any]) -> str:
    """A short, stable id of an exported bundle (12 hex digits of its manifest's SHA-256)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def run_dir_of(bundle_dir: Path) -> Path | None:
    """The run directory a bundle belongs to (``RUN/exports/onnx`` -> ``RUN``), if it is in one."""
    parent = bundle_dir.parent.parent
    return parent if bundle_dir.parent.name == "exports" and (parent / "recipe.resolved.json").is_file() else None


@dataclass(frozen=True)
class ModelRef:
    """Who made a prediction: enough to validate feedback on it after the model was swapped out
    (no ONNX session: the prediction memory holds these, not whole models)."""

    version: str
    path: str
    task: Task
    labels: tuple[str, ...]
    options: ComponentOptions


@dataclass
class ModelSlot:
    """One loaded model and everything the routes need to answer with it."""

    predictor: Model
    engine: Engine | GenerationEngine
    options: OptionsCache
    ref: ModelRef
    #: ``model`` object of every ``/predict`` response
    model: dict[str, Any]
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.ref.version

    @property
    def kind(self) -> str:
        """``generation`` (answers ``POST /generate``) or ``prediction`` (answers ``POST /predict``)."""
        return GENERATION if isinstance(self.predictor, GenerationModel) else PREDICTION

    @property
    def endpoint(self) -> str:
        return ENDPOINTS[self.kind]

    @property
    def task_name(self) -> str:
        return self.predictor.task.name

    @property
    def run_dir(self) -> Path | None:
        return run_dir_of(self.predictor.bundle.directory)

    def describe(self) -> dict[str, Any]:
        """For ``/info`` and the reload responses: path, bundle, run, version, variant, when loaded."""
        run = self.run_dir
        return {"path": self.ref.path, "bundle": str(self.predictor.bundle.directory), "run": str(run) if run else None,
                "version": self.version, "variant": self.predictor.variant, "task": self.task_name, "kind": self.kind,
                "created": self.predictor.bundle.manifest.get("created"),
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.loaded_at))}


def make_slot(predictor: Model, path: str | Path, engine: Engine | GenerationEngine | None = None) -> ModelSlot:
    """A slot around a loaded predictor or generation model (``engine``: a test's instrumented engine, else a new one)."""
    version = model_version(predictor.bundle.manifest)
    ref = ModelRef(version, str(path), predictor.task, tuple(predictor.labels), predictor.options)
    model = {"task": predictor.task.name, "variant": predictor.variant, "base_model": predictor.bundle.manifest.get("base_model"),
             "version": version}
    if engine is None:
        engine = GenerationEngine(predictor) if isinstance(predictor, GenerationModel) else Engine(predictor)
    return ModelSlot(predictor, engine, OptionsCache(predictor), ref, model)  # type: ignore[arg-type]


def load_model(path: str | Path, variant: str = "auto", threads: int | None = None,
               options: Mapping[str, Any] | None = None) -> Model:
    """The bundle at ``path`` (run directory or bundle folder), loaded as what it is: a ``GenerationModel``
    for a generation bundle (``runtime.assistant.is_generation_bundle``), else a ``Predictor`` with task
    ``options`` overridden. Raises ``BuilderError`` if it cannot."""
    from assistant_builder.runtime.assistant import is_generation_bundle
    from assistant_builder.runtime.bundle import read_bundle

    bundle = read_bundle(path)
    if is_generation_bundle(bundle):
        return GenerationModel(bundle, variant, options=options)
    return Predictor(bundle, variant, options=options, threads=threads)


def load_slot(path: str | Path, variant: str = "auto", threads: int | None = None,
              options: Mapping[str, Any] | None = None) -> ModelSlot:
    """Load the bundle at ``path`` (run directory or bundle folder), with task ``options`` overridden;
    raises ``BuilderError`` if it cannot."""
    return make_slot(load_model(path, variant, threads=threads, options=options), path)
