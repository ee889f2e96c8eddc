"""The torch-free edge runtime on a real tiny bundle, built here without the engine.

The fixture builds a WordPiece tokenizer and a 2-layer BERT classifier (mean pooling + Linear),
exports it to ONNX (fp32, plus a dynamically quantised int8 copy) and writes the bundle files
with ``write_bundle_files``, exactly as a run does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from assistant_builder.cli import predict as predict_cli
from assistant_builder.contracts import ExportedArtifact
from assistant_builder.errors import BuilderError, ConfigError, DataError, ModelError, PluginError
from assistant_builder.registry import Registry
from assistant_builder.runtime import Predictor, load_predictor
from assistant_builder.runtime.bundle import read_bundle

LABELS = ["greeting", "weather", "music"]
WORDS = ["hello", "hi", "there", "good", "morning", "what", "is", "the", "weather", "like", "today", "rain",
         "sun", "play", "some", "music", "song", "jazz", "please", "loud", "##s", "##ing", "tomorrow", "in", "paris"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]
MAX_LENGTH = 16
TEXTS = [
    "hello",
    "what is the weather like today in paris please",
    "play some jazz",
    "good morning there",
    "rain tomorrow",
    "play music play music play music play music play music play music",  # longer than MAX_LENGTH
    "hi unknownword",
]
FORBIDDEN = ("torch", "transformers", "peft", "onnx", "accelerate", "sklearn")


def make_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.enable_padding(length=128)  # like some shipped tokenizer.json files; the runtime must undo it
    return tokenizer


def make_model():  # type: ignore[no-untyped-def]
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=64)
            self.encoder = BertModel(config, add_pooling_layer=False)
            self.head = torch.nn.Linear(16, len(LABELS))

        def forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
            outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            hidden = outputs.last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(pooled)

    return Classifier().eval()


def export_onnx(model, path: Path, input_names: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    import torch

    ids = torch.tensor([[2, 4, 5, 3], [2, 6, 3, 0]])
    inputs = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    with warnings.catch_warnings():  # tracer warnings about shape checks that hold for every input here
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(inputs[n] for n in input_names), str(path), input_names=list(input_names),
                          output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}}, opset_version=17, dynamo=False)


def write_bundle(directory: Path, artifacts: list[ExportedArtifact]) -> None:
    from assistant_builder.engine.exporting import write_bundle_files
    from assistant_builder_tasks.classification import ClassificationTask

    task = ClassificationTask()
    write_bundle_files(directory, exporter="onnx", task=task, task_options=task.Options(top_k=2), labels=LABELS,
                       max_length=MAX_LENGTH, pad_id=0, tokenizer=make_tokenizer(), artifacts=artifacts, reports=[],
                       base_model="tiny-bert")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run directory with exports/onnx (fp32 + int8), the torch model and its reference scores."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from assistant_builder.tokenization import prepare_tokenizer

    run_dir = tmp_path_factory.mktemp("run")
    bundle = run_dir / "exports" / "onnx"
    bundle.mkdir(parents=True)
    model = make_model()
    names = ("input_ids", "attention_mask", "token_type_ids")
    export_onnx(model, bundle / "model.onnx", names)
    quantize_dynamic(str(bundle / "model.onnx"), str(bundle / "model.int8.onnx"), weight_type=QuantType.QInt8)
    write_bundle(bundle, [ExportedArtifact("onnx", "fp32", bundle / "model.onnx"),
                          ExportedArtifact("onnx", "int8", bundle / "model.int8.onnx")])

    tokenizer = prepare_tokenizer(make_tokenizer(), MAX_LENGTH)
    reference = []
    with torch.no_grad():
        for text in TEXTS:  # one at a time: no padding in the reference
            encoding = tokenizer.encode(text)
            ids = torch.tensor([encoding.ids])
            logits = model(ids, torch.ones_like(ids), torch.tensor([encoding.type_ids]))
            reference.append(torch.softmax(logits.double(), dim=-1)[0].numpy())
    return {"run": run_dir, "bundle": bundle, "model": model, "reference": reference}


def copy_bundle(tiny: dict, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(tiny["bundle"], target)
    return target


def edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


# --- predictions ---------------------------------------------------------------------------


def test_predictions_match_torch_model_in_one_batch(tiny: dict) -> None:
    predictor = load_predictor(tiny["run"], "fp32")
    predictions = predictor.predict(TEXTS, batch_size=32)
    assert len(predictions) == len(TEXTS)
    for prediction, probs in zip(predictions, tiny["reference"]):
        assert prediction["label"] == LABELS[int(np.argmax(probs))]
        assert prediction["score"] == pytest.approx(float(probs.max()), abs=1e-4)
        assert len(prediction["top"]) == 2  # task_options.top_k from the manifest
        for entry in prediction["top"]:
            assert entry["score"] == pytest.approx(float(probs[LABELS.index(entry["label"])]), abs=1e-4)


def test_order_is_preserved_across_small_batches(tiny: dict) -> None:
    predictor = load_predictor(tiny["bundle"], "fp32")
    texts = list(reversed(TEXTS)) + TEXTS
    one_by_one = [predictor.predict([text])[0] for text in texts]
    batched = predictor.predict(texts, batch_size=3)
    assert [p["label"] for p in batched] == [p["label"] for p in one_by_one]
    for a, b in zip(batched, one_by_one):
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_json_object_inputs_and_empty_input_list(tiny: dict) -> None:
    predictor = load_predictor(tiny["bundle"], "fp32")
    assert predictor.predict([{"text": "play some jazz"}])[0] == predictor.predict(["play some jazz"])[0]
    assert predictor.predict([]) == []


def test_bad_input_names_its_position(tiny: dict) -> None:
    predictor = load_predictor(tiny["bundle"])
    with pytest.raises(DataError, match="input 2: expected non-empty text"):
        predictor.predict(["hello", "   "])
    with pytest.raises(DataError, match="input 1: expected a string or an object"):
        predictor.predict([{"txt": "hello"}])


def test_top_k_override_is_validated(tiny: dict) -> None:
    predictions = load_predictor(tiny["bundle"], options={"top_k": 3}).predict(["hello"])
    assert len(predictions[0]["top"]) == 3
    with pytest.raises(ConfigError, match="task.top_k"):
        load_predictor(tiny["bundle"], options={"top_k": 0})
    with pytest.raises(ConfigError, match="task.no_such_option"):
        load_predictor(tiny["bundle"], options={"no_such_option": 1})


def test_info(tiny: dict) -> None:
    info = load_predictor(tiny["run"]).info
    assert info["task"] == "classification"
    assert info["labels"] == LABELS
    assert info["variant"] == "int8"
    assert info["variants"] == ["fp32", "int8"]
    assert info["metrics"] == {}  # written with reports=[]
    assert info["created"] and info["base_model"] == "tiny-bert"


def test_graph_without_token_type_ids_gets_only_its_inputs(tiny: dict, tmp_path: Path) -> None:
    bundle = tmp_path / "two_inputs"
    bundle.mkdir()
    export_onnx(tiny["model"], bundle / "model.onnx", ("input_ids", "attention_mask"))
    write_bundle(bundle, [ExportedArtifact("onnx", "fp32", bundle / "model.onnx")])
    predictor = load_predictor(bundle)
    assert predictor.runner.input_names == ["input_ids", "attention_mask"]
    predictions = predictor.predict(TEXTS)
    for prediction, probs in zip(predictions, tiny["reference"]):
        assert prediction["score"] == pytest.approx(float(probs.max()), abs=1e-4)


# --- variants and paths ----------------------------------------------------------------------


def test_variant_selection(tiny: dict, tmp_path: Path) -> None:
    assert load_predictor(tiny["run"]).variant == "int8"
    assert load_predictor(tiny["run"], "fp32").variant == "fp32"
    int8 = load_predictor(tiny["run"], "int8")
    assert int8.variant == "int8"
    assert "DynamicQuantizeLinear" in {node.op_type for node in _graph_nodes(tiny["bundle"] / "model.int8.onnx")}
    assert [p["label"] for p in int8.predict(TEXTS)]  # runs and decodes
    with pytest.raises(ModelError, match=r"has no 'fp16' model; expected one of: auto, fp32, int8"):
        load_predictor(tiny["run"], "fp16")

    fp32_only = copy_bundle(tiny, tmp_path)
    edit_manifest(fp32_only, models={"fp32": "model.onnx"})
    assert load_predictor(fp32_only).variant == "fp32"
    with pytest.raises(ModelError, match=r"has no 'int8' model; expected one of: auto, fp32$"):
        load_predictor(fp32_only, "int8")


def _graph_nodes(path: Path) -> list:
    """The nodes of an ONNX graph (the test process may import onnx; the runtime never does)."""
    import onnx

    return list(onnx.load(str(path)).graph.node)


def add_prepared_graph(bundle: Path, variant: str, **entry_changes: object) -> dict:
    from assistant_builder.runtime.sessions import prepare_graph

    model_file = json.loads((bundle / "manifest.json").read_text())["models"][variant]
    entry = {**prepare_graph(bundle / model_file), **entry_changes}
    edit_manifest(bundle, model_details={variant: {"prepared": entry}})
    return entry


def test_prepared_graph_is_opened_and_predicts_the_same(tiny: dict, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    entry = add_prepared_graph(bundle, "int8")
    predictor = load_predictor(bundle)  # auto: int8
    assert predictor.runner.source == bundle / entry["graph"]
    portable = load_predictor(tiny["bundle"], "int8")
    assert portable.runner.source == tiny["bundle"] / "model.int8.onnx"
    for ours, theirs in zip(predictor.predict(TEXTS), portable.predict(TEXTS)):
        assert ours["label"] == theirs["label"]
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-5)
    assert load_predictor(bundle, "fp32").runner.source == bundle / "model.onnx"  # no prepared graph for fp32


@pytest.mark.parametrize("spoil", ["other onnxruntime", "graph missing", "weights missing", "graph outside the bundle"])
def test_prepared_graph_that_cannot_be_used_falls_back_to_the_portable_graph(tiny: dict, tmp_path: Path, spoil: str) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    entry = add_prepared_graph(bundle, "int8", **({"onnxruntime": "0.0.1"} if spoil == "other onnxruntime" else {}))
    if spoil == "graph missing":
        (bundle / entry["graph"]).unlink()
    if spoil == "weights missing":
        (bundle / entry["weights"]).unlink()
    if spoil == "graph outside the bundle":
        (tmp_path / "elsewhere.prepared").write_bytes((bundle / entry["graph"]).read_bytes())
        edit_manifest(bundle, model_details={"int8": {"prepared": {**entry, "graph": "../elsewhere.prepared"}}})
    predictor = load_predictor(bundle)
    assert predictor.runner.source == bundle / "model.int8.onnx"
    assert [p["label"] for p in predictor.predict(TEXTS)] == [p["label"] for p in load_predictor(tiny["bundle"]).predict(TEXTS)]


def test_run_dir_bundle_dir_and_manifest_path_load_the_same_bundle(tiny: dict) -> None:
    expected = tiny["bundle"]
    assert read_bundle(tiny["run"]).directory == expected
    assert read_bundle(expected).directory == expected
    assert read_bundle(expected / "manifest.json").directory == expected


def test_missing_paths_and_run_dirs_without_onnx(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist; expected a run directory or an exported ONNX bundle"):
        read_bundle(tmp_path / "nope")
    run = tmp_path / "run"
    (run / "exports" / "torchscript").mkdir(parents=True)
    with pytest.raises(ModelError, match=r"has no exports/onnx bundle \(it has: torchscript") as caught:
        read_bundle(run)
    assert "export.formats including 'onnx'" in (caught.value.hint or "")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="is neither a run directory"):
        read_bundle(empty)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        read_bundle(empty / "notes.txt")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bundle_version": 2}, "bundle_version: expected 1, got 2"),
        ({"task": None, "labels": None}, r"(?s)2 problems\):.*task: expected a task name, but the key is missing.*labels:"),
        ({"labels": [1, 2]}, r"labels: expected a list of strings \(empty for tasks without labels, e.g. qa\), got \[1, 2\]"),
        ({"max_length": "16"}, "max_length: expected a positive integer"),
        ({"exporter": "torchscript"}, "exporter: expected the string 'onnx'"),
        ({"models": {"fp32": "missing.onnx"}}, "models.fp32: model file missing.onnx is missing"),
        ({"models": {}}, "models: expected a non-empty object"),
    ],
)
def test_bad_manifest(tiny: dict, tmp_path: Path, changes: dict, expected: str) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    edit_manifest(bundle, **changes)
    with pytest.raises(ModelError, match=expected) as caught:
        read_bundle(bundle)
    assert str(bundle / "manifest.json") in caught.value.message


def test_unreadable_manifest_tokenizer_and_model(tiny: dict, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    (bundle / "manifest.json").write_text('{"bundle_version": 1,')
    with pytest.raises(ModelError, match="expected JSON, got a parse error at line 1"):
        read_bundle(bundle)

    bundle = copy_bundle(tiny, tmp_path / "b")
    (bundle / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="tokenizer.json: expected next to the manifest"):
        read_bundle(bundle)

    bundle = copy_bundle(tiny, tmp_path / "c")
    (bundle / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="ONNX Runtime could not load the model"):
        load_predictor(bundle, "fp32")


def test_unknown_task_lists_available(tiny: dict, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    edit_manifest(bundle, task="classificaton")
    with pytest.raises(PluginError, match="unknown task 'classificaton'; did you mean 'classification'"):
        load_predictor(bundle)
    with pytest.raises(PluginError, match="available: none"):
        Predictor(read_bundle(tiny["bundle"]), registry=Registry())


def test_stored_task_options_that_no_longer_validate(tiny: dict, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit_manifest(bundle, task_options={**manifest["task_options"], "renamed_option": True})
    with pytest.raises(ModelError, match="task options invalid for task 'classification': task_options.renamed_option"):
        load_predictor(bundle)


# --- builder predict ---------------------------------------------------------------------------


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="builder")
    predict_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["predict", *argv])


def test_cli_texts(tiny: dict, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args(str(tiny["run"]), "hello", "play some jazz", "--variant", "fp32", "--top-k", "1")
    assert args.handler is predict_cli.run
    assert predict_cli.run(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == ["hello", "play some jazz"]
    expected = load_predictor(tiny["run"], "fp32").predict(["hello", "play some jazz"])
    for line, prediction in zip(lines, expected):
        assert line["label"] == prediction["label"]
        assert line["score"] == pytest.approx(prediction["score"])
        assert len(line["top"]) == 1


def test_cli_jsonl_input(tiny: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "texts.jsonl"
    data.write_text('"hello"\n\n{"text": "rain tomorrow", "id": 7}\n"play some jazz"\n', encoding="utf-8")
    assert predict_cli.run(parse_args(str(tiny["bundle"]), "good morning", "--input", str(data), "--batch-size", "2")) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == ["good morning", "hello", {"text": "rain tomorrow", "id": 7}, "play some jazz"]
    assert all(set(line) == {"input", "label", "score", "top"} for line in lines)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('"hello"\n{"text": "hi"\n', r"texts.jsonl:2: expected a JSON string or object, got invalid JSON"),
        ('"hello"\n\n42\n', r"texts.jsonl:3: expected a JSON string or object such as .*got int"),
        ('"hello"\n{"txt": "hi"}\n', r"texts.jsonl:2: expected a string or an object with a 'text' string"),
        ('""\n', r"texts.jsonl:1: expected non-empty text"),
    ],
)
def test_cli_bad_jsonl_names_file_and_line(tiny: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           content: str, expected: str) -> None:
    data = tmp_path / "texts.jsonl"
    data.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=expected):
        predict_cli.run(parse_args(str(tiny["bundle"]), "--input", str(data)))
    assert capsys.readouterr().out == ""  # nothing printed before the error


def test_console_script_quick_exit_keeps_all_output_and_the_exit_code(tiny: dict, tmp_path: Path) -> None:
    """``builder predict`` ends with os._exit after flushing: a redirected stdout must still hold every line."""
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps(f"{TEXTS[i % len(TEXTS)]} {i}") + "\n" for i in range(300)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "assistant_builder.cli.main", "predict", str(tiny["run"])]
    with out.open("w", encoding="utf-8") as stdout:  # a file, so stdout is block-buffered
        done = subprocess.run([*command, "--input", str(texts)], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["input"] for line in lines] == [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(300)]
    failed = subprocess.run([*command[:-1], str(tmp_path / "nowhere"), "hi"], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "nowhere: does not exist" in failed.stderr and failed.stdout == ""


def test_cli_errors(tiny: dict, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no inputs: expected texts after the path or --input"):
        predict_cli.run(parse_args(str(tiny["bundle"])))
    with pytest.raises(DataError, match="no such file"):
        predict_cli.run(parse_args(str(tiny["bundle"]), "--input", str(tmp_path / "missing.jsonl")))
    with pytest.raises(ModelError, match="has no 'int4' model"):
        predict_cli.run(parse_args(str(tiny["bundle"]), "hi", "--variant", "int4"))
    with pytest.raises(SystemExit):
        parse_args(str(tiny["bundle"]), "hi", "--top-k", "0")
    assert issubclass(DataError, BuilderError) and issubclass(ModelError, BuilderError)


def failed_run(tiny: dict, tmp_path: Path, fp32_passed: bool = False, int8_passed: bool = True) -> Path:
    """A copy of the tiny run whose manifest records the export verification of each variant."""
    run_dir = tmp_path / "run-20260101-000000"
    bundle = run_dir / "exports" / "onnx"
    shutil.copytree(tiny["bundle"], bundle)
    (run_dir / "export_report.md").write_text("# Export report\n", encoding="utf-8")
    failure = "predictions agree with PyTorch on 90.00% of examples; required: 99.00% (export.min_agreement)"
    edit_manifest(bundle, verification={"fp32": {"passed": fp32_passed, "failures": [] if fp32_passed else [failure]},
                                        "int8": {"passed": int8_passed, "failures": [] if int8_passed else [failure]}})
    return run_dir


def test_cli_refuses_a_run_whose_fp32_export_failed_verification(tiny: dict, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from assistant_builder.cli.main import main

    run_dir = failed_run(tiny, tmp_path)
    for variant in ("auto", "int8", "fp32"):  # int8 passed, but the run's reference export did not
        with pytest.raises(ModelError) as refused:
            predict_cli.run(parse_args(str(run_dir), "hello", "--variant", variant))
        assert str(run_dir) in refused.value.message and "fp32 model: predictions agree with PyTorch on 90.00%" in refused.value.message
        assert "--allow-unverified" in refused.value.hint and str(run_dir / "export_report.md") in refused.value.hint
    assert capsys.readouterr().out == ""
    assert main(["predict", str(run_dir / "exports" / "onnx"), "hello"]) == 2  # as other model errors
    captured = capsys.readouterr()
    assert captured.out == "" and "expected an export that passed verification" in captured.err and str(run_dir) in captured.err
    # the override predicts, with a warning on stderr
    assert main(["predict", str(run_dir), "hello", "--allow-unverified", "--variant", "fp32"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["label"] == load_predictor(tiny["run"], "fp32").predict(["hello"])[0]["label"]
    assert "warning:" in captured.err and "--allow-unverified" in captured.err


def test_cli_refuses_the_variant_that_failed_and_accepts_verified_and_unrecorded_ones(tiny: dict, tmp_path: Path,
                                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = failed_run(tiny, tmp_path / "int8", fp32_passed=True, int8_passed=False)
    with pytest.raises(ModelError, match="int8 model: predictions agree"):
        predict_cli.run(parse_args(str(run_dir), "hello"))  # auto opens int8
    assert predict_cli.run(parse_args(str(run_dir), "hello", "--variant", "fp32")) == 0
    verified = failed_run(tiny, tmp_path / "ok", fp32_passed=True)
    assert predict_cli.run(parse_args(str(verified), "hello")) == 0
    assert predict_cli.run(parse_args(str(tiny["run"]), "hello")) == 0  # no verification record: not a failed export
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_predict_help_documents_the_override(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args("--help")
    assert "--allow-unverified" in " ".join(capsys.readouterr().out.split())


# --- import hygiene and cold start -----------------------------------------------------------------


def test_runtime_never_imports_torch(tiny: dict) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        from assistant_builder.runtime import load_predictor
        predictor = load_predictor(sys.argv[1])
        predictions = predictor.predict(["hello", "play some jazz"])
        forbidden = {FORBIDDEN!r}
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in forbidden)
        print(json.dumps({{"loaded": loaded, "labels": [p["label"] for p in predictions]}}))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(tiny["run"])], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert len(report["labels"]) == 2


def test_cli_module_import_stays_light() -> None:
    heavy = ("onnxruntime", "tokenizers", "numpy", "torch")
    script = f"import sys, assistant_builder.cli.predict; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_bundle_names_its_task_class_and_a_cold_start_imports_only_that_plugin(tiny: dict) -> None:
    manifest = json.loads((tiny["bundle"] / "manifest.json").read_text())
    assert manifest["task_class"] == "assistant_builder_tasks.classification.task:ClassificationTask"
    script = textwrap.dedent("""
        import json, sys
        from assistant_builder.runtime import load_predictor
        labels = [p["label"] for p in load_predictor(sys.argv[1]).predict(["hello", "play some jazz"])]
        others = sorted(m for m in sys.modules if m.startswith(("assistant_builder_tasks.ner", "assistant_builder_tasks.qa",
                                                                "assistant_builder_trainers", "assistant_builder_exporters")))
        print(json.dumps({"labels": labels, "others": others}))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(tiny["run"])], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["others"] == [] and len(report["labels"]) == 2


@pytest.mark.parametrize("task_class", ["no_such_module:Thing", "assistant_builder_tasks.ner.task:NerTask",
                                        "assistant_builder.contracts:Task", "json:loads"])
def test_a_task_class_that_cannot_be_used_falls_back_to_the_registry(tiny: dict, tmp_path: Path, task_class: str) -> None:
    bundle = copy_bundle(tiny, tmp_path)
    edit_manifest(bundle, task_class=task_class)
    predictor = load_predictor(bundle)
    assert predictor.task.name == "classification"
    assert [p["label"] for p in predictor.predict(TEXTS)] == [p["label"] for p in load_predictor(tiny["bundle"]).predict(TEXTS)]


def test_serve_refuses_to_start_on_a_run_whose_fp32_export_failed_verification(tiny: dict, tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from assistant_builder.cli.main import main

    run_dir = failed_run(tiny, tmp_path)
    assert main(["serve", str(run_dir), "--port", "1"]) == 2  # refused before a port is bound
    assert "expected an export that passed verification" in capsys.readouterr().err
