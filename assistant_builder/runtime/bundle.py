"""Find and read an exported ONNX bundle (``manifest.json`` next to the model files).

A bundle is what ``engine/exporting.py`` writes under ``RUN/exports/onnx/``: the model file of
each variant, ``tokenizer.json``, ``labels.json`` and ``manifest.json``. Torch-free: only the
standard library and the core error types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.errors import ModelError

BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
EXPORTER = "onnx"
#: ``variant="auto"`` takes the first of these the bundle has (and did not reject), then any other.
VARIANT_PREFERENCE = ("int8", "fp32")
#: the reference variant: a run whose fp32 file failed export verification failed (exit 1), whatever its other files did
REFERENCE_VARIANT = "fp32"

_EXPORT_HINT = "run `builder run` with export.formats including 'onnx'"


@dataclass(frozen=True)
class Bundle:
    """A validated bundle: its folder and its manifest."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    @property
    def tokenizer_path(self) -> Path:
        return self.directory / TOKENIZER

    @property
    def variants(self) -> list[str]:
        """Model variants in the bundle (``fp32``, ``int8``...), in manifest order."""
        return list(self.manifest["models"])

    def model_path(self, variant: str) -> Path:
        return self.directory / self.manifest["models"][variant]

    def prepared(self, variant: str) -> dict[str, Any] | None:
        """The manifest entry of ``variant``'s prepared graph (see ``runtime/sessions.py``), if it has one."""
        details = self.manifest.get("model_details")
        entry = details.get(variant, {}).get("prepared") if isinstance(details, dict) and isinstance(details.get(variant), dict) else None
        return entry if isinstance(entry, dict) else None

    @property
    def rejected(self) -> dict[str, list[str]]:
        """Variants that failed verification at export (``{variant: [reasons]}``); they are never opened."""
        rejected = self.manifest.get("rejected")
        if not isinstance(rejected, dict):
            return {}
        return {str(v): [str(r) for r in reasons] if isinstance(reasons, list) else [str(reasons)] for v, reasons in rejected.items()}

    @property
    def default_variant(self) -> str:
        """What ``variant="auto"`` opens: the manifest's ``default_variant`` (set when a variant was
        rejected), else int8 when present, else fp32, else the first variant not rejected."""
        usable = [v for v in self.variants if v not in self.rejected]
        declared = self.manifest.get("default_variant")
        if isinstance(declared, str) and declared in usable:
            return declared
        for preferred in VARIANT_PREFERENCE:
            if preferred in usable:
                return preferred
        if not usable:
            raise ModelError(f"{self.directory}: every model variant was rejected at export ({self._rejections()})",
                             hint="re-export the run; see its export_report.md")
        return usable[0]

    def _rejections(self) -> str:
        return "; ".join(f"{variant}: {', '.join(reasons)}" for variant, reasons in self.rejected.items())

    def choose_variant(self, variant: str = "auto") -> str:
        """Resolve ``variant``: ``auto`` is ``default_variant``; a name must exist and must not have been rejected."""
        available = self.variants
        if variant == "auto":
            return self.default_variant
        if variant not in available:
            raise ModelError(
                f"{self.directory}: has no '{variant}' model; expected one of: auto, {', '.join(available)}",
                hint="choose one of those (auto picks int8 when the bundle has it, else fp32), or re-export with that variant",
            )
        if variant in self.rejected:
            raise ModelError(
                f"{self.directory}: the '{variant}' model was rejected when it was exported: {'; '.join(self.rejected[variant])}",
                hint=f"use --variant auto (here: {self.default_variant}), or re-export with settings that pass verification "
                     "(see the run's export_report.md)",
            )
        return variant

    def failed_verification(self, variant: str) -> dict[str, list[str]]:
        """The variants whose failed export verification makes predicting with ``variant`` unsafe, each with
        the checks it failed: ``variant`` itself, and fp32, the reference export (when it fails, the run
        failed and its other files are suspect too). Empty when neither failed. A variant without a
        verification record (a bundle not written by ``builder run``) is not counted as failed; rejected
        optional variants are refused by ``choose_variant`` instead."""
        failed: dict[str, list[str]] = {}
        for name in dict.fromkeys((variant, REFERENCE_VARIANT)):
            if name in self.variants and name not in self.rejected:
                failures = verification_failures(self.manifest, name)
                if failures:
                    failed[name] = failures
        return failed

    @property
    def run_directory(self) -> Path | None:
        """The run directory this bundle was exported into (``RUN/exports/onnx``), or None for a bundle moved elsewhere."""
        parent = self.directory.parent
        return parent.parent if parent.name == "exports" else None


