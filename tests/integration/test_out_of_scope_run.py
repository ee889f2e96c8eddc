"""Out-of-scope rejection end to end: a recipe with a fallback label, its validation holding out-of-scope
requests the training data never had; the fitted rule reaches the report, the bundle, the runtime,
``builder predict`` and ``builder serve`` (with per-call and per-server thresholds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.runtime.bundle import read_bundle
from assistant_builder.runtime.predictor import load_predictor
from assistant_builder.testing import write_intent_data

#: out-of-scope requests written for this test (nothing like the toy intents)
OUT_OF_SCOPE = ["what is the capital of peru", "asdfgh qwerty", "tell me a joke about cats", "how tall is a giraffe",
                "translate hello into french", "who won the match yesterday", "order a large pizza", "what is my bank balance",
                "book a table for two", "how do i reset my password", "recommend a good novel", "what does this word mean"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    from assistant_builder.testing import recipe_toml

    directory = tmp_path_factory.mktemp("oos")
    write_intent_data(directory, per_label=24, seed=3)
    with (directory / "valid.jsonl").open("a") as valid:
        valid.writelines(json.dumps({"text": text, "intent": "out_of_scope"}) + "\n" for text in OUT_OF_SCOPE)
    (directory / "recipe.toml").write_text(recipe_toml({
        "recipe_version": 1, "name": "oos", "model": {"base": str(tiny_model_dir), "max_length": 32},
        "task": {"type": "classification", "options": {"label_field": "intent", "fallback_label": "out_of_scope"}},
        "data": {"train": "train.jsonl", "validation": "valid.jsonl"},
        "train": {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                  "early_stopping_patience": 0, "seed": 7, "min_steps": 0,
                  "freeze_word_embeddings": False},
        "export": {"formats": ["onnx"], "max_metric_drop": 0.05}, "output": {"runs_dir": "runs"},
    }))
    assert main(["run", str(directory / "recipe.toml")]) == 0
    [run] = (directory / "runs").iterdir()
    return run


def test_the_rule_is_fitted_reported_and_bundled(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    rule = summary["decision_rule"]
    assert rule["rejection"]["validation_out_of_scope"] == len(OUT_OF_SCOPE) and "F1" in rule["rejection"]["objective"]
    assert rule["calibration"]["method"] == "temperature" and rule["calibration"]["ece_after"] is not None
    if rule["rejection"]["threshold"] is None:  # the tiny random model may not separate them: then it says so, rejects nothing
        assert "nothing is rejected" in " ".join(summary.get("decision_rule", {}).get("warnings", []))
    options = json.loads((run_dir / "task_options.json").read_text())
    assert options["temperature"] == rule["calibration"]["temperature"]
    assert options["fallback_threshold"] == rule["rejection"]["threshold"]
    metrics = summary["metrics"]
    assert {"in_scope_accuracy", "oos_precision", "oos_recall", "oos_f1", "oos_auroc", "ece"} <= set(metrics)
    assert metrics["oos_recall"] == pytest.approx(rule["rejection"]["oos_recall"], abs=1e-4)
    report = (run_dir / "report.md").read_text()
    assert "## Out-of-scope rejection" in report and "![reliability diagram](reliability.png)" in report
    assert (run_dir / "reliability.png").stat().st_size > 1000 and (run_dir / "tradeoff.png").is_file()
    manifest = read_bundle(run_dir).manifest
    assert manifest["task_options"]["fallback_threshold"] == options["fallback_threshold"]
    assert all(report["status"] == "verified" for report in summary["exports"])


def test_the_runtime_rejects_with_the_bundled_rule_and_per_call_thresholds(run_dir: Path) -> None:
    predictor = load_predictor(run_dir)
    predictions = predictor.predict(["wake me up at 7", *OUT_OF_SCOPE])
    assert all(set(p) >= {"label", "score", "in_scope", "in_scope_score", "top"} for p in predictions)
    threshold = predictor.options.fallback_threshold
    if threshold is not None:
        assert all(p["in_scope"] == (p["in_scope_score"] >= threshold) for p in predictions)
    assert all(p["label"] == "out_of_scope" for p in predictions if not p["in_scope"])
    scores = sorted(p["in_scope_score"] for p in predictions)
    middle = (scores[0] + scores[-1]) / 2  # a per-call threshold between the lowest and highest score splits them
    split = load_predictor(run_dir, options={"fallback_threshold": middle}).predict(["wake me up at 7", *OUT_OF_SCOPE])
    assert [p["in_scope"] for p in split] == [p["in_scope_score"] >= middle for p in predictions]
    strict = load_predictor(run_dir, options={"fallback_threshold": math.inf}).predict(["wake me up at 7"])
    assert strict[0]["label"] == "out_of_scope" and strict[0]["top"][0]["label"] in predictor.labels
    assert predictor.info["decision_rule"]["fallback_threshold"] == threshold


def test_builder_predict_takes_a_threshold(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(run_dir), "wake me up at 7", "--fallback-threshold", "1e9"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["in_scope"] is False


def test_builder_serve_threshold_per_server_and_per_request(run_dir: Path) -> None:
    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    with TestClient(create_app(ServeSettings(path=str(run_dir), fallback_threshold=-1e9))) as client:
        info = client.get("/info").json()
        assert info["decision_rule"]["fallback_threshold"] == -1e9
        kept = client.post("/predict", json={"input": "asdfgh qwerty"}).json()["predictions"][0]
        assert kept["in_scope"] is True
        rejected = client.post("/predict", json={"input": "wake me up at 7", "fallback_threshold": 1e9}).json()["predictions"][0]
        assert rejected["label"] == "out_of_scope" and rejected["in_scope"] is False
        bad = client.post("/predict", json={"input": "x", "fallback_threshold": "high"})
        assert bad.status_code == 422 and "fallback_threshold: expected a number" in bad.json()["error"]["message"]
        assert "fallback_threshold" in json.dumps(client.get("/openapi.json").json())


def test_the_tui_what_if_at_the_runs_threshold_gives_the_runs_figures(run_dir: Path) -> None:
    """The Evaluate screen's what-if reads what the engine wrote and, at the run's own threshold,
    rejects exactly what the run rejected, with the report's figures."""
    from assistant_builder.tui.evaluation import load_evaluation
    from assistant_builder.tui.threshold import candidate_thresholds, step_threshold, what_if

    rule = json.loads((run_dir / "metrics.json").read_text())["decision_rule"]
    evaluation = load_evaluation(run_dir)
    assert evaluation.fallback_label == "out_of_scope" and evaluation.fallback_threshold == rule["rejection"]["threshold"]
    assert sum(e.out_of_scope for e in evaluation.scored) == len(OUT_OF_SCOPE)
    result = what_if(evaluation.scored, evaluation.fallback_threshold)
    assert result.rejected == evaluation.run_rejected
    for key in ("in_scope_accuracy", "kept", "oos_precision", "oos_recall", "oos_f1"):
        assert getattr(result.scores, key) == pytest.approx(rule["rejection"][key], abs=1e-4), key
    reliability = evaluation.calibration["reliability"]
    assert sum(b["count"] for b in reliability["after"]) == sum(not e.out_of_scope for e in evaluation.scored)
    # a threshold moved in the TUI rejects what the bundled model rejects with --fallback-threshold at that value
    candidates = candidate_thresholds([e.score for e in evaluation.scored])
    moved = step_threshold(candidates, evaluation.fallback_threshold, len(candidates) // 2)
    assert moved is not None
    bundled = load_predictor(run_dir, options={"fallback_threshold": moved}).predict([e.text for e in evaluation.scored])
    rejected = {e.text for r, e in what_if(evaluation.scored, moved).rows if r}
    assert 0 < len(rejected) < len(evaluation.scored)
    assert rejected == {e.text for e, p in zip(evaluation.scored, bundled) if not p["in_scope"]}
