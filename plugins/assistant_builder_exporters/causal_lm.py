"""The ``onnx`` exporter's path for causal language models: onnxruntime-genai's model builder.

A causal LM (a task model with ``is_causal_lm = True``, such as the ``generation`` task's
``CausalLMForSFT``) is saved as a Hugging Face folder and converted by
``python -m onnxruntime_genai.models.builder`` once per variant, each into its own folder
``<output_dir>/<variant>/``: ``model.onnx`` (+ ``model.onnx.data``) with a key/value cache
(inputs ``input_ids``, ``attention_mask``, ``past_key_values.N.key/value``; outputs ``logits``,
``present.N.key/value``; grouped-query attention fused), ``genai_config.json``, the tokenizer
files, the chat template and ``generation_config.json``. The folder is the artefact.

Variants (``VARIANTS``): ``fp32`` (the reference; greedy answers equal PyTorch's), ``int8`` and
``int4`` (weight-only block quantisation, ``MatMulNBits``), whose builder options were chosen by
measurement on SmolLM2-135M-Instruct (``bench/genai_variants.py``). The ``onnx`` exporter offers
fp32 and, with ``quantize``, int8.

``causal_lm_loss_runner`` scores a batch with plain onnxruntime (summed negative log-likelihood
of the target tokens, as the PyTorch wrapper's ``forward`` returns it) for export verification;
``causal_lm_generator`` decodes greedily with onnxruntime-genai.

Imports onnxruntime inside functions and never torch: ``export_causal_lm`` runs the builder (which
imports torch) in a subprocess and only calls the model's own ``save_pretrained``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant_builder.atomic import atomic_directory
from assistant_builder.contracts import ExportedArtifact, Outputs, Runner
from assistant_builder.errors import ModelError

__all__ = ["CAUSAL_LM_KIND", "GRAPH_FILE", "LOSS_OUTPUTS", "Generator", "VARIANTS", "Variant", "causal_lm_generator",
           "causal_lm_loss_runner", "check_architecture", "export_causal_lm", "is_causal_lm", "run_builder",
           "supported_architectures"]

CAUSAL_LM_KIND = "causal_lm"
RUNTIME = "onnxruntime-genai"
GRAPH_FILE = "model.onnx"
#: files of the Hugging Face folder each variant folder gets when the builder did not write them
CARRIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                 "generation_config.json")
#: the loss runner's outputs (what ``CausalLMForSFT.forward`` returns besides ``loss``)
LOSS_OUTPUTS = ("nll_sum", "token_count")
#: at most this many logits (rows x positions x vocabulary) per graph run when scoring
_LOGITS_BUDGET = 16_000_000
#: the builder's architectures when its source cannot be read (onnxruntime-genai 0.18)
_KNOWN_ARCHITECTURES = (
    "ChatGLMModel", "Ernie4_5ForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM", "GraniteForCausalLM",
    "LlamaForCausalLM", "MistralForCausalLM", "NemotronForCausalLM", "OlmoForCausalLM", "PhiForCausalLM", "Phi3ForCausalLM",
    "Qwen2ForCausalLM", "Qwen3ForCausalLM", "SmolLM3ForCausalLM",
)

Generator = Callable[[Sequence[Sequence[int]], int], list[list[int]]]
"""Greedy decoding: ``generator(prompts, max_new_tokens)`` -> the new token ids of each prompt
(without the end-of-sequence id)."""


@dataclass(frozen=True)
class Variant:
    """One precision the builder writes: its ``-p`` value and ``--extra_options`` (``KEY=VALUE``)."""

    precision: str
    options: Mapping[str, str] = field(default_factory=dict)


#: variant name -> how the builder makes it, chosen with bench/genai_variants.py on SmolLM2-135M-Instruct
#: (12 chat prompts, greedy, teacher-forced top-1 agreement with PyTorch and NLL of PyTorch's answers):
#: int8: blocks of 32, symmetric, int8 activations in the matrix products (accuracy_level 4, the CPU
#: default): top-1 0.969, NLL +1.5 %, 2.4x the fp32 decoding rate. Smaller blocks, asymmetric weights,
#: an fp32 lm_head or fp32 activations (accuracy_level 1, 40x slower) were no closer; fp32 weights
#: rounded to the same int8 grid score alike (0.973), so the drift is the weights' rounding.
#: int4: k-quant, blocks of 16, lm_head and the most sensitive layers in int8: top-1 0.836, NLL +36 %
#: (plain int4: 0.705, +63 %); not offered by the exporter's options.
VARIANTS: dict[str, Variant] = {
    "fp32": Variant("fp32"),
    "int8": Variant("int8", {"block_size": "32", "accuracy_level": "4", "is_symmetric": "true"}),
    "int4": Variant("int4", {"block_size": "16", "accuracy_level": "4", "algo_config": "k_quant",
                             "matmul_mixed_precision": "last_matmul:int8,mixed_layers:int8"}),
}


def is_causal_lm(model: Any) -> bool:
    """Whether the exporter treats ``model`` as a causal LM (it says so with ``is_causal_lm = True``)."""
    return bool(getattr(model, "is_causal_lm", False))


def supported_architectures() -> tuple[str, ...]:
    """The Hugging Face architectures (``config.json`` ``architectures[0]``) the installed model builder converts.

    Read from the builder's source (its dispatch on ``config.architectures[0]``) without importing
    it; a fixed list of onnxruntime-genai 0.18's when the source cannot be found.
    """
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime_genai")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    source = Path(locations[0]) / "models" / "builder.py" if locations else None
    if source is None or not source.is_file():
        return _KNOWN_ARCHITECTURES
    found = re.findall(r"config\.architectures\[0\]\s*==\s*\"([A-Za-z0-9_]+)\"", source.read_text(encoding="utf-8"))
    return tuple(dict.fromkeys(found)) or _KNOWN_ARCHITECTURES


def export_causal_lm(model: Any, output_dir: Path, variants: Sequence[str],
                     options: Mapping[str, Mapping[str, str]] | None = None) -> list[ExportedArtifact]:
    """Convert ``model`` with onnxruntime-genai's builder into ``output_dir/<variant>/`` for each of ``variants``.

    ``model`` must offer ``save_pretrained(directory)`` writing a Hugging Face causal LM folder with
    its tokenizer (``tokenizer.json``). ``options`` overrides builder options per variant (on top
    of ``VARIANTS``). Each folder is written atomically. Returns one artefact per variant, in
    order: the folder, ``details`` with ``kind = "causal_lm"``, the runtime, precision, builder
    options and end-of-sequence ids; every variant but ``fp32`` is ``optional``. ``ModelError``
    when a variant is unknown, the architecture is not one the builder supports, or the builder fails.
    """
    from assistant_builder.runtime.generation import read_eos_token_ids

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ModelError(f"causal LM export: expected variants among {list(VARIANTS)}, got {unknown}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    artifacts = []
    with tempfile.TemporaryDirectory(prefix=".causal-lm-export-", dir=output_dir) as scratch:
        source = Path(scratch) / "hf"
        _save_hf_folder(model, source)
        check_architecture(source)
        for name in variants:
            variant = VARIANTS[name]
            builder_options = {**variant.options, **(options or {}).get(name, {})}
            target = output_dir / name
            with atomic_directory(target) as folder:
                run_builder(source, folder, variant.precision, builder_options, cache_dir=Path(scratch) / "cache")
                _carry_files(source, folder)
            details = {"kind": CAUSAL_LM_KIND, "runtime": RUNTIME, "precision": variant.precision, "graph": GRAPH_FILE,
                       "builder_options": dict(builder_options), "eos_token_ids": list(read_eos_token_ids(target))}
            artifacts.append(ExportedArtifact("onnx", name, target, details=details, optional=name != "fp32"))
    return artifacts


def _save_hf_folder(model: Any, directory: Path) -> None:
    """``model.save_pretrained(directory)``, plus the base model's ``tokenizer.json`` when that did not write one."""
    save = getattr(model, "save_pretrained", None)
    if not callable(save):
        raise ModelError(f"causal LM export: expected a model with save_pretrained(directory), got {type(model).__name__}")
    with _quiet_transformers():
        save(directory)
    base = getattr(model, "base_dir", None)
    if not (directory / "tokenizer.json").is_file() and base is not None and (Path(base) / "tokenizer.json").is_file():
        shutil.copy2(Path(base) / "tokenizer.json", directory / "tokenizer.json")
    missing = [name for name in ("config.json", "tokenizer.json") if not (directory / name).is_file()]
    if missing:
        raise ModelError(f"causal LM export: save_pretrained wrote {sorted(p.name for p in directory.iterdir())}, "
                         f"without {missing}",
                         hint="the model builder needs a Hugging Face folder with config.json, the weights and tokenizer.json; "
                              "merge LoRA adapters into the model before exporting")


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Writing model shards" bar on stderr while saving (when the model comes from transformers)."""
    if "transformers" not in sys.modules:
        yield
        return
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def check_architecture(folder: Path) -> str:
    """The folder's architecture (``config.json`` ``architectures[0]``); ``ModelError`` naming the supported
    ones when the builder cannot convert it."""
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    architecture = (config.get("architectures") or [None])[0]
    supported = supported_architectures()
    if architecture not in supported:
        raise ModelError(f"causal LM export: onnxruntime-genai's model builder cannot convert architecture {architecture!r} "
                         f"(model_type {config.get('model_type')!r}); it supports {', '.join(supported)}",
                         hint="pick a base model of a supported architecture (SmolLM2, Llama, Qwen2/3, Mistral, Phi-3, Gemma...)")
    return str(architecture)


