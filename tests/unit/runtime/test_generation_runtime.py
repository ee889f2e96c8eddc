"""The torch-free generation runtime without a model: settings, end-of-sequence ids, streaming detokenisation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from assistant_builder.conformance.tiny_causal_lm import train_chat_tokenizer
from assistant_builder.errors import ModelError
from assistant_builder.runtime.generation import GenaiModel, GenerationSettings, read_eos_token_ids, stream_text

MULTIBYTE = "Le café est prêt, merci ! 中文 is Chinese; é 中 done."


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return train_chat_tokenizer()


class Counted:
    """An id iterator that counts how many ids were taken from it."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids, self.taken = list(ids), 0

    def __iter__(self) -> Iterator[int]:
        for token in self.ids:
            self.taken += 1
            yield token


def test_default_settings_are_greedy() -> None:
    settings = GenerationSettings()
    assert settings.greedy and settings.max_new_tokens == 128 and settings.stop == ()
    assert not GenerationSettings(temperature=0.7, top_p=0.9, top_k=40, seed=3).greedy


@pytest.mark.parametrize(("field", "value"), [
    ("max_new_tokens", 0), ("max_new_tokens", 2.5), ("temperature", -0.1), ("top_p", 0.0), ("top_p", 1.5),
    ("top_k", -1), ("seed", -3), ("seed", 1.5), ("stop", ("",)), ("stop", ["</s>"]),
])
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field}: expected"):
        GenerationSettings(**{field: value})  # type: ignore[arg-type]


def test_invalid_settings_are_reported_together() -> None:
    with pytest.raises(ValueError, match="max_new_tokens.*top_k"):
        GenerationSettings(max_new_tokens=0, top_k=-2)


def test_eos_ids_come_from_both_configs(tmp_path: Path) -> None:
    (tmp_path / "genai_config.json").write_text(json.dumps({"model": {"eos_token_id": [2, 0]}}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 7]}))
    assert read_eos_token_ids(tmp_path) == (2, 0, 7)
    assert read_eos_token_ids(tmp_path / "missing") == ()


def test_a_folder_without_genai_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="genai_config.json"):
        GenaiModel(tmp_path)


def test_multibyte_characters_are_never_split(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode(MULTIBYTE).ids
    # the test means something only if some token ends inside a character
    assert any(tokenizer.decode(ids[:n]).endswith("\ufffd") for n in range(1, len(ids)))
    pieces = list(stream_text(iter(ids), tokenizer))
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True) == MULTIBYTE
    assert all(piece and "\ufffd" not in piece for piece in pieces)
    assert len(pieces) > 5  # streamed, not all at the end


def test_special_tokens_are_left_out(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = [1, *tokenizer.encode("assistant\nHello there").ids, 2]
    assert "".join(stream_text(ids, tokenizer)) == "assistant\nHello there"


def spanning_stop(tokenizer, text: str) -> tuple[list[int], str, int]:  # type: ignore[no-untyped-def]
    """ids of ``text``, a stop sequence made of the end of one token and the start of the next, and that next token's index."""
    encoding = tokenizer.encode(text)
    for index in range(3, len(encoding.ids) - 2):
        (a, b), (c, d) = encoding.offsets[index], encoding.offsets[index + 1]
        if b - a >= 2 and d - c >= 2 and text[a:b].strip() and text[c:d].strip():
            return encoding.ids, text[b - 2:b] + text[c:c + 2], index + 1
    raise AssertionError("no two neighbouring tokens of two characters or more")


def test_stop_sequence_spanning_two_tokens(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "Please tell Clara that the bus leaves the station at noon, then lock the door."
    ids, stop, second = spanning_stop(tokenizer, text)
    source = Counted(ids)
    pieces = list(stream_text(source, tokenizer, stop=[stop]))
    assert "".join(pieces) == text[: text.index(stop)]
    assert source.taken == second + 1  # no id read after the one that completed the stop sequence


def test_stop_at_the_very_start_yields_nothing(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode("Hello there, how are you?").ids
    source = Counted(ids)
    assert list(stream_text(source, tokenizer, stop=["Hel"])) == []
    assert source.taken < len(ids)


def test_a_possible_stop_is_held_back_until_decided(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "Wait for the green kettle; the end is near. The end."
    ids = tokenizer.encode(text).ids
    seen = ""
    for piece in stream_text(ids, tokenizer, stop=["The end.", "\n\n"]):
        seen += piece
        assert not seen.endswith("The")  # "The" could start the stop sequence: never shown before it is decided
    assert seen == "Wait for the green kettle; the end is near. "


def test_no_stop_gives_the_whole_text(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode(MULTIBYTE).ids
    assert "".join(stream_text(ids, tokenizer, stop=["Stop!", "中文 is Japanese"])) == MULTIBYTE


def test_truncated_character_at_the_end_is_flushed(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode("ok 中").ids[:-1]  # the last byte of 中 missing
    assert "".join(stream_text(ids, tokenizer)) == tokenizer.decode(ids)


def test_empty_stop_sequence_is_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="stop"):
        list(stream_text([5, 6], tokenizer, stop=[""]))
