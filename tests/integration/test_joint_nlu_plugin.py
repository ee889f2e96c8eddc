"""The builder-joint-nlu plugin as a user gets it: an installed distribution discovered through the
``assistant_builder`` entry-point group, then a recipe run end to end through the CLI on a tiny
random model (train -> evaluate -> export ONNX + TorchScript -> verify -> predict)."""

from __future__ import annotations

import importlib.metadata
import json
import random
from pathlib import Path

import pytest

from assistant_builder.cli.main import main

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "examples" / "plugins" / "builder-joint-nlu"
INSTALL_HINT = "install the plugin into this environment: pip install examples/plugins/builder-joint-nlu"

# words of the tiny test model's vocabulary (assistant_builder.testing.WORDS)
SLOT_VALUES = {
    "time": ["7 am", "6 pm", "8 o clock"],
    "date": ["tomorrow", "today", "tonight"],
    "city": ["london", "paris", "new york"],
    "item": ["milk", "eggs", "bread"],
    "person": ["john", "mom", "dad"],
}
PATTERNS = {
    "alarm": ["wake me up at {time} {date}", "set an alarm for {time}", "alarm at {time} please"],
    "weather": ["what is the weather in {city} {date}", "will it rain in {city}", "is it cold in {city}"],
    "shopping": ["add {item} to the shopping list", "buy {item} {date}", "add {item} and {item} to my list"],
    "call": ["call {person} {date}", "send a message to {person}", "tell {person} hello"],
}


def utterance(rng: random.Random, intent: str) -> dict:
    """``{"text", "intent", "slots"}`` from a random pattern of ``intent``, slots as character offsets."""
    text, slots = "", []
    for word in rng.choice(PATTERNS[intent]).split():
        if text:
            text += " "
        if word.startswith("{"):
            value = rng.choice(SLOT_VALUES[word[1:-1]])
            slots.append({"start": len(text), "end": len(text) + len(value), "label": word[1:-1]})
            word = value
        text += word
    return {"text": text, "intent": intent, "slots": slots}


def write_jsonl(path: Path, per_intent: int, seed: int) -> None:
    rng = random.Random(seed)
    rows = [utterance(rng, intent) for intent in PATTERNS for _ in range(per_intent)]
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def joint_nlu_distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution("builder-joint-nlu")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"the builder-joint-nlu distribution is not installed; {INSTALL_HINT}")


@pytest.fixture
def entry_points_on(monkeypatch):
    for variable in ("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "ASSISTANT_BUILDER_PLUGINS", "ASSISTANT_BUILDER_BLOCK_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)


def test_installed_distribution_registers_joint_nlu_through_the_entry_point_group(entry_points_on, capsys):
    dist = joint_nlu_distribution()
    [entry_point] = [ep for ep in dist.entry_points if ep.group == "assistant_builder"]
    assert (entry_point.name, entry_point.value) == ("joint_nlu", "builder_joint_nlu")
    assert any(r.startswith("assistant-builder") for r in dist.requires or [])

    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    [row] = [r for r in listing["plugins"] if r["plugin"] == "joint_nlu"]
    assert row["distribution"] == "builder-joint-nlu" and row["version"] == dist.version
    assert row["tasks"] == ["joint_nlu"] and row["trainers"] == [] and row["exporters"] == []
    assert not [f for f in listing["failed"] if f["plugin"] == "joint_nlu"]


def test_shipped_recipe_validates_without_torch(entry_points_on, capsys):
    joint_nlu_distribution()
    assert main(["validate", str(PLUGIN_DIR / "recipes" / "joint_nlu.toml")]) == 0
    assert "task 'joint_nlu'" in capsys.readouterr().out


@pytest.fixture
def project(tmp_path, write_recipe, entry_points_on):
    joint_nlu_distribution()
    write_jsonl(tmp_path / "train.jsonl", 30, seed=1)
    write_jsonl(tmp_path / "valid.jsonl", 8, seed=2)
    return write_recipe(
        tmp_path,
        task={"type": "joint_nlu", "options": {"top_k": 2}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 4, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
               "early_stopping_patience": 0, "seed": 7},
        export={"formats": ["onnx", "torchscript"], "max_metric_drop": 0.2, "min_agreement": 0.5, "options": {"onnx": {"quantize": True}}},
        output={"runs_dir": "runs"},
    )


