"""Run directories: ``runs/<name>-<timestamp>/`` with the recipe, provenance, logs, model and exports.

Layout::

    recipe.toml              the recipe as written    recipe.resolved.json  with overrides and defaults
    provenance.json          versions, data hashes, seed, git commit, base model source (Hub commit)
    metrics.jsonl            one line per logged step / evaluation
    checkpoints/             resumable training checkpoints
    model/                   fine-tuned model, Hugging Face format, plus tokenizer.json
    exports/<exporter>/      exported artefacts (exports/onnx is a self-contained bundle)
    metrics.json report.md   evaluation of the best model on the validation set
    export_report.json/.md   verification of every export
    summary.json             the headline figures
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant_builder.atomic import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from assistant_builder.basemodels import ResolvedBaseModel

PACKAGES = ("assistant-builder", "torch", "transformers", "accelerate", "peft", "onnx", "onnxruntime", "tokenizers", "numpy", "scikit-learn")


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """Create and return a fresh ``runs_dir/<name>-<YYYYmmdd-HHMMSS>`` (suffixing -2, -3... if taken)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = runs_dir / f"{name}-{stamp}"
    counter = 2
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            candidate = runs_dir / f"{name}-{stamp}-{counter}"
            counter += 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_sha256(path: Path) -> str:
    """SHA-256 of a data file, or of a data folder (every file's relative path and content hash, sorted)."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def _git_commit(directory: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def write_provenance(run_dir: Path, recipe_path: Path, data_files: dict[str, Path], seed: int, base_model: Path, overrides: list[str],
                     *, base_model_source: ResolvedBaseModel | None = None) -> dict[str, Any]:
    """Write ``provenance.json``: what produced this run, so it can be reproduced.

    With ``base_model_source``, ``base_model_source`` records where the base model came from: the
    alias and its package version, the local path, or the Hub id, requested revision and commit hash.
    """
    provenance = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "overrides": overrides,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": _versions(),
        "seed": seed,
        "base_model": str(base_model),
        **({"base_model_source": base_model_source.to_provenance()} if base_model_source is not None else {}),
        "recipe": {"path": str(recipe_path), "sha256": file_sha256(recipe_path)},
        "data": {split: {"path": str(path), "sha256": data_sha256(path)} for split, path in data_files.items()},
        "git_commit": _git_commit(recipe_path.parent),
    }
    atomic_write_json(run_dir / "provenance.json", provenance)
    return provenance


def write_recipe_copies(run_dir: Path, recipe_path: Path, resolved: dict[str, Any]) -> None:
    """Copy the recipe as written and store the fully resolved one (defaults and overrides applied)."""
    atomic_write_text(run_dir / "recipe.toml", recipe_path.read_text(encoding="utf-8"))
    atomic_write_json(run_dir / "recipe.resolved.json", resolved)


def copy_into(source: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, directory / source.name)
