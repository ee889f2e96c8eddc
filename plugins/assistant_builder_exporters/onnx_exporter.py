"""The ``onnx`` exporter: one self-contained ``model.onnx`` (fp32), optionally ``model.int8.onnx``.

The graph comes from the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``)
with dynamic batch and sequence axes, traced with eager attention (it runs faster in ONNX Runtime
than the SDPA decomposition, and it is the pattern the transformer optimizer fuses). Before anything is written the graph is run in ONNX Runtime on the
example batch and on a second batch of another shape with padding, so a trace that baked in
shapes fails here rather than in production. ``optimize`` then fuses attention, LayerNorm and
GELU (kept only if it still matches, else a warning); ``quantize`` writes an int8 copy with
dynamically quantised weights, made from the plain graph (the quantiser cannot type the
optimizer's contrib ops). ``prepare`` saves ONNX Runtime's own optimised form of the variant the
runtime opens by default (int8 when there is one) as ``<stem>.prepared`` + ``.prepared.weights``,
so the edge runtime opens it in a third of the time (``assistant_builder/runtime/sessions.py``);
it is checked against PyTorch like the portable graph, and its entry goes to the manifest.

The bundle follows Optimum's layout, so ``optimum.onnxruntime.ORTModelFor*`` and ``AutoTokenizer``
load it as they are: the graph is ``model.onnx`` with inputs ``input_ids``, ``attention_mask``,
``token_type_ids`` and the task's named outputs (``logits``, ``start_logits``/``end_logits``), and
when the task model offers ``hf_config_files()`` (the built-in tasks do) its ``config.json``
(model type, ``id2label``) and tokenizer configs are written beside it; the engine adds
``tokenizer.json``. ``bench/optimum_check.py`` checks this against Optimum itself.

A causal LM (a task model with ``is_causal_lm = True``, the ``generation`` task's) takes another
path, ``causal_lm.py``: onnxruntime-genai's model builder writes one folder per variant
(``fp32/``, with ``quantize`` also ``int8/``: int8 block-quantised weights) holding a graph with
a key/value cache, ``genai_config.json`` and the tokenizer files; ``load_runner`` scores it
(``nll_sum``/``token_count``) and ``load_generator`` decodes greedily with onnxruntime-genai.

Imports torch, onnx and onnxruntime only inside methods (see ``contracts.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from assistant_builder.atomic import atomic_path, atomic_write_json
from assistant_builder.contracts import ComponentOptions, ExportedArtifact, ExportJob, Exporter, Outputs, Runner
from assistant_builder.errors import ExportVerificationError, ModelError
from assistant_builder.hookspecs import hookimpl
from assistant_builder_exporters._wrapping import (
    as_tensors, attention_shape, dynamic_axes, eager_attention, mismatch, named_outputs, present_inputs, probe_batch,
    recorded_warnings, run_module, tracer_notes,
)
from assistant_builder_exporters.causal_lm import (
    CAUSAL_LM_KIND, LOSS_OUTPUTS, Generator, causal_lm_generator, causal_lm_loss_runner, export_causal_lm, is_causal_lm,
)

logger = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"

Check = tuple[dict[str, np.ndarray], list[np.ndarray]]
"""A batch (numpy inputs by name) and the PyTorch outputs the graph must reproduce on it."""


class OnnxOptions(ComponentOptions):
    """Options of the ``onnx`` exporter (``[export.options.onnx]``)."""

    opset: int = Field(17, ge=14, le=20, description="ONNX opset (14-20, the range of the TorchScript-based exporter)")
    optimize: bool = Field(False, description="fuse attention, LayerNorm and GELU with ONNX Runtime's transformer optimizer (off by default: measured no faster on 2-core CPUs, see bench/RESULTS.md)")
    quantize: bool = Field(False, description="also write model.int8.onnx with int8 dynamically quantised weights")
    per_channel: bool = Field(True, description="int8: one scale per output channel instead of per tensor")
    quantize_embeddings: bool = Field(False, description="int8: also store the embedding tables as int8 (the file shrinks from "
                                      "~58 to ~23 MB for MiniLM, but accuracy drops more and varies with the batch; "
                                      "see bench/RESULTS.md)")
    accuracy_aware: bool = Field(True, description="int8: when the int8 model breaks the run's verification gates, keep "
                                 "its most sensitive matrix products in fp32 (the smallest set found that meets the gates, "
                                 "recorded in the manifest and export_report.md); off: int8 is verified as quantised")
    max_fp32_nodes: int = Field(12, ge=0, le=1000, description="int8: the most matrix products the accuracy-aware search "
                                "may keep in fp32 (MiniLM has 37); if none up to this meets the gates, int8 is rejected")
    nodes_to_exclude: list[str] = Field(default_factory=list, description="int8: graph node names always kept in fp32 "
                                        "(e.g. from an earlier run's export_report.md)")
    prepare: Literal["default", "all", "none"] = Field(
        "default", description="also save ONNX Runtime's optimised graph for fast loading by `builder predict`/`serve`: "
                               "'default' for the variant they open by default (int8 when quantize is on), 'all' for every "
                               "variant, 'none' to skip (the bundle is then smaller; loading takes ~0.07 s longer)")


class OnnxExporter(Exporter):
    """Export to ONNX and run the result with ONNX Runtime."""

    name = "onnx"
    description = "ONNX graph for ONNX Runtime (fp32, optional fusion and int8 weights); used by `builder predict`"
    Options = OnnxOptions

    def export(self, job: ExportJob) -> list[ExportedArtifact]:
        options = OnnxOptions.model_validate(job.options.model_dump())
        if is_causal_lm(job.model):
            return export_causal_lm(job.model, job.output_dir, causal_lm_variants(options))
        names = present_inputs(job.example_batch, job.input_names)
        inputs = as_tensors(job.example_batch, names)
        probe = tuple(probe_batch(job.example_batch, names).values())
        job.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=job.output_dir) as scratch:
            raw = Path(scratch) / FP32_FILE
            with eager_attention(job.model):
                module = named_outputs(job.model, names, job.output_names)
                expected, expected_probe = run_module(module, inputs), run_module(module, probe)
                axes = dynamic_axes(names, job.output_names, expected, expected_probe)
                notes = _export_graph(module, inputs, raw, names, job.output_names, axes, options.opset)
            checks: list[Check] = [(_numpy(names, inputs), expected), (_numpy(names, probe), expected_probe)]
            problem = _check_graph(raw, checks, job.output_names)
            if problem is not None:
                raise ExportVerificationError(
                    f"the exported ONNX graph does not reproduce the PyTorch model: {problem} "
                    f"(traced on a batch of shape {list(inputs[0].shape)})",
                    hint="the model's forward() probably has Python control flow that depends on shapes or values"
                         + (f"; the tracer warned: {notes}" if notes else ""),
                )
            fp32 = _optimize(raw, Path(scratch), job.model, checks, job.output_names) if options.optimize else raw
            artifacts = [ExportedArtifact(self.name, "fp32", job.output_dir / FP32_FILE)]
            int8_meets_gates = True
            if options.quantize:
                int8, int8_meets_gates = self._int8(raw, job, options)
                artifacts.append(int8)
            with atomic_path(artifacts[0].path) as tmp:
                os.replace(fp32, tmp)
            # the variant the runtime will open by default: fp32 when int8 is going to be rejected
            usable = [a for a in artifacts if a.variant != "int8" or int8_meets_gates]
            artifacts = [_with_prepared_graph(a, checks, job.output_names) if _prepares(options.prepare, a.variant, usable) else a
                         for a in artifacts]
        write_hf_config_files(job.model, job.output_dir)
        return artifacts

    def _int8(self, raw: Path, job: ExportJob, options: OnnxOptions) -> tuple[ExportedArtifact, bool]:
        """The int8 artefact (optional) and whether it meets the run's gates (True when there is no gate to ask)."""
        from assistant_builder_exporters.int8_search import accuracy_aware_int8

        target = job.output_dir / INT8_FILE
        artifact = ExportedArtifact(self.name, "int8", target, optional=True)

        def quantize(nodes: Sequence[str]) -> None:
            _quantize(raw, target, options.per_channel, options.quantize_embeddings, nodes)

        if job.gate is None or not options.accuracy_aware:
            quantize(options.nodes_to_exclude)
            details = {"fp32_nodes": list(options.nodes_to_exclude)} if options.nodes_to_exclude else {}
            return dataclasses.replace(artifact, details=details), True
        plan = accuracy_aware_int8(raw, target, quantize, lambda path: job.gate(artifact), job.calibration,
                                   per_channel=options.per_channel, fixed=options.nodes_to_exclude,
                                   max_fp32_nodes=options.max_fp32_nodes)
        return dataclasses.replace(artifact, details=plan.details), plan.meets_gates

    def load_runner(self, artifact: ExportedArtifact, output_names: Sequence[str]) -> Runner:
        """Run ``artifact`` as the edge runtime will: its prepared graph on CPU when it has one, else
        the portable graph (on CUDA when onnxruntime has it). A causal LM's folder is scored by
        ``causal_lm_loss_runner`` (outputs ``nll_sum`` and ``token_count``)."""
        if artifact.details.get("kind") == CAUSAL_LM_KIND:
            unknown = [name for name in output_names if name not in LOSS_OUTPUTS]
            if unknown:
                raise ModelError(f"{artifact.path}: a causal LM export gives the outputs {list(LOSS_OUTPUTS)}, "
                                 f"not {unknown}", hint="score it with the generation task")
            return causal_lm_loss_runner(artifact.path)
        session = _session(artifact.path, gpu=True, prepared=artifact.details.get("prepared"))
        declared = [i.name for i in session.get_inputs()]
        graph_outputs = [o.name for o in session.get_outputs()]
        missing = [name for name in output_names if name not in graph_outputs]
        if missing:
            raise ModelError(f"{artifact.path}: expected outputs {list(output_names)}, the graph has {graph_outputs}",
                             hint="re-export the model with the task plugin that will read it")
        wanted = list(output_names)

        def run(batch: Mapping[str, np.ndarray]) -> Outputs:
            absent = [name for name in declared if name not in batch]
            if absent:
                raise ModelError(f"{artifact.path}: the graph needs inputs {declared}, the batch lacks {absent}")
            values = session.run(wanted, {name: np.asarray(batch[name], dtype=np.int64) for name in declared})
            return dict(zip(wanted, values))

        return run

    def load_generator(self, artifact: ExportedArtifact) -> Generator:
        """Greedy decoding with a causal LM artefact: ``generator(prompts, max_new_tokens)`` -> new ids per prompt.

        ``ModelError`` for an artefact that is not a causal LM folder (``details["kind"] != "causal_lm"``).
        """
        if artifact.details.get("kind") != CAUSAL_LM_KIND:
            raise ModelError(f"{artifact.path}: expected a causal LM export (details kind '{CAUSAL_LM_KIND}'), "
                             f"got kind {artifact.details.get('kind')!r}",
                             hint="only models of the generation task are exported with a generator")
        return causal_lm_generator(artifact.path)


