"""The torch-free edge predictor: an exported ONNX bundle plus the task plugin that made it.

Imports numpy, onnxruntime, tokenizers, pydantic, pluggy and the core only; the task plugin is
the class the bundle names (or found by name through the registry), and tasks keep torch out of their import path (see
``contracts.py``). Inputs go through the same ``parse_input`` -> ``encode`` -> ``run_features``
-> ``decode`` path as export verification, so predictions match what the run verified.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from tokenizers import Tokenizer

from assistant_builder.batching import MODEL_INPUTS, extra_inputs
from assistant_builder.contracts import ComponentOptions, Outputs, Task
from assistant_builder.errors import ConfigError, ConfigIssue, DataError, ModelError
from assistant_builder.inference import run_features
from assistant_builder.runtime.bundle import Bundle, read_bundle
from assistant_builder.runtime.inputs import parse_inputs
from assistant_builder.runtime.sessions import cpu_count, open_session
from assistant_builder.tokenization import prepare_tokenizer

if TYPE_CHECKING:  # pragma: no cover
    from assistant_builder.registry import Registry

__all__ = ["OnnxRunner", "Predictor", "cpu_count", "load_predictor", "task_component"]


def _validation_issues(error: ValidationError, prefix: str) -> list[ConfigIssue]:
    return [ConfigIssue(".".join([prefix, *(str(p) for p in e["loc"])]), e["msg"]) for e in error.errors()]


class OnnxRunner:
    """A ``Runner`` over an ONNX Runtime session on CPU: feeds only the inputs the graph declares.

    ``prepared`` is the bundle's prepared-graph entry for this model (``Bundle.prepared``); when it
    is usable the session opens that instead of ``path`` (see ``runtime/sessions.py``).
    ``source`` is the file actually opened.
    """

    def __init__(self, path: Path, output_names: Sequence[str], threads: int | None = None,
                 prepared: Mapping[str, Any] | None = None, input_names: Sequence[str] = MODEL_INPUTS) -> None:
        self.session, self.source = open_session(path, threads=threads, prepared=prepared)
        self.input_names = [i.name for i in self.session.get_inputs()]
        graph_outputs = {o.name for o in self.session.get_outputs()}
        unknown = [name for name in self.input_names if name not in input_names]
        missing = [name for name in output_names if name not in graph_outputs]
        if unknown or missing:
            found = f"inputs {self.input_names}, outputs {sorted(graph_outputs)}"
            raise ModelError(f"{self.source}: expected inputs among {list(input_names)} and outputs {list(output_names)}, got {found}")
        self.output_names = list(output_names)

    def __call__(self, batch: Mapping[str, np.ndarray]) -> Outputs:
        values = self.session.run(self.output_names, {name: batch[name] for name in self.input_names})
        return dict(zip(self.output_names, values))


def task_component(manifest: Mapping[str, Any], registry: Registry | None = None) -> type[Task]:
    """The task class a bundle was exported with.

    Without ``registry``, the class the manifest names (``task_class``, "module:Class") is imported
    directly: a cold start then imports one task plugin instead of every installed plugin. The
    registry (entry points, plugin switches, its error messages) is used when a registry is given,
    when plugin switches are set, or when the named class cannot be imported or is not that task.
    """
    if registry is None and manifest.get("task_class") and not any(
            os.environ.get(name) for name in ("ASSISTANT_BUILDER_PLUGINS", "ASSISTANT_BUILDER_BLOCK_PLUGINS")):
        module_name, _, qualname = str(manifest["task_class"]).partition(":")
        try:
            component = importlib.import_module(module_name)
            for part in qualname.split("."):
                component = getattr(component, part)
        except Exception:  # noqa: BLE001 - fall back to the registry, which reports plugin problems properly
            component = None
        if isinstance(component, type) and issubclass(component, Task) and getattr(component, "name", None) == manifest["task"] \
                and not getattr(component, "__abstractmethods__", None):
            return component
    if registry is None:
        from assistant_builder.registry import build_registry  # entry points and pluggy: only when needed

        registry = build_registry()
    return registry.get("task", manifest["task"]).component


class Predictor:
    """Predict with an exported bundle: ``Predictor(read_bundle(path)).predict(["some text"])``.

    ``variant`` is ``auto`` (int8 when present, else fp32) or a variant name. ``options``
    overrides task options (e.g. ``{"top_k": 5}``), validated against the task's ``Options``.
    """

    def __init__(self, bundle: Bundle, variant: str = "auto", *, options: Mapping[str, Any] | None = None,
                 threads: int | None = None, registry: Registry | None = None) -> None:
        manifest = bundle.manifest
        self.bundle = bundle
        self.variant = bundle.choose_variant(variant)
        self.labels: list[str] = list(manifest["labels"])
        self.max_length: int = manifest["max_length"]
        self.pad_token_id: int = manifest["pad_token_id"]
        self.output_names: list[str] = list(manifest["output_names"])
        self.sequence_outputs: list[str] = list(manifest["sequence_outputs"])
        self.task: Task = task_component(manifest, registry)()
        self.options: ComponentOptions = self._task_options(manifest["task_options"], options or {})
        missing = [name for name in self.task.output_names if name not in self.output_names]
        if missing:
            raise ModelError(f"{bundle.manifest_path}: task '{self.task.name}' needs outputs {list(self.task.output_names)}, "
                             f"the bundle has {self.output_names}", hint="re-export with the installed task plugin")
        try:
            self.tokenizer = prepare_tokenizer(Tokenizer.from_file(str(bundle.tokenizer_path)), self.max_length)
        except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exceptions
            raise ModelError(f"{bundle.tokenizer_path}: could not be loaded: {exc}") from exc
        declared = manifest.get("input_names")
        #: the model's inputs (the bundle's ``input_names``), and those beyond the standard three
        self.input_names: list[str] = list(declared) if isinstance(declared, list) and declared else list(MODEL_INPUTS)
        self.input_keys: tuple[str, ...] = extra_inputs(self.input_names)
        self.runner = OnnxRunner(bundle.model_path(self.variant), self.output_names, threads, bundle.prepared(self.variant),
                                 self.input_names)

    def _task_options(self, saved: dict[str, Any], overrides: Mapping[str, Any]) -> ComponentOptions:
        try:
            base = self.task.Options.model_validate(saved)
        except ValidationError as exc:
            issues = "; ".join(str(i) for i in _validation_issues(exc, "task_options"))
            raise ModelError(f"{self.bundle.manifest_path}: task options invalid for task '{self.task.name}': {issues}",
                             hint="the task plugin changed since export; re-export, or install the version it used") from exc
        if not overrides:
            return base
        try:
            return self.task.Options.model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            raise ConfigError("prediction options", _validation_issues(exc, "task")) from exc

    @property
    def info(self) -> dict[str, Any]:
        """What is loaded: task, labels, variant, its verification metrics and when it was exported."""
        manifest = self.bundle.manifest
        return {
            "task": self.task.name,
            "labels": list(self.labels),
            "variant": self.variant,
            "variants": self.bundle.variants,
            "metrics": dict(manifest.get("verification", {}).get(self.variant, {})),
            "created": manifest.get("created"),
            "base_model": manifest.get("base_model"),
            "bundle": str(self.bundle.directory),
            **({"decision_rule": rule} if (rule := decision_rule(self.options)) else {}),
        }

    def parse(self, inputs: Sequence[Any], sources: Sequence[str] | None = None) -> list[Any]:
        """``task.parse_input`` each raw input; errors name ``sources[i]`` (default ``input N``)."""
        return parse_inputs(self.task, inputs, sources)

    def predict_examples(self, examples: Sequence[Any], batch_size: int = 32) -> list[dict[str, Any]]:
        """Predict parsed examples (from ``parse``); one prediction dict per example, in order."""
        if batch_size < 1:
            raise DataError(f"batch_size: expected a positive integer, got {batch_size}")
        if not examples:
            return []
        features = self.task.encode(examples, self.tokenizer, self.labels, self.options, self.max_length)
        outputs = run_features(self.runner, features, self.pad_token_id, self.output_names, self.sequence_outputs, batch_size,
                               self.input_keys)
        return self.task.decode(outputs, features, examples, self.labels, self.options)

    def predict(self, inputs: Sequence[Any], batch_size: int = 32) -> list[dict[str, Any]]:
        """Predict raw inputs (strings or JSON objects the task accepts); results keep input order."""
        return self.predict_examples(self.parse(inputs), batch_size)


def load_predictor(path: str | Path, variant: str = "auto", *, options: Mapping[str, Any] | None = None,
                   threads: int | None = None) -> Predictor:
    """Load the bundle at ``path`` (a run directory or a bundle folder) into a ``Predictor``."""
    return Predictor(read_bundle(path), variant, options=options, threads=threads)


def decision_rule(options: ComponentOptions) -> dict[str, Any] | None:
    """The rejection rule and calibration a model decides with (``GET /info``), or None when it has none.

    Classification: the out-of-scope rule, the temperature and the number of knots of a confidence map; qa with ``allow_unanswerable``: the
    no-answer threshold it answers ``""`` beyond (``null_threshold``; None = the default 0).
    """
    fields = options.model_dump()
    if fields.get("allow_unanswerable"):
        return {"allow_unanswerable": True, "null_threshold": fields.get("null_threshold")}
    if fields.get("fallback_label") is None and fields.get("temperature", 1.0) == 1.0 and not fields.get("confidence_map"):
        return None
    rule = {k: fields[k] for k in ("fallback_label", "fallback_threshold", "fallback_margin", "temperature") if k in fields}
    if fields.get("confidence_map"):
        rule["confidence_map_knots"] = len(fields["confidence_map"])
    return rule