def run_builder(source: Path, target: Path, precision: str, options: Mapping[str, str], *, cache_dir: Path) -> None:
    """Run ``python -m onnxruntime_genai.models.builder`` on the Hugging Face folder ``source`` into ``target``.

    CPU execution provider, no hub access (``HF_HUB_OFFLINE=1``), output captured. ``ModelError``
    with the builder's last lines when it fails.
    """
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(target),
               "-p", precision, "-e", "cpu", "-c", str(cache_dir)]
    if options:
        command += ["--extra_options", *(f"{key}={value}" for key, value in options.items())]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(cache_dir.parent), env=env,
                            check=False)
    output = result.stdout.decode("utf-8", errors="replace")
    if result.returncode != 0 or not (target / GRAPH_FILE).is_file():
        lines = [line.strip() for line in re.split(r"[\r\n]+", output) if line.strip()]
        tail = "\n    ".join(lines[-12:]) or "(no output)"
        hint = "see the builder's output above"
        if "not currently supported" in output:
            hint = f"the model builder supports the architectures {', '.join(supported_architectures())}"
        raise ModelError(f"causal LM export: onnxruntime-genai's model builder failed for {precision} "
                         f"(exit code {result.returncode}):\n    {tail}", hint=hint)


def _carry_files(source: Path, folder: Path) -> None:
    for name in CARRIED_FILES:
        if (source / name).is_file() and not (folder / name).exists():
            shutil.copy2(source / name, folder / name)


