"""``docs/toolkit.md`` is generated from the toolkit's modules and stays in step with them; every public
name of the toolkit is documented."""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path

import pytest

from assistant_builder.toolkit import TORCH_FREE_MODULES, TORCH_MODULES
from assistant_builder.toolkit.reference import COMMAND, main, render_reference

DOC = Path(__file__).resolve().parents[3] / "docs" / "toolkit.md"
MODULES = (*TORCH_FREE_MODULES, *TORCH_MODULES)


def test_committed_reference_matches_the_code() -> None:
    fresh = render_reference()
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if committed != fresh:
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "docs/toolkit.md (committed)",
                                                 "docs/toolkit.md (from the code)"))[:60])
        pytest.fail(f"docs/toolkit.md is out of date with assistant_builder/toolkit.\nRegenerate it from the repository root with:\n\n"
                    f"    .venv/bin/{COMMAND}\n\n{diff}", pytrace=False)


def test_the_package_lists_every_module() -> None:
    on_disk = {p.stem for p in (Path(__file__).resolve().parents[3] / "assistant_builder" / "toolkit").glob("*.py")}
    assert on_disk - set(MODULES) == {"__init__", "reference"}


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_has_a_docstring_and_a_reference_entry(name: str) -> None:
    module = importlib.import_module(f"assistant_builder.toolkit.{name}")
    assert module.__doc__ and module.__all__
    text = render_reference()
    for public in module.__all__:
        obj = getattr(module, public)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"{name}.{public} has no docstring"
            if inspect.isfunction(obj):
                assert all(p.annotation is not p.empty for p in inspect.signature(obj).parameters.values()), f"{name}.{public}: untyped"
        assert f"### `{public}" in text or f"### `class {public}" in text or f"### `dataclass {public}" in text, public


def test_module_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    assert capsys.readouterr().out == render_reference()
