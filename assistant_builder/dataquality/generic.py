"""The generic data checks: they see every example through ``ExampleView`` (any task, any plugin).

``Collector`` reads the views of both splits once (a generator may stream them) and keeps, per
example, only its text, its location and a few integers (split, label id, two 64-bit hashes) in
compact arrays, so a million examples take tens of MB beyond their texts. The checks then group
examples by hash with numpy (one sort) instead of comparing pairs.

* exact duplicates: the same text (and ``text_pair``) in one split;
* near duplicates: equal after ``normalise`` (Unicode NFKC/NFKD, case folding, accents, spaces and
  punctuation removed) but not identical;
* label conflicts: the same normalised text with different labels (in one split or across);
* leakage: the same normalised text in train and validation;
* labels seen in one split only, labels with few training examples, heavy imbalance;
* empty inputs; inputs longer than ``model.max_length`` tokens (``lengths.py``).

Torch-free.
"""

from __future__ import annotations

import re
import string
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from assistant_builder.contracts import ExampleView, Finding

SPLITS = ("train", "validation")
#: fewer training examples than this makes a label ``rare_label`` (a warning)
MIN_EXAMPLES = 5
#: largest / smallest training label count at or above this is ``imbalance`` (a warning)
IMBALANCE_RATIO = 10.0
#: how many other locations a finding lists in ``related``
RELATED = 20

_DROP_ASCII = str.maketrans("", "", string.punctuation + string.whitespace)
_NON_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """``text`` as the near-duplicate check compares it: case-folded, accents stripped, Unicode
    compatibility forms unified (NFKD), every space and punctuation mark removed.

    ``"Set an alarm, 7 AM!"`` and ``"set an alarm 7am"`` both become ``"setanalarm7am"``.
    """
    if text.isascii():
        return text.lower().translate(_DROP_ASCII)
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _NON_WORD.sub("", "".join(c for c in folded if not unicodedata.combining(c)))


