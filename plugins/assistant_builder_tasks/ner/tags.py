"""Tagging schemes: read IOB1, IOB2 and BIOES tags, normalise them to IOB2, repair, extract spans.

Pure Python and torch-free: the runtime uses ``repair`` and ``spans`` when decoding.

* IOB2: every entity starts with ``B-``; ``I-`` continues an entity of the same type.
* IOB1: ``I-`` starts an entity; ``B-`` only separates two adjacent entities of the same type.
* BIOES: ``S-`` single-word entity, ``B-`` begin, ``I-`` inside, ``E-`` end.

An IOB2 sequence is *invalid* where ``I-X`` follows ``O``, the sentence start, or a tag of another
type; ``repair`` turns such an ``I-X`` into ``B-X``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SCHEMES = ("iob1", "iob2", "bioes")
_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}

Span = tuple[int, int, str]
"""An entity over words: ``(first word, last word + 1, type)``."""


class TagError(ValueError):
    """A malformed tag, or one the scheme does not have, at word ``position`` (0-based)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"word {position + 1}: {reason}")
        self.position = position
        self.reason = reason


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``; raise ``ValueError`` otherwise."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-":
        return tag[0], tag[2:]
    raise ValueError(f"expected 'O' or a tag such as 'B-TYPE' / 'I-TYPE' (BIOES: also 'E-', 'S-'), got '{tag}'")


def _continues(previous: str, entity_type: str) -> bool:
    """Whether a word tagged ``I-entity_type`` after ``previous`` (an IOB2 tag) continues its entity."""
    return previous != "O" and previous[2:] == entity_type


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of well-formed tag sequences: "bioes", "iob1" or "iob2".

    Any ``E-``/``S-`` tag means BIOES. Entities that start with ``I-`` while no entity starts with
    ``B-`` (``B-`` only right after the same type) mean IOB1. Everything else is read as IOB2,
    whose invalid sequences are then repaired or reported.
    """
    i_starts = b_starts = 0
    for tags in sequences:
        previous = ("O", "")
        for tag in tags:
            prefix, entity_type = split_tag(tag)
            if prefix in "ES":
                return "bioes"
            starts = previous[0] == "O" or previous[1] != entity_type
            if prefix == "I" and starts:
                i_starts += 1
            elif prefix == "B" and starts:
                b_starts += 1
            previous = (prefix, entity_type)
    return "iob1" if i_starts and not b_starts else "iob2"


def to_iob2(tags: Sequence[str], scheme: str) -> tuple[list[str], list[int]]:
    """Convert ``tags`` from ``scheme`` to IOB2; return the tags and the positions that were invalid.

    Invalid positions (an entity continued after ``O`` or another type) come back as ``B-X``.
    Raises ``TagError`` (with the position) for malformed tags or prefixes the scheme lacks.
    """
    allowed = _PREFIXES[scheme]
    out: list[str] = []
    invalid: list[int] = []
    for position, tag in enumerate(tags):
        try:
            prefix, entity_type = split_tag(tag)
        except ValueError as exc:
            raise TagError(position, str(exc)) from None
        if prefix == "O":
            out.append("O")
            continue
        if prefix not in allowed:
            raise TagError(position, f"tag '{tag}' is not valid in the {scheme.upper()} scheme")
        previous = out[-1] if out else "O"
        continues = _continues(previous, entity_type)
        if prefix in "BS":
            out.append(f"B-{entity_type}")
        elif scheme == "iob1":
            out.append(f"{'I' if continues else 'B'}-{entity_type}")
        elif continues:  # I- or E- inside an entity
            out.append(f"I-{entity_type}")
        else:
            out.append(f"B-{entity_type}")
            invalid.append(position)
    return out, invalid


def repair(tags: Sequence[str]) -> list[str]:
    """Make an IOB2 sequence valid: ``I-X`` after ``O``, the start, or another type becomes ``B-X``."""
    out: list[str] = []
    for tag in tags:
        if tag.startswith("I-") and not _continues(out[-1] if out else "O", tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
    return out


def spans(tags: Sequence[str]) -> list[Span]:
    """Entities of an IOB2 sequence as ``(start, end, type)`` over word positions (``I-`` after ``O`` starts one)."""
    found: list[Span] = []
    start, current = -1, ""
    for position, tag in enumerate([*tags, "O"]):
        inside = tag.startswith("I-") and tag[2:] == current
        if current and not inside:
            found.append((start, position, current))
            current = ""
        if tag != "O" and not inside:
            start, current = position, tag[2:]
    return found


def tag_list(entity_types: Sequence[str]) -> list[str]:
    """The model's classes: ``O`` then ``B-``/``I-`` of each type, in the given order."""
    return ["O", *(f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in "BI")]
