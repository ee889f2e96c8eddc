"""Span conversions behind the span labelling widget (NER entities, QA answers)."""

from __future__ import annotations

from assistant_builder.tui import spans as sp

CONTEXT = "The ferry runs every half hour, and the crossing takes six minutes."


def test_qa_answers_round_trip_through_word_spans() -> None:
    payload = {"question": "How long?", "context": CONTEXT}
    gold = {"answers": [{"text": "six minutes", "answer_start": CONTEXT.index("six")}]}
    spans = sp.gold_to_spans("answer_span", payload, gold)
    words = sp.editor_words("answer_span", payload)
    assert [words[i] for i in range(spans[0]["start"], spans[0]["end"])] == ["six", "minutes"]
    assert sp.spans_to_gold("answer_span", payload, spans) == gold
    assert sp.spans_to_gold("answer_span", payload, []) == {"answers": []}
    assert sp.gold_to_spans("answer_span", payload, {"answers": []}) == []


def test_suggestions_become_spans() -> None:
    qa = {"question": "q", "context": CONTEXT}
    start = CONTEXT.index("half")
    assert sp.suggestion_spans("answer_span", qa, {"answer": "half hour", "start": start, "end": start + 9, "score": 0.4}) == [
        {"start": 4, "end": 6, "label": "answer"}]
    assert sp.suggestion_spans("answer_span", qa, {"answer": "", "score": 0.9}) == []  # predicted unanswerable
    ner = {"tokens": ["call", "Aunt", "Lidia"]}
    assert sp.suggestion_spans("token_spans", ner, {"tags": ["O", "B-person", "I-person"]}) == [{"start": 1, "end": 3, "label": "person"}]
    assert sp.suggestion_spans("token_spans", ner, {"tags": ["O"]}) is None  # does not fit the tokens
    assert sp.suggestion_spans("token_spans", ner, None) is None


def test_tagging_replaces_overlaps_and_remove_takes_the_span_under_the_cursor() -> None:
    spans = sp.tag([], 0, 2, "a")
    spans = sp.tag(spans, 3, 4, "b")
    assert sp.tag(spans, 1, 4, "c") == [{"start": 1, "end": 4, "label": "c"}]
    assert sp.tag(spans, 2, 3, "c") == [{"start": 0, "end": 2, "label": "a"}, {"start": 2, "end": 3, "label": "c"}, {"start": 3, "end": 4, "label": "b"}]
    assert sp.tag(spans, 5, 6, "answer", single=True) == [{"start": 5, "end": 6, "label": "answer"}]
    assert sp.remove_at(spans, 1) == [{"start": 3, "end": 4, "label": "b"}]
    assert sp.remove_at(spans, 2) == spans
