"""The Evaluate screen's out-of-scope and calibration tabs on fake run directories: the rejected
examples, the threshold what-if moved with keys, the reliability chart, and older runs without
that data (tabs hidden)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from textual.widgets import DataTable, Static, TabbedContent

from assistant_builder.tui.app import BuilderApp
from assistant_builder.tui.evaluation import load_evaluation
from assistant_builder.tui.screens.evaluate import EvaluateScreen
from assistant_builder.tui.widgets.reliability_chart import ReliabilityChart
from assistant_builder.tui.widgets.threshold_panel import ThresholdPanel


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def figures(screen: EvaluateScreen) -> str:
    return str(screen.query_one("#eval-oos-figures", Static).render())


def test_the_loader_joins_scores_gold_labels_and_the_runs_threshold(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    run = tui_helpers.make_oos_run(project.runs_dir, "20260101-000000")
    evaluation = load_evaluation(run, registry)
    assert evaluation.fallback_label == tui_helpers.OOS and evaluation.fallback_threshold == 4.25
    assert [(e.text, e.gold, e.candidate, e.score, e.out_of_scope) for e in evaluation.scored] == [
        (t, g, c, s, g == tui_helpers.OOS) for t, g, c, s in tui_helpers.OOS_ROWS]
    saved = [json.loads(line) for line in (run / "validation_predictions.jsonl").read_text().splitlines()]
    assert evaluation.run_rejected == sum(not p["in_scope"] for p in saved) == 4
    assert evaluation.calibration["reliability"]["after"][0]["confidence"] == 0.55
    # an older run: no in_scope_score in its predictions, no decision_rule
    old = load_evaluation(tui_helpers.make_run(project.runs_dir, "20260102-000000"), registry)
    assert old.scored == [] and old.fallback_label is None and old.calibration == {} and len(old.errors) == 2


def test_moving_the_threshold_updates_the_figures_and_the_rejected_examples(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    tui_helpers.make_oos_run(project.runs_dir, "20260101-000000")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="evaluate")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, EvaluateScreen)
            await tui_helpers.wait_until(pilot, lambda: screen.evaluation is not None)
            await pilot.pause()
            await pilot.press("o")
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-oos-tab"
            panel = screen.query_one(ThresholdPanel)
            table = screen.query_one("#eval-oos", DataTable)
            # the run's threshold: 4 rejected (2 of 3 out-of-scope, 2 of 5 in-scope), "tell me a joke" accepted
            text = figures(screen)
            assert "threshold 4.2500 (the run's) · rejected 4 of 8: 2 of 3 out-of-scope, 2 of 5 in-scope" in text
            assert "in-scope accuracy 0.600 · kept 0.600 · out-of-scope precision 0.500 recall 0.667 F1 0.571" in text
            assert rows(table) == [["accepted", "5.000", "out_of_scope", "music", "tell me a joke"],
                                   ["rejected", "3.500", "alarm", "weather", "alarm at 6"],
                                   ["rejected", "3.000", "weather", "weather", "is it cold"],
                                   ["rejected", "2.000", "out_of_scope", "weather", "capital of peru"],
                                   ["rejected", "1.000", "out_of_scope", "alarm", "who won the match"]]
            await pilot.press("right_square_bracket")  # one score up: "tell me a joke" (5.0) is rejected too
            await pilot.pause()
            assert panel.threshold == 6.0
            text = figures(screen)
            assert "threshold 6.0000 (the run's: 4.2500) · rejected 5 of 8: 3 of 3 out-of-scope, 2 of 5 in-scope" in text
            assert "precision 0.600 recall 1.000 F1 0.750" in text and "--fallback-threshold 6.0" in text
            assert [r[0] for r in rows(table)] == ["rejected"] * 5
            await pilot.press("left_square_bracket", "left_square_bracket")  # two down: only scores below 3.25
            await pilot.pause()
            text = figures(screen)
            assert "rejected 3 of 8: 2 of 3 out-of-scope, 1 of 5 in-scope" in text
            assert "in-scope accuracy 0.600 · kept 0.800 · out-of-scope precision 0.667 recall 0.667 F1 0.667" in text
            assert [(r[0], r[4]) for r in rows(table)] == [("accepted", "tell me a joke"), ("rejected", "is it cold"),
                                                           ("rejected", "capital of peru"), ("rejected", "who won the match")]
            await pilot.press("left_curly_bracket")  # ten down: clamped at "reject nothing"
            await pilot.pause()
            assert panel.threshold is None
            text = figures(screen)
            assert "threshold none (reject nothing)" in text and "rejected 0 of 8" in text
            assert "in-scope accuracy 0.800 · kept 1.000 · out-of-scope precision 0.000 recall 0.000 F1 0.000" in text
            assert [r[0] for r in rows(table)] == ["accepted"] * 3
            await pilot.press("right_curly_bracket")  # ten up: clamped at "reject everything"
            await pilot.pause()
            assert panel.threshold == 9.5 and "rejected 8 of 8" in figures(screen)
            await pilot.press("equals_sign")  # back to the run's
            await pilot.pause()
            assert panel.threshold == 4.25 and "rejected 4 of 8" in figures(screen)
            # nothing is written: the run keeps its threshold
            assert json.loads((screen.run_dir / "task_options.json").read_text())["fallback_threshold"] == 4.25

    asyncio.run(scenario())


def test_threshold_keys_work_from_another_tab_and_the_calibration_tab_draws_the_bins(make_project: Any, registry: Any,
                                                                                     tui_helpers: Any) -> None:
    project = make_project()
    tui_helpers.make_oos_run(project.runs_dir, "20260101-000000")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="evaluate")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await tui_helpers.wait_until(pilot, lambda: screen.evaluation is not None)
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-errors-tab"
            await pilot.press("right_square_bracket")  # shows the out-of-scope tab and moves the threshold
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-oos-tab" and screen.query_one(ThresholdPanel).threshold == 6.0
            await pilot.press("c")
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-calibration-tab"
            assert "temperature scaling T = 1.500 · ECE before 0.2000 → after 0.0500 · validation, 10 bins" in str(
                screen.query_one("#eval-calibration-figures", Static).render())
            chart = screen.query_one(ReliabilityChart)
            assert chart.points == {"before": [(0.85, 0.5), (0.97, 0.67)], "after": [(0.55, 0.5), (0.66, 0.67)]}
            assert "reliability on validation" in tui_helpers.screen_text(app)

    asyncio.run(scenario())


def test_a_run_without_out_of_scope_data_hides_the_tabs_and_keys(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    tui_helpers.make_run(project.runs_dir, "20260101-000000")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="evaluate")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await tui_helpers.wait_until(pilot, lambda: screen.evaluation is not None)
            await pilot.pause()
            text = tui_helpers.screen_text(app)
            assert "Out of scope" not in text and "Calibration" not in text and "threshold" not in text
            assert "2 errors" in text
            await pilot.press("o", "right_square_bracket", "c")
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-errors-tab"
            assert screen.query_one(ThresholdPanel).threshold is None and screen.query_one(ThresholdPanel).result is None

    asyncio.run(scenario())


def test_switching_to_an_older_run_hides_the_out_of_scope_tab_again(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    new = tui_helpers.make_oos_run(project.runs_dir, "20260102-000000")
    old = tui_helpers.make_run(project.runs_dir, "20260101-000000")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="evaluate")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await tui_helpers.wait_until(pilot, lambda: screen.evaluation is not None and screen.evaluation.run.path == new)
            await pilot.press("o")
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-oos-tab"
            screen.show_run(old)
            await tui_helpers.wait_until(pilot, lambda: screen.evaluation is not None and screen.evaluation.run.path == old)
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "eval-errors-tab"
            assert "Out of scope" not in tui_helpers.screen_text(app)

    asyncio.run(scenario())