# -- running an export -----------------------------------------------------------------------------------------------

def causal_lm_loss_runner(folder: Path) -> Runner:
    """A runner that scores batches with ``folder``'s graph in onnxruntime, an empty key/value cache and no genai.

    Fed int64 ``input_ids``, ``attention_mask`` and ``loss_mask`` (``[B, T]``; ``loss_mask``
    defaults to ``attention_mask``), it returns ``nll_sum`` (``[B]`` float32: the summed negative
    log-likelihood of token ``t + 1`` given tokens ``<= t`` over the positions where
    ``loss_mask[:, 1:] == 1``) and ``token_count`` (``[B]`` float32: how many such positions), as
    ``CausalLMForSFT.forward`` does. Padding must be on the right (as the task collates). The
    log-softmax is computed in float64.
    """
    from assistant_builder.runtime.sessions import open_session

    folder = Path(folder)
    config = _genai_config(folder)
    decoder = config["model"]["decoder"]
    graph = folder / decoder.get("filename", GRAPH_FILE)
    session = open_session(graph)[0]
    inputs = {i.name: i for i in session.get_inputs()}
    head_size = int(decoder["head_size"])
    past = [name for name in inputs if name.startswith("past_key_values.")]
    kv_heads = int(decoder.get("num_key_value_heads") or decoder["num_attention_heads"])
    logits_name = decoder.get("outputs", {}).get("logits", "logits")
    vocab = int(config["model"]["vocab_size"])

    def run(batch: Mapping[str, np.ndarray]) -> Outputs:
        input_ids = np.asarray(batch["input_ids"], dtype=np.int64)
        attention = np.asarray(batch.get("attention_mask", np.ones_like(input_ids)), dtype=np.int64)
        loss_mask = np.asarray(batch.get("loss_mask", attention), dtype=np.int64)
        if input_ids.ndim != 2 or attention.shape != input_ids.shape or loss_mask.shape != input_ids.shape:
            raise ModelError(f"{folder}: expected input_ids, attention_mask and loss_mask of one shape [batch, tokens], "
                             f"got {input_ids.shape}, {attention.shape}, {loss_mask.shape}")
        rows = input_ids.shape[0]
        nll_sum, token_count = np.zeros(rows, dtype=np.float32), np.zeros(rows, dtype=np.float32)
        chunk = max(1, _LOGITS_BUDGET // max(1, input_ids.shape[1] * vocab))
        for start in range(0, rows, chunk):
            part = slice(start, start + chunk)
            used = np.flatnonzero(attention[part].any(axis=0))
            length = int(used[-1]) + 1 if used.size else 1  # drop padding columns that no row uses
            ids, mask = input_ids[part, :length], attention[part, :length]
            logits = session.run([logits_name], _feed(inputs, past, ids, mask, kv_heads, head_size))[0]
            for offset, row in enumerate(range(*part.indices(rows))):
                targets = np.flatnonzero(loss_mask[row, 1:length] == 1)
                if targets.size:
                    nll_sum[row] = _nll(logits[offset, targets], ids[offset, targets + 1])
                    token_count[row] = targets.size
        return {"nll_sum": nll_sum, "token_count": token_count}

    return run


def _feed(inputs: Mapping[str, Any], past: Sequence[str], ids: np.ndarray, mask: np.ndarray, kv_heads: int,
          head_size: int) -> dict[str, np.ndarray]:
    """The graph's inputs for one prefill with an empty cache (past length 0)."""
    feed: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
    if "position_ids" in inputs:
        feed["position_ids"] = np.clip(np.cumsum(mask, axis=1) - 1, 0, None).astype(np.int64)
    for name in past:
        shape = inputs[name].shape
        heads = shape[1] if isinstance(shape[1], int) else kv_heads
        size = shape[3] if isinstance(shape[3], int) else head_size
        feed[name] = np.zeros((ids.shape[0], heads, 0, size), dtype=_numpy_dtype(inputs[name].type))
    return {name: value for name, value in feed.items() if name in inputs}


def _numpy_dtype(onnx_type: str) -> Any:
    return {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}.get(onnx_type, np.float32)


def _nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Summed ``-log softmax(logits)[target]`` over rows, in float64 (max-shifted)."""
    values = logits.astype(np.float64)
    top = values.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(values - top).sum(axis=1)) + top[:, 0]
    return float((log_norm - values[np.arange(len(targets)), targets]).sum())


def _genai_config(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "genai_config.json"
    if not path.is_file():
        raise ModelError(f"{folder}: expected a causal LM export with genai_config.json, found none",
                         hint="re-export the model with the 'onnx' exporter")
    return json.loads(path.read_text(encoding="utf-8"))


def causal_lm_generator(folder: Path) -> Generator:
    """Greedy decoding with onnxruntime-genai on ``folder``: ``generator(prompts, max_new_tokens)`` runs one
    prompt at a time and returns each one's new ids, stopping at an end-of-sequence id (left out) or after
    ``max_new_tokens``."""
    from assistant_builder.runtime.generation import GenaiModel, GenerationSettings

    model = GenaiModel(Path(folder))

    def generate(prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[list[int]]:
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        return [model.generate_ids(prompt, settings) for prompt in prompts]

    return generate
