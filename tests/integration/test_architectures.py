"""Every task on every supported architecture: train -> export (ONNX fp32 + int8, TorchScript) -> verify ->
predict (torch-free) -> serve, with offsets that slice the input.

Each architecture is a tiny random-init model with a real tokenizer of its own kind trained in code
(``assistant_builder.conformance.tiny_architectures``), built once per module. The data is small,
cased and punctuated (``King's Lane.``) so the tokenizers' offsets are put to work: every NER
entity's text is ``input[start:end]``, every QA answer is ``context[start:end]`` without white
space at either end. The models learn little in one epoch; what is checked is that nothing breaks
and that the outputs are well formed.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.cli.main import main
from assistant_builder.conformance.tiny_architectures import make_tiny_model
from assistant_builder.runtime.predictor import load_predictor
from assistant_builder.testing import write_intent_data

ARCHITECTURES = ["bert", "roberta", "xlm-roberta", "deberta-v2", "deberta-v3", "distilbert", "electra", "albert", "modernbert",
                 "mpnet"]
TASKS = ["classification", "ner", "qa"]
#: the architectures whose tokenizers lowercase (word shapes on for cased NER data)
LOWERCASING = {"bert", "distilbert", "electra", "albert", "mpnet"}
TRAIN = {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
         "early_stopping_patience": 0, "seed": 7, "freeze_word_embeddings": False, "num_threads": 1}
#: fp32 must match PyTorch; int8 of a random tiny model may be rejected (the run still succeeds, on fp32)
EXPORT = {"formats": ["onnx", "torchscript"], "max_metric_drop": 0.5, "min_agreement": 0.5,
          "options": {"onnx": {"quantize": True, "accuracy_aware": False, "prepare": "none"}}}

PEOPLE = ["Clara", "Tom", "Priya", "Jonas", "Mei", "Omar"]
PLACES = [["King's", "Lane"], ["Mill", "Street"], ["Oak", "Park"], ["New", "York"], ["Rose", "Hall"]]
TIMES = [["7", "am"], ["noon"], ["6", "pm"], ["Friday"], ["tomorrow"]]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    """Tiny models run several times faster on one thread (and on shared cores far more); the setting is restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_latency_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Latency is not under test here: each export is timed on one call (plus the batch-32 pass), not eighteen."""
    from assistant_builder.engine import verify

    monkeypatch.setattr(verify, "measure_latency", functools.partial(verify.measure_latency, warmup=0, budget_s=0.0))


@pytest.fixture(scope="module")
def base_models(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``base_models(architecture)``: that tiny model's folder, built on first use, once per module."""
    root = tmp_path_factory.mktemp("architectures")
    built: dict[str, Path] = {}

    def get(architecture: str) -> Path:
        if architecture not in built:
            built[architecture] = make_tiny_model(architecture, root / architecture)
        return built[architecture]

    return get


def ner_sentence(rng: random.Random) -> list[tuple[str, str]]:
    """A cased sentence as (word, IOB2 tag) pairs, ending with punctuation."""
    person, place, time = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(TIMES)
    words = [("Please", "O"), ("ask", "O"), (person, "B-person"), ("to", "O"), ("meet", "O"), ("me", "O"), ("at", "O")]
    words += [(w, ("B-" if i == 0 else "I-") + "place") for i, w in enumerate(place)]
    words += [(w, ("B-" if i == 0 else "I-") + "time") for i, w in enumerate(time)]
    return [*words, (rng.choice([".", "!", "?"]), "O")]


def qa_row(rng: random.Random, qid: str) -> dict[str, Any]:
    person, place, time = rng.choice(PEOPLE), " ".join(rng.choice(PLACES)), " ".join(rng.choice(TIMES))
    context = f"{person} will meet Ana at {place} at {time}. The shop on Elm Road opens at 9 am, says {person}."
    question, answer = rng.choice([(f"Where will {person} meet Ana?", place), (f"When will {person} meet Ana?", time)])
    start = context.index(f"at {answer}") + 3
    return {"id": qid, "question": question, "context": context, "answers": {"text": [answer], "answer_start": [start]}}


