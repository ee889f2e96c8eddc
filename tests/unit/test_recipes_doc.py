"""``docs/recipes.md`` is generated from the recipe schema and the built-in components' Options, and
stays in step with them."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from assistant_builder.recipe.fields import describe
from assistant_builder.recipe.reference import COMMAND, main, render_reference
from assistant_builder.recipe.schema import Recipe

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def test_committed_reference_matches_the_schema() -> None:
    fresh = render_reference()
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if committed != fresh:
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "docs/recipes.md (committed)",
                                                 "docs/recipes.md (from the schema)"))[:60])
        pytest.fail(f"docs/recipes.md is out of date with the recipe schema or the built-in plugins' Options.\n"
                    f"Regenerate it from the repository root with:\n\n    .venv/bin/{COMMAND}\n\n{diff}", pytrace=False)


def test_every_schema_key_and_table_is_documented() -> None:
    text = render_reference()
    for doc in describe(Recipe):
        if doc.type == "table":
            assert f"## `[{doc.key}]`" in text
        else:
            assert f"| `{doc.key}` |" in text
        for field in describe(doc.table) if doc.table is not None else ():
            assert f"| `{field.key}` |" in text, f"[{doc.key}] {field.key} missing"


def test_builtin_component_options_are_listed() -> None:
    text = render_reference()
    for heading in ("### Tasks: `[task.options]`", "#### `classification`", "#### `lora`", "#### `onnx`",
                    "### Exporters: `[export.options.<name>]`"):
        assert heading in text
    assert "| `r` | integer | `16` | >= 1, <= 1024 | adapter rank |" in text
    assert "| `epochs` | integer | `6` | >= 0, <= 1000 |" in text
    assert '"auto" \\| "fp32" \\| "bf16" \\| "fp16"' in text  # pipes in a table cell are escaped


def test_module_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    assert capsys.readouterr().out == render_reference()
