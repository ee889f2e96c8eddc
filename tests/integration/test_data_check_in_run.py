"""`builder run` prints the short data check before training and writes RUN/data_check.json; a
check that breaks never fails the run."""

from __future__ import annotations

import json

from assistant_builder.cli.main import main
from assistant_builder.testing import write_intent_data


def test_run_prints_the_short_check_and_keeps_the_report(tmp_path, write_recipe, capsys):
    write_intent_data(tmp_path, per_label=8, seed=1)  # random patterns: the toy data has duplicates
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 1, "batch_size": 8}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe)]) == 0
    err = capsys.readouterr().err
    stage = err[err.index("• data check: "):].splitlines()
    assert "full report: builder data check" in stage[0] and stage[1].startswith("  warning duplicate: ")
    (run,) = (tmp_path / "runs").iterdir()
    report = json.loads((run / "data_check.json").read_text())
    assert report["examples"] == {"train": 24, "validation": 9}
    assert any(c["check"] == "duplicate" for c in report["checks"])


def test_a_broken_check_does_not_fail_the_run(tmp_path, write_recipe, capsys, monkeypatch):
    import assistant_builder.dataquality as dataquality

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dataquality, "check_loaded", broken)
    write_intent_data(tmp_path, per_label=4)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 1, "batch_size": 8}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe)]) == 0
    assert "• data check: skipped (RuntimeError: boom)" in capsys.readouterr().err