@pytest.fixture(scope="module")
def task_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One data folder per task (train + validation files), written once."""
    root = tmp_path_factory.mktemp("architecture-data")
    folders = {task: root / task for task in TASKS}
    for folder in folders.values():
        folder.mkdir()
    write_intent_data(folders["classification"], per_label=8, seed=1)
    rng = random.Random(2)
    for split, count in (("train", 24), ("valid", 8)):
        blocks = ["\n".join(f"{w} {t}" for w, t in ner_sentence(rng)) for _ in range(count)]
        (folders["ner"] / f"{split}.conll").write_text("\n\n".join(blocks) + "\n")
        rows = [qa_row(rng, f"{split}-{i}") for i in range(count)]
        (folders["qa"] / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folders


RECIPES = {
    "classification": {"task": {"type": "classification", "options": {"label_field": "intent"}},
                       "data": {"train": "train.jsonl", "validation": "valid.jsonl"}},
    "ner": {"task": {"type": "ner", "options": {"stride": 8}}, "data": {"train": "train.conll", "validation": "valid.conll"}},
    "qa": {"task": {"type": "qa", "options": {"stride": 8}}, "data": {"train": "train.jsonl", "validation": "valid.jsonl"}},
}
INPUTS: dict[str, list[Any]] = {
    "classification": ["set an alarm for 7", "Will it rain in Paris tomorrow?"],
    "ner": ["Please ask Clara to meet me at King's Lane at 6 pm.", "Ask Omar to meet me at Rose Hall tomorrow!",
            "Tom,meet me at Oak Park ... at noon?"],
    "qa": [{"question": "Where will Mei meet Ana?",
            "context": "Mei will meet Ana at King's Lane at noon.  The shop on Elm Road opens at 9 am, says Mei."},
           {"question": "When does the shop open?", "context": "Omar will meet Ana at Oak Park at 6 pm. The shop opens at 9 am."}],
}


def check_prediction(task: str, raw: Any, prediction: dict[str, Any]) -> None:
    """The offsets of ``prediction`` slice its input exactly; QA answers carry no white space at either end."""
    if task == "ner":
        text = raw if isinstance(raw, str) else raw["text"]
        for entity in prediction["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"], entity
            assert entity["text"] == entity["text"].strip() != "", entity
    elif task == "qa":
        answer = prediction["answer"]
        assert answer == answer.strip(), prediction
        if answer:
            assert raw["context"][prediction["start"]:prediction["end"]] == answer, prediction
    else:
        assert prediction["label"] in {"alarm", "music", "weather"}


def test_tiny_folders_load_like_hub_downloads(base_models: Any) -> None:
    """transformers' AutoTokenizer reads each folder's tokenizer configs and encodes as its tokenizer.json does; the
    pieces are of the architecture's kind; the config's pad token is the tokenizer's."""
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoTokenizer

    marks = {"roberta": "Ġ", "modernbert": "Ġ", "xlm-roberta": "▁", "deberta-v2": "▁", "deberta-v3": "▁", "albert": "▁"}
    pair = ("Where is King's Lane?", "Meet Clara at King's Lane at 7 pm.")
    for architecture in ARCHITECTURES:
        folder = base_models(architecture)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        hub = AutoTokenizer.from_pretrained(str(folder))
        assert hub(*pair)["input_ids"] == tokenizer.encode(*pair).ids, architecture
        assert hub.pad_token_id == AutoConfig.from_pretrained(str(folder)).pad_token_id, architecture
        assert hub.model_max_length == (126 if architecture in ("roberta", "xlm-roberta", "mpnet") else 128), architecture
        if architecture in marks:  # byte-level BPE and sentencepiece pieces mark the space before a word
            pieces = tokenizer.encode("Meet Clara at King's Lane").tokens
            assert any(piece.startswith(marks[architecture]) for piece in pieces), (architecture, pieces)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_task_runs_exports_predicts_and_serves(architecture: str, task: str, base_models: Any, task_data: dict[str, Path],
                                               tmp_path: Path, write_recipe: Any, capsys: pytest.CaptureFixture[str]) -> None:
    base = base_models(architecture)
    for source in task_data[task].iterdir():
        (tmp_path / source.name).symlink_to(source)
    recipe = write_recipe(tmp_path, name=f"{architecture}-{task}", model={"base": str(base), "max_length": 64},
                          train=TRAIN, export=EXPORT, output={"runs_dir": "runs"}, **RECIPES[task])
    code = main(["run", str(recipe), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()

    reports = json.loads((run_dir / "export_report.json").read_text())
    assert {(r["exporter"], r["variant"]) for r in reports} == {("onnx", "fp32"), ("onnx", "int8"), ("torchscript", "fp32")}
    for report in reports:
        if report["variant"] == "fp32":
            assert report["status"] == "verified" and report["agreement"] == 1.0, report
        else:
            assert report["status"] in ("verified", "rejected"), report

    if task == "qa":  # the run's own (PyTorch) predictions are trimmed too
        valid = [json.loads(line) for line in (tmp_path / "valid.jsonl").read_text().splitlines()]
        for row, line in zip(valid, (run_dir / "validation_predictions.jsonl").read_text().splitlines()):
            check_prediction(task, row, json.loads(line))

    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    if task == "ner":  # cased data: word shapes for the tokenizers that lowercase (ELECTRA, ALBERT: embeddings narrower than hidden)
        assert manifest["task_options"]["word_shape"] == ("on" if architecture in LOWERCASING else "off")
        assert ("shape_ids" in manifest["input_names"]) == (architecture in LOWERCASING)

    inputs = INPUTS[task]
    for variant in ("fp32", *(("int8",) if "int8" not in manifest.get("rejected", {}) else ())):
        predictions = load_predictor(run_dir, variant, threads=1).predict(inputs)
        assert len(predictions) == len(inputs)
        for raw, prediction in zip(inputs, predictions):
            check_prediction(task, raw, prediction)

    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    with TestClient(create_app(ServeSettings(path=str(run_dir), threads=1, intra_op_threads=1))) as client:
        response = client.post("/predict", json={"input": inputs[0]})
        assert response.status_code == 200, response.text
        (served,) = response.json()["predictions"]
        check_prediction(task, inputs[0], served)


def unsupported_folder(kind: str, directory: Path, tokenizer_from: Path) -> Path:
    """A model folder of an architecture the tasks cannot use: a tiny T5 (encoder-decoder), or a model type transformers does not know."""
    import shutil

    directory.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tokenizer_from / name, directory / name)
    if kind == "t5":
        from transformers import T5Config, T5Model

        T5Model(T5Config(d_model=32, num_layers=1, num_heads=2, d_kv=16, d_ff=64, vocab_size=700)).save_pretrained(directory)
    else:
        config = json.loads((tokenizer_from / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "model_type": "wizardformer"}))
    return directory


