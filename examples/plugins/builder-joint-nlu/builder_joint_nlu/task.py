"""The ``joint_nlu`` task: an utterance's intent and its slots, from one encoder (JointBERT-style).

Torch-free at import time: ``encode``, ``decode``, ``evaluate`` and ``parse_input`` run in the ONNX
runtime; the model code (``model.py``) is imported only by ``build_model``/``load_model``.

Labels. The host hands one ``labels`` list around; this task's list holds the intents (prefixed
``intent:``) and then the IOB2 slot tags (see ``tags.py``). Slots are tagged on the first
sub-token of each word. An utterance longer than ``model.max_length`` tokens is truncated: its
last words are tagged ``O`` (a warning says how many labelled utterances that cut).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from assistant_builder.contracts import ComponentOptions, Evaluation, Feature, FeatureOutputs, Task, TaskData
from assistant_builder.errors import DataError
from assistant_builder.toolkit.alignment import IGNORE, first_subtokens, first_token_targets, words_of_input
from assistant_builder.toolkit.collate import collate
from assistant_builder.toolkit.decoding import decode_word_tags, softmax, tag_entities, word_probabilities
from assistant_builder.toolkit.tags import tag_types
from assistant_builder.toolkit.word_encoding import encoder_words, marks_spaces
from builder_joint_nlu.data import JointExample, TruncationWarning, check_labels, load_split
from builder_joint_nlu.metrics import METRIC_NAMES, evaluate_joint
from builder_joint_nlu.tags import combined_labels, split_labels


def _unique_names(values: list[str] | None, what: str, minimum: int) -> list[str] | None:
    if values is None:
        return None
    if len(values) < minimum:
        raise ValueError(f"expected at least {minimum} {what}, got {values}")
    duplicates = sorted(v for v, n in Counter(values).items() if n > 1)
    if duplicates:
        raise ValueError(f"expected unique {what}, got duplicates {duplicates}")
    blank = [v for v in values if not v.strip() or " " in v]
    if blank:
        raise ValueError(f"expected {what} without spaces, got {blank}")
    return values


class JointNluOptions(ComponentOptions):
    intents: list[str] | None = Field(None, description="intent names (order fixes class ids); default: the intents of the training data")
    slot_types: list[str] | None = Field(None, description="slot types such as \"city\" (no B-/I-); default: the types in the training data")
    pooling: Literal["mean", "cls"] = Field("mean", description="how token vectors become the utterance vector of the intent head")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout on the encoder output, before both heads")
    slot_loss_weight: float = Field(1.0, gt=0.0, le=100.0, description="loss = intent loss + slot_loss_weight * slot loss")
    invalid_tags: Literal["repair", "error"] = Field("repair", description="a slot starting with I-: 'repair' reads it as B- (with a warning), 'error' stops with file:line")
    unseen_labels: Literal["error", "count_as_wrong"] = Field(
        "error", description="a validation intent or slot type the model has no class for: 'error' stops, 'count_as_wrong' scores it as an error")
    top_k: int = Field(3, ge=1, description="how many intents with scores a prediction lists (intent_top)")

    @field_validator("intents")
    @classmethod
    def _intents_usable(cls, intents: list[str] | None) -> list[str] | None:
        return _unique_names(intents, "intents", 2)

    @field_validator("slot_types")
    @classmethod
    def _slot_types_usable(cls, slot_types: list[str] | None) -> list[str] | None:
        prefixed = [t for t in slot_types or () if t == "O" or t[:2] in ("B-", "I-")]
        if prefixed:
            raise ValueError(f"expected slot types such as 'city' (without B-/I- prefixes, not 'O'), got {prefixed}")
        return _unique_names(slot_types, "slot types", 1)


class JointNluTask(Task):
    """Predict an utterance's intent and tag its slots with one model."""

    name = "joint_nlu"
    description = "joint intent detection + slot filling (JointBERT-style: one encoder, two heads)"
    Options = JointNluOptions
    # The labelling UI that fits is the span editor (slots are the costly part to label); the
    # intent of each utterance is not edited there yet (see README).
    labelling_kind = "token_spans"
    primary_metric = "exact_match"
    metric_names = METRIC_NAMES
    output_names = ("intent_logits", "slot_logits")
    sequence_outputs = ("slot_logits",)
    predict_example = '"turn off the lights in the kitchen"'
    data_formats = ("jsonl", "seq")

    def load_data(self, data: Any, options: JointNluOptions) -> TaskData:  # type: ignore[override]
        train, validation, sources = load_split(data, options)
        if not validation:
            raise DataError(f"{data.train}: no validation utterances", hint="add data.validation or more utterances")
        intents, slot_types = check_labels(train, validation, options)
        return TaskData(train, validation, combined_labels(intents, slot_types), sources)

    def sample_data(self, directory: Path) -> dict[str, Any]:
        """A few smart-home requests as JSONL (``builder init`` and the conformance suite use them)."""
        marked = {"train": ["lights|turn off the [kitchen](room) lights", "lights|dim the [bedroom](room) lights to [30 percent](level)",
                            "play_music|play some [jazz](genre) in the [kitchen](room)", "play_music|put on [Nina Simone](artist)",
                            "set_timer|set a timer for [10 minutes](duration)", "set_timer|start a [pasta](timer_name) timer for [9 minutes](duration)"],
                  "valid": ["lights|switch on the [hallway](room) lights", "play_music|play [blues](genre) in the [bedroom](room)",
                            "set_timer|timer for [20 minutes](duration)"]}
        directory.mkdir(parents=True, exist_ok=True)
        for split, lines in marked.items():
            rows = []
            for line in lines:
                intent, text = line.split("|")
                slots = []
                while "[" in text:
                    start, middle, close = text.index("["), text.index("]("), text.index(")")
                    value = text[start + 1 : middle]
                    slots.append({"start": start, "end": start + len(value), "label": text[middle + 2 : close]})
                    text = text[:start] + value + text[close + 1 :]
                rows.append(json.dumps({"text": text, "intent": intent, "slots": slots}))
            (directory / f"{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
        return {"train": "train.jsonl", "validation": "valid.jsonl"}

    def encode(self, examples: Sequence[JointExample], tokenizer: Any, labels: Sequence[str],
               options: JointNluOptions, max_length: int) -> list[Feature]:  # type: ignore[override]
        """One feature per utterance; ``slot_labels`` on each word's first sub-token, -100 elsewhere.

        Intents and tags the model has no class for (validation with ``unseen_labels =
        "count_as_wrong"``) get the target -100: they are never trained on.
        """
        intents, tags = split_labels(labels)
        intent_ids = {intent: i for i, intent in enumerate(intents)}
        tag_ids = {tag: i for i, tag in enumerate(tags)}
        spaces = marks_spaces(tokenizer)  # byte-level BPE words keep the space before them, as in pre-training
        words = [encoder_words(tokenizer, e.tokens, e.text, e.offsets, spaces=spaces) for e in examples]
        encodings = tokenizer.encode_batch(words, is_pretokenized=True) if examples else []
        features: list[Feature] = []
        truncated = 0
        for index, (example, encoding) in enumerate(zip(examples, encodings)):
            first = first_subtokens(encoding.word_ids)
            feature: Feature = {"input_ids": encoding.ids, "token_type_ids": encoding.type_ids, "example_index": index,
                                "first_tokens": sorted(first.items())}
            if example.intent is not None:
                feature["intent_labels"] = intent_ids.get(example.intent, IGNORE)
            if example.tags is not None:
                word_targets = [tag_ids.get(tag, IGNORE) for tag in example.tags]
                feature["slot_labels"] = first_token_targets(len(encoding.ids), first, word_targets)
                truncated += bool(encoding.overflowing)
            features.append(feature)
        if truncated:
            warnings.warn(f"{truncated} labelled utterance{'s are' if truncated > 1 else ' is'} longer than model.max_length = {max_length} "
                          "tokens; their last words were cut (tagged O)", TruncationWarning, stacklevel=2)
        return features

    def build_model(self, base_model: Path, labels: Sequence[str], options: JointNluOptions,
                    train_features: Sequence[Feature] | None = None) -> Any:  # type: ignore[override]
        from builder_joint_nlu.model import build_joint_model

        intents, tags = split_labels(labels)
        return build_joint_model(base_model, len(intents), len(tags), options.pooling, options.dropout, options.slot_loss_weight)

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory, *split_labels(labels))

    def load_model(self, directory: Path) -> Any:
        """Load a model saved by ``save_model`` (safetensors heads, Hugging Face encoder)."""
        from builder_joint_nlu.model import load_joint_model

        return load_joint_model(directory)

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        return collate(features, pad_token_id, ("intent_labels", "slot_labels"))

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[JointExample],
               labels: Sequence[str], options: JointNluOptions) -> list[dict[str, Any]]:  # type: ignore[override]
        """Intent: softmax over the intent logits. Slots: the best tag of each word's first sub-token,
        invalid IOB2 repaired, returned as character spans (``entities``) and per-word ``tags``."""
        intents, tags = split_labels(labels)
        k = min(options.top_k, len(intents))
        predictions: list[dict[str, Any]] = [{} for _ in examples]
        for feature, intent_logits, slot_logits in zip(features, outputs["intent_logits"], outputs["slot_logits"]):
            example = examples[feature["example_index"]]
            probabilities = softmax(np.asarray(intent_logits, dtype=np.float64))
            top = np.argsort(-probabilities, kind="stable")[:k]
            slot_probabilities = word_probabilities(len(example.tokens), tags, [(feature["first_tokens"], slot_logits)])
            word_tags, word_scores = decode_word_tags(slot_probabilities, tags, "argmax")
            predictions[feature["example_index"]] = {
                "intent": intents[int(top[0])],
                "intent_score": float(probabilities[top[0]]),
                "intent_top": [{"label": intents[int(i)], "score": float(probabilities[i])} for i in top],
                "entities": tag_entities(word_tags, word_scores, example.text, example.offsets),
                "tags": word_tags,
            }
        return predictions

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[JointExample],
                 labels: Sequence[str]) -> Evaluation:  # type: ignore[override]
        intents, tags = split_labels(labels)
        gold_tags = [list(e.tags or ("O",) * len(e.tokens)) for e in examples]
        return evaluate_joint([e.intent or "" for e in examples], [p["intent"] for p in predictions], gold_tags,
                              [list(p["tags"]) for p in predictions], [p["intent_score"] for p in predictions], examples,
                              intents, tag_types(tags))

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        return prediction["intent"], tuple((e["start"], e["end"], e["label"]) for e in prediction["entities"])

    def parse_input(self, raw: Any) -> JointExample:
        """A string or ``{"text": ...}`` (split into words with ``\\w+|[^\\w\\s]``), or ``{"tokens": [...]}``."""
        words, text, offsets = words_of_input(raw)
        return JointExample(words, text, offsets)
