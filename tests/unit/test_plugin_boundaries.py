"""Who may import whom: the core never imports a built-in plugin (``plugins.py`` names them in
``DEFAULT_PLUGINS``, nothing else does), and the example third-party plugin imports only
``assistant_builder``, never a built-in plugin package."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from assistant_builder.plugins import DEFAULT_PLUGINS

REPO = Path(__file__).resolve().parents[2]
BUILTIN_PACKAGES = ("assistant_builder_tasks", "assistant_builder_trainers", "assistant_builder_exporters", "assistant_builder_loggers")
MODULE_PATH = re.compile(rf"^(?:{'|'.join(BUILTIN_PACKAGES)})(?:\.\w+)*(?::[\w.]+)?$")


def _is_builtin(module: str) -> bool:
    return module.split(".")[0] in BUILTIN_PACKAGES


def references(path: Path) -> list[tuple[int, str]]:
    """``(line, name)`` of every import of, and every module-path string naming, a built-in plugin package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_builtin(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _is_builtin(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
            found.append((node.lineno, node.value))
    return found


def test_the_references_finder_sees_imports_and_module_strings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import os\nfrom assistant_builder_tasks.ner import task\nimport assistant_builder_exporters.onnx_exporter as x\n'
                      'NAME = "assistant_builder_trainers.full:FullTrainer"\nTEXT = "assistant_builder_tasks is a package"\n')
    assert references(sample) == [(2, "assistant_builder_tasks.ner"), (3, "assistant_builder_exporters.onnx_exporter"),
                                  (4, "assistant_builder_trainers.full:FullTrainer")]


def test_the_core_toolkit_and_conformance_kit_name_no_builtin_plugin_but_in_default_plugins():
    allowed = set(DEFAULT_PLUGINS.values())
    problems = []
    for path in sorted((REPO / "assistant_builder").rglob("*.py")):
        for line, name in references(path):
            if path.name == "plugins.py" and path.parent.name == "assistant_builder" and name in allowed:
                continue
            problems.append(f"{path.relative_to(REPO)}:{line}: {name}")
    assert not problems, "the core must find built-in plugins through the registry:\n" + "\n".join(problems)


def test_the_example_plugin_imports_no_builtin_plugin_package():
    sources = sorted((REPO / "examples" / "plugins").rglob("*.py"))
    assert any(p.name == "task.py" for p in sources)
    problems = [f"{p.relative_to(REPO)}:{line}: {name}" for p in sources if "build" not in p.relative_to(REPO).parts
                for line, name in references(p)]
    assert not problems, "a third-party plugin imports assistant_builder (the toolkit), never a built-in plugin:\n" + "\n".join(problems)


REFUSING = f"""
import importlib, importlib.abc, sys
BLOCKED = {BUILTIN_PACKAGES!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"refused: {{name}}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
import assistant_builder.testing, assistant_builder.conformance.reference_task
from assistant_builder.conformance import run_conformance
from assistant_builder.conformance.reference_task import ReferenceTask
from assistant_builder.toolkit import TORCH_FREE_MODULES, TORCH_MODULES
for module in (*TORCH_FREE_MODULES, *TORCH_MODULES, "reference"):
    importlib.import_module("assistant_builder.toolkit." + module)
results = run_conformance(ReferenceTask, functional=False)
print(sorted({{r.status for r in results}}))
"""


def test_the_conformance_kit_and_toolkit_work_with_the_builtin_plugins_absent():
    result = subprocess.run([sys.executable, "-c", REFUSING], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['pass']"
