"""``assistant_builder.toolkit.windows``: word windows with ownership, fixed-size windows, untruncated copies."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assistant_builder.tokenization import load_tokenizer
from assistant_builder.toolkit.windows import effective_stride, encode_words, owners, plan_windows, untruncated, window_starts


@given(st.lists(st.integers(1, 4), min_size=1, max_size=30), st.integers(2, 12), st.integers(0, 8))
def test_planned_windows_cover_every_token_within_the_budget(word_lengths, budget, overlap):
    word_ids = [w for w, n in enumerate(word_lengths) for _ in range(n)]
    windows = plan_windows(word_ids, budget, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == len(word_ids)
    assert all(0 < end - start <= budget for start, end in windows)
    assert all(a[0] < b[0] and b[0] <= a[1] for a, b in zip(windows, windows[1:]))  # advancing, no gap
    chosen = owners({w: word_ids.index(w) for w in set(word_ids)}, windows)
    for word, index in chosen.items():
        start, end = windows[index]
        assert start <= word_ids.index(word) < end


def test_the_most_central_window_owns_a_word_and_ties_go_to_the_earlier():
    assert owners({0: 0, 1: 3, 2: 5}, [(0, 6), (3, 9)]) == {0: 0, 1: 0, 2: 1}
    assert owners({1: 4}, [(0, 8), (1, 9)]) == {1: 0}


@given(st.integers(1, 200), st.integers(1, 40), st.integers(0, 60))
def test_fixed_windows_end_at_the_end_and_advance(length, size, stride):
    overlap = effective_stride(stride, size)
    assert 0 <= overlap <= size // 2
    starts = window_starts(length, size, overlap)
    assert starts[0] == 0 and min(starts[-1] + size, length) == length
    assert all(b > a for a, b in zip(starts, starts[1:]))
    assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))  # consecutive windows share >= overlap tokens


def test_a_sentence_that_fits_is_one_window_with_its_special_tokens(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    [window] = encode_words(["call", "xyzzy"], tokenizer, 32, 4)
    assert [tokenizer.id_to_token(i) for i in window.ids] == ["[CLS]", "call", "x", "##y", "##z", "##z", "##y", "[SEP]"]
    assert window.word_ids == [None, 0, 1, 1, 1, 1, 1, None] and window.owned == [(0, 1), (1, 2)]


def test_a_long_sentence_is_windowed_and_each_word_owned_once(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 10)
    words = ["call", "mom", "in", "london", "at", "7", "pm", "tomorrow", "please", "john"] * 3
    windows = encode_words(words, tokenizer, 10, 3)
    assert len(windows) > 2 and all(len(w.ids) <= 10 for w in windows)
    assert sorted(word for w in windows for word, _ in w.owned) == list(range(len(words)))
    assert tokenizer.truncation["max_length"] == 10  # the shared tokenizer is left as it was


def test_untruncated_copy_encodes_in_full_and_leaves_the_original(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 8)
    text = " ".join(["london"] * 20)
    assert len(untruncated(tokenizer).encode(text).ids) == 22
    assert len(tokenizer.encode(text).ids) == 8
