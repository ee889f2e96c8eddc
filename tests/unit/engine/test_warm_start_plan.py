"""``warm_start.plan_update``: what is new, held out and replayed, seeded; and ``update_gate``'s verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_builder.contracts import StoreRecord, TaskData
from assistant_builder.engine.warm_start import PairedScores, Parent, paired_scores, plan_update, scaled_learning_rates, update_gate
from assistant_builder.recipe.schema import TrainSection, UpdateSection
from assistant_builder.registry import build_registry


@pytest.fixture(scope="module")
def task():
    return build_registry().create("task", "classification")


def _parent(n: int = 100) -> Parent:
    train = [StoreRecord({"text": f"old text {i}"}, "a" if i % 2 else "b") for i in range(n)]
    return Parent(Path("/runs/parent"), ["a", "b"], "accuracy", {"accuracy": 0.9}, train, [StoreRecord({"text": "v"}, "a")])


def _data(task, parent: Parent, new: list[tuple[str, str]]) -> TaskData:
    options = task.Options()
    old = [task.from_store(r, ["a", "b", "c"], options) for r in parent.train]
    fresh = [task.from_store(StoreRecord({"text": t}, y), ["a", "b", "c"], options) for t, y in new]
    return TaskData(old + fresh, [], ["a", "b", "c"])


def test_the_plan_finds_new_inputs_and_corrections_and_replays_a_seeded_sample(task):
    parent = _parent()
    new = [(f"new text {i}", "c") for i in range(20)] + [(f"more a {i}", "a") for i in range(19)] + [("old text 0", "a")]
    data = _data(task, parent, new)  # old text 0 was "b": a correction
    settings = UpdateSection(replay=2.0, min_replay=10, holdout=0.2)
    plan = plan_update(task, data, parent, task.Options(), settings, seed=1)
    report = plan.report
    # held out: 0.2 of the 20 new examples of the parent's labels, none of the new label c (the parent scores 0 on it)
    assert report["new_examples"] == 40 and report["corrected"] == 1 and report["held_out"] == 4 and report["new_trained"] == 36
    assert {e.label for e in plan.held_out} == {"a"} and sum(e.label == "c" for e in plan.task_data.train) == 20
    assert report["replayed"] == 72 and plan.new_labels == ["c"] and plan.task_data.labels == ["a", "b", "c"]
    replayed = {e.text for e in plan.task_data.train} - {t for t, _ in new}
    assert "old text 0" not in {r["payload"]["text"] for r in plan.known_train if r["gold"] == "b"}  # the correction replaces it
    again = plan_update(task, data, parent, task.Options(), settings, seed=1)
    assert [e.text for e in again.task_data.train] == [e.text for e in plan.task_data.train]  # same seed, same plan
    other = plan_update(task, data, parent, task.Options(), settings, seed=2)
    assert {e.text for e in other.task_data.train} - {t for t, _ in new} != replayed
    assert len(plan.known_train) == 99 + 36  # the parent's, less the relabelled input, plus the new ones trained


def test_few_new_examples_are_all_trained_and_a_new_label_is_never_held_out(task):
    parent = _parent(10)
    data = _data(task, parent, [("x1", "c"), ("x2", "c"), ("y1", "a")])
    plan = plan_update(task, data, parent, task.Options(), UpdateSection(holdout=0.5), seed=0)
    assert plan.held_out == [] and plan.report["new_trained"] == 3 and plan.report["replayed"] == 10  # all of a small parent
    data = _data(task, parent, [(f"n{i}", "a") for i in range(12)] + [("only c", "c")])
    plan = plan_update(task, data, parent, task.Options(), UpdateSection(holdout=0.5), seed=0)
    assert len(plan.held_out) == 6 and "only c" not in {e.text for e in plan.held_out}
    data = _data(task, parent, [(f"n{i}", "a") for i in range(4)] + [(f"c{i}", "c") for i in range(20)])
    plan = plan_update(task, data, parent, task.Options(), UpdateSection(holdout=0.5), seed=0)
    assert plan.held_out == []  # 20 new examples, but only 4 of the parent's labels: too few for a held-out check


def test_the_gate_refuses_forgetting_beyond_the_tolerance_and_an_update_worse_on_what_is_new():
    held = lambda before, after, wins, losses: PairedScores(before, after, wins, losses)  # noqa: E731
    assert update_gate("accuracy", 0.90, 0.895, held(0.0, 0.8, 8, 0), 0.01)["passed"]
    forgot = update_gate("accuracy", 0.90, 0.88, held(0.0, 0.8, 8, 0), 0.01)
    assert not forgot["passed"] and "fell from 0.9000 to 0.8800 (2.00 points" in forgot["reasons"][0]
    worse = update_gate("accuracy", 0.90, 0.90, held(0.7, 0.2, 0, 10), 0.01)
    assert not worse["passed"] and "did not learn what is new" in worse["reasons"][0] and "worse on 10, better on 0" in worse["reasons"][0]
    assert worse["held_out_new"]["p_value"] < 0.01
    # one answer of 20 is chance, not a worse model: kept (a strict comparison would refuse it)
    chance = update_gate("accuracy", 0.90, 0.90, held(0.95, 0.90, 0, 1), 0.01)
    assert chance["passed"] and chance["held_out_new"]["p_value"] == 0.5
    assert update_gate("accuracy", None, 0.5, None, 0.01)["passed"]  # nothing to compare: kept


def test_paired_scores_count_the_examples_each_model_gets_right_and_the_other_wrong(task):
    options = task.Options()
    examples = [task.from_store(StoreRecord({"text": t}, y), ["a", "b"], options) for t, y in [("x", "a"), ("y", "b"), ("z", "a"), ("w", "b")]]
    predict = lambda labels: [{"label": label, "score": 0.9, "top": [{"label": label, "score": 0.9}]} for label in labels]  # noqa: E731
    scores = paired_scores(task, examples, ["a", "b"], "accuracy", (predict(["a", "b", "b", "a"]), options), (predict(["a", "a", "a", "b"]), options))
    assert (scores.before, scores.after, scores.wins, scores.losses) == (0.5, 0.75, 2, 1)


class _Trainer:
    default_learning_rate = 1e-4


def test_scaled_learning_rates_scale_the_encoder_and_head_rates_and_resolve_an_unset_encoder_rate():
    scaled = scaled_learning_rates(TrainSection(head_learning_rate=1e-3), _Trainer(), 0.25)
    assert scaled.learning_rate == pytest.approx(2.5e-5) and scaled.head_learning_rate == pytest.approx(2.5e-4)
    explicit = scaled_learning_rates(TrainSection(learning_rate=4e-4, head_learning_rate=2e-3), _Trainer(), 0.5)
    assert explicit.learning_rate == pytest.approx(2e-4) and explicit.head_learning_rate == pytest.approx(1e-3)
    assert explicit.epochs == TrainSection().epochs  # nothing else changes
