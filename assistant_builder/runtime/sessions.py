"""ONNX Runtime sessions for exported graphs, and the prepared graphs that make them quick to open.

A *prepared* graph is a bundle's portable graph after ONNX Runtime's extended optimisations
(constant folding, attention/LayerNorm/GELU and quantised-MatMul fusions), saved as written by
ONNX Runtime itself, with its weights in a separate file. Opening it with optimisation turned off
skips the graph rewrite and the copy of every weight out of the protobuf: 0.03 s instead of 0.10 s
for the int8 MiniLM on 2 cores (``bench/RESULTS.md``), a third of the edge cold-start budget.

A prepared graph holds contrib operators of the onnxruntime version that wrote it and is fused for
the CPU execution provider, so it is used only under that exact version on CPU; anything else
opens the portable graph (``model.onnx``, which Optimum and other runtimes load) with full
optimisation, which gives the same numbers, just later.

Torch-free: onnxruntime and the core error types only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

from assistant_builder.errors import ModelError

PREPARED_GRAPH_SUFFIX = ".prepared"
PREPARED_WEIGHTS_SUFFIX = ".prepared.weights"
#: The level a prepared graph is saved at. ``ORT_ENABLE_ALL`` adds layout changes tied to the
#: machine's CPU; ``EXTENDED`` holds every transformer fusion and stays portable across x86 CPUs.
PREPARED_LEVEL = "extended"
CPU = "CPUExecutionProvider"


def cpu_count() -> int:
    """Cores this process may run on (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None, *, optimize: bool = True) -> ort.SessionOptions:
    """Options for one session per process: ``threads`` intra-op threads (default: one per core), quiet logs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_count()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.log_severity_level = 3  # errors only: keep stderr clean for the CLI
    return options


def prepared_files(source: Path) -> tuple[Path, Path]:
    """Where ``prepare_graph(source)`` writes: the graph and its weights file, beside ``source``."""
    return source.with_name(source.stem + PREPARED_GRAPH_SUFFIX), source.with_name(source.stem + PREPARED_WEIGHTS_SUFFIX)


def prepare_graph(source: Path) -> dict[str, str]:
    """Write the prepared form of the ONNX graph ``source`` beside it; return its manifest entry.

    The files are ``<stem>.prepared`` (the graph) and ``<stem>.prepared.weights`` (its weights);
    the entry names them and the onnxruntime version and level that wrote them. The suffix is not
    ``.onnx`` on purpose, so tools that pick up every ``*.onnx`` in a folder still see one graph
    per variant.
    """
    graph, weights = prepared_files(source)
    options = session_options(1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(graph)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", weights.name)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    try:
        ort.InferenceSession(str(source), sess_options=options, providers=[CPU])
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
        raise ModelError(f"{source}: ONNX Runtime could not prepare the graph: {exc}") from exc
    if not graph.is_file():
        raise ModelError(f"{source}: ONNX Runtime did not write the prepared graph {graph.name}")
    entry = {"graph": graph.name, "onnxruntime": ort.__version__, "level": PREPARED_LEVEL}
    if weights.is_file():  # absent only for graphs without a weight of 1 KB or more
        entry["weights"] = weights.name
    return entry


def usable_prepared_graph(directory: Path, prepared: Mapping[str, Any] | None, providers: Sequence[str]) -> Path | None:
    """The prepared graph to open instead of the portable one, or ``None`` when it must not be used.

    It is used only on CPU, under the onnxruntime version that wrote it, with its files present
    in ``directory`` itself (plain file names, never a path elsewhere).
    """
    if not prepared or list(providers) != [CPU] or prepared.get("onnxruntime") != ort.__version__:
        return None
    names = [prepared.get("graph"), *([prepared["weights"]] if prepared.get("weights") else [])]
    if not all(isinstance(name, str) and name and Path(name).name == name and (directory / name).is_file() for name in names):
        return None
    return directory / str(prepared["graph"])


def open_session(path: Path, *, threads: int | None = None, providers: Sequence[str] = (CPU,),
                 prepared: Mapping[str, Any] | None = None) -> tuple[ort.InferenceSession, Path]:
    """Open ``path`` (a portable ONNX graph) or, when usable, its ``prepared`` graph; return the session and the file opened.

    ``providers`` lists execution providers in order of preference; those this onnxruntime build
    lacks are dropped (CPU is always there). Raises ``ModelError`` naming the file when it cannot be loaded.
    """
    available = set(ort.get_available_providers())
    chosen = [p for p in providers if p in available] or [CPU]
    prepared_path = usable_prepared_graph(path.parent, prepared, chosen)
    source = prepared_path or path
    options = session_options(threads, optimize=prepared_path is None)
    try:
        return ort.InferenceSession(str(source), sess_options=options, providers=chosen), source
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
        raise ModelError(f"{source}: ONNX Runtime could not load the model: {exc}",
                         hint="re-export the model; the file may be truncated or from a newer opset") from exc
