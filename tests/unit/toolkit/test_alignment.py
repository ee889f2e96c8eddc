"""``assistant_builder.toolkit.alignment``: words and offsets, character spans, first sub-tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant_builder.errors import DataError
from assistant_builder.tokenization import load_tokenizer
from assistant_builder.toolkit.alignment import (IGNORE, char_span_tokens, char_span_words, first_subtokens, first_token_targets,
                                                 join_words, span_text, split_words, words_char_span, words_of_input)


@given(st.text(max_size=40))
def test_split_words_offsets_point_at_the_words(text):
    words, offsets = split_words(text)
    assert [text[s:e] for s, e in offsets] == words
    assert all(not w.isspace() and w for w in words)
    assert all(a[1] <= b[0] for a, b in zip(offsets, offsets[1:]))


def test_split_and_join_words():
    assert split_words("Call Dr. O'Neil at 7:30!") == (["Call", "Dr", ".", "O", "'", "Neil", "at", "7", ":", "30", "!"],
                                                       [(0, 4), (5, 7), (7, 8), (9, 10), (10, 11), (11, 15), (16, 18), (19, 20),
                                                        (20, 21), (21, 23), (23, 24)])
    assert join_words(["new", "york", "?"]) == ("new york ?", [(0, 3), (4, 8), (9, 10)])


def test_character_spans_and_words():
    text = "fly to new york now"
    _, offsets = split_words(text)
    assert char_span_words(offsets, 7, 15) == [2, 3]
    assert char_span_words(offsets, 8, 12) == [2, 3]  # cuts "new" and "york": both whole words
    assert char_span_words(offsets, 6, 7) == []  # white space only
    assert words_char_span(offsets, 2, 4) == (7, 15) and span_text(text, offsets, 2, 4) == "new york"


def test_words_of_input_accepts_text_or_tokens_and_rejects_the_rest():
    assert words_of_input("hi there!") == (("hi", "there", "!"), "hi there!", ((0, 2), (3, 8), (8, 9)))
    assert words_of_input({"text": "hi"}) == (("hi",), "hi", ((0, 2),))
    assert words_of_input({"tokens": [" new", "york "]}) == (("new", "york"), "new york", ((0, 3), (4, 8)))
    for bad in (42, {"txt": "hi"}, {"tokens": []}, {"tokens": ["a", ""]}, "  ", ""):
        with pytest.raises(DataError, match="expected"):
            words_of_input(bad)


def test_first_sub_tokens_and_their_targets(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    encoding = tokenizer.encode(["call", "xyzzy", "in"], is_pretokenized=True)
    first = first_subtokens(encoding.word_ids)
    assert first == {0: 1, 1: 2, 2: 7}
    assert first_token_targets(len(encoding.ids), first, [5, 6, 7]) == [IGNORE, 5, 6, IGNORE, IGNORE, IGNORE, IGNORE, 7, IGNORE]
    assert first_token_targets(3, {0: 1}, [4, 9]) == [IGNORE, 4, IGNORE]  # word 1 cut off: no target


def test_char_span_tokens_skips_special_tokens(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    encoding = tokenizer.encode("call mom in london")
    offsets = encoding.offsets  # [CLS] and [SEP] have (0, 0)
    assert char_span_tokens(offsets, 5, 8) == (2, 2)
    assert char_span_tokens(offsets, 5, 18) == (2, 4)
    assert char_span_tokens(offsets, 30, 40) is None


def test_scripts_without_spaces_are_words_by_character():
    assert split_words("请给张伟打电话")[0] == list("请给张伟打电话")
    assert split_words("生生不息CSOL生化")[0] == ["生", "生", "不", "息", "CSOL", "生", "化"]
    assert split_words("東京タワーへ")[0] == ["東", "京", "タ", "ワ", "ー", "へ"]
    assert split_words("สวัสดี")[0] == ["ส", "วั", "ส", "ดี"]  # a Thai character keeps its vowel marks
    assert split_words("नमस्ते दुनिया")[0] == ["नमस्ते", "दुनिया"]  # combining marks stay inside a word
    assert split_words("我要听tfboys唱。")[1][3] == (3, 9)


def test_join_words_writes_unspaced_scripts_without_spaces():
    assert join_words(list("明天北京")) == ("明天北京", [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert join_words(["去", "CSOL", "玩", "new", "york"]) == ("去CSOL玩new york", [(0, 1), (1, 5), (5, 6), (6, 9), (10, 14)])
    assert join_words(["听", "t", "f", "的"])[0] == "听tf的"  # one character per line: no separator at all
    assert join_words(["a", "b"])[0] == "a b"


def test_tokens_with_their_text_get_offsets_into_that_text():
    assert words_of_input({"tokens": ["给", "张伟"], "text": "给 张伟"}) == (("给", "张伟"), "给 张伟", ((0, 1), (2, 4)))
    with pytest.raises(DataError, match=r"token 2 \('李'\) is not found in 'text' at character 1"):
        words_of_input({"tokens": ["给", "李"], "text": "给张伟"})
