"""The ``torchscript`` exporter: a traced ``model.pt`` that runs with PyTorch alone (no Python model code).

The model is traced with ``torch.jit.trace`` on the example batch, then checked on a second batch
with another batch size, another length and padding: tracing records one path through the
Python code, so a model whose forward() depends on shapes would silently compute the wrong thing
on other batches. That check fails the export instead. Input and output names travel inside the
file (``_extra_files``), so ``load_runner`` needs nothing else.

Imports torch only inside methods (see ``contracts.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field

from assistant_builder.atomic import atomic_path
from assistant_builder.contracts import ComponentOptions, ExportedArtifact, ExportJob, Exporter, Outputs, Runner
from assistant_builder.errors import ExportVerificationError, ModelError
from assistant_builder.hookspecs import hookimpl
from assistant_builder_exporters._wrapping import (
    as_tensors, mismatch, named_outputs, present_inputs, probe_batch, recorded_warnings, run_module, tracer_notes,
)

MODEL_FILE = "model.pt"
META_FILE = "assistant_builder.json"


class TorchScriptOptions(ComponentOptions):
    """Options of the ``torchscript`` exporter (``[export.options.torchscript]``)."""

    strict: bool = Field(False, description="torch.jit.trace strict mode (refuse mutable containers such as dict outputs)")


class TorchScriptExporter(Exporter):
    """Trace to TorchScript and run the result with ``torch.jit.load``."""

    name = "torchscript"
    description = "traced TorchScript module (model.pt) for PyTorch or LibTorch serving, fp32"
    Options = TorchScriptOptions

    def export(self, job: ExportJob) -> list[ExportedArtifact]:
        import torch

        options = TorchScriptOptions.model_validate(job.options.model_dump())
        names = present_inputs(job.example_batch, job.input_names)
        inputs = as_tensors(job.example_batch, names)
        probe = tuple(probe_batch(job.example_batch, names).values())
        module = named_outputs(job.model, names, job.output_names)
        with recorded_warnings() as caught, torch.no_grad():
            traced = torch.jit.trace(module, inputs, strict=options.strict, check_trace=False)
        notes = tracer_notes(caught)
        for batch in (inputs, probe):
            expected = run_module(module, batch)
            try:
                problem = mismatch(run_module(traced, batch), expected, job.output_names)
            except RuntimeError as exc:  # a baked-in shape often fails as a size mismatch inside the graph
                problem = f"it failed: {str(exc).strip().splitlines()[-1]}"
            if problem is not None:
                raise ExportVerificationError(
                    f"the traced TorchScript model does not reproduce the PyTorch model on a batch of shape "
                    f"{list(batch[0].shape)}: {problem}; tracing baked in shapes or values of the example batch",
                    hint="make the model's forward() free of shape-dependent Python control flow"
                         + (f"; the tracer warned: {notes}" if notes else ""),
                )
        path = job.output_dir / MODEL_FILE
        meta = {"input_names": list(names), "output_names": list(job.output_names)}
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={META_FILE: json.dumps(meta)})
        return [ExportedArtifact(self.name, "fp32", path)]

    def load_runner(self, artifact: ExportedArtifact, output_names: Sequence[str]) -> Runner:
        import torch

        extra = {META_FILE: ""}
        try:
            module = torch.jit.load(str(artifact.path), map_location="cpu", _extra_files=extra)
            meta = json.loads(extra[META_FILE])
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{artifact.path}: not a TorchScript model written by this exporter: {exc}",
                             hint="re-export the model with the 'torchscript' exporter") from exc
        module.eval()
        input_names, traced_outputs = meta["input_names"], meta["output_names"]
        missing = [name for name in output_names if name not in traced_outputs]
        if missing:
            raise ModelError(f"{artifact.path}: expected outputs {list(output_names)}, the model returns {traced_outputs}",
                             hint="re-export the model with the task plugin that will read it")
        positions = [traced_outputs.index(name) for name in output_names]

        def run(batch: Mapping[str, np.ndarray]) -> Outputs:
            absent = [name for name in input_names if name not in batch]
            if absent:
                raise ModelError(f"{artifact.path}: the model needs inputs {input_names}, the batch lacks {absent}")
            tensors = [torch.from_numpy(np.ascontiguousarray(batch[name], dtype=np.int64)) for name in input_names]
            with torch.inference_mode():
                outputs = module(*tensors)
            if torch.is_tensor(outputs):
                outputs = (outputs,)
            return {name: outputs[i].float().numpy() for name, i in zip(output_names, positions)}

        return run


@hookimpl
def register_exporters(register):  # type: ignore[no-untyped-def]
    register(TorchScriptExporter)
