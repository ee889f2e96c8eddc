"""Words reach the tokenizer as the model saw them in pre-training (``toolkit.word_encoding``)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from assistant_builder.toolkit.alignment import split_words
from assistant_builder.toolkit.word_encoding import encoder_words, marks_spaces

CORPUS = ["call Rossi at the office, please", "the lower road is newer and wider", "Rossi lives near the Rossi bakery"] * 30


def byte_level() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer


def metaspace(scheme: str) -> Tokenizer:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme=scheme)
    tokenizer.train_from_iterator(CORPUS, trainers.UnigramTrainer(vocab_size=120, special_tokens=["<unk>"], unk_token="<unk>"))
    return tokenizer


def wordpiece() -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]"]))
    return tokenizer


@pytest.mark.parametrize(("make", "expected"), [(byte_level, True), (lambda: metaspace("never"), True),
                                                (lambda: metaspace("always"), False), (wordpiece, False)])
def test_marks_spaces_tells_which_tokenizers_need_the_space(make, expected):
    assert marks_spaces(make()) is expected


@pytest.mark.parametrize("make", [byte_level, wordpiece, lambda: metaspace("never")])
def test_words_encode_as_the_running_text_does(make):
    tokenizer = make()
    text = "call Rossi at the office, please"
    words, offsets = split_words(text)
    inputs = encoder_words(tokenizer, words, text, offsets)
    assert tokenizer.encode(inputs, is_pretokenized=True, add_special_tokens=False).ids == \
        tokenizer.encode(text, add_special_tokens=False).ids


def test_byte_level_words_keep_their_space_and_only_where_the_text_has_one():
    tokenizer = byte_level()
    text = "call Rossi, please"
    words, offsets = split_words(text)
    assert encoder_words(tokenizer, words, text, offsets) == ["call", " Rossi", ",", " please"]
    assert "ĠRossi" in tokenizer.encode(encoder_words(tokenizer, words, text, offsets), is_pretokenized=True).tokens
    assert "ĠRossi" not in tokenizer.encode(words, is_pretokenized=True).tokens  # what the words alone gave before
    assert encoder_words(tokenizer, ["a", "b"]) == ["a", " b"]  # no text: every word after the first follows a space
    assert encoder_words(wordpiece(), words, text, offsets) == words