@pytest.mark.parametrize("kind", ["t5", "unknown", "too-long"])
def test_a_model_that_cannot_work_is_a_located_error_before_anything_runs(kind: str, base_models: Any, task_data: dict[str, Path],
                                                                          tmp_path: Path, write_recipe: Any,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An encoder-decoder or unknown architecture, or a max_length past a RoBERTa's positions (128, 2 reserved): exit 2 with
    the folder's config.json, its model_type and what cannot work; no traceback, no run directory."""
    if kind == "too-long":
        base, max_length = base_models("roberta"), 128
        expected = f"model.max_length = 128: expected at most 126 tokens for model_type 'roberta' ({base / 'config.json'}"
    else:
        base, max_length = unsupported_folder(kind, tmp_path / kind, base_models("bert")), 64
        reason = "'t5' is an encoder-decoder model" if kind == "t5" else "'wizardformer' is not an architecture transformers"
        expected = f"{base / 'config.json'}: model_type {reason}"
    for source in task_data["classification"].iterdir():
        (tmp_path / source.name).symlink_to(source)
    recipe = write_recipe(tmp_path, model={"base": str(base), "max_length": max_length}, train=TRAIN, export=EXPORT,
                          output={"runs_dir": "runs"}, **RECIPES["classification"])
    assert main(["run", str(recipe), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"model error: {expected}" in err, err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
