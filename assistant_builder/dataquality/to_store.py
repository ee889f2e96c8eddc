"""Send likely label errors to a recipe's labelling store, so that ``builder tui`` shows each at the
head of its queue (status ``review``) with the given label as the current one, the suspected label
pre-filled as the model's suggestion (``a`` accepts it) and a note saying why it is there.

Uses the store's own review mechanism (``LabelStore.send_back`` for texts it does not hold yet,
``LabelStore.review`` for items already in it); no schema change. A text that a person has already
relabelled (its label in the store differs from the data's) or that is already queued for review is
left alone, so running the check again never undoes a decision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from assistant_builder.dataquality.label_errors import LabelIssue
from assistant_builder.labelling.store import LABELLED, REVIEW, LabelStore

_ITEM = re.compile(r"#(\d+)$")


def suggestion_of(issue: LabelIssue) -> dict[str, object]:
    """The suggestion the Label screen shows (the shape of a classification prediction)."""
    top = [{"label": label, "score": round(score, 4)} for label, score in issue.top]
    return {"label": issue.suspected, "score": round(issue.suspected_probability, 4), "top": top}


def note_of(issue: LabelIssue, where: str) -> str:
    return (f"likely label error (builder data check --label-errors, {where}): given '{issue.given}', suspected "
            f"'{issue.suspected}', score {issue.score:.2f}")


def send_to_store(store_path: Path, issues: Sequence[LabelIssue], display: dict[str, str] | None = None) -> tuple[int, int]:
    """Queue ``issues`` for review in the store at ``store_path`` (created if missing).

    ``display`` maps an issue's location to the one shown in the TUI (e.g. relative to the recipe).
    Returns ``(queued, left_alone)``.
    """
    queued = left = 0
    with LabelStore(store_path) as store:
        for issue in issues:
            where = (display or {}).get(issue.where, issue.where)
            payload = {"text": issue.text}
            match = _ITEM.search(issue.where) if issue.where.startswith(str(store_path)) else None
            existing = store.item(int(match.group(1))) if match else store.find(payload)
            if existing is not None and (existing.status == REVIEW or (existing.status == LABELLED and existing.gold != issue.given)):
                left += 1
                continue
            if existing is not None:
                store.review(existing.id, suggestion_of(issue), note_of(issue, where))
            else:
                store.send_back(payload, issue.given, suggestion_of(issue), note_of(issue, where), where)
            queued += 1
    return queued, left
