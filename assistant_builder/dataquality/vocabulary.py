"""The vocabulary fit check: how much of the data the base model's tokenizer cannot read.

A WordPiece, BPE or Unigram tokenizer turns text it has no pieces for into its unknown token
(``[UNK]``, ``<unk>``): every such word reaches the model as the same meaningless id. The English
MiniLM maps each Chinese character it lacks to ``[UNK]`` (``请给张伟打电话`` is seven ``[UNK]``).

Definitions (per split, on the examples scanned, special tokens never counted):

* **unknown share** (the headline figure, and what the threshold applies to): unknown tokens / all
  tokens. It is the share of the model's input positions that carry nothing, and it weighs scripts
  fairly: a Chinese character often carries a word's meaning in one character (and one token), so
  with 10% of the quickstart's examples in Chinese 6.5% of MiniLM's tokens are ``[UNK]`` but only
  2% of the characters;
* **unknown character share** (reported alongside): the characters, whitespace excluded, inside
  unknown tokens (by the tokens' offsets) / all characters. It shows what the token share hides:
  WordPiece makes one ``[UNK]`` of a whole unknown word, however long.

Unknown tokens next to each other (no space between) are reported as one unknown word, as written.
At ``WARN_SHARE`` of a split's tokens or more a ``vocabulary`` warning names ``model.base``, the
most frequent unknown words (with their first ``file:line``), and suggests a base model for the
language of the unknown text. The figures are always reported as a note (``VocabularyFit.summary``)
and in the JSON report (``VocabularyFit.to_dict``). A tokenizer without an unknown token
(byte-level BPE) reads every text: it reports 0% and says so. At most ``MAX_SCANNED`` examples per
split are scanned (evenly spaced), each distinct text (a QA context shared by many questions) once.

Torch-free: the base model's ``tokenizer.json`` through ``tokenizers``.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant_builder.contracts import Finding
from assistant_builder.dataquality.generic import RELATED, SPLITS, Collector

#: a split with at least this share of its tokens unknown gets a ``vocabulary`` warning (see docs/data_quality.md)
WARN_SHARE = 0.05
#: at most this many examples per split are tokenized (evenly spaced over the split)
MAX_SCANNED = 20_000
#: how many unknown words a warning lists (the JSON report keeps ``WORDS_KEPT``)
WORDS_SHOWN = 5
WORDS_KEPT = 20

#: Unicode script (first word of a character's name) -> the language a suggestion names
_LANGUAGES = {"CJK": "Chinese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean", "CYRILLIC": "Russian (Cyrillic)",
              "ARABIC": "Arabic", "HEBREW": "Hebrew", "GREEK": "Greek", "DEVANAGARI": "Hindi (Devanagari)", "THAI": "Thai",
              "BENGALI": "Bengali", "TAMIL": "Tamil", "TELUGU": "Telugu", "GEORGIAN": "Georgian", "ARMENIAN": "Armenian",
              "ETHIOPIC": "Amharic (Ethiopic)", "KHMER": "Khmer", "LAO": "Lao", "MYANMAR": "Burmese", "SINHALA": "Sinhala"}
_MULTILINGUAL = '"bert-base-multilingual-cased" or "xlm-roberta-base"'


@dataclass(frozen=True)
class UnknownToken:
    """How a tokenizer marks text it cannot read: ``token``/``id`` (None when it has no unknown
    token) and ``kind``: ``"unk"``, ``"byte-level"`` (no unknown token: every byte has a piece) or
    ``"none"`` (no unknown token, not byte-level)."""

    token: str | None
    id: int | None
    kind: str


def unknown_token(tokenizer: Any) -> UnknownToken:
    """The unknown token of a ``tokenizers.Tokenizer`` (read from its serialised model)."""
    spec = json.loads(tokenizer.to_str())
    model = spec.get("model") or {}
    token = model.get("unk_token")
    if token is None and isinstance(model.get("unk_id"), int):  # Unigram (SentencePiece)
        token = tokenizer.id_to_token(model["unk_id"])
    token_id = tokenizer.token_to_id(token) if token else None
    if token_id is not None:
        return UnknownToken(token, token_id, "unk")
    byte_level = bool(model.get("byte_fallback")) or _has_byte_level(spec.get("pre_tokenizer"))
    return UnknownToken(None, None, "byte-level" if byte_level else "none")


def _has_byte_level(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("type") == "ByteLevel" or any(_has_byte_level(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_byte_level(v) for v in node)
    return False


@dataclass
class SplitFit:
    """The vocabulary figures of one split (see the module docstring for the definitions)."""

    split: str
    examples: int
    scanned: int = 0
    tokens: int = 0
    unknown_tokens: int = 0
    characters: int = 0
    unknown_characters: int = 0
    affected: list[str] = field(default_factory=list)  # sources of the first examples with unknown text
    examples_affected: int = 0
    words: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)  # unknown word -> its first source

    @property
    def share(self) -> float:
        """Unknown tokens / tokens (special tokens excluded); 0 for a split with no tokens."""
        return self.unknown_tokens / self.tokens if self.tokens else 0.0

    @property
    def character_share(self) -> float:
        """Characters inside unknown tokens / characters (whitespace excluded)."""
        return self.unknown_characters / self.characters if self.characters else 0.0

    def examples_text(self, n: int = WORDS_SHOWN) -> str:
        """``'请' (12x, first train.jsonl:1), ...``: the ``n`` most frequent unknown words."""
        return ", ".join(f"{_short(w)} ({c}x, first {self.first[w]})" if c > 1 else f"{_short(w)} ({self.first[w]})"
                         for w, c in self.words.most_common(n))

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "scanned": self.scanned, "tokens": self.tokens, "unknown_tokens": self.unknown_tokens,
                "unknown_share": round(self.share, 6), "characters": self.characters, "unknown_characters": self.unknown_characters,
                "unknown_character_share": round(self.character_share, 6),
                "examples_with_unknown": self.examples_affected,
                "unknown_words": [{"text": w, "count": c, "first": self.first[w]} for w, c in self.words.most_common(WORDS_KEPT)]}


@dataclass
class VocabularyFit:
    """The vocabulary check's result: per-split figures, its findings and its one-line summary."""

    model: str
    unknown: UnknownToken
    splits: list[SplitFit]
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        """The always-shown figure, e.g. ``vocabulary: 0.2% of train and 0.0% of validation
        tokens are unknown to model.base "minilm-l6" ([UNK]; 0.3% / 0.0% of characters)``."""
        where = f'model.base "{self.model}"'
        scanned = [s for s in self.splits if s.examples]
        capped = "; ".join(f"scanned {s.scanned} of {s.examples} {s.split} examples, evenly spaced"
                           for s in scanned if s.scanned < s.examples)
        capped = f" ({capped})" if capped else ""
        if self.unknown.kind == "byte-level":
            return f"vocabulary: 0% unknown to {where}: byte-level: every text is readable"
        if self.unknown.kind == "none":
            return f"vocabulary: 0% unknown to {where}: its tokenizer has no unknown token"
        if not scanned:
            return f"vocabulary: no text to check against {where}"
        shares = " and ".join(f"{_percent(s.share)} of {s.split}" for s in scanned)
        characters = " / ".join(_percent(s.character_share) for s in scanned)
        text = f"vocabulary: {shares} tokens are unknown to {where} ({self.unknown.token}; {characters} of characters){capped}"
        words = Counter[str]()
        first: dict[str, str] = {}
        for s in scanned:
            words.update(s.words)
            for w, source in s.first.items():
                first.setdefault(w, source)
        if words and not self.findings:
            text += "; e.g. " + ", ".join(f"{_short(w)} ({first[w]})" for w, _ in words.most_common(3))
        return text

    def to_dict(self) -> dict[str, Any]:
        """The figures for the JSON report (``report.extra["vocabulary"]``)."""
        return {"model": self.model, "unknown_token": self.unknown.token, "kind": self.unknown.kind, "measure": "tokens",
                "warn_share": WARN_SHARE, "max_scanned": MAX_SCANNED, "splits": {s.split: s.to_dict() for s in self.splits},
                "summary": self.summary()}


