"""A run's ``model/`` folder is a Hugging Face model: plain transformers loads it and predicts as we do.

Each test trains a tiny random BERT for one task, then a fresh interpreter that imports no
assistant-builder module loads ``RUN/model`` with transformers alone (``pipeline`` and the
``AutoModelFor*`` classes) and runs it on the validation features. Decoding those outputs with the
task plugin must give back ``validation_predictions.jsonl`` (written from the trained model before
it was saved), and the pipelines (text and token classification) must agree with it too.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant_builder.cli.main import main
from assistant_builder.engine.reexport import saved_task_options
from assistant_builder.plugins import make_plugin_manager
from assistant_builder.recipe.loader import load_run_recipe
from assistant_builder.registry import build_registry
from assistant_builder.testing import write_intent_data
from assistant_builder.tokenization import load_tokenizer, pad_token_id

TRAIN = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
         "early_stopping_patience": 0, "seed": 7}
EXPORT = {"formats": ["onnx"], "max_metric_drop": 0.2, "min_agreement": 0.5}

# Runs in a fresh interpreter: transformers only. Reads a job (JSON) and prints the results (JSON).
HF_SCRIPT = r"""
import json, sys
import numpy as np
import torch
from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification, AutoTokenizer, pipeline)

job = json.load(open(sys.argv[1]))
path, task = job["model"], job["task"]
auto = {"classification": AutoModelForSequenceClassification, "ner": AutoModelForTokenClassification,
        "qa": AutoModelForQuestionAnswering}[task]
model = auto.from_pretrained(path, trust_remote_code=(task == "classification")).eval()
outputs = {name: [] for name in job["output_names"]}
with torch.no_grad():
    for feature in job["features"]:
        ids = torch.tensor([feature["input_ids"]])
        result = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                       token_type_ids=torch.tensor([feature["token_type_ids"]]))
        for name in outputs:
            outputs[name].append(getattr(result, name)[0].tolist())
tokenizer = AutoTokenizer.from_pretrained(path)
result = {"class": type(model).__name__, "outputs": outputs,
          "ids": [tokenizer(*text)["input_ids"] if isinstance(text, list) else tokenizer(text)["input_ids"] for text in job["texts"]]}
if task == "classification":
    classify = pipeline("text-classification", model=path, trust_remote_code=True)
    result["pipeline"] = classify(job["texts"], top_k=None)
elif task == "ner":
    tag = pipeline("token-classification", model=path, aggregation_strategy="none", ignore_labels=[])
    result["pipeline"] = [[{k: (float(v) if k == "score" else v) for k, v in t.items()} for t in tokens]
                          for tokens in tag(job["texts"])]
result["imported_assistant_builder"] = sorted(m for m in sys.modules if m.split(".")[0].startswith("assistant_builder"))
print(json.dumps(result, default=float))
"""


def run_hf(tmp_path: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Run ``HF_SCRIPT`` on ``job`` in a fresh interpreter (its own modules cache for remote code)."""
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", HF_SCRIPT, str(tmp_path / "job.json")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported_assistant_builder"] == []
    return result


def train(directory: Path, write_recipe: Any, export: dict[str, Any] | None = None, **sections: Any) -> Path:
    recipe = write_recipe(directory, train=TRAIN, export=export or EXPORT, output={"runs_dir": "runs"}, **sections)
    assert main(["run", str(recipe), "-q"]) == 0
    (run_dir,) = sorted((directory / "runs").iterdir())
    return run_dir


def classification_run(directory: Path, write_recipe: Any, **export: Any) -> Path:
    write_intent_data(directory, per_label=24, seed=1)
    return train(directory, write_recipe, {**EXPORT, **export}, data={"train": "train.jsonl", "validation": "valid.jsonl"},
                 task={"type": "classification", "options": {"label_field": "intent", "top_k": 3}})


