"""Question answering end to end through the CLI on a tiny random model: train -> evaluate -> export -> verify -> predict."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.runtime.predictor import load_predictor

FACTS = [
    ("the alarm is at {h} am", "when is the alarm", "{h} am"),
    ("the weather in {city} is {weather}", "what is the weather in {city}", "{weather}"),
    ("{who} can call at {h} pm", "when can {who} call", "{h} pm"),
    ("please buy {item} for {who}", "what should i buy for {who}", "{item}"),
    ("play {song} in the morning", "what song should you play", "{song}"),
]
FILLER = ["please turn off the lights", "thanks you are good", "it is a new song", "set a timer for 5 minutes"]


def make_example(rng: random.Random, qid: str) -> dict:
    """A context of shuffled facts and filler (some long enough to need several windows) and one question."""
    values = {"h": str(rng.randint(1, 12)), "city": rng.choice(["london", "paris", "new york"]),
              "weather": rng.choice(["rain", "sun", "cold", "hot"]), "who": rng.choice(["mom", "dad", "john"]),
              "item": rng.choice(["milk", "eggs", "bread"]), "song": rng.choice(["hello", "good morning"])}
    facts = rng.sample(FACTS, 3)
    sentences = [f[0].format(**values) for f in facts] + rng.sample(FILLER, rng.randint(0, 4))
    rng.shuffle(sentences)
    context = " . ".join(sentences) + " ."
    sentence, question, answer = facts[0]
    answer = answer.format(**values)
    start = context.index(sentence.format(**values)) + sentence.format(**values).index(answer)
    return {"id": qid, "question": question.format(**values), "context": context,
            "answers": {"text": [answer], "answer_start": [start]}}


def write_data(directory: Path) -> None:
    rng = random.Random(3)
    for split, count in (("train", 48), ("valid", 12)):
        rows = [make_example(rng, f"{split}-{i}") for i in range(count)]
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_qa_run_export_verify_predict(tmp_path, write_recipe, capsys):
    write_data(tmp_path)
    recipe = write_recipe(
        tmp_path,
        model={"max_length": 40},
        task={"type": "qa", "options": {"stride": 8}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 2, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
               "early_stopping_patience": 0, "seed": 7},
        export={"formats": ["onnx", "torchscript"], "max_metric_drop": 0.0, "min_agreement": 1.0},
        output={"runs_dir": "runs"},
    )
    assert main(["run", str(recipe), "-q"]) == 0
    capsys.readouterr()
    (run_dir,) = sorted((tmp_path / "runs").iterdir())

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"exact_match", "f1"} == set(metrics["metrics"]) and metrics["metric"] == "f1"
    assert 0.0 <= metrics["metrics"]["exact_match"] <= metrics["metrics"]["f1"] <= 1.0
    assert metrics["counts"] == {"questions": 12, "has_answer": 12, "no_answer": 0}
    assert (run_dir / "report.md").read_text().startswith("# Question answering report")
    predictions = [json.loads(line) for line in (run_dir / "validation_predictions.jsonl").read_text().splitlines()]
    valid = [json.loads(line) for line in (tmp_path / "valid.jsonl").read_text().splitlines()]
    for prediction, row in zip(predictions, valid):
        assert row["context"][prediction["start"]:prediction["end"]] == prediction["answer"] != ""

    reports = json.loads((run_dir / "export_report.json").read_text())
    assert {(r["exporter"], r["variant"]) for r in reports} == {("onnx", "fp32"), ("torchscript", "fp32")}
    for report in reports:
        assert report["passed"] and report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-3, report
    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert manifest["task"] == "qa" and manifest["sequence_outputs"] == ["start_logits", "end_logits"]
    assert {"model.safetensors", "config.json", "tokenizer_config.json"} <= {p.name for p in (run_dir / "model").iterdir()}

    context = valid[0]["context"]
    assert main(["predict", str(run_dir), "--variant", "fp32", "--question", valid[0]["question"], "--context", context]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert line["input"] == {"question": valid[0]["question"], "context": context}
    assert context[line["start"]:line["end"]] == line["answer"] and 0.0 < line["score"] <= 1.0
    assert line["answer"] == predictions[0]["answer"]  # the ONNX runtime agrees with the run's own prediction

    (tmp_path / "context.txt").write_text(valid[1]["context"])
    (tmp_path / "questions.jsonl").write_text(json.dumps({"question": valid[1]["question"], "context": valid[1]["context"]}) + "\n")
    assert main(["predict", str(run_dir), "--variant", "fp32", "--question", valid[1]["question"], "--question", "who can call",
                 "--context-file", str(tmp_path / "context.txt"), "--input", str(tmp_path / "questions.jsonl")]) == 0
    lines = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and lines[0]["answer"] == lines[2]["answer"] == predictions[1]["answer"]

    assert main(["predict", str(run_dir), "--question", "who can call"]) == 2
    assert "--question given without a context" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "--input", str(tmp_path / "valid.jsonl"), "--variant", "fp32"]) == 0  # extra keys are fine
    assert len(capsys.readouterr().out.splitlines()) == 12


@pytest.mark.parametrize("bad", ["answer", "question"])
def test_bad_qa_data_exits_2_with_a_located_error(tmp_path, write_recipe, capsys, bad):
    write_data(tmp_path)
    rows = (tmp_path / "train.jsonl").read_text().splitlines()
    row = json.loads(rows[4])
    if bad == "answer":
        row["answers"]["answer_start"] = [row["answers"]["answer_start"][0] + 1]
    else:
        row["question"] = ""
    rows[4] = json.dumps(row)
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    recipe = write_recipe(tmp_path, task={"type": "qa"}, data={"train": "train.jsonl", "validation": "valid.jsonl"})
    assert main(["run", str(recipe), "-q"]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl:5: question 'train-4': " + ("answer" if bad == "answer" else "empty question") in err


#: (a word only that fact puts in a context, a question about the fact) for questions without an answer
UNANSWERABLE = [("alarm", "when is the alarm"), ("weather", "what is the weather in paris"), ("call", "when can dad call"),
                ("buy", "what should i buy for mom"), ("play", "what song should you play")]


def write_data_with_unanswerable(directory: Path) -> None:
    """As ``write_data``, with every third question asked about a fact its context does not have (answer: none)."""
    rng = random.Random(5)
    for split, count in (("train", 48), ("valid", 18)):
        rows = []
        for i in range(count):
            row = make_example(rng, f"{split}-{i}")
            if i % 3 == 2:
                row["question"] = next(q for word, q in UNANSWERABLE if word not in row["context"].split())
                row["answers"] = {"text": [], "answer_start": []}
            rows.append(row)
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_qa_run_fits_the_no_answer_threshold_on_validation(tmp_path, write_recipe, capsys):
    write_data_with_unanswerable(tmp_path)
    recipe = write_recipe(
        tmp_path,
        model={"max_length": 40},
        task={"type": "qa", "options": {"stride": 8, "allow_unanswerable": True}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 2, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
               "early_stopping_patience": 0, "seed": 7},
        export={"formats": ["onnx"], "max_metric_drop": 0.0, "min_agreement": 1.0},
        output={"runs_dir": "runs"},
    )
    assert main(["run", str(recipe)]) == 0
    out = capsys.readouterr()
    (run_dir,) = sorted((tmp_path / "runs").iterdir())

    options = json.loads((run_dir / "task_options.json").read_text())
    threshold = options["null_threshold"]
    assert isinstance(threshold, float) and options["allow_unanswerable"] is True
    summary = json.loads((run_dir / "summary.json").read_text())
    fit = summary["decision_rule"]["no_answer"]
    assert fit["fitted"] and fit["null_threshold"] == threshold and (fit["has_answer"], fit["no_answer"]) == (12, 6)
    assert fit["after"]["f1"] >= fit["before"]["f1"]  # the fit maximises validation F1, and 0 was a candidate rule
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["decision_rule"] == summary["decision_rule"] and metrics["counts"]["no_answer"] == 6
    assert round(metrics["metrics"]["f1"], 4) == fit["after"]["f1"]  # the run is evaluated with the fitted threshold
    assert round(metrics["metrics"]["no_ans_f1"], 4) == fit["after"]["no_ans_accuracy"]
    report = (run_dir / "report.md").read_text()
    assert "## No-answer threshold" in report and f"**{threshold:.4f}**" in report
    assert "no-answer threshold" in out.out + out.err  # the stage line

    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert manifest["task_options"]["null_threshold"] == threshold
    (report_onnx,) = json.loads((run_dir / "export_report.json").read_text())
    assert report_onnx["passed"] and report_onnx["agreement"] == 1.0, report_onnx
    predictor = load_predictor(run_dir / "exports" / "onnx")
    assert predictor.info["decision_rule"] == {"allow_unanswerable": True, "null_threshold": threshold}  # GET /info


def test_qa_update_trains_on_the_new_questions_with_a_replay_of_the_old(tmp_path, write_recipe):
    """``builder run --from`` for qa (no labels to add): what is new is the questions the parent did
    not train on; the update replays a seeded sample of the rest, passes its gate and exports."""
    write_data(tmp_path)
    rows = (tmp_path / "train.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "parent.jsonl").write_text("".join(rows[:32]))

    def recipe(name: str, train: str):
        path = write_recipe(
            tmp_path, model={"max_length": 40}, task={"type": "qa", "options": {"stride": 8}},
            data={"train": train, "validation": "valid.jsonl"},
            train={"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                   "early_stopping_patience": 0, "seed": 7},
            update={"epochs": 2, "replay": 1.0, "min_replay": 8, "max_forgetting": 0.5},
            export={"formats": ["onnx"], "max_metric_drop": 0.2, "min_agreement": 0.5}, output={"runs_dir": "runs"})
        return path.rename(tmp_path / name)

    assert main(["run", str(recipe("parent.toml", "parent.jsonl")), "-q"]) == 0
    [parent] = sorted((tmp_path / "runs").iterdir())
    assert main(["run", str(recipe("update.toml", "train.jsonl")), "--from", str(parent), "-q"]) == 0
    [update] = [r for r in (tmp_path / "runs").iterdir() if r != parent]
    record = json.loads((update / "update.json").read_text())
    plan = record["plan"]
    assert plan["new_examples"] == 16 and plan["new_labels"] == [] and plan["held_out"] == 3, plan  # 0.2 of 16 whole inputs
    assert plan["replayed"] == max(8, plan["new_trained"]) and record["gate"]["passed"], record["gate"]
    assert (update / "exports" / "onnx" / "manifest.json").is_file()
