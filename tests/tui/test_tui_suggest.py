"""Model in the loop with a real (tiny, hand-built) ONNX bundle through the torch-free runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant_builder.labelling.store import LabelStore
from assistant_builder.tui.suggest import fill_suggestions, margin_of

onnx = pytest.importorskip("onnx")

LABELS = ["alarm", "weather", "music"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "wake", "alarm", "rain", "sunny", "play", "jazz", "me", "at", "7"]
HINTS = {"wake": 0, "alarm": 0, "rain": 1, "sunny": 1, "play": 2, "jazz": 2}


def write_tiny_bundle(run_dir: Path) -> Path:
    """Bag-of-words classifier as an ONNX graph (Gather + ReduceMean) plus a WordPiece tokenizer."""
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    from assistant_builder.contracts import ExportedArtifact
    from assistant_builder.engine.exporting import write_bundle_files
    from assistant_builder_tasks.classification import ClassificationTask

    bundle = run_dir / "exports" / "onnx"
    bundle.mkdir(parents=True)
    weights = np.zeros((len(VOCAB), len(LABELS)), dtype=np.float32)
    for word, label in HINTS.items():
        weights[VOCAB.index(word), label] = 8.0
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embedding", "input_ids"], ["vectors"]),
         helper.make_node("ReduceMean", ["vectors"], ["logits"], axes=[1], keepdims=0)],
        "bag_of_words",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        [numpy_helper.from_array(weights, "embedding")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(bundle / "model.onnx"))
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    task = ClassificationTask()
    write_bundle_files(bundle, exporter="onnx", task=task, task_options=task.Options(label_field="intent"), labels=LABELS,
                       max_length=16, pad_id=0, tokenizer=tokenizer, artifacts=[ExportedArtifact("onnx", "fp32", bundle / "model.onnx")],
                       reports=[], base_model="bag-of-words")
    return bundle


def test_fill_suggestions_with_the_onnx_runtime(tmp_path: Path) -> None:
    from assistant_builder.runtime import load_predictor

    write_tiny_bundle(tmp_path / "run")
    predictor = load_predictor(tmp_path / "run")
    with LabelStore(tmp_path / "s.sqlite") as store:
        store.add_items([({"text": t}, None, "x", None) for t in ["wake me at 7", "rain", "play jazz", "me at 7"]]
                        + [({"text": "labelled already"}, "music", "x", None)])
        progress: list[tuple[int, int]] = []
        assert fill_suggestions(store.path, predictor, "text_class", batch_size=2, on_progress=lambda d, t: progress.append((d, t))) == 4
        assert progress == [(0, 4), (2, 4), (4, 4)]
        items = {i.payload["text"]: i for i in store.items()}
        assert [items[t].suggestion["label"] for t in ["wake me at 7", "rain", "play jazz"]] == ["alarm", "weather", "music"]  # type: ignore[index]
        assert items["labelled already"].suggestion is None
        assert items["me at 7"].margin == pytest.approx(0.0, abs=1e-6)  # no hint words: a coin toss
        assert store.next_item("uncertainty").payload == {"text": "me at 7"}  # type: ignore[union-attr]
        assert fill_suggestions(store.path, predictor, "text_class", only_missing=True) == 0


def test_margins_for_each_task_kind() -> None:
    assert margin_of({"label": "a", "score": 0.7, "top": [{"label": "a", "score": 0.7}, {"label": "b", "score": 0.2}]}) == pytest.approx(0.5)
    assert margin_of({"entities": [{"score": 0.9}, {"score": 0.4}]}) == 0.4
    assert margin_of({"entities": []}) == 1.0
    assert margin_of({"answer": "x", "score": 0.3}) == 0.3
    assert margin_of({}) is None