def ner_run(directory: Path, write_recipe: Any, **export: Any) -> Path:
    write_conll(directory / "train.conll", 120, seed=1)
    write_conll(directory / "valid.conll", 30, seed=2)
    # argmax decoding: the token-classification pipeline gives each sub-token's argmax tag only, so the
    # test can rebuild our entities from it (best_path needs every tag's score)
    return train(directory, write_recipe, {**EXPORT, **export}, task={"type": "ner", "options": {"decoder": "argmax"}},
                 data={"train": "train.conll", "validation": "valid.conll"})


def qa_run(directory: Path, write_recipe: Any, **export: Any) -> Path:
    write_squad(directory)
    return train(directory, write_recipe, {**EXPORT, **export}, model={"max_length": 64}, task={"type": "qa", "options": {"stride": 8}},
                 data={"train": "train.jsonl", "validation": "valid.jsonl"})


class Validation:
    """The run's validation examples, features and predictions, rebuilt as the engine made them."""

    def __init__(self, run_dir: Path) -> None:
        recipe = load_run_recipe(run_dir).recipe
        self.task = build_registry(make_plugin_manager()).create("task", recipe.task.type)
        # the options the run decided with (task_options.json: resolved choices, fitted temperature)
        self.options = saved_task_options(run_dir, self.task, self.task.Options.model_validate(recipe.task.options))
        data = self.task.load_data(recipe.data, self.options)
        self.examples, self.labels = data.validation, data.labels
        self.tokenizer = load_tokenizer(run_dir / "model", recipe.model.max_length)
        self.pad_id = pad_token_id(self.tokenizer)
        self.features = self.task.encode(self.examples, self.tokenizer, self.labels, self.options, recipe.model.max_length)
        self.predictions = [json.loads(line) for line in (run_dir / "validation_predictions.jsonl").read_text().splitlines()]

    def job(self, run_dir: Path, texts: list[Any]) -> dict[str, Any]:
        features = [{"input_ids": list(f["input_ids"]), "token_type_ids": list(f.get("token_type_ids") or [0] * len(f["input_ids"]))}
                    for f in self.features]
        return {"model": str(run_dir / "model"), "task": self.task.name, "output_names": list(self.task.output_names),
                "features": features, "texts": texts}

    def decode(self, outputs: dict[str, list[Any]]) -> list[dict[str, Any]]:
        arrays = {name: [np.asarray(v, dtype=np.float32) for v in values] for name, values in outputs.items()}
        return self.task.decode(arrays, self.features, self.examples, self.labels, self.options)

    def assert_same_predictions(self, predictions: list[dict[str, Any]]) -> None:
        assert len(predictions) == len(self.predictions)
        for ours, theirs in zip(self.predictions, predictions):
            assert self.task.prediction_key(theirs) == self.task.prediction_key(ours), (ours, theirs)
            if "score" in ours:
                assert theirs["score"] == pytest.approx(ours["score"], abs=1e-4)


def assert_standard_folder(model_dir: Path) -> dict[str, Any]:
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= names
    assert not [n for n in names if n.endswith("_head.safetensors") or n.endswith("_head.json")]
    return json.loads((model_dir / "config.json").read_text())


def assert_onnx_bundle_describes_the_model(run_dir: Path, config: dict[str, Any]) -> None:
    """The ONNX bundle carries the same labels and tokenizer configs (Optimum's layout), without custom code."""
    bundle = run_dir / "exports" / "onnx"
    bundle_config = json.loads((bundle / "config.json").read_text())
    assert bundle_config["model_type"] == config["model_type"] and bundle_config.get("id2label") == config.get("id2label")
    assert "auto_map" not in bundle_config
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        assert (bundle / name).read_text() == (run_dir / "model" / name).read_text()


