"""The whole loop on a tiny model: serve model A with feedback, send traffic, post corrections,
``builder run`` with the store as ``data.extra``, reload the new run, and the corrected examples
are now predicted right (they were wrong before: each correction names a label A did not predict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant_builder.cli.main import main
from assistant_builder.labelling.serve_store import FeedbackStore
from assistant_builder.testing import recipe_toml, write_intent_data

TOKEN = {"Authorization": "Bearer t"}
#: new requests, in groups of the same meaning, with words the toy training data never uses
GROUPS = [["turn off the lights", "dim the lights please", "turn the lights off"],
          ["translate hello to french", "how do i say thanks in spanish", "translate good morning"]]


def write(recipe: Path, tiny_model_dir: Path, **data: Any) -> None:
    recipe.write_text(recipe_toml({
        "recipe_version": 1, "name": "loop",
        "task": {"type": "classification", "options": {"label_field": "intent"}},
        "model": {"base": str(tiny_model_dir), "max_length": 32},
        "data": {"train": "train.jsonl", "validation": "valid.jsonl", **data},
        "train": {"epochs": 6, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                  "early_stopping_patience": 0, "seed": 7, "freeze_word_embeddings": False, "min_steps": 0},
        "export": {"formats": ["onnx"], "max_metric_drop": 0.1, "min_agreement": 0.9},
        "output": {"runs_dir": "runs"},
    }))


def test_serve_feedback_retrain_reload(tmp_path: Path, tiny_model_dir: Path) -> None:
    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    write_intent_data(tmp_path, per_label=12, seed=3)
    recipe = tmp_path / "loop.toml"
    write(recipe, tiny_model_dir)
    assert main(["run", str(recipe), "-q"]) == 0
    [run_a] = sorted((tmp_path / "runs").iterdir())

    settings = ServeSettings(path=str(run_a), token="t", threads=1, intra_op_threads=1, feedback=str(recipe), capture="all")
    with TestClient(create_app(settings), headers=TOKEN) as client:
        labels = client.get("/info").json()["labels"]
        wanted: dict[str, str] = {}
        for group in GROUPS:
            predictions = client.post("/predict", json={"inputs": group}).json()["predictions"]
            unused = [label for label in labels if label not in {p["label"] for p in predictions}]
            target = (unused or [label for label in labels if label != predictions[0]["label"]])[0]
            for text, prediction in zip(group, predictions):
                response = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], "label": target})
                assert response.status_code == 200, response.text
                wanted[text] = target
        assert all(client.post("/predict", json={"input": t}).json()["predictions"][0]["label"] != label
                   for t, label in wanted.items())  # model A gets every one of them wrong

        write(recipe, tiny_model_dir, extra=["loop.labels.sqlite"])  # the user adds the store to the recipe
        assert main(["run", str(recipe), "-q"]) == 0
        run_b = max((tmp_path / "runs").iterdir(), key=lambda p: p.name)
        assert run_b != run_a
        provenance = json.loads((run_b / "provenance.json").read_text())
        by_source = provenance["training_examples"]["by_source"]
        assert by_source[str(tmp_path / "loop.labels.sqlite")] == len(wanted)
        assert by_source[str(tmp_path / "train.jsonl")] == len((tmp_path / "train.jsonl").read_text().splitlines())
        assert provenance["data"]["extra"][0]["added"] == len(wanted)

        reload = client.post("/admin/reload", json={"path": str(run_b)})
        assert reload.status_code == 200 and reload.json()["result"] == "swapped", reload.text
        after = client.post("/predict", json={"inputs": list(wanted)}).json()
        assert after["model"]["version"] == reload.json()["to"]["version"]
        assert {t: p["label"] for t, p in zip(wanted, after["predictions"])} == wanted
    with FeedbackStore(tmp_path / "loop.labels.sqlite") as store:
        assert {i.payload["text"]: i.gold for i in store.items() if i.status == "labelled"} == wanted
