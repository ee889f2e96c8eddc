"""What waits to be learned (``assistant_builder/unlearned.py``), when ``--learn`` starts an update
(``serve/learn.should_learn``), and the checks ``--learn`` makes before the server starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_builder.labelling.store import LabelStore
from assistant_builder.serve.learn import check_learn, should_learn
from assistant_builder.serve.settings import ServeError, ServeSettings
from assistant_builder.unlearned import Unlearned, unlearned


def _store(path: Path, rows: list[tuple[str, str | None]]) -> Path:
    with LabelStore(path) as store:
        store.add_items([({"text": text}, gold, "serve", None) for text, gold in rows])
    return path


def _freeze(run: Path, store: Path, number: int = 1) -> None:
    """What ``data.extra`` leaves in a run: the store's labelled items frozen, and the report naming it."""
    with LabelStore(store) as opened:
        rows = [{"item": i.id, "source": i.source, "payload": i.payload, "gold": i.gold} for i in opened.items("labelled")]
    data = run / "data"
    data.mkdir(parents=True)
    copy = data / f"extra-{number}.jsonl"
    copy.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "extra_report.json").write_text(json.dumps({"stores": [{"path": str(store), "copy": str(copy), "labelled": len(rows)}]}))


def test_items_labelled_or_corrected_after_the_run_froze_the_store_are_waiting(tmp_path: Path) -> None:
    store = _store(tmp_path / "a.labels.sqlite", [("wake me up", "alarm"), ("is it sunny", "weather"), ("play jazz", None)])
    run = tmp_path / "runs" / "r1"
    _freeze(run, store)
    assert unlearned(store, run).waiting == 0 and unlearned(store, run).labelled == 2
    with LabelStore(store) as opened:
        by_text = {i.payload["text"]: i.id for i in opened.items()}
        opened.decide(by_text["play jazz"], "music")  # labelled after the run
        opened.decide(by_text["is it sunny"], "alarm")  # corrected after the run
        opened.add_items([({"text": "set a timer"}, "alarm", "inbox.txt", None)])
    found = unlearned(store, run)
    assert (found.new, found.corrected, found.waiting, found.labelled) == (2, 1, 3, 4)
    assert found.run_reads_store and found.by_source == {"inbox.txt": 1, "serve": 2}
    assert found.oldest is not None and found.waited_seconds(found.oldest + 5) == pytest.approx(5)


def test_a_run_that_did_not_read_the_store_has_learned_none_of_it(tmp_path: Path) -> None:
    store = _store(tmp_path / "a.labels.sqlite", [("wake me up", "alarm"), ("play jazz", None)])
    other = _store(tmp_path / "b.labels.sqlite", [("hello", "greet")])
    run = tmp_path / "runs" / "r1"
    _freeze(run, other)
    for found in (unlearned(store, run), unlearned(store, None)):
        assert (found.waiting, found.new, found.run_reads_store) == (1, 1, False)


def _waiting(count: int, oldest: float | None = 0.0) -> Unlearned:
    return Unlearned(Path("s.labels.sqlite"), None, True, count, new=count, oldest=oldest if count else None)


def test_an_update_starts_on_the_count_or_the_age_and_not_again_on_the_same_feedback() -> None:
    assert should_learn(_waiting(0), after=10, wait=60, since=None, now=1000) is None
    assert should_learn(_waiting(9, oldest=990), after=10, wait=60, since=None, now=1000) is None
    assert "10 items waiting" in should_learn(_waiting(10, oldest=990), after=10, wait=60, since=None, now=1000)
    assert "oldest for 61 s" in should_learn(_waiting(1, oldest=939), after=10, wait=60, since=None, now=1000)
    # after an attempt that swapped nothing in (at t=900 with 12 waiting): not again until 10 more, or 60 s
    assert should_learn(_waiting(15, oldest=800), after=10, wait=600, since=(900, 12), now=1000) is None
    assert should_learn(_waiting(22, oldest=800), after=10, wait=600, since=(900, 12), now=1000) is not None
    assert should_learn(_waiting(15, oldest=800), after=10, wait=60, since=(900, 12), now=1000) is not None


def _recipe(path: Path, extra: list[str]) -> Path:
    path.write_text("recipe_version = 1\nname = 'x'\n[data]\ntrain = 'train.jsonl'\n"
                    f"extra = {json.dumps(extra)}\n")
    return path


def test_learn_is_refused_before_serving_when_it_could_not_work(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    (run / "data").mkdir(parents=True)
    store = tmp_path / "x.labels.sqlite"
    with pytest.raises(ServeError, match="needs --feedback"):
        ServeSettings(path=str(run), learn=True)
    with pytest.raises(ServeError, match="needs --feedback RECIPE.toml"):
        check_learn(ServeSettings(path=str(run), feedback=str(store), learn=True), run, store)
    settings = ServeSettings(path=str(run), feedback=str(_recipe(tmp_path / "x.toml", ["x.labels.sqlite"])), learn=True)
    with pytest.raises(ServeError, match="outside a run directory"):
        check_learn(settings, None, store)
    with pytest.raises(ServeError, match="no record of what it trained on"):
        check_learn(settings, run, store)
    (run / "data" / "example_sets.json.gz").write_bytes(b"")
    assert check_learn(settings, run, store) == (tmp_path / "x.toml").resolve()
    settings = ServeSettings(path=str(run), feedback=str(_recipe(tmp_path / "y.toml", [])), learn=True)
    with pytest.raises(ServeError, match="data.extra does not list the feedback store"):
        check_learn(settings, run, store)


def test_builder_feedback_reports_what_waits_to_be_learned_by_the_latest_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant_builder.cli.main import main

    recipe = _recipe(tmp_path / "x.toml", ["x.labels.sqlite"])
    store = _store(tmp_path / "x.labels.sqlite", [("wake me up", "alarm")])
    assert main(["feedback", str(recipe)]) == 0
    assert "to learn: 1 labelled items (no finished run of this recipe yet)" in capsys.readouterr().out
    for name, recipe_name in (("x-1", "x"), ("other-2", "other")):
        run = tmp_path / "runs" / name
        _freeze(run, store)
        (run / "recipe.resolved.json").write_text(json.dumps({"name": recipe_name}))
        (run / "summary.json").write_text("{}")
    assert main(["feedback", str(recipe)]) == 0
    assert "to learn: nothing; x-1 trained on every labelled item" in capsys.readouterr().out
    with LabelStore(store) as opened:
        opened.add_items([({"text": "set a timer"}, "alarm", "serve", None), ({"text": "rain?"}, "weather", "inbox.txt", None)])
    assert main(["feedback", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "to learn: 2 labelled items not in x-1 (2 new, 0 corrected; 1 inbox.txt, 1 serve;" in out
    assert f"builder run {recipe} --from {tmp_path / 'runs' / 'x-1'}" in out
    assert main(["feedback", str(store), "--run", str(tmp_path / "runs" / "x-1")]) == 0
    assert "2 labelled items not in x-1" in capsys.readouterr().out
    assert main(["feedback", str(store), "--run", str(tmp_path)]) == 1
    assert "not a finished run directory" in capsys.readouterr().err