def test_classification_folder_loads_with_transformers_pipeline(tmp_path, write_recipe):
    run_dir = classification_run(tmp_path, write_recipe)
    config = assert_standard_folder(run_dir / "model")
    assert config["architectures"] == ["PooledEncoderForSequenceClassification"] and config["pooling"] == "mean"
    assert (run_dir / "model" / "modeling_pooled_encoder.py").is_file()
    valid = Validation(run_dir)
    texts = [e.text for e in valid.examples]
    result = run_hf(tmp_path, valid.job(run_dir, texts))

    assert result["class"] == "PooledEncoderForSequenceClassification"
    valid.assert_same_predictions(valid.decode(result["outputs"]))
    assert result["ids"] == [valid.tokenizer.encode(t).ids for t in texts]  # AutoTokenizer = our tokenizer
    # the pipeline's scores are softmax(logits): ours before the run's fitted temperature
    valid.options = valid.options.model_copy(update={"temperature": 1.0})
    for ours, ranked in zip(valid.decode(result["outputs"]), result["pipeline"]):
        assert [r["label"] for r in ranked] == [t["label"] for t in ours["top"]]
        assert [r["score"] for r in ranked] == pytest.approx([t["score"] for t in ours["top"]], abs=1e-4)
    assert_onnx_bundle_describes_the_model(run_dir, config)


NER_PATTERNS = ["wake me up at {time} {date}", "what is the weather in {location} {date}", "call {person} {date}",
                "remind me {date} to call {person}", "send a message to {person} in {location}", "tell {person} hello"]
NER_VALUES = {"location": [["london"], ["paris"], ["new", "york"]], "person": [["john"], ["mom"], ["dad"]],
              "date": [["tomorrow"], ["today"], ["tonight"]]}


