"""Tag schemes for token-level tasks: IOB1, IOB2 and BIOES; conversion, validation, repair, spans.

Pure Python and torch-free (the runtime decodes with ``repair`` and ``spans_from_tags``). The
schemes, for an entity type ``X``:

* IOB2: every entity starts with ``B-X``; ``I-X`` continues an entity of the same type.
* IOB1: ``I-X`` starts an entity; ``B-X`` only separates two adjacent entities of type ``X``.
* BIOES: ``S-X`` a one-word entity; ``B-X`` begins, ``I-X`` continues and ``E-X`` ends a longer one.

Models predict IOB2 (``tag_list``): data in the other schemes is converted with ``to_iob2``. An
IOB2 sequence is *invalid* where ``I-X`` follows ``O``, the start, or a tag of another type;
``repair`` turns each such ``I-X`` into ``B-X``, which is also how ``spans_from_tags`` reads it.
spaCy's ``spacy.training.iob_utils`` is the model for these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["SCHEMES", "Span", "TagError", "split_tag", "tag_problem", "detect_scheme", "to_iob2", "from_iob2",
           "invalid_positions", "repair", "is_valid", "spans_from_tags", "tags_from_spans", "tag_list", "tag_types",
           "types_in"]

SCHEMES = ("iob1", "iob2", "bioes")
"""The tag schemes these functions read (``to_iob2``) and write (``from_iob2``, ``tags_from_spans``)."""

_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}
_TAG_FORMS = {"iob1": "'O', 'B-TYPE' or 'I-TYPE' (IOB1)", "iob2": "'O', 'B-TYPE' or 'I-TYPE' (IOB2)",
              "bioes": "'O', 'B-TYPE', 'I-TYPE', 'E-TYPE' or 'S-TYPE' (BIOES)"}

Span = tuple[int, int, str]
"""An entity over words: ``(first word, last word + 1, type)``."""


class TagError(ValueError):
    """A malformed tag, or one its scheme does not have, at word ``position`` (0-based).

    ``reason`` says what is wrong without the position; callers that know the file and line put
    them in front of it (``file:line: reason``).
    """

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"word {position + 1}: {reason}")
        self.position = position
        self.reason = reason


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"expected a tag scheme among {', '.join(SCHEMES)}, got {scheme!r}")


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``.

    Accepts the prefixes of every scheme (``B``, ``I``, ``E``, ``S``); raises ``ValueError`` naming
    the tag for anything else (``"PER"``, ``"I-"``, ``"X-PER"``).
    """
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-":
        return tag[0], tag[2:]
    raise ValueError(f"expected 'O' or a tag such as 'B-TYPE' / 'I-TYPE' (BIOES: also 'E-', 'S-'), got '{tag}'")


def tag_problem(tag: str, scheme: str | None = None) -> str | None:
    """What is wrong with one tag, or ``None`` if it is fine.

    Without ``scheme`` any scheme's prefixes are accepted (the message is ``split_tag``'s); with a
    scheme, a malformed tag is described with that scheme's tag forms and a well-formed tag whose
    prefix the scheme lacks (``S-X`` in IOB2) is named as such.
    """
    try:
        prefix, _ = split_tag(tag)
    except ValueError as exc:
        return str(exc) if scheme is None else f"expected {_TAG_FORMS[scheme]}, got '{tag}'"
    if scheme is not None and prefix != "O" and prefix not in _PREFIXES[scheme]:
        return f"tag '{tag}' is not valid in the {scheme.upper()} scheme"
    return None


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of well-formed tag sequences: ``"bioes"``, ``"iob1"`` or ``"iob2"``.

    Any ``E-``/``S-`` tag means BIOES. Entities that start with ``I-`` while no entity starts with
    ``B-`` (``B-`` only right after the same type) mean IOB1. Everything else is read as IOB2,
    whose invalid sequences are then repaired or reported. Raises ``ValueError`` on a malformed tag.
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


def _continues(previous: str, entity_type: str) -> bool:
    """Whether a word tagged ``I-entity_type`` after ``previous`` (an IOB2 tag) continues its entity."""
    return previous != "O" and previous[2:] == entity_type