def causal_lm_variants(options: OnnxOptions) -> list[str]:
    """The causal-LM variants ``options`` ask for: ``fp32``, then ``int8`` when ``quantize`` is on.

    The int8-only options (``per_channel``, ``accuracy_aware``...) do not apply: the builder's int8
    is block-wise (``causal_lm.VARIANTS``). int4 is not offered: measured too far from fp32 on
    SmolLM2-135M (``bench/genai_variants.py``); ``export_causal_lm`` still builds it when asked.
    """
    return ["fp32"] + (["int8"] if options.quantize else [])


def write_hf_config_files(model: Any, directory: Path) -> list[Path]:
    """Write the Hugging Face config files a task model offers (``hf_config_files()``: name -> JSON content)."""
    offer = getattr(model, "hf_config_files", None)
    if not callable(offer):
        return []
    written = []
    for name, content in offer().items():
        if Path(name).name != name or not name.endswith(".json"):
            raise ModelError(f"hf_config_files() must name plain .json files, got {name!r}")
        atomic_write_json(directory / name, content)
        written.append(directory / name)
    return written


def _numpy(names: Sequence[str], tensors: Sequence[Any]) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in zip(names, tensors)}


def _session(path: Path, *, gpu: bool, prepared: Mapping[str, Any] | None = None) -> Any:
    """An ONNX Runtime session: the ``prepared`` graph on CPU when given, else ``path`` on CUDA (when
    ``gpu`` and available) or CPU; one thread per core."""
    from assistant_builder.runtime.sessions import CPU, open_session

    providers = [CPU] if prepared or not gpu else ["CUDAExecutionProvider", CPU]
    return open_session(path, providers=providers, prepared=prepared)[0]


