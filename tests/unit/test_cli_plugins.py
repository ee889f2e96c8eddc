"""``builder plugins``: a table (or JSON) of plugins, distribution, version and components."""

from __future__ import annotations

import json
import sys
import types

import pytest

from assistant_builder import __version__
from assistant_builder.cli.main import main
from assistant_builder.registry import build_registry


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["plugins", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_table_lists_plugins_distribution_version_and_components(capsys: pytest.CaptureFixture[str]) -> None:
    lines = run(capsys).splitlines()
    assert lines[0].split() == ["plugin", "distribution", "version", "provides"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith("FAILED")}
    assert rows["classification"].split()[:3] == ["classification", "assistant-builder", __version__]
    assert rows["classification"].endswith("tasks: classification")
    assert rows["full"].endswith("trainers: full")
    assert rows["lora"].endswith("trainers: lora")
    # columns are aligned: every row's second column starts where the header's does
    column = lines[0].index("distribution")
    assert all(row[column - 2:column] == "  " and row[column] != " " for row in rows.values())


def test_table_reports_every_failed_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys)
    for failure in build_registry().failures:
        assert f"FAILED {failure.name} ({failure.distribution}): {failure.error}" in out


def test_json_has_the_same_information(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(capsys, "--json"))
    assert set(data) == {"plugins", "failed"}
    plugins = {row["plugin"]: row for row in data["plugins"]}
    assert plugins["classification"] == {"plugin": "classification", "distribution": "assistant-builder", "version": __version__,
                                         "tasks": ["classification"], "trainers": [], "exporters": [], "loggers": []}
    assert plugins["lora"]["trainers"] == ["lora"]
    registry = build_registry()
    listed = {name for row in data["plugins"] for kind in ("tasks", "trainers", "exporters", "loggers") for name in row[kind]}
    assert listed == {r.name for regs in registry.by_plugin().values() for r in regs}
    assert {f["plugin"] for f in data["failed"]} == {f.name for f in registry.failures}
    assert all("traceback" not in f for f in data["failed"])


def test_table_and_json_agree(capsys: pytest.CaptureFixture[str]) -> None:
    table = run(capsys)
    data = json.loads(run(capsys, "--json"))
    for row in data["plugins"]:
        line = next(line for line in table.splitlines() if line.split() and line.split()[0] == row["plugin"])
        assert row["distribution"] in line and row["version"] in line
        for kind in ("tasks", "trainers", "exporters", "loggers"):
            if row[kind]:
                assert f"{kind}: {', '.join(row[kind])}" in line


def test_third_party_plugin_listed(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin from another distribution (an ``assistant_builder`` entry point) shows its own
    distribution and version."""
    import importlib.metadata

    from assistant_builder.hookspecs import hookimpl
    from assistant_builder_trainers.full import FullTrainer

    class Fast(FullTrainer):
        name = "fast"

    module = types.ModuleType("fast_plugin_for_tests")
    module.register_trainers = hookimpl(lambda register: register(Fast))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fast_plugin_for_tests", module)
    fake = types.SimpleNamespace(name="fast", value="fast_plugin_for_tests",
                                 dist=types.SimpleNamespace(name="fast-trainer", version="9.9.1"))
    real_entry_points = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [*real_entry_points(**kw), fake])
    monkeypatch.delenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", raising=False)
    line = next(line for line in run(capsys).splitlines() if line.startswith("fast "))
    assert line.split() == ["fast", "fast-trainer", "9.9.1", "trainers:", "fast"]