def write_conll(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    blocks = []
    for _ in range(count):
        words: list[tuple[str, str]] = []
        for item in rng.choice(NER_PATTERNS).split():
            if not item.startswith("{"):
                words.append((item, "O"))
                continue
            slot = item[1:-1]
            value = [str(rng.randint(1, 12)), rng.choice(["am", "pm"])] if slot == "time" else rng.choice(NER_VALUES[slot])
            words += [(w, ("B-" if i == 0 else "I-") + slot) for i, w in enumerate(value)]
        blocks.append("\n".join(f"{w} {t}" for w, t in words))
    path.write_text("\n\n".join(blocks) + "\n")


def test_ner_folder_loads_with_transformers_pipeline(tmp_path, write_recipe):
    from assistant_builder.toolkit.tags import repair
    from assistant_builder.toolkit.tags import spans_from_tags as spans

    run_dir = ner_run(tmp_path, write_recipe)
    config = assert_standard_folder(run_dir / "model")
    assert config["architectures"] == ["BertForTokenClassification"] and config["id2label"]["0"] == "O"
    valid = Validation(run_dir)
    texts = [e.text for e in valid.examples]
    result = run_hf(tmp_path, valid.job(run_dir, texts))

    assert result["class"] == "BertForTokenClassification"
    valid.assert_same_predictions(valid.decode(result["outputs"]))
    assert result["ids"] == [valid.tokenizer.encode(t).ids for t in texts]
    # the pipeline's tag for each word's first sub-token, repaired to IOB2 as our decoder does, gives our entities
    for example, ours, tokens in zip(valid.examples, valid.predictions, result["pipeline"]):
        by_start = {t["start"]: t for t in tokens}
        tags = repair([by_start[start]["entity"] for start, _ in example.offsets])
        scores = [by_start[start]["score"] for start, _ in example.offsets]
        entities = [(label, example.offsets[a][0], example.offsets[b - 1][1], float(np.mean(scores[a:b]))) for a, b, label in spans(tags)]
        assert [e[:3] for e in entities] == [(e["label"], e["start"], e["end"]) for e in ours["entities"]]
        assert [e[3] for e in entities] == pytest.approx([e["score"] for e in ours["entities"]], abs=1e-4)
    assert_onnx_bundle_describes_the_model(run_dir, config)


QA_FACTS = [("the alarm is at {h} am", "when is the alarm", "{h} am"),
            ("the weather in {city} is {weather}", "what is the weather in {city}", "{weather}"),
            ("please buy {item} for {who}", "what should i buy for {who}", "{item}")]


def write_squad(directory: Path) -> None:
    rng = random.Random(3)
    for split, count in (("train", 60), ("valid", 12)):
        rows = []
        for i in range(count):
            values = {"h": str(rng.randint(1, 12)), "city": rng.choice(["london", "paris"]), "weather": rng.choice(["rain", "sun", "cold"]),
                      "who": rng.choice(["mom", "dad", "john"]), "item": rng.choice(["milk", "eggs", "bread"])}
            facts = rng.sample(QA_FACTS, 3)
            context = " . ".join(f[0].format(**values) for f in facts) + " ."
            sentence, question, answer = (part.format(**values) for part in facts[0])
            start = context.index(sentence) + sentence.index(answer)
            rows.append({"id": f"{split}-{i}", "question": question, "context": context,
                         "answers": {"text": [answer], "answer_start": [start]}})
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_qa_folder_loads_with_auto_model_for_question_answering(tmp_path, write_recipe):
    run_dir = qa_run(tmp_path, write_recipe)
    config = assert_standard_folder(run_dir / "model")
    assert config["architectures"] == ["BertForQuestionAnswering"]
    valid = Validation(run_dir)
    pairs = [[e.question, e.context] for e in valid.examples]
    result = run_hf(tmp_path, valid.job(run_dir, pairs))

    assert result["class"] == "BertForQuestionAnswering"
    valid.assert_same_predictions(valid.decode(result["outputs"]))
    assert result["ids"] == [valid.tokenizer.encode(q, c).ids for q, c in pairs]  # transformers 5 has no QA pipeline
    assert_onnx_bundle_describes_the_model(run_dir, config)


def test_our_loader_still_reads_the_folder_and_legacy_folders(tmp_path, tiny_model_dir):
    """``Task.load_model`` reads the new layout and the encoder + ``*_head`` layout of earlier versions."""
    import torch
    from safetensors.torch import save_file

    from assistant_builder_tasks.classification.model import build_classifier, load_classifier

    model = build_classifier(tiny_model_dir, 3, "cls", 0.1, None, 0.0).eval()
    ids = torch.tensor([[2, 60, 61, 62, 3], [2, 70, 71, 3, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    with torch.no_grad():
        expected = model(**batch)["logits"]
        model.save_pretrained(tmp_path / "new", ["a", "b", "c"])
        assert torch.equal(load_classifier(tmp_path / "new")(**batch)["logits"], expected)
        legacy = tmp_path / "legacy"
        model.encoder.save_pretrained(legacy)
        save_file({k: v.contiguous() for k, v in model.classifier.state_dict().items()}, str(legacy / "classification_head.safetensors"))
        (legacy / "classification_head.json").write_text(json.dumps({"pooling": "cls", "labels": ["a", "b", "c"], "num_labels": 3}))
        assert torch.equal(load_classifier(legacy)(**batch)["logits"], expected)


@pytest.mark.slow
def test_onnx_bundles_load_with_optimum(tmp_path, write_recipe, capsys):
    """``bench/optimum_check.py`` on one run per task: Optimum's ORTModelFor* load the bundles and agree with our
    runtime, and transformers 4.57 loads the model folders too.

    The check builds (once) a separate environment with Optimum and transformers 4.57 from the
    package index; without one the test is skipped, saying why.
    """
    runs = []
    for name, make in (("classification", classification_run), ("ner", ner_run), ("qa", qa_run)):
        (tmp_path / name).mkdir()
        runs.append(str(make(tmp_path / name, write_recipe, options={"onnx": {"quantize": True}})))
    script = Path(__file__).resolve().parents[2] / "bench" / "optimum_check.py"
    done = subprocess.run([sys.executable, str(script), *runs, "--inputs", "12"], capture_output=True, text=True, timeout=1800)
    if done.returncode == 3:
        pytest.skip(f"no Optimum environment could be built: {done.stderr.strip()[-500:]}")
    with capsys.disabled():
        print("\n" + done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for name in ("ORTModelForSequenceClassification", "ORTModelForTokenClassification", "ORTModelForQuestionAnswering"):
        assert done.stdout.count(name) == 2  # model.onnx and model.int8.onnx
    # and RUN/model with that environment's transformers 4.57
    for name in ("PooledEncoderForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering"):
        assert f"| model/ (PyTorch) | {name} |" in done.stdout
