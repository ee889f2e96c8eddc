"""The plugin built in ``docs/writing_plugins.md`` works: its files, taken from the page, register
through the entry point the page declares and pass the conformance suite."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from assistant_builder.cli.plugins_check import render_table
from assistant_builder.conformance import run_conformance

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing_plugins.md"
BLOCK = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.MULTILINE | re.DOTALL)


def files_in_doc() -> dict[str, str]:
    return {m["path"]: m["body"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The walk-through's project, written out from the page's titled code blocks."""
    root = tmp_path / "builder-torchsave"
    for relative, body in files_in_doc().items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(body)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "builder_torchsave", raising=False)
    return root


def test_the_page_has_the_plugin_its_entry_point_and_its_tests() -> None:
    assert set(files_in_doc()) == {"builder_torchsave/__init__.py", "pyproject.toml", "tests/test_torchsave.py"}


def test_the_entry_point_names_the_module(package: Path) -> None:
    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["assistant_builder"] == {"torchsave": "builder_torchsave"}
    assert (package / pyproject["project"]["entry-points"]["assistant_builder"]["torchsave"] / "__init__.py").is_file()


def test_the_plugin_registers(package: Path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    import builder_torchsave

    registry = register_plugin(builder_torchsave)
    assert registry.get("exporter", "torchsave").component is builder_torchsave.TorchSaveExporter


def test_the_plugin_passes_the_conformance_suite(package: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import builder_torchsave

    results = run_conformance(builder_torchsave.TorchSaveExporter, model_dir=tiny_model_dir, work_dir=tmp_path / "work",
                              plugin="torchsave")
    assert [r for r in results if r.status != "pass"] == []
    # the page shows this table: keep it in step with what the suite prints
    table = render_table(results)
    text = DOC.read_text(encoding="utf-8")
    for line in table.splitlines():
        if line and "max diff" not in line:  # differences are numbers that may vary
            assert line in text, f"docs/writing_plugins.md shows an outdated `builder plugins check` table; expected:\n{table}"
