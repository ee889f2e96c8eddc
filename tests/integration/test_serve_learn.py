"""``builder serve --feedback RECIPE --learn`` on the tiny model: feedback below ``--learn-after`` starts
nothing; the item that reaches it starts an update (``builder run --from`` in its own process), whose
model is swapped in through the gated reload and then predicts the corrections; the history shows
what it learned; nothing waits afterwards; a rollback serves the parent again without relearning."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from assistant_builder.cli.main import main
from assistant_builder.labelling.serve_store import FeedbackStore
from assistant_builder.testing import recipe_toml, write_intent_data

TOKEN = {"Authorization": "Bearer t"}
#: new requests with words the toy training data never uses, and the label each should get
CORRECTIONS = {"turn off the lights": "alarm", "dim the lights please": "alarm", "switch the lights off": "alarm",
               "lights off in the kitchen": "alarm"}


def _write_recipe(recipe: Path, tiny_model_dir: Path) -> None:
    recipe.write_text(recipe_toml({
        "recipe_version": 1, "name": "learn",
        "task": {"type": "classification", "options": {"label_field": "intent"}},
        "model": {"base": str(tiny_model_dir), "max_length": 32},
        "data": {"train": "train.jsonl", "validation": "valid.jsonl", "extra": ["learn.labels.sqlite"]},
        "train": {"epochs": 6, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                  "early_stopping_patience": 0, "seed": 7, "freeze_word_embeddings": False, "min_steps": 0},
        # learning_rate_scale 1: the tiny model needs the full rate to learn the corrections in 4 epochs
        "update": {"epochs": 4, "min_replay": 16, "replay": 2.0, "max_forgetting": 0.25, "learning_rate_scale": 1.0},
        "export": {"formats": ["onnx"], "max_metric_drop": 0.1, "min_agreement": 0.9},
        "output": {"runs_dir": "runs"},
    }))


def _wait_for(client: Any, done: Any, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        learn = client.get("/info").json()["learn"]
        if done(learn):
            return learn
        time.sleep(0.3)
    raise AssertionError(f"--learn did not get there in {timeout:g} s: {learn}")


def test_learn_updates_on_the_threshold_and_swaps_the_update_in(tmp_path: Path, tiny_model_dir: Path) -> None:
    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    write_intent_data(tmp_path, per_label=12, seed=3)
    FeedbackStore(tmp_path / "learn.labels.sqlite").close()  # the recipe reads the store from its first run
    recipe = tmp_path / "learn.toml"
    _write_recipe(recipe, tiny_model_dir)
    assert main(["run", str(recipe), "-q"]) == 0
    [parent] = sorted((tmp_path / "runs").iterdir())

    settings = ServeSettings(path=str(parent), token="t", threads=1, intra_op_threads=1, feedback=str(recipe), capture="none",
                             learn=True, learn_after=len(CORRECTIONS), learn_check=0.2)
    with TestClient(create_app(settings), headers=TOKEN) as client:
        texts = list(CORRECTIONS)
        predictions = client.post("/predict", json={"inputs": texts}).json()["predictions"]
        for text, prediction in zip(texts[:-1], predictions):
            assert client.post("/feedback", json={"prediction_id": prediction["prediction_id"], "label": CORRECTIONS[text]}).status_code == 200
        learn = _wait_for(client, lambda info: (info["waiting"] or {}).get("waiting") == len(texts) - 1)
        time.sleep(1.0)  # several checks: below --learn-after, nothing starts
        learn = client.get("/info").json()["learn"]
        assert learn["running"] is None and learn["history"] == [] and learn["after"] == len(texts)

        last = client.post("/feedback", json={"prediction_id": predictions[-1]["prediction_id"], "label": CORRECTIONS[texts[-1]]})
        assert last.status_code == 200
        learn = _wait_for(client, lambda info: info["history"])
        [attempt] = learn["history"]
        assert attempt["result"] == "swapped", attempt
        assert Path(attempt["parent"]).name == parent.name and attempt["learned"]["new_examples"] == len(texts), attempt
        assert attempt["gate"]["passed"] and "items waiting" in attempt["reason"]
        info = client.get("/info").json()
        assert Path(info["serving"]["run"]).name == Path(attempt["run"]).name and Path(info["previous"]["run"]).name == parent.name, info
        after = client.post("/predict", json={"inputs": texts}).json()["predictions"]
        assert [p["label"] for p in after] == [CORRECTIONS[t] for t in texts]
        assert 'assistant_builder_learn_updates_total{result="swapped"} 1' in client.get("/metrics").text

        learn = _wait_for(client, lambda info: Path(str((info["waiting"] or {}).get("run"))).name == Path(attempt["run"]).name)
        assert learn["waiting"]["waiting"] == 0  # the update learned everything the store held
        assert client.post("/admin/rollback").json()["result"] == "rolled_back"
        time.sleep(1.0)  # the parent serves again, with the same feedback waiting: not relearned at once
        learn = client.get("/info").json()["learn"]
        assert learn["waiting"]["waiting"] == len(texts) and len(learn["history"]) == 1 and learn["running"] is None
    assert "--from" in (tmp_path / "runs" / "learn.log").read_text()
