"""Named-entity recognition / slot filling: an IOB2 tag per word, predictions as character spans.

Torch-free at import time: ``encode``, ``decode``, ``evaluate`` and ``parse_input`` run in the
ONNX runtime; the model (the toolkit's ``token_classifier``) is imported only by
``build_model``/``load_model``. Reading, windows, decoding and scoring are toolkit blocks too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from assistant_builder.contracts import Agreement, ComponentOptions, Evaluation, Feature, FeatureOutputs, Task, TaskData
from assistant_builder.errors import DataError
from assistant_builder.toolkit.agreement import example_agreement, unit_agreement
from assistant_builder.toolkit.alignment import first_token_targets, words_of_input
from assistant_builder.toolkit.collate import collate
from assistant_builder.toolkit.decoding import decode_word_tags, drop_weak_entities, tag_entities, word_probabilities
from assistant_builder.toolkit.shapes import SHAPES, is_cased, lowercases, token_shapes
from assistant_builder.toolkit.tags import tag_list, tag_types
from assistant_builder.toolkit.windows import encode_words, special_layout
from assistant_builder.toolkit.word_encoding import encoder_words, marks_spaces
from assistant_builder_tasks.ner.data import TokenExample, check_types, load_split
from assistant_builder_tasks.ner.metrics import METRIC_NAMES, evaluate_tags


class NerOptions(ComponentOptions):
    labels: list[str] | None = Field(None, description="entity types (e.g. [\"date\", \"location\"]; order fixes class ids); default: types found in training data")
    scheme: Literal["auto", "iob1", "iob2", "bioes"] = Field("auto", description="tagging scheme of the data files (normalised to IOB2); 'auto' detects it per file")
    invalid_tags: Literal["repair", "error"] = Field("repair", description="an entity starting with I- (after O or another type): 'repair' reads it as B- (with a warning), 'error' stops with file:line")
    stride: int = Field(32, ge=0, le=4096, description="tokens of overlap between the windows of a sentence longer than model.max_length (at most half a window)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the token classification layer")
    min_entity_score: float = Field(0.0, ge=0.0, le=1.0, description="drop predicted entities whose score (mean word "
                                    "probability) is below this, their words tagged O (0 = keep all)")
    decoder: Literal["argmax", "best_path"] = Field(
        "best_path", description="how word tags are read from the model's scores: 'best_path' takes the most likely valid "
                                 "IOB2 sequence (Viterbi; the argmax tags whenever those are valid), 'argmax' each word's most "
                                 "likely tag (an I- that starts an entity read as B-); best_path measured better on CoNLL-2003 "
                                 "and SNIPS, see bench/RESULTS.md. Bundles saved before this option decode with it too")
    word_shape: Literal["auto", "on", "off"] = Field(
        "auto", description="add a learned embedding of each word's casing/shape (lower, Title, UPPER, mIxed, number, other) "
                            "to its tokens, for an encoder whose tokenizer lowercases: 'auto' turns it on when the tokenizer "
                            "lowercases and the training text is cased (>= 5% of words with a capital); +2.7 F1 on CoNLL-2003 (3 seeds), "
                            "see bench/RESULTS.md. The saved model then loads with assistant-builder only (no stock "
                            "transformers class has the extra input)")

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
    #: entity-level agreement gate (bench/RESULTS.md, "Token and span tasks that ship")
    min_agreement = 0.95
    #: encoder learning rate with the full trainer: 2e-4 beat the trainer's 1e-4 on each of three SNIPS seeds
    #: and was level on CoNLL-2003 (two seeds); bench/RESULTS.md, "The ner learning rate". LoRA keeps its own.
    learning_rates = {"full": 2e-4}

    def augment(self, examples: Sequence[TokenExample], settings: Any, rng: Any) -> list[TokenExample]:  # type: ignore[override]
        """``[train.augment]``: mention replacement and label-wise token replacement (``assistant_builder.toolkit.augment``)."""
        from assistant_builder_tasks.ner.augment import augment_examples

        return augment_examples(examples, settings, rng)

    def load_data(self, data: Any, options: NerOptions) -> TaskData:  # type: ignore[override]
        train, validation, sources = load_split(data, options)
        if not validation:
            raise DataError(f"{data.train}: no validation sentences", hint="add data.validation or more sentences")
        types = check_types(train, validation, options.labels)
        return TaskData(train, validation, tag_list(types), sources)

    def resolve_options(self, options: NerOptions, data: TaskData, tokenizer: Any) -> NerOptions:  # type: ignore[override]
        """``word_shape = "auto"`` becomes "on" when the tokenizer lowercases and the training text is cased, else "off"."""
        if options.word_shape != "auto":
            return options
        cased = lowercases(tokenizer) and is_cased([example.tokens for example in data.train])
        return options.model_copy(update={"word_shape": "on" if cased else "off"})

    def model_input_names(self, options: NerOptions) -> tuple[str, ...]:  # type: ignore[override]
        """The standard inputs, plus ``shape_ids`` when ``word_shape`` is on."""
        return ("input_ids", "attention_mask", "token_type_ids", *(("shape_ids",) if options.word_shape == "on" else ()))

    def encode(self, examples: Sequence[TokenExample], tokenizer: Any, labels: Sequence[str],
               options: NerOptions, max_length: int) -> list[Feature]:  # type: ignore[override]
        """One feature per window (usually one per sentence); ``labels`` on each word's first sub-token;
        ``shape_ids`` (each token's word shape) when ``word_shape`` is on. Words are encoded as the
        model saw them in pre-training (``toolkit.word_encoding``: byte-level BPE words keep the space before them)."""
        label_ids = {label: i for i, label in enumerate(labels)}
        layout = special_layout(tokenizer)
        spaces = marks_spaces(tokenizer)
        inputs = [encoder_words(tokenizer, e.tokens, e.text, e.offsets, spaces=spaces) for e in examples]
        encodings = tokenizer.encode_batch(inputs, is_pretokenized=True)
        features: list[Feature] = []
        for index, (example, words, encoding) in enumerate(zip(examples, inputs, encodings)):
            unknown = [tag for tag in example.tags or () if tag not in label_ids]
            if unknown:
                raise DataError(f"{example.source}: tag '{unknown[0]}' is not one of the model's tags ({', '.join(labels)})")
            for window in encode_words(words, tokenizer, max_length, options.stride, layout, encoding):
                feature: Feature = {"input_ids": window.ids, "token_type_ids": window.type_ids, "example_index": index,
                                    "word_ids": window.word_ids, "owned": window.owned}
                if options.word_shape == "on":
                    feature["shape_ids"] = token_shapes(example.tokens, window.word_ids)
                if example.tags is not None:
                    word_targets = [label_ids[tag] for tag in example.tags]
                    feature["labels"] = first_token_targets(len(window.ids), window.first_tokens, word_targets)
                features.append(feature)
        return features

    def build_model(self, base_model: Path, labels: Sequence[str], options: NerOptions,
                    train_features: Sequence[Feature] | None = None) -> Any:  # type: ignore[override]
        from assistant_builder.toolkit.token_classifier import build_token_classifier

        return build_token_classifier(base_model, len(labels), options.dropout, len(SHAPES) if options.word_shape == "on" else 0)

    def warm_start_model(self, parent_model_dir: Path, parent_labels: Sequence[str], labels: Sequence[str],
                         options: NerOptions, train_features: Sequence[Feature] | None = None) -> Any:
        """The parent's token classifier with a row per new tag (a new entity type's B-/I- tags; the
        optional warm-start protocol of ``builder run --from``, docs/updates.md), each new row from
        the mean hidden state of the tokens tagged with it (``toolkit.token_classifier.warm_start_token_classifier``):
        the sentences with a new tag, and as many others (for the centre)."""
        from assistant_builder.toolkit.token_classifier import warm_start_token_classifier

        old = len(parent_labels)
        features = list(train_features or [])
        carries_new = [any(t >= old for t in f.get("labels", ())) for f in features]
        new = [f for f, carries in zip(features, carries_new) if carries]
        others = [f for f, carries in zip(features, carries_new) if not carries][: max(64, len(new))] if new else []
        chosen = new + others

        def batches() -> Any:
            import torch

            for start in range(0, len(chosen), 32):
                batch = self.collate(chosen[start:start + 32], 0)
                yield {k: torch.as_tensor(v) for k, v in batch.items()
                       if k in ("input_ids", "attention_mask", "token_type_ids", "shape_ids", "labels")}

        return warm_start_token_classifier(parent_model_dir, list(parent_labels), list(labels), options.dropout, batches())

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory, list(labels))

    def load_model(self, directory: Path) -> Any:
        """Load a model saved by ``save_model``."""
        from assistant_builder.toolkit.token_classifier import load_token_classifier

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
        return collate(features, pad_token_id, ("labels",), ("shape_ids",))

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[TokenExample],
               labels: Sequence[str], options: NerOptions) -> list[dict[str, Any]]:  # type: ignore[override]
        """Per word, from the window that owns it: tags by ``options.decoder``; entities as character spans."""
        windows: list[list[tuple[Any, Any]]] = [[] for _ in examples]
        for feature, logits in zip(features, outputs["logits"]):
            windows[feature["example_index"]].append((feature["owned"], logits))
        predictions = []
        for example, example_windows in zip(examples, windows):
            probabilities = word_probabilities(len(example.tokens), labels, example_windows)
            tags, scores = decode_word_tags(probabilities, labels, options.decoder)
            tags, entities = drop_weak_entities(tags, tag_entities(tags, scores, example.text, example.offsets), options.min_entity_score)
            predictions.append({"entities": entities, "tags": tags})
        return predictions

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[TokenExample],
                 labels: Sequence[str]) -> Evaluation:  # type: ignore[override]
        gold = [list(e.tags or ("O",) * len(e.tokens)) for e in examples]
        return evaluate_tags(gold, [list(p["tags"]) for p in predictions], examples, tag_types(labels))

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        return tuple((e["start"], e["end"], e["label"]) for e in prediction["entities"])

    def agreement(self, predictions: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> Agreement:
        """Entity-level: micro Dice of the ``(start, end, label)`` entity sets (one differing entity costs one entity)."""
        keys, reference_keys = [self.prediction_key(p) for p in predictions], [self.prediction_key(p) for p in reference]
        return Agreement(unit_agreement(keys, reference_keys), "entities", example_agreement(keys, reference_keys))

    def parse_input(self, raw: Any) -> TokenExample:
        """A string or ``{"text": ...}`` (split into words, ``toolkit.alignment.split_words``: Chinese, Japanese and
        Thai by character), or ``{"tokens": [...]}`` (optionally with the ``"text"`` they come from)."""
        words, text, offsets = words_of_input(raw)
        return TokenExample(words, None, text, offsets)

    long_inputs = "window"

    def check_examples(self, data: Any, options: NerOptions) -> Any:  # type: ignore[override]
        """``builder data check``: sentences read leniently (bad tags become findings), see ``checks.py``."""
        from assistant_builder_tasks.ner.checks import check_examples

        return check_examples(data, options)

    def check_data(self, data: Any, options: NerOptions, context: Any) -> list[Any]:  # type: ignore[override]
        """Malformed tags and invalid (repaired) tag sequences, each at its line."""
        from assistant_builder_tasks.ner.checks import check_data

        return check_data(data, options)

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