def _prepares(choice: str, variant: str, artifacts: Sequence[ExportedArtifact]) -> bool:
    """Whether ``prepare = choice`` asks for ``variant``'s prepared graph ('default': the one the runtime opens by default)."""
    if choice == "default":
        from assistant_builder.runtime.bundle import VARIANT_PREFERENCE

        present = [a.variant for a in artifacts]
        default = next((v for v in VARIANT_PREFERENCE if v in present), present[0])
        return variant == default
    return choice == "all"


def _with_prepared_graph(artifact: ExportedArtifact, checks: Sequence[Check], output_names: Sequence[str]) -> ExportedArtifact:
    """Write ``artifact``'s prepared graph, check it gives the portable graph's outputs, and record it in the details.

    The prepared graph only makes loading faster, so a failure here drops it (files removed, with a
    warning) and keeps the portable graph, which the runtime then opens as before. The engine
    verifies the artifact through ``load_runner``, which opens the prepared graph, on the whole
    validation set, as for any other artefact.
    """
    from assistant_builder.runtime.sessions import open_session, prepare_graph, prepared_files

    try:
        entry = prepare_graph(artifact.path)
        prepared, opened = open_session(artifact.path, prepared=entry)
        if opened == artifact.path:
            raise ModelError(f"{entry['graph']} was written but cannot be opened")
        portable = _session(artifact.path, gpu=False)
        declared = [i.name for i in portable.get_inputs()]
        for batch, _ in checks:
            feed = {name: batch[name] for name in declared}
            problem = mismatch(prepared.run(list(output_names), feed), portable.run(list(output_names), feed), output_names)
            if problem is not None:
                raise ModelError(f"it does not reproduce {artifact.path.name}: {problem} on a batch of shape "
                                 f"{list(batch['input_ids'].shape)}")
    except ModelError as error:
        for path in prepared_files(artifact.path):
            path.unlink(missing_ok=True)
        warnings.warn(f"onnx export: no prepared graph for {artifact.variant} ({error.message}); the runtime will open "
                      f"{artifact.path.name} and optimise it at load time. Set prepare = 'none' in [export.options.onnx] "
                      "to silence this", RuntimeWarning, stacklevel=3)
        return artifact
    return dataclasses.replace(artifact, details={**artifact.details, "prepared": entry})


