"""docs/plugin_hooks.md documents every hookspec with its exact signature, and nothing else."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from assistant_builder import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin_hooks.md"


def hook_functions() -> dict[str, object]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "assistant_builder_spec")}


def test_every_hookspec_has_a_docs_section_with_its_signature():
    text = DOC.read_text()
    sections = set(re.findall(r"^## (\w+)$", text, flags=re.MULTILINE))
    hooks = hook_functions()
    assert hooks, "no hookspecs found"
    assert sections == set(hooks)
    for name, fn in hooks.items():
        signature = f"def {name}{inspect.signature(fn)}".replace("'", "")
        assert signature in text, f"docs/plugin_hooks.md lacks the exact signature: {signature}"


def test_every_hookspec_has_a_docstring():
    for name, fn in hook_functions().items():
        assert (fn.__doc__ or "").strip(), f"hookspec {name} has no docstring"
