"""`builder data check` on dirty classification data made here: every planted problem is found,
at its file:line, with its count; exit codes 0 / 1 / 2; the text, JSON and store-backed forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.labelling.formats import import_file
from assistant_builder.labelling.store import LabelStore

CLEAN = {
    "alarm": ["wake me up at {n}", "set an alarm for {n} am", "alarm at {n} please", "i need an alarm at {n}", "get me up at {n}",
              "alarm for {n} tomorrow"],
    "weather": ["will it rain on day {n}", "weather in city {n}", "is it cold at {n} pm", "forecast for {n} days",
                "how hot is it at {n}", "do i need an umbrella at {n}"],
}


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))


def clean_rows(start: int = 0) -> list[tuple[str, str]]:
    return [(pattern.format(n=start + i), label) for label, patterns in CLEAN.items() for i, pattern in enumerate(patterns)]


def recipe(tmp_path: Path, write_recipe, validation: str | None = "valid.jsonl", **options) -> Path:
    data = {"train": "train.jsonl", **({"validation": validation} if validation else {})}
    return write_recipe(tmp_path, task={"type": "classification", "options": options}, data=data)


def check(capsys, *args: str) -> tuple[int, dict]:
    code = main(["data", "check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def by_check(report: dict) -> dict[str, dict]:
    return {c["check"]: c for c in report["checks"]}


def test_clean_data_has_no_findings_and_exit_0(tmp_path, write_recipe, capsys):
    write(tmp_path / "train.jsonl", clean_rows())
    write(tmp_path / "valid.jsonl", clean_rows(100))
    path = recipe(tmp_path, write_recipe)
    code, report = check(capsys, str(path))
    assert code == 0 and report["checks"] == [] and report["examples"] == {"train": 12, "validation": 12}
    assert main(["data", "check", str(path)]) == 0
    assert "summary: no findings" in capsys.readouterr().out


def test_each_planted_problem_is_found_at_its_line(tmp_path, write_recipe, capsys):
    rows = clean_rows()  # lines 1-12
    rows += [("wake me up at 0", "alarm")] * 2          # 13, 14: copies of line 1
    rows += [("Wake me up, at 0!", "alarm")]             # 15: near duplicate of line 1
    rows += [("set a timer for pasta", "alarm"), ("set a timer for pasta", "weather")]  # 16, 17: conflict
    rows += [("   ", "weather")]                          # 18: empty
    rows += [("play jazz", "music")]                      # 19: rare label, only in train
    rows += [("the " * 80 + "end", "weather")]            # 20: longer than max_length 32
    write(tmp_path / "train.jsonl", rows)
    valid = clean_rows(100) + [("weather in city 1", "weather"), ("translate hello", "translate")]  # 13: leakage, 14: val-only label
    write(tmp_path / "valid.jsonl", valid)
    code, report = check(capsys, str(recipe(tmp_path, write_recipe)))
    assert code == 1  # errors present, default --fail-on error
    checks = by_check(report)
    train, valid_file = str(tmp_path / "train.jsonl"), str(tmp_path / "valid.jsonl")

    (dup,) = checks["duplicate"]["findings"]
    assert (dup["where"], dup["count"], dup["related"]) == (f"{train}:13", 3, [f"{train}:1", f"{train}:14"])
    (near,) = checks["near_duplicate"]["findings"]
    assert near["where"] == f"{train}:15" and f"{train}:1" in near["related"] and near["level"] == "info"
    (conflict,) = checks["label_conflict"]["findings"]
    assert (conflict["where"], conflict["count"], conflict["level"]) == (f"{train}:16", 2, "error")
    assert conflict["related"] == [f"{train}:17"] and "'alarm'" in conflict["message"] and "'weather'" in conflict["message"]
    (empty,) = checks["empty_input"]["findings"]
    assert (empty["where"], empty["level"]) == (f"{train}:18", "error")
    (leak,) = checks["leakage"]["findings"]
    assert (leak["where"], leak["related"], leak["count"]) == (f"{valid_file}:13", [f"{train}:8"], 2)
    splits = {f["where"]: f for f in checks["label_split"]["findings"]}
    assert splits[f"{valid_file}:14"]["level"] == "error" and "'translate'" in splits[f"{valid_file}:14"]["message"]
    assert splits[f"{train}:19"]["level"] == "warning" and "'music'" in splits[f"{train}:19"]["message"]
    (rare,) = checks["rare_label"]["findings"]
    assert rare["where"] == f"{train}:19" and "seen only once" in rare["message"] and rare["count"] == 1
    (long,) = checks["length"]["findings"]
    assert long["where"] == f"{train}:20" and "model.max_length = 32" in long["message"] and "are cut" in long["message"]
    assert checks["length"]["level"] == "warning"
    assert by_check(report)["imbalance"]["findings"][0]["message"].startswith("label 'alarm' has 10 training examples, 'music' only 1")
    assert report["totals"] == {"info": 1, "warning": 6, "error": 3}


def test_imbalance_names_the_class_weighting_option(tmp_path, write_recipe, capsys):
    rows = [(f"weather at {i}", "weather") for i in range(50)] + [(f"alarm at {i}", "alarm") for i in range(5)]
    write(tmp_path / "train.jsonl", rows)
    write(tmp_path / "valid.jsonl", [("weather now", "weather"), ("alarm now", "alarm")])
    _, report = check(capsys, str(recipe(tmp_path, write_recipe)))
    (finding,) = by_check(report)["imbalance"]["findings"]
    assert finding["level"] == "warning" and finding["where"] == str(tmp_path / "train.jsonl")
    assert "'weather' has 50" in finding["message"] and "'alarm' only 5 (10:1)" in finding["message"]
    assert 'class_weighting = "balanced"' in finding["message"]
    _, report = check(capsys, str(recipe(tmp_path, write_recipe, class_weighting="balanced")))
    (finding,) = by_check(report)["imbalance"]["findings"]
    assert finding["level"] == "info" and "already weights the loss" in finding["message"]


def test_held_out_validation_uses_the_training_split(tmp_path, write_recipe, capsys):
    rows = clean_rows() * 2  # every text twice: the held-out split puts some copies on both sides
    write(tmp_path / "train.jsonl", rows)
    _, report = check(capsys, str(recipe(tmp_path, write_recipe, validation=None)))
    assert report["held_out_validation"] is True
    assert report["examples"]["train"] + report["examples"]["validation"] == 24
    checks = by_check(report)
    leaked = sum(f["count"] for f in checks["leakage"]["findings"])
    dups = sum(f["count"] for f in checks.get("duplicate", {"findings": []})["findings"])
    assert leaked + dups == 24  # each pair is either split apart (leakage) or kept together (duplicate)
    assert leaked >= 2


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 0), ("warning", 1), ("info", 1), ("never", 0)])
def test_fail_on_levels(tmp_path, write_recipe, capsys, fail_on, expected):
    write(tmp_path / "train.jsonl", clean_rows() + [("wake me up at 0", "alarm")])  # a duplicate: a warning
    write(tmp_path / "valid.jsonl", clean_rows(100))
    assert main(["data", "check", str(recipe(tmp_path, write_recipe)), "--fail-on", fail_on]) == expected


def test_text_report_groups_by_check_with_locations_and_hints(tmp_path, write_recipe, capsys, monkeypatch):
    rows = clean_rows() + [("wake me up at 0", "alarm")] * 3
    write(tmp_path / "train.jsonl", rows)
    write(tmp_path / "valid.jsonl", clean_rows(100))
    recipe(tmp_path, write_recipe)
    monkeypatch.chdir(tmp_path)
    code = main(["data", "check", "recipe.toml", "--limit", "1"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0 and captured.err == "", captured.err
    assert "WARNING  duplicate: exact duplicates in one split — 1 finding, 4 examples" in out
    assert "  train.jsonl:13: 4 copies of 'wake me up at 0' in train (first train.jsonl:1)" in out
    assert "hint: keep one copy" in out and out.rstrip().endswith("summary: 1 warning")


def test_unreadable_data_is_a_located_error_exit_2(tmp_path, write_recipe, capsys):
    (tmp_path / "train.jsonl").write_text('{"text": "ok", "label": "a"}\n{"text": "broken\n')
    write(tmp_path / "valid.jsonl", clean_rows())
    assert main(["data", "check", str(recipe(tmp_path, write_recipe))]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'train.jsonl'}:2: malformed JSON" in err and "Traceback" not in err
    (tmp_path / "train.jsonl").write_text('{"text": "ok", "intent": "a"}\n')
    assert main(["data", "check", str(recipe(tmp_path, write_recipe))]) == 2
    assert "train.jsonl:1: missing field 'label'" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "missing.toml")]) == 2


def test_store_data_findings_name_item_ids(tmp_path, write_recipe, capsys):
    write(tmp_path / "import.jsonl", clean_rows() + [("wake me in a bit", "alarm"), ("WAKE me in a bit", "weather")])
    store_path = tmp_path / "recipe.labels.sqlite"
    with LabelStore(store_path) as store:
        import_file(store, tmp_path / "import.jsonl", "text_class")
        ids = [item.id for item in store.items()]
    write(tmp_path / "valid.jsonl", clean_rows(100))
    path = write_recipe(tmp_path, task={"type": "classification"}, data={"train": "recipe.labels.sqlite", "validation": "valid.jsonl"})
    _, report = check(capsys, str(path))
    (conflict,) = by_check(report)["label_conflict"]["findings"]
    assert conflict["where"] == f"{store_path}#{ids[12]}" and conflict["related"] == [f"{store_path}#{ids[13]}"]
    assert "builder-data-check-" not in json.dumps(report)  # no temporary export path leaks out