def _export_graph(module: Any, inputs: tuple[Any, ...], path: Path, names: Sequence[str], output_names: Sequence[str],
                  axes: dict[str, dict[int, str]], opset: int) -> str:
    """Trace ``module`` to ``path``; return the tracer's warnings, condensed, for error messages."""
    import torch

    with recorded_warnings() as caught, torch.no_grad():
        torch.onnx.export(module, inputs, str(path), input_names=list(names), output_names=list(output_names),
                          opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False)
    return tracer_notes(caught)


def _check_graph(path: Path, checks: Sequence[Check], output_names: Sequence[str]) -> str | None:
    """Run the graph on each check batch; describe the first disagreement with PyTorch, or ``None``."""
    session = _session(path, gpu=False)
    declared = [i.name for i in session.get_inputs()]
    for batch, expected in checks:
        actual = session.run(list(output_names), {name: batch[name] for name in declared})
        problem = mismatch(actual, expected, output_names)
        if problem is not None:
            return f"{problem} on a batch of shape {list(batch['input_ids'].shape)}"
    return None


def _optimize(raw: Path, scratch: Path, model: Any, checks: Sequence[Check], output_names: Sequence[str]) -> Path:
    """Fuse the graph with ONNX Runtime's BERT optimizer; return ``raw`` (with a warning) if that fails or mismatches."""
    path = scratch / "model.optimized.onnx"
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        heads, hidden = attention_shape(model)
        optimized = optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden)
        fused = {op: count for op, count in optimized.get_fused_operator_statistics().items() if count}
        if not fused:
            problem = "the optimizer found nothing to fuse (not a BERT-like graph)"
        else:
            optimized.save_model_to_file(str(path), use_external_data_format=False)
            problem = _check_graph(path, checks, output_names)
    except Exception as exc:  # noqa: BLE001 - the optimizer is best effort; the plain graph is always valid
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        warnings.warn(f"onnx export: graph optimisation skipped, keeping the unoptimised graph ({problem}); "
                      "set optimize = false in [export.options.onnx] to silence this", RuntimeWarning, stacklevel=3)
        return raw
    logger.info("onnx export: fused operators %s", fused)
    return path


class _DropPreprocessAdvice(logging.Filter):
    """The quantiser logs advice to pre-process the model on the root logger; it does not apply here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    advice = _DropPreprocessAdvice()
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


#: what int8 quantises when the embedding tables stay fp32: the matrix products, where the time goes
MATMUL_OPS = ["MatMul", "Attention"]


def _quantize(source: Path, target: Path, per_channel: bool, embeddings: bool, fp32_nodes: Sequence[str] = ()) -> None:
    """Write ``target``: ``source`` with int8 weights (activations quantised on the fly), except the
    nodes named in ``fp32_nodes``; the embedding lookups (``Gather``) too only when ``embeddings``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = {} if embeddings else {"op_types_to_quantize": MATMUL_OPS}
    with _quiet_quantizer(), atomic_path(target) as tmp:
        quantize_dynamic(source, tmp, weight_type=QuantType.QInt8, per_channel=per_channel,
                         nodes_to_exclude=list(fp32_nodes), **ops)


@hookimpl
def register_exporters(register):  # type: ignore[no-untyped-def]
    register(OnnxExporter)
