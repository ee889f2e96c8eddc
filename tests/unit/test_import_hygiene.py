"""The torch-free paths (CLI import, ``--help``, ``validate``, ``plugins``, ``data check``) import no heavy library.

Checked in a fresh interpreter: the test process itself may have imported torch already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "peft", "onnx", "accelerate", "textual", "sklearn")

SCRIPT = f"""
import contextlib, io, json, sys
from assistant_builder.cli.main import main
codes = {{}}
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes["validate"] = main(["validate", "recipes/quickstart.toml"])
    codes["plugins"] = main(["plugins"])
    codes["plugins_json"] = main(["plugins", "--json"])
    for recipe in ("recipes/quickstart.toml", "recipes/slots.toml", "recipes/qa.toml"):
        codes["data_check " + recipe] = main(["data", "check", recipe, "--json"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print(json.dumps({{"codes": codes, "heavy": heavy, "cli_loaded": "assistant_builder.cli.validate" in sys.modules}}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def test_cli_validate_and_plugins_import_no_heavy_libraries() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["cli_loaded"]
    # validate may fail (exit 2) while a built-in plugin is missing, but it must have run, not crashed
    assert report["codes"]["validate"] in (0, 2)
    assert report["codes"]["plugins"] == 0 and report["codes"]["plugins_json"] == 0
    # `builder data check` (without --label-errors) ran on each demo recipe: 0 = no errors found
    assert [code for name, code in report["codes"].items() if name.startswith("data_check")] == [0, 0, 0]
    assert report["heavy"] == [], f"torch-free paths imported: {report['heavy']}"


def test_help_works_and_lists_subcommands() -> None:
    result = subprocess.run([sys.executable, "-m", "assistant_builder.cli.main", "--help"], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: builder")
    for command in ("run", "validate", "plugins", "predict"):
        assert command in result.stdout
    assert result.stderr == ""


def test_version_flag() -> None:
    from assistant_builder import __version__

    result = subprocess.run([sys.executable, "-m", "assistant_builder.cli.main", "--version"], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"assistant-builder {__version__}"


TOOLKIT_SCRIPT = f"""
import importlib, json, sys
from assistant_builder.toolkit import TORCH_FREE_MODULES
for module in TORCH_FREE_MODULES:
    importlib.import_module("assistant_builder.toolkit." + module)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {(*HEAVY, "seqeval", "tqdm", "safetensors")!r})
toolkit_torch = sorted(m for m in sys.modules if m.startswith("assistant_builder.toolkit.") and m.split(".")[-1] not in TORCH_FREE_MODULES)
print(json.dumps({{"modules": list(TORCH_FREE_MODULES), "heavy": heavy, "toolkit_torch": toolkit_torch}}))
"""


def test_the_toolkits_torch_free_modules_import_no_heavy_library() -> None:
    """Task modules import these at module level, and ``builder predict`` imports every task where torch is absent."""
    result = subprocess.run([sys.executable, "-c", TOOLKIT_SCRIPT], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"tags", "readers", "alignment", "windows", "decoding", "metrics", "collate"} <= set(report["modules"])
    assert report["heavy"] == [], f"the toolkit's torch-free modules imported: {report['heavy']}"
    assert report["toolkit_torch"] == [], f"the toolkit's torch-free modules imported its torch modules: {report['toolkit_torch']}"
