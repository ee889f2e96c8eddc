"""``assistant_builder.toolkit.readers``: CoNLL, parallel lines, records, normalisation, all with file:line errors."""

from __future__ import annotations

import json
import warnings

import pytest

from assistant_builder.datasources import Record, read_jsonl
from assistant_builder.errors import DataError
from assistant_builder.toolkit.readers import (Sentence, TagRepairWarning, char_spans_to_tags, content_lines, normalise,
                                               parallel_files, read_conll, read_parallel, read_record_sentences, record_sentence)


def test_conll_sentences_keep_each_words_line(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- O\n\ncall VB O\nJohn NNP B-per\n\n\nhi\tX\tO\n".replace("hi\tX\tO", "hi X O"))
    first, second = read_conll(path)
    assert first == Sentence(("call", "John"), ("O", "B-per"), (3, 4), word_per_line=True)
    assert second.tokens == ("hi",) and second.lines == (7,)


@pytest.mark.parametrize(("content", "message"), [
    ("a O\nb\n", "a.conll:2: expected a word and its tag"),
    ("a X O\nb O\n", r"a.conll:2: expected 3 columns \(as on line 1\), got 2"),
    ("\n\n", r"no sentences found \(an empty file\)"),
    (b"a O\nb\xff O\n", "a.conll:2: bytes that are not UTF-8 at column 2"),
])
def test_conll_errors_are_located(tmp_path, content, message):
    path = tmp_path / "a.conll"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        read_conll(path)


def test_parallel_files_are_found_from_the_folder_or_either_file(tmp_path):
    for name in ("seq.in", "seq.out", "label", "train.seq.in", "train.seq.out", "train.label", "x.in", "x.out", "x.label"):
        (tmp_path / name).write_text("a\n")
    assert parallel_files(tmp_path, ["label"]).all() == [tmp_path / "seq.in", tmp_path / "seq.out", tmp_path / "label"]
    assert parallel_files(tmp_path / "seq.out", ["label"]).all() == [tmp_path / "seq.in", tmp_path / "seq.out", tmp_path / "label"]
    assert parallel_files(tmp_path / "train.seq.in", ["label"]).extras == {"label": tmp_path / "train.label"}
    assert parallel_files(tmp_path / "x.in", ["label"]).all() == [tmp_path / "x.in", tmp_path / "x.out", tmp_path / "x.label"]
    (tmp_path / "x.label").unlink()
    with pytest.raises(DataError, match="needs x.label beside x.in"):
        parallel_files(tmp_path / "x.in", ["label"])


def test_parallel_lines_with_an_extra_file(tmp_path):
    (tmp_path / "seq.in").write_text("fly to paris\n\ncall mom \n\n")
    (tmp_path / "seq.out").write_text("O O B-city\n\nO B-person\n")
    (tmp_path / "label").write_text(" flight \n\ncall\n")
    sentences, files = read_parallel(tmp_path, ["label"])
    assert [(s.tokens, s.tags, s.lines, dict(s.fields)) for s in sentences] == [
        (("fly", "to", "paris"), ("O", "O", "B-city"), (1, 1, 1), {"label": "flight"}),
        (("call", "mom"), ("O", "B-person"), (3, 3), {"label": "call"})]
    assert files.tags == tmp_path / "seq.out"


@pytest.mark.parametrize(("words", "tags", "labels", "message"), [
    ("a b\nc\n", "O O\n", "x\ny\n", r"seq.in:2: no matching line in seq.out \(seq.in has 2 lines, seq.out has 1, label has 2\)"),
    ("a b\n", "O\n", "x\n", "seq.out:1: 1 tags for the 2 words on seq.in:1"),
    ("a\n\nb\n", "O\n\nO\n", "x\ny\nz\n", "seq.in:2: no words on this line, but the same line of label is not empty"),
    ("", "", "", "seq.in: empty file"),
])
def test_parallel_line_errors_are_located(tmp_path, words, tags, labels, message):
    for name, content in (("seq.in", words), ("seq.out", tags), ("label", labels)):
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_parallel(tmp_path, ["label"])


def test_content_lines_drop_trailing_blank_lines(tmp_path):
    (tmp_path / "f").write_text("a\n\nb\n\n  \n")
    assert content_lines(tmp_path / "f") == [(1, "a"), (2, ""), (3, "b")]


def test_character_spans_become_word_tags():
    text = "Meet Ana in São Paulo!"
    assert char_spans_to_tags(text, [{"start": 12, "end": 21, "label": " loc"}, {"start": 5, "end": 8, "label": "per"}], "f:1") == (
        ["Meet", "Ana", "in", "São", "Paulo", "!"], ["O", "B-per", "O", "B-loc", "I-loc", "O"],
        [(0, 4), (5, 8), (9, 11), (12, 15), (16, 21), (21, 22)], 0)
    *_, widened = char_spans_to_tags("call Johnny", [{"start": 5, "end": 9, "label": "per"}], "f:1")
    assert widened == 1
    with pytest.raises(DataError, match=r"f:1: slot 1 \('John', 5-9\) starts or ends inside the word 'Johnny'"):
        char_spans_to_tags("call Johnny", [{"start": 5, "end": 9, "label": "per"}], "f:1", noun="slot", partial_words="error")


@pytest.mark.parametrize(("spans", "message"), [
    ({"start": 0}, "field 'entities' must be a list"),
    ([{"start": 0, "end": 2}], "f:3: entity 1: expected an object with 'start', 'end' and 'label'"),
    ([{"start": 0, "end": 99, "label": "x"}], r"f:3: entity 1: expected character offsets 0 <= start < end <= 5"),
    ([{"start": 0, "end": 2, "label": "I-x"}], "f:3: entity 1: 'label' must be an entity type such as 'person'"),
    ([{"start": 2, "end": 3, "label": "x"}], r"f:3: entity 1 \(' '\) covers no word"),
    ([{"start": 0, "end": 5, "label": "x"}, {"start": 3, "end": 5, "label": "y"}], r"f:3: entity 2 \('cd'\) overlaps entity 1"),
])
def test_bad_character_spans_are_located(spans, message):
    with pytest.raises(DataError, match=message):
        char_spans_to_tags("ab cd", spans, "f:3")


def test_records_of_both_forms_keep_their_fields():
    tokens, _ = record_sentence(Record("d.jsonl", 4, {"tokens": ["a", " b"], "ner_tags": ["O", "B-x "], "intent": "i"}))
    assert (tokens.tokens, tokens.tags, tokens.lines, tokens.source, tokens.fields["intent"]) == (("a", "b"), ("O", "B-x"), (4, 4), "d.jsonl", "i")
    text, widened = record_sentence(Record("d.jsonl", 5, {"text": "hi bob", "slots": [{"start": 3, "end": 6, "label": "p"}]}),
                                    spans_field="slots")
    assert (text.tags, text.text, text.offsets, widened) == (("O", "B-p"), "hi bob", ((0, 2), (3, 6)), 0)
    with pytest.raises(DataError, match=r"d.jsonl:6: missing field 'tokens' or 'text' \(found: words\)"):
        record_sentence(Record("d.jsonl", 6, {"words": []}))


def test_records_report_widened_spans_once(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"text": "call Johnny", "entities": [{"start": 5, "end": 9, "label": "per"}]},
            {"text": "ring Maryann", "entities": [{"start": 5, "end": 9, "label": "per"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.warns(TagRepairWarning, match="2 entities did not start or end on a word boundary"):
        sentences, from_spans = read_record_sentences(read_jsonl(path), path)
    assert from_spans and [s.tags for s in sentences] == [("O", "B-per"), ("O", "B-per")]
    path.write_text("")
    with pytest.raises(DataError, match="no sentences found"):
        read_record_sentences(read_jsonl(path), path)


def sentence(tags, line=1, per_line=False):
    words = tuple(f"w{i}" for i in range(len(tags)))
    return Sentence(words, tuple(tags), tuple(range(line, line + len(tags))) if per_line else (line,) * len(tags), word_per_line=per_line)


def test_normalise_converts_the_detected_scheme_and_fills_text(tmp_path):
    [result] = normalise([sentence(["O", "B-x", "E-x", "S-y"])], tmp_path / "f")
    assert result.tags == ("O", "B-x", "I-x", "B-y") and result.text == "w0 w1 w2 w3" and result.offsets[1] == (3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalise([sentence(["I-x", "O"])], tmp_path / "f", scheme="iob1")[0].tags == ("B-x", "O")


def test_normalise_repairs_with_one_warning_or_stops_at_the_first(tmp_path):
    sentences = [sentence(["O", "I-x", "I-x"], 1), sentence(["I-y"], 2)]
    with pytest.warns(TagRepairWarning, match=r"out: repaired 2 invalid tag sequences \(a slot starting with I-, .*first at line 1\)"):
        repaired = normalise(sentences, tmp_path / "in", scheme="iob2", tags_path=tmp_path / "out", noun="slot")
    assert [s.tags for s in repaired] == [("O", "B-x", "I-x"), ("B-y",)]
    with pytest.raises(DataError, match=r"out:1: invalid IOB2 sequence: 'I-x' \(word 'w1'\) follows 'O'; a slot must start with B-"):
        normalise(sentences, tmp_path / "in", scheme="iob2", invalid_tags="error", tags_path=tmp_path / "out", noun="slot")


def test_normalise_locates_bad_tags_at_the_line_and_word(tmp_path):
    with pytest.raises(DataError, match="f:1: word 2: expected 'O', 'B-TYPE' or 'I-TYPE' \\(IOB2\\), got 'X-y'") as error:
        normalise([sentence(["O", "X-y"])], tmp_path / "f", scheme="iob2")
    assert error.value.hint == "tags are O, B-TYPE and I-TYPE (IOB2)"
    with pytest.raises(DataError, match="f:8: tag 'S-y' is not valid in the IOB2 scheme") as error:
        normalise([sentence(["O", "S-y"], 7, per_line=True)], tmp_path / "f", scheme="iob2", scheme_setting="task.options.scheme")
    assert "task.options.scheme" in error.value.hint


def test_conll_one_character_per_line_keeps_the_text_as_written(tmp_path):
    path = tmp_path / "zh.conll"
    # CAIS layout: one character per line, BIOES, and a line whose word is a space
    path.write_text("我 O\n听 O\n周 B-singer\n杰 I-singer\n伦 E-singer\n  O\n夜 B-song\n曲 E-song\n\n给 O\n张 B-person\n伟 E-person\n",
                    encoding="utf-8")
    first, second = normalise(read_conll(path), path)
    assert first.text == "我听周杰伦 夜曲" and first.tokens == tuple("我听周杰伦夜曲")
    assert [first.text[s:e] for s, e in first.offsets] == list("我听周杰伦夜曲")
    assert first.tags == ("O", "O", "B-singer", "I-singer", "I-singer", "B-song", "I-song")
    assert first.lines[-2:] == (7, 8)  # the space line is no word, but every line keeps its number
    assert second.text == "给张伟" and second.offsets == ((0, 1), (1, 2), (2, 3))
