"""Torch-free text generation with an exported causal LM (onnxruntime-genai) and streaming detokenisation.

``GenaiModel(folder)`` opens a folder written by the ``onnx`` exporter for a causal LM
(``model.onnx`` + ``genai_config.json`` + tokenizer files, the layout of onnxruntime-genai's model
builder) and generates token ids one at a time with a key/value cache: greedy when
``GenerationSettings.temperature`` is 0, else sampled (temperature, top-p, top-k, optional seed).
``stream_text`` turns a stream of ids into text pieces as soon as they are final, holding back an
unfinished UTF-8 character and anything that could be the start of a stop sequence, and stops
pulling ids once a stop sequence appears. ``timed_generate`` measures time to first token and
the decoding rate for benchmarks.

Imports onnxruntime-genai (inside ``GenaiModel``) and tokenizers only: never torch or transformers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.errors import ModelError

__all__ = ["GENAI_CONFIG", "GenaiModel", "GenerationSettings", "GenerationTiming", "read_eos_token_ids", "stream_text",
           "timed_generate"]

#: onnxruntime-genai's description of the model folder (written by its model builder)
GENAI_CONFIG = "genai_config.json"
#: what a detokeniser shows for bytes that do not (yet) form a whole UTF-8 character
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate: at most ``max_new_tokens`` new tokens (the end-of-sequence token not counted).

    ``temperature`` 0 means greedy decoding (``top_p``, ``top_k`` and ``seed`` are then unused);
    above 0 tokens are sampled from the softmax at that temperature, restricted to the ``top_k``
    most likely tokens (0: no limit) and to the smallest set whose probability reaches ``top_p``
    (1.0: no limit). ``seed`` makes sampling reproducible (``None``: a fresh random seed each
    time). ``stop``: text at which the answer ends (not part of it), applied by ``stream_text``.
    Invalid values raise ``ValueError`` naming the field.
    """

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            problems.append(f"max_new_tokens: expected an integer >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.temperature, (int, float)) or not 0.0 <= self.temperature <= 100.0:
            problems.append(f"temperature: expected a number from 0 (greedy) to 100, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0.0 < self.top_p <= 1.0:
            problems.append(f"top_p: expected a number in (0, 1], got {self.top_p!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            problems.append(f"top_k: expected an integer >= 0 (0: no limit), got {self.top_k!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**31):
            problems.append(f"seed: expected None or an integer from 0 to 2**31 - 1, got {self.seed!r}")
        if not isinstance(self.stop, tuple) or not all(isinstance(s, str) and s for s in self.stop):
            problems.append(f"stop: expected a tuple of non-empty strings, got {self.stop!r}")
        if problems:
            raise ValueError("invalid generation settings: " + "; ".join(problems))

    @property
    def greedy(self) -> bool:
        """Whether decoding is greedy (``temperature == 0``)."""
        return self.temperature == 0


@dataclass(frozen=True)
class GenerationTiming:
    """How long one generation took: ``ttft_ms`` until the first new token (the prompt's prefill
    included), ``tokens`` generated (end-of-sequence not counted) and ``seconds`` in all."""

    ttft_ms: float
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Decoding rate after the first token (0.0 when fewer than two tokens were generated)."""
        decode = self.seconds - self.ttft_ms / 1000.0
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


def read_eos_token_ids(folder: Path) -> tuple[int, ...]:
    """The end-of-sequence ids of an exported folder: ``genai_config.json``'s ``model.eos_token_id``
    together with ``generation_config.json``'s ``eos_token_id`` (each an int or a list), in order, unique."""
    found: list[int] = []
    sources = ((GENAI_CONFIG, ("model", "eos_token_id")), ("generation_config.json", ("eos_token_id",)))
    for name, keys in sources:
        path = Path(folder) / name
        if not path.is_file():
            continue
        value: Any = json.loads(path.read_text(encoding="utf-8"))
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        for token in value if isinstance(value, list) else [value]:
            if isinstance(token, int) and not isinstance(token, bool) and token not in found:
                found.append(token)
    return tuple(found)


class GenaiModel:
    """An exported causal LM opened with onnxruntime-genai; generates one prompt at a time.

    ``folder`` must hold ``genai_config.json`` and the graph it names (``ModelError`` otherwise).
    ``eos_token_ids`` end a generation; ``context_length`` bounds prompt plus new tokens (a
    generation that reaches it ends there). Not thread-safe for concurrent calls on one instance
    beyond what onnxruntime-genai allows: one generator per call, the model shared.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        config_path = self.folder / GENAI_CONFIG
        if not config_path.is_file():
            raise ModelError(f"{self.folder}: expected an onnxruntime-genai model folder with {GENAI_CONFIG}, found none",
                             hint="export the causal LM with the 'onnx' exporter (it runs onnxruntime-genai's model builder)")
        import onnxruntime_genai as og

        self._og = og
        self.config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        try:
            self.model = og.Model(str(self.folder))
        except Exception as error:  # noqa: BLE001 - onnxruntime-genai raises plain RuntimeError
            raise ModelError(f"{self.folder}: onnxruntime-genai could not open the model: {error}",
                             hint="re-export it; the folder may be incomplete or made by another onnxruntime-genai version") from error
        self.eos_token_ids: tuple[int, ...] = read_eos_token_ids(self.folder)
        self.context_length: int = int(self.config.get("model", {}).get("context_length") or 2**31 - 1)
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        """The folder's ``tokenizer.json`` as a ``tokenizers.Tokenizer`` (loaded on first use)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = self.folder / "tokenizer.json"
            if not path.is_file():
                raise ModelError(f"{self.folder}: expected tokenizer.json beside the model, found none")
            self._tokenizer = Tokenizer.from_file(str(path))
        return self._tokenizer

    def _all_tokens(self, prompt_ids: Sequence[int], settings: GenerationSettings) -> Iterator[int]:
        """Every token the generator will pick, the final end-of-sequence one included (checks the prompt now)."""
        prompt = [int(token) for token in prompt_ids]
        if not prompt:
            raise ValueError("prompt_ids: expected at least one token, got none")
        if len(prompt) >= self.context_length:
            raise ValueError(f"prompt_ids: {len(prompt)} tokens leave no room in the model's context of "
                             f"{self.context_length}; shorten the prompt")
        max_length = min(len(prompt) + settings.max_new_tokens, self.context_length)
        options: dict[str, Any] = {"max_length": max_length, "batch_size": 1, "num_beams": 1, "do_sample": not settings.greedy}
        if not settings.greedy:
            options.update(temperature=float(settings.temperature), top_p=float(settings.top_p), top_k=settings.top_k)
            if settings.seed is not None:
                options["random_seed"] = settings.seed
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(**options)
        return self._loop(prompt, params, settings.max_new_tokens)

    def _loop(self, prompt: list[int], params: Any, max_new_tokens: int) -> Iterator[int]:
        generator = self._og.Generator(self.model, params)
        generator.append_tokens(prompt)
        produced = 0
        while produced < max_new_tokens and not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            yield token
            if token in self.eos_token_ids:
                return
            produced += 1

    def stream_ids(self, prompt_ids: Sequence[int], settings: GenerationSettings = GenerationSettings()) -> Iterator[int]:
        """Yield the new token ids one by one, stopping at an end-of-sequence id (not yielded) or after
        ``settings.max_new_tokens``. ``ValueError`` (at the call) for an empty prompt or one that fills the context."""
        tokens = self._all_tokens(prompt_ids, settings)
        return (token for token in tokens if token not in self.eos_token_ids)

    def generate_ids(self, prompt_ids: Sequence[int], settings: GenerationSettings = GenerationSettings()) -> list[int]:
        """All new token ids of ``stream_ids`` as a list (``settings.stop`` is not applied: that is text)."""
        return list(self.stream_ids(prompt_ids, settings))

    def stream_text(self, prompt_ids: Sequence[int], settings: GenerationSettings = GenerationSettings()) -> Iterator[str]:
        """The answer as text pieces (``stream_text`` over ``stream_ids`` with ``settings.stop``); generation
        stops at the first stop sequence."""
        return stream_text(self.stream_ids(prompt_ids, settings), self.tokenizer, settings.stop)


def timed_generate(model: GenaiModel, prompt_ids: Sequence[int],
                   settings: GenerationSettings = GenerationSettings()) -> tuple[list[int], GenerationTiming]:
    """``model.generate_ids(prompt_ids, settings)`` and how long it took (for benchmarks).

    ``ttft_ms`` runs from the call to the first picked token (an immediate end-of-sequence counts:
    the prefill is what it measures).
    """
    start = time.perf_counter()
    first: float | None = None
    tokens: list[int] = []
    for token in model._all_tokens(prompt_ids, settings):
        if first is None:
            first = time.perf_counter()
        if token in model.eos_token_ids:
            break
        tokens.append(token)
    end = time.perf_counter()
    return tokens, GenerationTiming(ttft_ms=((first or end) - start) * 1000.0, tokens=len(tokens), seconds=end - start)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could begin one of ``stops`` (the longest such suffix)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def stream_text(token_ids: Iterable[int], tokenizer: Any, stop: Sequence[str] = ()) -> Iterator[str]:
    """Yield the text of ``token_ids`` in pieces as soon as each is final.

    The text is ``tokenizer.decode(ids, skip_special_tokens=True)`` of the ids read so far. A
    piece is never cut inside a character: while the decoded text ends in U+FFFD (a byte-level
    token that holds only part of a UTF-8 character) that end is held back until the character is
    complete, or the ids run out. With ``stop`` sequences, text that could be the start of one is
    held back until decided; when one appears, the text before it is yielded and no further id is
    read from ``token_ids`` (so a lazy generator stops generating; it is not closed). Joined, the
    pieces equal the decoded text of all ids, cut before the first stop sequence. Decodes the
    whole text at each id (cheap next to a model step for answers of a few thousand tokens).
    """
    stops = [s for s in stop if s]
    if len(stops) != len(stop):
        raise ValueError(f"stop: expected non-empty strings, got {list(stop)!r}")
    ids: list[int] = []
    emitted = 0  # characters of the decoded text already yielded
    text = ""
    for token in token_ids:
        ids.append(int(token))
        text = tokenizer.decode(ids, skip_special_tokens=True)
        stable = text.rstrip(REPLACEMENT)  # an unfinished character may still change
        cut = _first_stop(stable, stops, emitted)
        if cut is not None:
            if cut > emitted:
                yield stable[emitted:cut]
            return
        ready = len(stable) - _held_back(stable, stops)
        if ready > emitted:
            yield stable[emitted:ready]
            emitted = ready
    cut = _first_stop(text, stops, emitted)
    end = len(text) if cut is None else cut
    if end > emitted:
        yield text[emitted:end]


def _first_stop(text: str, stops: Sequence[str], emitted: int) -> int | None:
    """Where the first stop sequence in ``text`` begins (searching from ``emitted``: the text before
    it holds none), or ``None``."""
    found = [index for index in (text.find(stop, emitted) for stop in stops) if index >= 0]
    return min(found) if found else None