def to_iob2(tags: Sequence[str], scheme: str) -> tuple[list[str], list[int]]:
    """Convert ``tags`` from ``scheme`` to IOB2; return the tags and the positions that were invalid.

    Invalid positions (an entity continued after ``O`` or another type) come back as ``B-X``, so
    the result is always a valid IOB2 sequence of the same length. Raises ``TagError`` (with the
    position) for a malformed tag or a prefix the scheme lacks.
    """
    _check_scheme(scheme)
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
        continues = _continues(out[-1] if out else "O", entity_type)
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


def from_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Write IOB2 ``tags`` in ``scheme`` (``"bioes"``, ``"iob1"`` or ``"iob2"``), entity by entity.

    The entities are those ``spans_from_tags`` reads, so an invalid ``I-X`` starts one (as
    ``repair`` would). ``to_iob2(from_iob2(t, s), s)[0] == repair(t)`` for every scheme ``s``.
    """
    return tags_from_spans(spans_from_tags(tags), len(tags), scheme)


def invalid_positions(tags: Sequence[str]) -> list[int]:
    """Positions of ``I-X`` tags that start an entity in an IOB2 sequence (after ``O``, the start, or another type)."""
    return [i for i, tag in enumerate(tags)
            if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tag[2:])]


def repair(tags: Sequence[str]) -> list[str]:
    """Make an IOB2 sequence valid: each ``I-X`` that starts an entity becomes ``B-X``; nothing else changes."""
    out = list(tags)
    for position in invalid_positions(tags):
        out[position] = "B-" + out[position][2:]
    return out


def is_valid(tags: Sequence[str]) -> bool:
    """Whether ``tags`` is a valid IOB2 sequence: every tag well formed, ``O``/``B-``/``I-`` only, no invalid ``I-X``."""
    return all(tag_problem(tag, "iob2") is None for tag in tags) and not invalid_positions(tags)


def spans_from_tags(tags: Sequence[str]) -> list[Span]:
    """Entities of an IOB2 sequence as ``(start, end, type)`` over word positions, in order.

    An ``I-X`` that does not continue an entity of type ``X`` starts one (the reading ``repair``
    makes explicit).
    """
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


def tags_from_spans(spans: Iterable[Span], length: int, scheme: str = "iob2") -> list[str]:
    """The tags of ``length`` words holding the entities ``spans`` (``(start, end, type)``), in ``scheme``.

    Raises ``ValueError`` if a span is empty, falls outside ``range(length)`` or overlaps another.
    """
    _check_scheme(scheme)
    tags = ["O"] * length
    previous_end, previous_type = -1, ""
    for start, end, entity_type in sorted(spans):
        if not 0 <= start < end <= length:
            raise ValueError(f"expected spans with 0 <= start < end <= {length}, got ({start}, {end}, {entity_type!r})")
        if any(tag != "O" for tag in tags[start:end]):
            raise ValueError(f"span ({start}, {end}, {entity_type!r}) overlaps another span")
        if scheme == "bioes" and end - start == 1:
            tags[start] = f"S-{entity_type}"
            continue
        for position in range(start, end):
            tags[position] = f"I-{entity_type}"
        if scheme == "iob2" or scheme == "bioes" or (previous_end == start and previous_type == entity_type):
            tags[start] = f"B-{entity_type}"
        if scheme == "bioes":
            tags[end - 1] = f"E-{entity_type}"
        previous_end, previous_type = end, entity_type
    return tags


def tag_list(entity_types: Sequence[str]) -> list[str]:
    """A model's IOB2 classes: ``O``, then ``B-`` and ``I-`` of each type, in the order given."""
    return ["O", *(f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in "BI")]


def tag_types(tags: Sequence[str]) -> list[str]:
    """The entity types of a class list made by ``tag_list`` (in class order): ``tag_types(tag_list(t)) == list(t)``."""
    return [tag[2:] for tag in tags if tag.startswith("B-")]


def types_in(tags: Iterable[str]) -> set[str]:
    """The entity types that occur in a sequence of (well-formed) tags of any scheme."""
    return {tag[2:] for tag in tags if tag != "O"}