def snippet(text: str, width: int = 60) -> str:
    """``text`` quoted and shortened to about ``width`` characters, for messages."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 1] + "…")


class Collector:
    """What the generic checks keep of each example, in the order seen (train first)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.pairs: dict[int, str] = {}
        self.sources: list[str] = []
        self.splits = bytearray()
        self.label_ids = array("i")
        self.exact = array("q")
        self.near = array("q")
        self.label_names: dict[str, int] = {}
        self.class_counts: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.class_first: tuple[dict[str, list[int]], dict[str, list[int]]] = ({}, {})
        self.empty: list[int] = []

    def __len__(self) -> int:
        return len(self.sources)

    def count(self, split: int) -> int:
        return self.splits.count(split)

    def add_all(self, split: int, views: Iterable[ExampleView]) -> None:
        """Add every view of ``views`` to ``split`` (0 train, 1 validation). The hot loop of the
        check: everything it touches is bound to a local name."""
        texts, sources, splits, pairs, empty = self.texts, self.sources, self.splits, self.pairs, self.empty
        exact, near_keys, label_ids, label_names = self.exact.append, self.near.append, self.label_ids.append, self.label_names
        counts, first = self.class_counts[split], self.class_first[split]
        index = len(sources)
        for view in views:
            text, pair = view.text, view.text_pair
            texts.append(text)
            sources.append(view.source)
            splits.append(split)
            if pair is None:
                key, near = text, normalise(text)
                if not text.strip():
                    empty.append(index)
            else:
                pairs[index] = pair
                key, near = f"{text}\x1f{pair}", f"{normalise(text)}\x1f{normalise(pair)}"
                if not text.strip() or not pair.strip():
                    empty.append(index)
            exact(hash(key))
            # texts with nothing left after normalising ("", "!!!") are nobody's near duplicate
            near_keys(hash(near) if near.strip("\x1f") else hash(("\x00unique", index)))
            label = view.label
            label_ids(-1 if label is None else label_names.setdefault(label, len(label_names)))
            for name in view.classes:
                counts[name] += 1
                seen = first.get(name)
                if seen is None:
                    first[name] = [index]
                elif len(seen) <= RELATED:
                    seen.append(index)
            index += 1

    def add(self, split: int, view: ExampleView) -> None:
        self.add_all(split, (view,))


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the keys that occur more than once (each array in index order)."""
    if len(keys) < 2:
        return []
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    return [order[starts[g]: starts[g] + sizes[g]] for g in np.flatnonzero(sizes > 1)]


def text_findings(c: Collector) -> list[Finding]:
    """Empty inputs, label conflicts, leakage, exact and near duplicates."""
    findings = [Finding("empty_input", "error", c.sources[i], "empty or whitespace-only input; expected some text") for i in c.empty]
    exact = np.frombuffer(c.exact, dtype=np.int64)
    names = {v: k for k, v in c.label_names.items()}
    empty = set(c.empty)
    for group in sorted(_groups(np.frombuffer(c.near, dtype=np.int64)), key=lambda g: int(g[0])):
        members = [int(i) for i in group if int(i) not in empty]
        if len(members) < 2:
            continue
        findings.extend(_group_findings(c, members, exact, names))
    return findings


def _group_findings(c: Collector, members: list[int], exact: np.ndarray, names: dict[int, str]) -> list[Finding]:
    found: list[Finding] = []
    identical = len({int(exact[i]) for i in members}) == 1
    how = "the same text" if identical else "the same text up to case, accents, spaces or punctuation"
    shown = snippet(c.texts[members[0]])
    labels = Counter(c.label_ids[i] for i in members if c.label_ids[i] >= 0)
    if len(labels) > 1:
        first_of = {}
        for i in members:
            first_of.setdefault(c.label_ids[i], i)
        listed = ", ".join(f"'{_short(names[label])}' ({n}x, first {c.sources[first_of[label]]})" for label, n in labels.most_common())
        found.append(Finding("label_conflict", "error", c.sources[members[0]],
                             f"{how} has {len(labels)} labels: {listed}: {shown}; expected one label per text",
                             _related(c, members[1:]), len(members)))
    in_train = [i for i in members if c.splits[i] == 0]
    in_valid = [i for i in members if c.splits[i] == 1]
    if in_train and in_valid:
        found.append(Finding("leakage", "warning", c.sources[in_valid[0]],
                             f"{how} is in validation ({len(in_valid)}x) and in training ({len(in_train)}x, first "
                             f"{c.sources[in_train[0]]}): {shown}; expected validation examples the model has not trained on",
                             _related(c, [*in_train, *in_valid[1:]]), len(members)))
    for split_members in (in_train, in_valid):
        if len(split_members) < 2:
            continue
        by_text: dict[int, list[int]] = {}
        for i in split_members:
            by_text.setdefault(int(exact[i]), []).append(i)
        split = SPLITS[c.splits[split_members[0]]]
        copies = [same for same in by_text.values() if len(same) > 1]
        for same in copies:
            if len({c.label_ids[i] for i in same}) > 1:
                continue  # reported as a label conflict
            weight = "weighs it" if split == "train" else "counts it"
            found.append(Finding("duplicate", "warning", c.sources[same[1]],
                                 f"{len(same)} copies of {shown} in {split} (first {c.sources[same[0]]}); expected each example "
                                 f"once (a copy {weight} {len(same)} times)", _related(c, [same[0], *same[2:]]), len(same)))
        if len(by_text) > 1:
            firsts = [same[0] for same in by_text.values()]
            variants = " / ".join(snippet(c.texts[i], 40) for i in firsts[:3])
            found.append(Finding("near_duplicate", "info", c.sources[firsts[1]],
                                 f"{len(by_text)} texts in {split} equal up to case, accents, spaces or punctuation: {variants}",
                                 _related(c, [firsts[0], *firsts[2:]]), len(split_members)))
    return found


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _related(c: Collector, indices: list[int]) -> tuple[str, ...]:
    return tuple(c.sources[i] for i in indices[:RELATED])


def label_findings(c: Collector, held_out: bool, files: dict[str, str], class_weighting: str | None = None) -> list[Finding]:
    """Labels seen in one split only, labels with fewer than ``MIN_EXAMPLES`` training examples,
    and heavy imbalance (``class_weighting``: the task's option value, or None if it has none)."""
    train, valid = c.class_counts
    findings: list[Finding] = []
    for name, n in valid.items():
        if name not in train:
            where = [c.sources[i] for i in c.class_first[1][name]]
            findings.append(Finding("label_split", "error", where[0],
                                    f"label '{name}' is in validation ({n}x) but not in training; expected every validation label "
                                    "in training (the model cannot predict it)", tuple(where[1:]), n))
    if valid:
        level = "info" if held_out else "warning"
        for name, n in train.items():
            if name not in valid:
                where = [c.sources[i] for i in c.class_first[0][name]]
                findings.append(Finding("label_split", level, where[0],
                                        f"label '{name}' has {n} training example{'s' if n != 1 else ''} and none in validation: it is never measured",
                                        tuple(where[1:]), n))
    for name, n in sorted(train.items(), key=lambda item: (item[1], item[0])):
        if n < MIN_EXAMPLES:
            where = [c.sources[i] for i in c.class_first[0][name]]
            what = "is seen only once in training" if n == 1 else f"has only {n} training examples"
            findings.append(Finding("rare_label", "warning", where[0], f"label '{name}' {what}; expected at least {MIN_EXAMPLES}",
                                    tuple(where[1:]), n))
    if len(train) >= 2:
        (big, most), (small, least) = max(train.items(), key=lambda kv: kv[1]), min(train.items(), key=lambda kv: kv[1])
        ratio = most / least
        if ratio >= IMBALANCE_RATIO:
            message = (f"label '{big}' has {most} training examples, '{small}' only {least} ({ratio:.0f}:1); "
                       f"expected less than {IMBALANCE_RATIO:.0f}:1")
            level = "warning"
            if class_weighting == "none":
                message += '; set task.options.class_weighting = "balanced" to weight the loss by inverse label frequency'
            elif class_weighting is not None:
                message += f" (task.options.class_weighting = \"{class_weighting}\" already weights the loss)"
                level = "info"
            small_labels = sum(1 for n in train.values() if most / n >= IMBALANCE_RATIO)
            findings.append(Finding("imbalance", level, files.get("train", ""), message, (), small_labels))
    return findings


def length_findings(c: Collector, tokenizer: Any, max_length: int, long_inputs: str, batch: int = 4096) -> list[Finding]:
    """Inputs longer than ``max_length`` tokens (special tokens included) with how much is cut
    (``long_inputs == "truncate"``, a warning) or into how many windows they are split (info).

    Only inputs that could be too long are tokenized: WordPiece makes at most one token per
    character, BPE at most one per UTF-8 byte, and any other model (SentencePiece) at most two per
    byte (one per byte plus a word marker).
    """
    specials = max(tokenizer.num_special_tokens_to_add(False), tokenizer.num_special_tokens_to_add(True))
    budget = max_length - specials
    pairs = c.pairs
    model = type(tokenizer.model).__name__
    if model == "WordPiece":
        def bound(text: str) -> int:  # a decomposed (NFD) accent may add a character: bytes bound those
            return len(text) if text.isascii() else len(text.encode("utf-8"))
    elif model == "BPE":
        def bound(text: str) -> int:
            return len(text.encode("utf-8"))
    else:
        def bound(text: str) -> int:
            return 2 * len(text.encode("utf-8"))
    candidates = [i for i, text in enumerate(c.texts) if bound(text) + (bound(pairs[i]) if i in pairs else 0) > budget]
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    findings: list[Finding] = []
    for start in range(0, len(candidates), batch):
        chunk = candidates[start: start + batch]
        inputs = [(c.texts[i], c.pairs[i]) if i in c.pairs else c.texts[i] for i in chunk]
        for i, encoding in zip(chunk, encode(inputs, add_special_tokens=True)):
            length = len(encoding)
            if length <= max_length:
                continue
            if long_inputs == "window":
                findings.append(Finding("windowed", "info", c.sources[i],
                                        f"{length} tokens, model.max_length = {max_length}: split into overlapping windows"))
            else:
                cut = length - max_length
                findings.append(Finding("length", "warning", c.sources[i],
                                        f"{length} tokens, model.max_length = {max_length}: the last {cut} ({cut / length:.0%}) are cut; "
                                        f"expected at most {max_length}"))
    return findings