def verification_failures(manifest: Mapping[str, Any], variant: str) -> list[str] | None:
    """What ``manifest["verification"][variant]`` says: ``[]`` when its export verification passed, the checks it
    failed when it did not (``["no reason recorded"]`` when none were written), None when there is no record.

    The one place that reads a bundle's verification record (``builder predict`` and ``builder serve``'s reloads)."""
    records = manifest.get("verification")
    record = records.get(variant) if isinstance(records, Mapping) else None
    if not isinstance(record, Mapping):
        return None
    if record.get("passed") is True:
        return []
    failures = record.get("failures")
    return [str(f) for f in failures] if isinstance(failures, list) and failures else ["no reason recorded"]


def locate_bundle(path: str | Path) -> Path:
    """Return the bundle folder for ``path``: a run directory, a bundle folder or its manifest.json."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: does not exist; expected a run directory or an exported ONNX bundle",
                         hint="pass the folder `builder run` printed (runs/<name>-<timestamp>)")
    if path.is_file():
        if path.name == MANIFEST:
            return path.parent
        raise ModelError(f"{path}: is a file; expected a run directory or a bundle folder holding {MANIFEST}")
    if (path / MANIFEST).is_file():
        return path
    exports = path / "exports"
    if (exports / EXPORTER / MANIFEST).is_file():
        return exports / EXPORTER
    if exports.is_dir():
        found = sorted(p.name for p in exports.iterdir() if p.is_dir() and not p.name.startswith("."))
        others = f" (it has: {', '.join(found)}; the edge runtime runs ONNX only)" if found else ""
        raise ModelError(f"{path}: has no exports/{EXPORTER} bundle{others}", hint=_EXPORT_HINT)
    raise ModelError(
        f"{path}: is neither a run directory (with exports/{EXPORTER}/{MANIFEST}) nor a bundle (with {MANIFEST})",
        hint=_EXPORT_HINT if (path / "recipe.toml").exists() or (path / "model").exists() else None,
    )


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _problems(directory: Path, manifest: Any) -> list[str]:
    """Every problem with ``manifest`` at once, each as ``key: expected X, got Y``."""
    if not isinstance(manifest, dict):
        return [f"expected a JSON object, got {type(manifest).__name__}"]
    version = manifest.get("bundle_version")
    if version != BUNDLE_VERSION:
        return [f"bundle_version: expected {BUNDLE_VERSION}, got {version!r} (exported by another assistant-builder version?)"]
    checks: dict[str, tuple[str, Any]] = {
        "exporter": ("the string 'onnx'", lambda v: v == EXPORTER),
        "task": ("a task name", lambda v: isinstance(v, str) and bool(v)),
        "task_options": ("an object", lambda v: isinstance(v, dict)),
        "labels": ("a list of strings (empty for tasks without labels, e.g. qa)", _is_str_list),
        "max_length": ("a positive integer", lambda v: _is_int(v) and v > 0),
        "pad_token_id": ("a non-negative integer", lambda v: _is_int(v) and v >= 0),
        "output_names": ("a non-empty list of strings", lambda v: _is_str_list(v) and bool(v)),
        "sequence_outputs": ("a list of strings", _is_str_list),
        "models": ("a non-empty object of variant -> model file name",
                   lambda v: isinstance(v, dict) and bool(v) and all(isinstance(f, str) and f for f in v.values())),
    }
    problems = []
    for key, (expected, valid) in checks.items():
        if key not in manifest:
            problems.append(f"{key}: expected {expected}, but the key is missing")
        elif not valid(manifest[key]):
            problems.append(f"{key}: expected {expected}, got {json.dumps(manifest[key])[:80]}")
    if isinstance(manifest.get("models"), dict):
        for variant, name in manifest["models"].items():
            path = directory / name if isinstance(name, str) and name else None
            folder = _is_model_folder(manifest, variant)
            if path is not None and not (path.is_dir() if folder else path.is_file()):
                kind = "model folder" if folder else "model file"
                problems.append(f"models.{variant}: {kind} {name} is missing from the bundle")
    if not (directory / TOKENIZER).is_file():
        problems.append(f"{TOKENIZER}: expected next to the manifest, but the file is missing")
    return problems


def read_bundle(path: str | Path) -> Bundle:
    """Locate, read and validate the bundle at ``path``; raise ``ModelError`` listing every problem."""
    directory = locate_bundle(path)
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{manifest_path}: could not be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{manifest_path}: expected JSON, got a parse error at line {exc.lineno} column {exc.colno}: {exc.msg}",
                         hint="re-export the model; the bundle may have been edited or truncated") from exc
    problems = _problems(directory, manifest)
    if problems:
        lines = "\n".join(f"  {manifest_path}: {problem}" for problem in problems)
        raise ModelError(f"invalid bundle ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{lines}",
                         hint="re-export the model with `builder run` (export.formats including 'onnx')")
    return Bundle(directory, manifest)


def _is_model_folder(manifest: Mapping[str, Any], variant: str) -> bool:
    """Whether ``variant`` is a folder (a causal LM's onnxruntime-genai model: graph, weights, genai_config.json)."""
    details = manifest.get("model_details")
    entry = details.get(variant) if isinstance(details, dict) else None
    return isinstance(entry, dict) and entry.get("kind") == "causal_lm"
