"""Helpers shared by the built-in exporters: call a task model positionally, probe it, compare outputs.

Task models take keyword inputs and return a dict; tracers want positional inputs and a tuple of
tensors. ``named_outputs`` bridges the two. Like the exporter modules, this module imports torch
only inside functions, so importing it stays cheap on the torch-free paths.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from assistant_builder.errors import PluginError

#: tolerance of the exporters' own checks (the engine verifies again against the recipe's thresholds)
RTOL = 1e-3
ATOL = 1e-4


@functools.cache
def _named_outputs_class() -> type:
    import torch

    class NamedOutputs(torch.nn.Module):
        """Calls ``model(**dict(zip(input_names, inputs)))`` and returns the outputs in ``output_names`` order."""

        def __init__(self, model: Any, input_names: Sequence[str], output_names: Sequence[str]) -> None:
            super().__init__()
            self.model = model
            self.input_names = tuple(input_names)
            self.output_names = tuple(output_names)

        def forward(self, *inputs: Any) -> tuple[Any, ...]:
            outputs = self.model(**dict(zip(self.input_names, inputs)))
            return tuple(_pick(outputs, name) for name in self.output_names)

    return NamedOutputs


def _pick(outputs: Any, name: str) -> Any:
    try:
        return outputs[name]
    except (KeyError, TypeError, IndexError):
        found = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
        raise PluginError(f"the task model's forward() must return a dict holding output '{name}', got {found}",
                          hint="check the task plugin's output_names against what its model returns") from None


def named_outputs(model: Any, input_names: Sequence[str], output_names: Sequence[str]) -> Any:
    """Wrap ``model`` as a ``torch.nn.Module`` with positional inputs and a tuple of outputs."""
    return _named_outputs_class()(model, input_names, output_names).eval()


def present_inputs(batch: Mapping[str, Any], input_names: Sequence[str]) -> tuple[str, ...]:
    """The names of ``input_names`` that ``batch`` holds, in order; at least ``input_ids``."""
    names = tuple(name for name in input_names if name in batch)
    if "input_ids" not in names:
        raise PluginError(f"the example batch must hold 'input_ids' among {list(input_names)}, got {sorted(batch)}")
    return names


def as_tensors(batch: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    """The inputs ``names`` of ``batch`` as int64 CPU tensors, in order."""
    import torch

    values = (batch[name] if torch.is_tensor(batch[name]) else torch.from_numpy(np.asarray(batch[name])) for name in names)
    return tuple(value.to(device="cpu", dtype=torch.long) for value in values)


def probe_batch(batch: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A second batch with one more row, a different length and at least one padded position.

    Running an exported model on it shows whether tracing baked in the example's shapes or its
    padding pattern.
    """
    import torch

    tensors = dict(zip(names, as_tensors(batch, names)))
    length = tensors["input_ids"].shape[1]
    probe = {}
    for name, tensor in tensors.items():
        tensor = torch.cat([tensor, tensor[:1]], dim=0)
        tensor = tensor[:, :-1] if length > 2 else torch.cat([tensor, tensor[:, -1:]], dim=1)
        probe[name] = tensor.clone()
    mask = probe.get("attention_mask")
    if mask is not None:
        if length <= 2:
            mask[:, -1] = 0
        mask[-1, -1] = 0
    return probe


def run_module(module: Any, inputs: Sequence[Any]) -> list[np.ndarray]:
    """Run a positional module (eager or traced) and return its outputs as float numpy arrays."""
    import torch

    with torch.no_grad():
        outputs = module(*inputs)
    if torch.is_tensor(outputs):
        outputs = (outputs,)
    return [output.detach().float().cpu().numpy() for output in outputs]


def dynamic_axes(names: Sequence[str], output_names: Sequence[str], example: Sequence[np.ndarray],
                 probe: Sequence[np.ndarray]) -> dict[str, dict[int, str]]:
    """Batch and sequence axes of every input and output, read off two runs of different lengths."""
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    for name, first, second in zip(output_names, example, probe):
        axes[name] = {0: "batch"} if first.ndim else {}
        for dim in range(1, first.ndim):
            if first.shape[dim] != second.shape[dim]:
                axes[name][dim] = "sequence"
    return axes


def mismatch(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray], names: Sequence[str]) -> str | None:
    """Describe the first output of ``actual`` that differs from ``expected``; ``None`` when all match."""
    for name, got, want in zip(names, actual, expected):
        got = np.asarray(got, dtype=np.float32)
        if got.shape != want.shape:
            return f"output '{name}' has shape {list(got.shape)}, expected {list(want.shape)}"
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
            return f"output '{name}' differs by up to {float(np.max(np.abs(got - want))):.3g}"
    return None


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Keep the tracer's warnings (mostly benign notes from library code) off stderr, for error hints.

    The exporters verify every trace numerically on a batch of another shape, which is what decides.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def tracer_notes(caught: Sequence[warnings.WarningMessage]) -> str:
    """The first few tracer warnings as ``file:line: message`` (empty when there were none)."""
    import torch

    notes = {f"{w.filename.rsplit('/', 1)[-1]}:{w.lineno}: {str(w.message).split('.')[0]}"
             for w in caught if issubclass(w.category, torch.jit.TracerWarning)}
    return "; ".join(sorted(notes)[:3])


def attention_shape(model: Any) -> tuple[int, int]:
    """``(num_attention_heads, hidden_size)`` of the first transformer config in ``model``; ``(0, 0)`` if none."""
    for module in model.modules():
        config = getattr(module, "config", None)
        heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
        if isinstance(heads, int) and isinstance(hidden, int) and heads > 0 and hidden % heads == 0:
            return heads, hidden
    return 0, 0


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Switch every Hugging Face sub-model of ``model`` to eager attention, and back afterwards.

    The eager graph is numerically the same as SDPA's, but it is the pattern ONNX Runtime's
    transformer optimizer fuses into ``Attention``, and it runs faster in ONNX Runtime.
    """
    changed = []
    for module in model.modules():
        current = getattr(getattr(module, "config", None), "_attn_implementation", None)
        setter = getattr(module, "set_attn_implementation", None)
        if current in (None, "eager") or setter is None:
            continue
        try:
            setter("eager")
        except Exception:  # noqa: BLE001 - an encoder without eager attention just keeps its own
            continue
        changed.append((module, current))
    try:
        yield
    finally:
        for module, previous in reversed(changed):
            module.set_attn_implementation(previous)