def test_joint_nlu_recipe_trains_exports_verifies_and_predicts(project, tmp_path, capsys):
    assert main(["run", str(project), "-q"]) == 0
    [run_dir] = sorted((tmp_path / "runs").iterdir())
    assert f"Run finished: {run_dir}" in capsys.readouterr().out

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["metric"] == "exact_match"
    m = metrics["metrics"]
    assert m["intent_accuracy"] > 0.9 and m["slot_f1"] > 0.8 and m["exact_match"] > 0.6, m  # the tiny model learns these patterns
    assert set(metrics["per_type"]) == set(SLOT_VALUES) and metrics["labels"] == sorted(PATTERNS)
    assert "# Joint intent + slot report" in (run_dir / "report.md").read_text()
    first = json.loads((run_dir / "validation_predictions.jsonl").read_text().splitlines()[0])
    assert set(first) == {"index", "intent", "intent_score", "intent_top", "entities", "tags"}
    assert sorted(p.name for p in (run_dir / "model").glob("joint_nlu_heads.*")) == ["joint_nlu_heads.json", "joint_nlu_heads.safetensors"]

    reports = json.loads((run_dir / "export_report.json").read_text())
    assert {(r["exporter"], r["variant"]) for r in reports} == {("onnx", "fp32"), ("onnx", "int8"), ("torchscript", "fp32")}
    for report in reports:
        assert report["passed"], report
        if report["variant"] == "fp32":
            assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-3
    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert manifest["task"] == "joint_nlu" and manifest["output_names"] == ["intent_logits", "slot_logits"]
    assert manifest["sequence_outputs"] == ["slot_logits"]
    assert manifest["labels"][:4] == ["intent:alarm", "intent:call", "intent:shopping", "intent:weather"] and "B-city" in manifest["labels"]
    import onnx

    graph = onnx.load(str(run_dir / "exports" / "onnx" / "model.onnx")).graph
    assert [o.name for o in graph.output] == ["intent_logits", "slot_logits"]  # one graph, both heads

    texts = ["call john tomorrow", "what is the weather in new york today"]
    assert main(["predict", str(run_dir), "--variant", "fp32", *texts]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == texts
    assert [line["intent"] for line in lines] == ["call", "weather"]
    for line in lines:
        assert 0 < line["intent_score"] <= 1 and len(line["intent_top"]) == 2
        for entity in line["entities"]:
            assert line["input"][entity["start"] : entity["end"]] == entity["text"]
    assert ("person", "john") in {(e["label"], e["text"]) for e in lines[0]["entities"]}
    assert {"label": "city", "text": "new york", "start": 23, "end": 31} in [
        {k: e[k] for k in ("label", "text", "start", "end")} for e in lines[1]["entities"]]

    assert main(["predict", str(run_dir), "call mom", "--variant", "int8"]) == 0
    assert json.loads(capsys.readouterr().out)["intent"] == "call"


def test_bad_data_gives_a_located_error_and_exit_2(project, tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text('{"text": "call mom", "intent": "call", "slots": []}\n{"text": "call mom", "slots": []}\n')
    assert main(["run", str(project)]) == 2
    assert "train.jsonl:2: missing field 'intent'" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_demo_recipe_with_the_real_model(entry_points_on, tmp_path, capsys):
    joint_nlu_distribution()
    recipe = PLUGIN_DIR / "recipes" / "joint_nlu.toml"
    assert main(["run", str(recipe), "-q", f"output.runs_dir={json.dumps(str(tmp_path))}"]) == 0
    [run_dir] = sorted(tmp_path.iterdir())
    m = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    # seed 42 on 2 CPU cores: intent accuracy 0.98, slot F1 0.845, exact match 0.82
    assert m["intent_accuracy"] >= 0.9 and m["slot_f1"] >= 0.8 and m["exact_match"] >= 0.7, m
    assert all(r["passed"] for r in json.loads((run_dir / "export_report.json").read_text()))
    capsys.readouterr()
    assert main(["predict", str(run_dir), "dim the bedroom lights to 20 percent"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["intent"] == "lights"
    assert {(e["label"], e["text"]) for e in prediction["entities"]} == {("room", "bedroom"), ("level", "20 percent")}