def vocabulary_fit(c: Collector, tokenizer: Any, model: str, max_scanned: int = MAX_SCANNED, batch: int = 1024) -> VocabularyFit:
    """Measure how much of each split's text (``text`` and ``text_pair``) ``tokenizer`` turns into
    its unknown token; a ``vocabulary`` warning per split at ``WARN_SHARE`` of its tokens or more.

    ``tokenizer`` is a ``tokenizers.Tokenizer`` (truncation off); ``model`` is ``model.base`` as the
    user wrote it (messages name it).
    """
    unknown = unknown_token(tokenizer)
    splits_of = np.frombuffer(bytes(c.splits), dtype=np.uint8)
    fits: list[SplitFit] = []
    chosen: list[np.ndarray] = []
    for number, name in enumerate(SPLITS):
        indices = np.flatnonzero(splits_of == number)
        if len(indices) > max_scanned:
            indices = indices[np.linspace(0, len(indices) - 1, max_scanned).astype(np.int64)]
        fits.append(SplitFit(name, int((splits_of == number).sum()), len(indices)))
        chosen.append(indices)
    fit = VocabularyFit(model, unknown, fits)
    if unknown.id is None:
        return fit
    measured = _measure(c, tokenizer, unknown.id, np.concatenate(chosen) if chosen else np.array([], dtype=np.int64), batch)
    for split, indices in zip(fits, chosen):
        for i in indices.tolist():
            segments = [c.texts[i]] + ([c.pairs[i]] if i in c.pairs else [])
            hit = False
            for text in segments:
                tokens, unknown_tokens, characters, words = measured[text]
                split.tokens += tokens
                split.unknown_tokens += unknown_tokens
                split.characters += characters
                for word in words:
                    split.unknown_characters += _visible(word)
                    split.words[word] += 1
                    split.first.setdefault(word, c.sources[i])
                hit = hit or unknown_tokens > 0
            if hit:
                split.examples_affected += 1
                if len(split.affected) <= RELATED:
                    split.affected.append(c.sources[i])
        if split.tokens and split.share >= WARN_SHARE:
            fit.findings.append(_warning(split, model, unknown))
    return fit


