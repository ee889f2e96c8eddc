"""Property-based tests for the NER and QA readers and decoders: random or malformed input gives a
valid result or a BuilderError, never another exception; decoded spans always lie inside the text."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant_builder.errors import BuilderError
from assistant_builder.recipe.schema import DataSection
from assistant_builder.registry import build_registry
from assistant_builder.tokenization import load_tokenizer

REGISTRY = build_registry()
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
words = st.text(string.ascii_letters + string.digits + ".,:'-", min_size=1, max_size=8)
tags = st.sampled_from(["O", "B-date", "I-date", "B-place", "I-place", "E-date", "S-place", "X", "I-", ""])


@FUZZ
@given(st.lists(st.one_of(st.just(""), st.just("-DOCSTART- -X- O O"), st.tuples(words, tags).map(" ".join),
                          st.tuples(words, words, tags).map("\t".join), st.text(max_size=12)), max_size=30),
       st.sampled_from(["repair", "error"]))
def test_conll_reader_on_random_files(tmp_path_factory, lines, invalid_tags):
    task = REGISTRY.create("task", "ner")
    path: Path = tmp_path_factory.mktemp("fuzz") / "train.conll"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        data = task.load_data(DataSection(train=path, validation=path), task.Options(invalid_tags=invalid_tags))
    except BuilderError:
        return
    assert data.train


answers = st.fixed_dictionaries({"text": st.text(max_size=6), "answer_start": st.integers(-3, 40)})
qas = st.fixed_dictionaries({"id": st.text(string.ascii_lowercase, min_size=1, max_size=4), "question": st.text(max_size=20),
                             "answers": st.lists(answers, max_size=2)})
squad = st.fixed_dictionaries({"version": st.just("1.1"), "data": st.lists(st.fixed_dictionaries({
    "title": st.text(max_size=5),
    "paragraphs": st.lists(st.fixed_dictionaries({"context": st.text(max_size=40), "qas": st.lists(qas, max_size=3)}), max_size=2),
}), max_size=2)})


@FUZZ
@given(st.one_of(squad.map(json.dumps), st.text(max_size=60)), st.booleans())
def test_squad_reader_on_random_files(tmp_path_factory, content, unanswerable):
    task = REGISTRY.create("task", "qa")
    path: Path = tmp_path_factory.mktemp("fuzz") / "train.json"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    try:
        data = task.load_data(DataSection(train=path, validation=path), task.Options(allow_unanswerable=unanswerable))
    except BuilderError:
        return
    for example in data.train:
        for answer in getattr(example, "answers", []) or []:
            assert example.context[answer.start:answer.end] == answer.text


@FUZZ
@given(st.lists(words, min_size=1, max_size=60), st.integers(0, 2**31 - 1))
def test_ner_decoder_spans_stay_inside_the_text(tiny_model_dir, sentence, seed):
    task = REGISTRY.create("task", "ner")
    options = task.Options(stride=4)
    from assistant_builder.toolkit.tags import tag_list

    types = ["date", "place"]
    labels = tag_list(types)  # the task's label list is its IOB2 tag set
    text = " ".join(sentence)
    examples = [task.parse_input(text)]
    tokenizer = load_tokenizer(tiny_model_dir, 16)
    features = task.encode(examples, tokenizer, labels, options, 16)
    rng = np.random.default_rng(seed)
    outputs = {"logits": [rng.normal(size=(len(f["input_ids"]), len(labels))).astype(np.float32) for f in features]}
    (prediction,) = task.decode(outputs, features, examples, labels, options)
    for entity in prediction["entities"]:
        assert 0 <= entity["start"] < entity["end"] <= len(text)
        assert text[entity["start"]:entity["end"]] == entity["text"]
        assert entity["label"] in types and 0.0 <= entity["score"] <= 1.0


@FUZZ
@given(st.text(string.ascii_letters + " .,", min_size=1, max_size=200), st.text(string.ascii_letters + " ?", min_size=1, max_size=20),
       st.integers(0, 2**31 - 1))
def test_qa_decoder_answers_are_slices_of_the_context(tiny_model_dir, context, question, seed):
    task = REGISTRY.create("task", "qa")
    options = task.Options(stride=8, max_answer_length=10)
    try:
        examples = [task.parse_input({"question": question, "context": context})]
        tokenizer = load_tokenizer(tiny_model_dir, 32)
        features = task.encode(examples, tokenizer, [], options, 32)
    except BuilderError:
        return
    rng = np.random.default_rng(seed)
    outputs = {name: [rng.normal(size=len(f["input_ids"])).astype(np.float32) for f in features]
               for name in ("start_logits", "end_logits")}
    (prediction,) = task.decode(outputs, features, examples, [], options)
    if prediction["answer"]:
        assert context[prediction["start"]:prediction["end"]] == prediction["answer"]
