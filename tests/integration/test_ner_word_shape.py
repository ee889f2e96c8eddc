"""NER on cased text with an uncased tokenizer: the word-shape embedding lets the model see capitals.

In this data only casing tells a name from an ordinary word ("Rose" is a person, "rose" a flower):
the tokenizer lowercases both to the same pieces, so without shapes the two are indistinguishable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.runtime.predictor import load_predictor
from assistant_builder.toolkit.shapes import LOWER, MIXED, NONE, NUMBER, OTHER, TITLE, UPPER, is_cased, token_shapes, word_shape

WORDS = ["rose", "mark", "bill", "grace", "hope", "will", "jack", "frank", "amber", "iris"]
PATTERNS = ["i saw {} today", "we talked about {} again", "{} was there", "look at {} now"]


def test_word_shapes() -> None:
    assert [word_shape(w) for w in ["rose", "Rose", "ROSE", "iPhone", "A", "3pm", "--", "I"]] == \
        [LOWER, TITLE, UPPER, MIXED, TITLE, NUMBER, OTHER, TITLE]
    assert token_shapes(["Rose", "ok"], [None, 0, 0, 1, None]) == [NONE, TITLE, TITLE, LOWER, NONE]
    assert is_cased([["The", "cat"], ["a", "b"]]) and not is_cased([["the", "cat"], ["a", "b", "c"]] * 20 + [["Once"]])


def write_conll(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    blocks = []
    for _ in range(count):
        word, named = rng.choice(WORDS), rng.random() < 0.5
        tokens = rng.choice(PATTERNS).format("{}").split()
        lines = [(f"{word.title()} B-person" if named else f"{word} O") if t == "{}" else f"{t} O" for t in tokens]
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")


@pytest.fixture
def project(tmp_path, write_recipe):
    write_conll(tmp_path / "train.conll", 240, seed=1)
    write_conll(tmp_path / "valid.conll", 60, seed=2)

    def make(word_shape: str):
        return write_recipe(
            tmp_path, name=f"shape-{word_shape}",
            task={"type": "ner", "options": {"word_shape": word_shape}},
            data={"train": "train.conll", "validation": "valid.conll"},
            train={"epochs": 6, "batch_size": 16, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                   "early_stopping_patience": 0, "seed": 3},
            export={"formats": ["onnx"], "options": {"onnx": {"quantize": True}}},
            output={"runs_dir": f"runs-{word_shape}"},
        )

    return make


def test_auto_turns_word_shapes_on_for_cased_text_and_they_export(project, tmp_path, capsys):
    assert main(["run", str(project("auto")), "-q"]) == 0
    (run_dir,) = (tmp_path / "runs-auto").iterdir()
    assert json.loads((run_dir / "task_options.json").read_text())["word_shape"] == "on"
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["f1"] > 0.95, metrics  # only the capitals tell the classes apart

    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert manifest["input_names"][-1] == "shape_ids" and manifest["task_options"]["word_shape"] == "on"
    reports = json.loads((run_dir / "export_report.json").read_text())
    assert all(r["status"] == "verified" for r in reports) and {r["variant"] for r in reports} == {"fp32", "int8"}

    predictor = load_predictor(run_dir, "fp32")
    named, plain = predictor.predict(["i saw Grace today", "i saw grace today"])
    assert [(e["text"], e["label"]) for e in named["entities"]] == [("Grace", "person")]
    assert plain["entities"] == []

    from assistant_builder_tasks.ner.task import NerTask

    reloaded = NerTask().load_model(run_dir / "model")
    assert reloaded.shape_embedding is not None and float(reloaded.shape_embedding.weight.detach().abs().sum()) > 0


def test_without_shapes_the_uncased_model_cannot_tell(project, tmp_path):
    assert main(["run", str(project("off")), "-q"]) == 0
    (run_dir,) = (tmp_path / "runs-off").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["metrics"]["f1"] < 0.8
    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert "shape_ids" not in manifest["input_names"]
