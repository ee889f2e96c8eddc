"""Text classification / intent detection: one label per text.

Torch-free at import time: ``encode``, ``decode``, ``evaluate`` and ``parse_input`` run in the
ONNX runtime; the model code (``model.py``) is imported only by ``build_model``/``load_model``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from assistant_builder.contracts import ComponentOptions, DecisionRule, Evaluation, Feature, FeatureOutputs, Task, TaskData
from assistant_builder.errors import DataError
from assistant_builder.toolkit.collate import collate
from assistant_builder_tasks.classification.data import TextExample, check_labels, load_split
from assistant_builder_tasks.classification.fallback import decide, fit_rule
from assistant_builder_tasks.classification.metrics import METRIC_NAMES, evaluate_labels


class ClassificationOptions(ComponentOptions):
    text_field: str = Field("text", description="field (JSONL key or CSV column) holding the text")
    label_field: str = Field("label", description="field holding the label")
    id_field: str | None = Field(None, description="optional field holding a unique example id")
    labels: list[str] | None = Field(None, description="declared label set (order = class ids); default: labels found in training data")
    pooling: Literal["mean", "cls"] = Field("mean", description="how token vectors become one text vector")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the classification head")
    class_weighting: Literal["none", "balanced"] = Field("none", description="'balanced' weights the loss by inverse label frequency (for skewed labels)")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross-entropy label smoothing (0 = none; 0.1 helps with noisy labels)")
    top_k: int = Field(3, ge=1, description="how many labels with scores a prediction lists")
    fallback_label: str | None = Field(None, description="out-of-scope label (e.g. 'out_of_scope'): inputs the rejection rule "
                                       "rejects get it, with in_scope false; trained as a class when the training data has it "
                                       "(docs/out_of_scope.md)")
    fallback_threshold: float | None = Field(None, description="reject when the energy score (logsumexp of the in-scope logits) "
                                             "is below this; default: fitted on validation after training and saved in the bundle")
    fallback_margin: float = Field(0.0, ge=0.0, le=1.0, description="also reject when the top two in-scope probabilities are "
                                   "closer than this (0 = off: it did not help on CLINC150)")
    fallback_keep: float = Field(0.98, gt=0.0, le=1.0, description="without >= 10 fallback examples in validation: the threshold "
                                 "keeps this share of the correctly classified in-scope validation examples")
    fallback_max_accuracy_loss: float = Field(0.01, ge=0.0, lt=1.0, description="with >= 10 fallback examples in validation: "
                                              "maximise out-of-scope F1 losing at most this much in-scope accuracy")
    calibration: Literal["auto", "temperature", "temperature+isotonic", "none"] = Field(
        "auto", description="fitted on validation after training so that scores are calibrated probabilities: "
        "'temperature' (one number; changes no prediction), 'temperature+isotonic' (then a monotone map of the top "
        "score, for models one temperature leaves off; changes no prediction either), 'auto' (the one of the two with "
        "the lower out-of-fold calibration error on validation), 'none' (docs/out_of_scope.md)")
    temperature: float = Field(1.0, gt=0.0, description="scores are softmax(logits / temperature); fitted unless calibration = "
                                                       "'none'")
    calibration_bins: int = Field(5, ge=2, le=1000, description="calibration = 'temperature+isotonic': equal-count "
                                  "bins of validation scores the map is fitted over (one knot each; few bins: a smooth map)")
    confidence_map: list[tuple[float, float]] | None = Field(
        None, description="knots (score, accuracy) of the isotonic map applied to the top score after the temperature; "
        "fitted when calibration = 'temperature+isotonic'")

    @field_validator("labels")
    @classmethod
    def _labels_usable(cls, labels: list[str] | None) -> list[str] | None:
        if labels is not None:
            if len(labels) < 2:
                raise ValueError(f"expected at least two labels, got {labels}")
            duplicates = [label for label, n in Counter(labels).items() if n > 1]
            if duplicates:
                raise ValueError(f"expected unique labels, got duplicates {duplicates}")
        return labels


class ClassificationTask(Task):
    """Assign one label to each text (intents, topics, sentiment...)."""

    name = "classification"
    description = "text classification / intent detection (one label per text)"
    Options = ClassificationOptions
    labelling_kind = "text_class"
    primary_metric = "accuracy"
    metric_names = METRIC_NAMES
    output_names = ("logits",)
    data_formats = ("jsonl", "csv", "parquet", "files", "hf_disk")
    #: CLINC150 at 5 examples per intent: in-scope accuracy higher than with 1e-3 (bench/RESULTS.md)
    head_learning_rate = 3e-3

    def augment(self, examples: Sequence[TextExample], settings: Any, rng: Any) -> list[TextExample]:  # type: ignore[override]
        """``[train.augment]``: word deletion / swap / span masking (``assistant_builder.toolkit.augment``)."""
        from assistant_builder_tasks.classification.augment import augment_examples

        return augment_examples(examples, settings, rng)

    def load_data(self, data: Any, options: ClassificationOptions) -> TaskData:  # type: ignore[override]
        train, validation, sources = load_split(data, options, data.split_seed)
        if not validation:
            raise DataError(f"{data.train}: no validation examples could be held out", hint="add data.validation or more examples")
        labels = check_labels(train, validation, options.labels, options.fallback_label)
        return TaskData(train, validation, labels, sources)

    def encode(self, examples: Sequence[TextExample], tokenizer: Any, labels: Sequence[str],
               options: ClassificationOptions, max_length: int) -> list[Feature]:  # type: ignore[override]
        label_ids = {label: i for i, label in enumerate(labels)}
        encodings = tokenizer.encode_batch([e.text for e in examples])
        features: list[Feature] = []
        for index, (example, encoding) in enumerate(zip(examples, encodings)):
            feature: Feature = {"input_ids": encoding.ids, "token_type_ids": encoding.type_ids, "example_index": index}
            if example.label is not None and example.label in label_ids:
                feature["labels"] = label_ids[example.label]
            features.append(feature)
        return features

    def class_weights(self, features: Sequence[Feature], num_labels: int) -> list[float]:
        """Inverse-frequency weights ``n / (k * count)`` (labels absent from training get 1.0)."""
        counts = Counter(f["labels"] for f in features if "labels" in f)
        total = sum(counts.values())
        return [total / (num_labels * counts[i]) if counts[i] else 1.0 for i in range(num_labels)]

    def build_model(self, base_model: Path, labels: Sequence[str], options: ClassificationOptions,
                    train_features: Sequence[Feature] | None = None) -> Any:  # type: ignore[override]
        from assistant_builder_tasks.classification.model import build_classifier

        weights = None
        if options.class_weighting == "balanced" and train_features:
            weights = self.class_weights(train_features, len(labels))
        return build_classifier(base_model, len(labels), options.pooling, options.dropout, weights, options.label_smoothing)

    def load_model(self, directory: Path) -> Any:
        """Load a model saved by ``save_model``."""
        from assistant_builder_tasks.classification.model import load_classifier

        return load_classifier(directory)

    def warm_start_model(self, parent_model_dir: Path, parent_labels: Sequence[str], labels: Sequence[str],
                         options: ClassificationOptions, train_features: Sequence[Feature] | None = None) -> Any:
        """The parent's classifier with a row per new label (``model.warm_start_classifier``; the optional
        warm-start protocol of ``builder run --from``, docs/updates.md), new rows from the examples'
        mean embeddings: the new labels' examples and a sample of the others (for the centre)."""
        import torch

        from assistant_builder_tasks.classification.model import warm_start_classifier

        features = list(train_features or [])
        weights = self.class_weights(features, len(labels)) if options.class_weighting == "balanced" and features else None
        old = len(parent_labels)
        new = [f for f in features if f.get("labels", -1) >= old]
        others = [f for f in features if 0 <= f.get("labels", -1) < old][: max(256, len(new))]
        chosen = new + others if new else []

        def batches() -> Any:
            for start in range(0, len(chosen), 64):
                part = chosen[start:start + 64]
                batch = {k: v for k, v in self.collate(part, 0).items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                yield batch, torch.tensor([f["labels"] for f in part], dtype=torch.long)

        return warm_start_classifier(parent_model_dir, list(parent_labels), list(labels), options.dropout, weights,
                                     options.label_smoothing, batches())

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory, list(labels))

    def sample_data(self, directory: Path) -> dict[str, Any]:
        """Example intents (JSONL, fields ``text`` and ``label``) for ``builder init`` and the conformance suite."""
        import json

        rows = {"train": [("wake me up at 7 am", "alarm"), ("set an alarm for 6 tomorrow", "alarm"), ("alarm at 9 please", "alarm"),
                          ("i need an alarm at noon", "alarm"), ("will it rain tomorrow", "weather"), ("what is the weather in paris", "weather"),
                          ("is it cold outside today", "weather"), ("do i need an umbrella", "weather"), ("play some music", "music"),
                          ("play a song by john", "music"), ("put on my morning playlist", "music"), ("i want to hear jazz", "music")],
                "valid": [("wake me at 8", "alarm"), ("is it hot in london", "weather"), ("play the next song", "music")]}
        directory.mkdir(parents=True, exist_ok=True)
        for split, examples in rows.items():
            (directory / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in examples))
        return {"train": "train.jsonl", "validation": "valid.jsonl"}

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        return collate(features, pad_token_id, ("labels",))

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[TextExample],
               labels: Sequence[str], options: ClassificationOptions) -> list[dict[str, Any]]:  # type: ignore[override]
        """``label``, calibrated ``score`` and ``top`` per text; with a ``fallback_label`` also ``in_scope``
        and ``in_scope_score`` (the rejection rule in ``fallback.py``). The label is the argmax of the logits
        (or the fallback label) and ``top`` follows the logits' order: calibration changes scores, never labels."""
        logits = np.stack(outputs["logits"]) if features else np.zeros((0, len(labels)))
        predictions: list[dict[str, Any]] = [{} for _ in examples]
        for feature, prediction in zip(features, decide(logits, labels, options)):
            predictions[feature["example_index"]] = prediction
        return predictions

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[TextExample], labels: Sequence[str],
                 options: ClassificationOptions | None = None) -> Evaluation:  # type: ignore[override]
        """Accuracy and friends; with ``options.fallback_label`` also in-scope accuracy and out-of-scope P/R/F1/AUROC."""
        gold = [e.label or "" for e in examples]
        return evaluate_labels(gold, [p["label"] for p in predictions], [p["score"] for p in predictions],
                               [e.text for e in examples], labels, options.fallback_label if options else None,
                               [p.get("in_scope_score") for p in predictions])

    def fit_decision_rule(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[TextExample],
                          labels: Sequence[str], options: ClassificationOptions) -> DecisionRule | None:  # type: ignore[override]
        """Temperature scaling and the out-of-scope threshold, fitted on validation (``fallback.fit_rule``)."""
        if options.calibration == "none" and options.fallback_label is None:
            return None
        logits = np.stack(outputs["logits"]) if features else np.zeros((0, len(labels)))
        gold = [examples[f["example_index"]].label or "" for f in features]
        return fit_rule(logits, gold, labels, options)

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        """The label (export verification's agreement): chosen from the logits, never from the calibrated scores."""
        return prediction["label"]

    def parse_input(self, raw: Any) -> TextExample:
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, dict) and isinstance(raw.get("text"), str):
            text = raw["text"]
        else:
            raise DataError(f"expected a string or an object with a 'text' string, got {raw!r}")
        if not text.strip():
            raise DataError("expected non-empty text, got an empty string")
        return TextExample(text.strip())

    def check_examples(self, data: Any, options: ClassificationOptions) -> Any:  # type: ignore[override]
        """``builder data check``: a lenient streaming reader (empty texts become findings), see ``checks.py``."""
        from assistant_builder_tasks.classification.checks import check_examples

        return check_examples(data, options)

    # -- feedback contract (builder serve --feedback, data.extra; see contracts.Task) -------------
    feedback_fields = ("label",)
    #: capture predictions whose top-1 minus top-2 probability is below this: on the quickstart model it keeps
    #: 4% of in-scope requests, half of its errors and half of out-of-scope ones (docs/feedback.md, bench/RESULTS.md)
    capture_threshold = 0.7

    def to_store(self, example: TextExample) -> Any:
        from assistant_builder.contracts import StoreRecord

        return StoreRecord({"text": example.text}, example.label, example.source)

    def from_store(self, record: Any, labels: Sequence[str], options: ClassificationOptions) -> TextExample:  # type: ignore[override]
        from assistant_builder.feedback import require_label

        return TextExample(str(record.payload["text"]), require_label(record.gold, _with_fallback(labels, options), "gold"), None,
                           record.source)

    def feedback_gold(self, example: TextExample, prediction: dict[str, Any], correction: Any, labels: Sequence[str],
                      options: ClassificationOptions) -> Any:  # type: ignore[override]
        """As the base class's, with the fallback label accepted as a ``label`` (a request the model should have rejected)."""
        return super().feedback_gold(example, prediction, correction, _with_fallback(labels, options), options)

    def prediction_gold(self, example: TextExample, prediction: dict[str, Any]) -> str:
        """The predicted label (``feedback_gold`` is the base class's: ``label`` must be one of the model's labels)."""
        return str(prediction["label"])

    def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
        """0 for a prediction rejected as out of scope (``"in_scope": false``), else the top-2 margin."""
        from assistant_builder.feedback import top_margin

        return 0.0 if prediction.get("in_scope") is False else top_margin(prediction)


def _with_fallback(labels: Sequence[str], options: ClassificationOptions) -> list[str]:
    """The model's labels plus its fallback label (a valid answer in feedback even when it is not a trained class)."""
    fallback = options.fallback_label
    return [*labels, fallback] if fallback and fallback not in labels else list(labels)
