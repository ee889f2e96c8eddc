"""The suite's own reference task: a tiny sentence classifier that trainers and exporters are checked with.

Trainers and exporters need a task to train and export. The suite ships this one, so it depends on
no task plugin (a plugin author's checks run the same with the built-ins blocked or absent). It is
built from the toolkit only (records from ``datasources``, ``toolkit.collate``, the encoder and
pooling of ``toolkit.encoder``, ``toolkit.hf_folder`` for saving, ``toolkit.metrics``), is never
registered, and passes the task checks itself. Torch-free at import time: the model is in
``reference_model.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant_builder.contracts import Evaluation, Feature, FeatureOutputs, NoOptions, Task, TaskData
from assistant_builder.datasources import read_jsonl
from assistant_builder.errors import DataError
from assistant_builder.toolkit.collate import collate
from assistant_builder.toolkit.decoding import softmax

#: the sample data: a few assistant requests in three intents (validation: one each)
SAMPLES = {
    "train": [("wake me up at 7 am", "alarm"), ("set an alarm for 6 tomorrow", "alarm"), ("alarm at 9 please", "alarm"),
              ("i need an alarm at noon", "alarm"), ("will it rain tomorrow", "weather"), ("what is the weather in paris", "weather"),
              ("is it cold outside today", "weather"), ("do i need an umbrella", "weather"), ("play some music", "music"),
              ("play a song by john", "music"), ("put on my morning playlist", "music"), ("i want to hear jazz", "music")],
    "valid": [("wake me at 8", "alarm"), ("is it hot in london", "weather"), ("play the next song", "music")],
}


@dataclass(frozen=True)
class Sentence:
    """A text and its label (``None`` when unlabelled)."""

    text: str
    label: str | None = None


class ReferenceTask(Task):
    """Assign one of a few intents to a text: the reference task of the trainer and exporter checks."""

    name = "conformance_reference"
    description = "the conformance suite's tiny sentence classifier (not registered)"
    Options = NoOptions
    labelling_kind = "text_class"
    primary_metric = "accuracy"
    metric_names = ("accuracy", "macro_f1")
    output_names = ("logits",)

    def load_data(self, data: Any, options: Any) -> TaskData:
        splits = {}
        for split in ("train", "validation"):
            path = getattr(data, split)
            rows = [] if path is None else list(read_jsonl(Path(path)))
            for row in rows:
                if not isinstance(row.row.get("text"), str) or not isinstance(row.row.get("label"), str):
                    raise DataError(f"{row.where}: expected string fields 'text' and 'label', got {row.row!r}")
            splits[split] = [Sentence(r.row["text"], r.row["label"]) for r in rows]
        labels = sorted({s.label for s in splits["train"] if s.label})
        return TaskData(splits["train"], splits["validation"], labels, {"train": Path(data.train)})

    def encode(self, examples: Sequence[Sentence], tokenizer: Any, labels: Sequence[str], options: Any,
               max_length: int) -> list[Feature]:
        label_ids = {label: i for i, label in enumerate(labels)}
        features: list[Feature] = []
        for index, (example, encoding) in enumerate(zip(examples, tokenizer.encode_batch([e.text for e in examples]))):
            feature: Feature = {"input_ids": encoding.ids, "token_type_ids": encoding.type_ids, "example_index": index}
            if example.label in label_ids:
                feature["labels"] = label_ids[example.label]
            features.append(feature)
        return features

    def build_model(self, base_model: Path, labels: Sequence[str], options: Any, train_features: Sequence[Feature] | None = None) -> Any:
        from assistant_builder.conformance.reference_model import build_sentence_classifier

        return build_sentence_classifier(base_model, len(labels))

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory, labels)

    def load_model(self, directory: Path) -> Any:
        from assistant_builder.conformance.reference_model import load_sentence_classifier

        return load_sentence_classifier(directory)

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        return collate(features, pad_token_id, ("labels",))

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[Sentence], labels: Sequence[str],
               options: Any) -> list[dict[str, Any]]:
        predictions: list[dict[str, Any]] = [{} for _ in examples]
        for feature, logits in zip(features, outputs["logits"]):
            probabilities = softmax(np.asarray(logits, dtype=np.float64))
            best = int(probabilities.argmax())
            predictions[feature["example_index"]] = {"label": labels[best], "score": float(probabilities[best])}
        return predictions

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[Sentence], labels: Sequence[str]) -> Evaluation:
        from assistant_builder.toolkit.metrics import classification_scores

        scores = classification_scores([e.label or "" for e in examples], [p["label"] for p in predictions], labels)
        return Evaluation({"accuracy": scores.accuracy, "macro_f1": scores.macro_f1}, {"per_label": scores.per_label})

    def parse_input(self, raw: Any) -> Sentence:
        text = raw.get("text") if isinstance(raw, dict) else raw
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"expected a non-empty string or an object with a 'text' string, got {raw!r}")
        return Sentence(text.strip())

    def sample_data(self, directory: Path) -> dict[str, Any]:
        directory.mkdir(parents=True, exist_ok=True)
        for split, rows in SAMPLES.items():
            (directory / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
        return {"train": "train.jsonl", "validation": "valid.jsonl"}
