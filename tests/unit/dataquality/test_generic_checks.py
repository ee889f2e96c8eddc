"""The generic checks' building blocks, and the contract defaults a third-party task gets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from assistant_builder.cli.main import main
from assistant_builder.contracts import ExampleView, Finding, default_example_view
from assistant_builder.dataquality.generic import Collector, normalise, text_findings
from assistant_builder.dataquality.report import Report, group_findings, render_short

REPO = Path(__file__).resolve().parents[3]


def test_normalise_ignores_case_accents_spaces_and_punctuation():
    assert normalise("Set an alarm, 7 AM!") == normalise("set an alarm 7am") == "setanalarm7am"
    assert normalise("Café  crème") == normalise("cafe creme") == "cafecreme"
    assert normalise("wake me at 7") != normalise("wake me at 8")
    assert normalise("?!") == ""


def test_punctuation_only_texts_are_not_near_duplicates_of_each_other():
    collector = Collector()
    for i, text in enumerate(["?!", "...", "hello"]):
        collector.add(0, ExampleView(text, "a", ("a",), f"f:{i + 1}"))
    assert text_findings(collector) == []


@dataclass(frozen=True)
class PluginExample:  # what a third-party task's example may look like
    text: str
    intent: str | None
    tags: tuple[str, ...] | None
    source: str


def test_default_example_view_reads_common_attribute_names():
    view = default_example_view(PluginExample("call mom", "call", ("O", "B-person"), "x.jsonl:3"))
    assert view == ExampleView("call mom", "call | ('O', 'B-person')", ("call",), "x.jsonl:3")


def test_groups_are_most_severe_first_and_short_form_is_a_few_lines():
    findings = [Finding("duplicate", "warning", "t:2", "copy"), Finding("label_conflict", "error", "t:3", "conflict"),
                Finding("duplicate", "warning", "t:5", "copy", count=3)]
    groups = group_findings(findings)
    assert [(g.check, g.count, g.examples) for g in groups] == [("label_conflict", 1, 1), ("duplicate", 2, 4)]
    report = Report("/r/recipe.toml", "classification", {"train": 5, "validation": 1}, groups)
    assert report.fails("error") and report.fails("warning") and not report.fails("never")
    lines = render_short(report).splitlines()
    assert lines[0].startswith("1 error, 2 warnings; full report: builder data check")
    assert lines[1:] == ["  error label_conflict: 1 finding (first: t:3)", "  warning duplicate: 2 findings (first: t:2)"]


def test_a_third_party_task_gets_the_generic_checks_through_the_contract_defaults(tmp_path, write_recipe, capsys):
    import pytest

    pytest.importorskip("builder_joint_nlu")  # the example plugin, installed by `make install`
    rows = [{"text": "turn off the lights in the kitchen", "intent": "lights", "slots": [{"start": 27, "end": 34, "label": "room"}]},
            {"text": "switch on the hallway lamp", "intent": "lights", "slots": [{"start": 14, "end": 21, "label": "room"}]},
            {"text": "play some jazz", "intent": "music", "slots": []},
            {"text": "play some jazz", "intent": "music", "slots": []}]  # line 4: a copy of line 3
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[1:3]))  # both also in train
    recipe = write_recipe(tmp_path, task={"type": "joint_nlu"}, data={"train": "train.jsonl", "validation": "valid.jsonl"})
    assert main(["data", "check", str(recipe), "--json"]) == 0  # warnings only
    report = json.loads(capsys.readouterr().out)
    checks = {c["check"]: c for c in report["checks"]}
    assert report["task"] == "joint_nlu" and report["examples"] == {"train": 4, "validation": 2}
    assert checks["duplicate"]["findings"][0]["where"] == f"{tmp_path / 'train.jsonl'}:4"
    assert checks["leakage"]["count"] == 2
    assert {f["message"].split("'")[1] for f in checks["rare_label"]["findings"]} == {"lights", "music"}  # intents as classes
