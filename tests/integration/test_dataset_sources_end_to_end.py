"""Recipes that name a saved Hugging Face dataset or a folder of Parquet files train end to end."""

from __future__ import annotations

import json

import pytest

from assistant_builder.cli.main import main
from assistant_builder.testing import TOY_INTENTS

datasets = pytest.importorskip("datasets", reason="the data extra is installed by `make test`")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

TRAIN = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
         "early_stopping_patience": 0, "seed": 7}


def intent_rows(count: int, seed: int) -> dict[str, list]:
    import random

    rng = random.Random(seed)
    labels = sorted(TOY_INTENTS)
    rows = [(rng.choice(TOY_INTENTS[label]).format(n=rng.randint(1, 12)), labels.index(label))
            for label in labels for _ in range(count)]
    rng.shuffle(rows)
    return {"text": [t for t, _ in rows], "label": [i for _, i in rows]}


def run_dir_of(tmp_path):
    (run,) = (tmp_path / "runs").iterdir()
    return run


def test_classification_from_a_saved_dataset_dict(tmp_path, write_recipe):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=sorted(TOY_INTENTS))})
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(intent_rows(20, 1), features=features),
        "test": datasets.Dataset.from_dict(intent_rows(6, 2), features=features),
    }).save_to_disk(str(tmp_path / "intents_ds"))
    recipe = write_recipe(tmp_path, task={"type": "classification"},
                          data={"train": "intents_ds", "validation": "intents_ds", "dataset_validation_split": "test"},
                          train=TRAIN, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["validate", str(recipe)]) == 0
    assert main(["run", str(recipe), "-q"]) == 0
    run = run_dir_of(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_label"]) == set(TOY_INTENTS)  # names decoded from the ClassLabel column, not ids
    assert metrics["metrics"]["accuracy"] > 0.8
    assert len(json.loads((run / "summary.json").read_text())["metrics"]) > 0
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["data"]["train"]["path"].endswith("intents_ds") and len(provenance["data"]["train"]["sha256"]) == 64


def test_ner_from_a_saved_dataset_with_ner_tags_class_labels(tmp_path, write_recipe):
    names = ["O", "B-city", "I-city", "B-person"]
    cities = [["new", "york"], ["london"], ["paris"]]
    rows = {"tokens": [], "ner_tags": []}
    for i in range(30):
        city = cities[i % 3]
        person = ["john", "mom", "dad"][i % 3]
        rows["tokens"].append(["call", person, "in", *city])
        rows["ner_tags"].append([0, 3, 0, 1, *([2] * (len(city) - 1))])
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "ner_ds"))
    recipe = write_recipe(tmp_path, task={"type": "ner"}, data={"train": "ner_ds", "validation_split": 0.2},
                          train={**TRAIN, "epochs": 2}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    metrics = json.loads((run_dir_of(tmp_path) / "metrics.json").read_text())
    assert "f1" in metrics["metrics"]
    assert set(metrics["per_type"]) <= {"city", "person"} and metrics["per_type"]


def test_qa_from_a_folder_of_parquet_files(tmp_path, write_recipe):
    folder = tmp_path / "qa_parquet"
    folder.mkdir()
    contexts = [("john lives in london", "where does john live", "london"), ("mom is in paris", "where is mom", "paris"),
                ("dad went to new york", "where did dad go", "new york")]
    for part in range(2):
        rows = [{"id": f"{part}-{i}", "question": q, "context": c,
                 "answers": {"text": [a], "answer_start": [c.index(a)]}} for i, (c, q, a) in enumerate(contexts * 4)]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{part}.parquet")
    recipe = write_recipe(tmp_path, task={"type": "qa"}, data={"train": "qa_parquet", "validation": "qa_parquet/part-1.parquet"},
                          train={**TRAIN, "epochs": 1}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    predictions = (run_dir_of(tmp_path) / "validation_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 12