def _measure(c: Collector, tokenizer: Any, unk_id: int, indices: np.ndarray, batch: int) -> dict[str, tuple[int, int, int, list[str]]]:
    """For each distinct text of the chosen examples: (tokens, unknown tokens, visible characters,
    the unknown words as written: adjacent unknown tokens make one), special tokens excluded."""
    texts: dict[str, None] = {}
    for i in indices.tolist():
        texts[c.texts[i]] = None
        if i in c.pairs:
            texts[c.pairs[i]] = None
    distinct = list(texts)
    measured: dict[str, tuple[int, int, int, list[str]]] = {}
    for start in range(0, len(distinct), batch):
        chunk = distinct[start: start + batch]
        for text, encoding in zip(chunk, tokenizer.encode_batch(chunk, add_special_tokens=False)):
            ids = encoding.ids
            unknown = ids.count(unk_id)
            spans = _unknown_spans(ids, encoding.offsets, unk_id) if unknown else []
            measured[text] = (len(ids), unknown, _visible(text), [text[s:e] for s, e in spans])
    return measured


def _unknown_spans(ids: list[int], offsets: list[tuple[int, int]], unk_id: int) -> list[tuple[int, int]]:
    """The character spans of the unknown tokens, adjacent ones merged (``请给张伟`` is one span of
    four ``[UNK]``; two unknown words with a space between stay two)."""
    spans: list[tuple[int, int]] = []
    for token_id, (start, end) in zip(ids, offsets):
        if token_id != unk_id:
            continue
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _visible(text: str) -> int:
    """Characters of ``text`` that are not whitespace."""
    return len("".join(text.split()))


def _warning(split: SplitFit, model: str, unknown: UnknownToken) -> Finding:
    shown = f"; e.g. {split.examples_text()}" if split.words else ""
    message = (f"{_percent(split.share)} of the {split.split} tokens ({split.unknown_tokens} of {split.tokens}; "
               f"{_percent(split.character_share)} of the characters) are unknown to model.base = \"{model}\" ({unknown.token}): "
               f"its tokenizer has no pieces for this text, so the model cannot read it{shown}; expected under {WARN_SHARE:.0%}; "
               f"{suggestion(split.words)}")
    return Finding("vocabulary", "warning", split.affected[0], message, tuple(split.affected[1:RELATED + 1]), split.examples_affected)


def dominant_script(words: Counter[str]) -> str | None:
    """The language (``_LANGUAGES``) most unknown letters are written in, ``"symbols"`` when most
    unknown characters are symbols or emoji, or None when there are none."""
    scripts: Counter[str] = Counter()
    for word, n in words.items():
        for ch in word:
            if ch.isspace():
                continue
            if unicodedata.category(ch).startswith("L"):
                head = unicodedata.name(ch, "").split(" ")[0]
                scripts[_LANGUAGES.get(head, f"{head.capitalize() or 'other'}-script")] += n
            else:
                scripts["symbols"] += n
    if not scripts:
        return None
    if scripts["Japanese"] and scripts["Chinese"]:  # kana next to kanji: Japanese
        scripts["Japanese"] += scripts.pop("Chinese")
    return scripts.most_common(1)[0][0]


def suggestion(words: Counter[str]) -> str:
    """What to do about these unknown words: a base model for their language, or the symbols."""
    script = dominant_script(words)
    if script == "symbols":
        return ("most of it is symbols or emoji: replace them with words if they carry meaning (or remove them), or choose a base "
                "model whose vocabulary has them via model.base (a byte-level BPE tokenizer reads every character)")
    if script == "Chinese":
        return ('most of it is Chinese text: choose a base model that reads Chinese via model.base, e.g. model.base = '
                f'"bert-base-chinese", or a multilingual encoder such as {_MULTILINGUAL}')
    language = script or "this language's"
    return (f"most of it is {language} text: choose a base model that reads {language} text via model.base (one trained on it, "
            f"or a multilingual encoder such as {_MULTILINGUAL})")


def _percent(share: float) -> str:
    """``0.0%`` only for exactly nothing: a tiny non-zero share shows as ``<0.1%``."""
    return "<0.1%" if 0 < share < 0.0005 else f"{share:.1%}"


def _short(word: str, width: int = 20) -> str:
    return repr(word if len(word) <= width else word[: width - 1] + "…")
