"""Named-entity recognition / slot filling: an IOB2 tag per word, predictions as character spans.

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

from assistant_builder.batching import pad_batch
from assistant_builder.contracts import ComponentOptions, Evaluation, Feature, FeatureOutputs, Task, TaskData
from assistant_builder.errors import DataError
from assistant_builder_tasks.ner.data import TokenExample, check_types, join_words, load_split, split_words
from assistant_builder_tasks.ner.encoding import encode_words, special_layout
from assistant_builder_tasks.ner.metrics import METRIC_NAMES, evaluate_tags
from assistant_builder_tasks.ner.tags import repair, spans, tag_list


class NerOptions(ComponentOptions):
    labels: list[str] | None = Field(None, description="entity types (e.g. [\"date\", \"location\"]; order fixes class ids); default: types found in training data")
    scheme: Literal["auto", "iob1", "iob2", "bioes"] = Field("auto", description="tagging scheme of the data files (normalised to IOB2); 'auto' detects it per file")
    invalid_tags: Literal["repair", "error"] = Field("repair", description="an entity starting with I- (after O or another type): 'repair' reads it as B- (with a warning), 'error' stops with file:line")
    stride: int = Field(32, ge=0, le=4096, description="tokens of overlap between the windows of a sentence longer than model.max_length (at most half a window)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the token classification layer")

    @field_validator("labels")
    @classmethod
    def _types_usable(cls, labels: list[str] | None) -> list[str] | None:
        if labels is not None:
            if not labels:
                raise ValueError("expected at least one entity type")
            duplicates = [label for label, n in Counter(labels).items() if n > 1]
            if duplicates:
                raise ValueError(f"expected unique entity types, got duplicates {duplicates}")
            tags = [label for label in labels if label == "O" or label[:2] in ("B-", "I-", "E-", "S-") or not label.strip()]
            if tags:
                raise ValueError(f"expected entity types such as 'person' (without B-/I- prefixes, not 'O'), got {tags}")
        return labels


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def entity_types(labels: Sequence[str]) -> list[str]:
    """The entity types of a tag list made by ``tag_list`` (in class order)."""
    return [label[2:] for label in labels if label.startswith("B-")]


class NerTask(Task):
    """Tag the words of a sentence with entity types (slot filling, named entities)."""

    name = "ner"
    description = "named-entity recognition / slot filling (entity spans in text)"
    Options = NerOptions
    labelling_kind = "token_spans"
    primary_metric = "f1"
    metric_names = METRIC_NAMES
    output_names = ("logits",)
    sequence_outputs = ("logits",)
    data_formats = ("conll", "seq", "jsonl", "parquet", "files", "hf_disk")

    def load_data(self, data: Any, options: NerOptions) -> TaskData:  # type: ignore[override]
        train, validation, sources = load_split(data, options)
        if not validation:
            raise DataError(f"{data.train}: no validation sentences", hint="add data.validation or more sentences")
        types = check_types(train, validation, options.labels)
        return TaskData(train, validation, tag_list(types), sources)

    def encode(self, examples: Sequence[TokenExample], tokenizer: Any, labels: Sequence[str],
               options: NerOptions, max_length: int) -> list[Feature]:  # type: ignore[override]
        """One feature per window (usually one per sentence); ``labels`` on each word's first sub-token."""
        label_ids = {label: i for i, label in enumerate(labels)}
        layout = special_layout(tokenizer)
        encodings = tokenizer.encode_batch([list(e.tokens) for e in examples], is_pretokenized=True)
        features: list[Feature] = []
        for index, (example, encoding) in enumerate(zip(examples, encodings)):
            for window in encode_words(example.tokens, tokenizer, max_length, options.stride, layout, encoding):
                feature: Feature = {"input_ids": window.ids, "token_type_ids": window.type_ids, "example_index": index,
                                    "word_ids": window.word_ids, "owned": window.owned}
                if example.tags is not None:
                    targets = [-100] * len(window.ids)
                    for word, position in window.first_tokens.items():
                        tag = example.tags[word]
                        if tag not in label_ids:
                            raise DataError(f"{example.source}: tag '{tag}' is not one of the model's tags ({', '.join(labels)})")
                        targets[position] = label_ids[tag]
                    feature["labels"] = targets
                features.append(feature)
        return features

    def build_model(self, base_model: Path, labels: Sequence[str], options: NerOptions,
                    train_features: Sequence[Feature] | None = None) -> Any:  # type: ignore[override]
        from assistant_builder_tasks.ner.model import build_token_classifier

        return build_token_classifier(base_model, len(labels), options.dropout)

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory, list(labels))

    def load_model(self, directory: Path) -> Any:
        """Load a model saved by ``save_model``."""
        from assistant_builder_tasks.ner.model import load_token_classifier

        return load_token_classifier(directory)

    def sample_data(self, directory: Path) -> dict[str, Any]:
        """Example requests in CoNLL layout (``word tag``, IOB2) for ``builder init`` and the conformance suite."""
        sentences = {"train": ["wake|O me|O at|O 7|B-time am|I-time", "call|O mom|B-person tonight|B-time",
                               "what|O is|O the|O weather|O in|O paris|B-place", "remind|O john|B-person at|O 6|B-time pm|I-time",
                               "is|O it|O cold|O in|O london|B-place", "text|O dad|B-person from|O new|B-place york|I-place"],
                   "valid": ["call|O john|B-person at|O 9|B-time am|I-time", "weather|O in|O london|B-place tomorrow|B-time"]}
        directory.mkdir(parents=True, exist_ok=True)
        for split, lines in sentences.items():
            blocks = ["\n".join(" ".join(pair.split("|")) for pair in line.split()) for line in lines]
            (directory / f"{split}.conll").write_text("\n\n".join(blocks) + "\n")
        return {"train": "train.conll", "validation": "valid.conll"}

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        import torch

        has_labels = bool(features) and all("labels" in f for f in features)
        batch = pad_batch(features, pad_token_id, ("labels",) if has_labels else ())
        return {key: torch.from_numpy(value) for key, value in batch.items()}

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[TokenExample],
               labels: Sequence[str], options: NerOptions) -> list[dict[str, Any]]:  # type: ignore[override]
        """Per word: the most likely tag of the window that owns it; invalid IOB2 repaired; entities as character spans."""
        tags = [["O"] * len(e.tokens) for e in examples]
        scores = [[1.0] * len(e.tokens) for e in examples]
        for feature, logits in zip(features, outputs["logits"]):
            if not feature["owned"]:
                continue
            words, positions = zip(*feature["owned"])
            probabilities = softmax(np.asarray(logits, dtype=np.float64)[list(positions)])
            best = probabilities.argmax(axis=-1)
            index = feature["example_index"]
            for word, row, label in zip(words, probabilities, best):
                tags[index][word] = labels[int(label)]
                scores[index][word] = float(row[label])
        return [self._prediction(example, repair(example_tags), example_scores)
                for example, example_tags, example_scores in zip(examples, tags, scores)]

    @staticmethod
    def _prediction(example: TokenExample, tags: list[str], scores: list[float]) -> dict[str, Any]:
        entities = []
        for start, end, label in spans(tags):
            first, last = example.offsets[start][0], example.offsets[end - 1][1]
            entities.append({"label": label, "start": first, "end": last, "text": example.text[first:last],
                             "score": float(np.mean(scores[start:end]))})
        return {"entities": entities, "tags": tags}

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[TokenExample],
                 labels: Sequence[str]) -> Evaluation:  # type: ignore[override]
        gold = [list(e.tags or ("O",) * len(e.tokens)) for e in examples]
        return evaluate_tags(gold, [list(p["tags"]) for p in predictions], examples, entity_types(labels))

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        return tuple((e["start"], e["end"], e["label"]) for e in prediction["entities"])

    def parse_input(self, raw: Any) -> TokenExample:
        """A string or ``{"text": ...}`` (split into words with ``\\w+|[^\\w\\s]``), or ``{"tokens": [...]}``."""
        if isinstance(raw, dict) and "tokens" in raw:
            tokens = raw["tokens"]
            if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
                raise DataError(f"expected 'tokens' to be a non-empty list of non-empty strings, got {tokens!r}")
            text, offsets = join_words([t.strip() for t in tokens])
            return TokenExample(tuple(t.strip() for t in tokens), None, text, tuple(offsets))
        if isinstance(raw, dict) and isinstance(raw.get("text"), str):
            raw = raw["text"]
        if not isinstance(raw, str):
            raise DataError(f"expected a string, an object with a 'text' string, or an object with a 'tokens' list, got {raw!r}")
        words, offsets = split_words(raw)
        if not words:
            raise DataError(f"expected text with at least one word, got {raw!r}")
        return TokenExample(tuple(words), None, raw, tuple(offsets))

    # -- feedback contract (builder serve --feedback, data.extra; see contracts.Task) -------------
    feedback_fields = ("entities",)
    #: capture predictions with an entity whose mean word probability is below this (see docs/feedback.md)
    capture_threshold = 0.6

    def to_store(self, example: TokenExample) -> Any:
        from assistant_builder_tasks.ner.feedback import to_store

        return to_store(example)

    def from_store(self, record: Any, labels: Sequence[str], options: NerOptions) -> TokenExample:  # type: ignore[override]
        from assistant_builder_tasks.ner.feedback import from_store

        return from_store(record, labels)

    def prediction_gold(self, example: TokenExample, prediction: dict[str, Any]) -> list[dict[str, Any]]:
        from assistant_builder_tasks.ner.feedback import tags_to_token_spans

        return tags_to_token_spans(prediction["tags"])

    def feedback_gold(self, example: TokenExample, prediction: dict[str, Any], correction: Any, labels: Sequence[str],
                      options: NerOptions) -> Any:  # type: ignore[override]
        """``{"entities": [{"start", "end", "label"}]}``: character spans of the input text, as predictions give them."""
        if "entities" in correction:
            from assistant_builder_tasks.ner.feedback import correction_spans

            return correction_spans(example, correction["entities"], labels)
        return super().feedback_gold(example, prediction, correction, labels, options)

    def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
        """0 when out of scope; else the lowest entity score; ``None`` (no measure) without entities."""
        from assistant_builder.feedback import lowest_entity_score

        return 0.0 if prediction.get("in_scope") is False else lowest_entity_score(prediction)
