"""A data-check report: findings grouped by check, with levels, counts, hints, and its renderings
(the full text report, the short form ``builder run`` prints, JSON).

Torch-free and import-light: ``builder data check`` and ``builder run`` use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant_builder.contracts import FINDING_LEVELS, Finding

#: check id -> (title, what to do). Checks a task adds (``ner.invalid_tags``...) may be missing:
#: their findings' messages say what to do.
CHECKS: dict[str, tuple[str, str]] = {
    "empty_input": ("empty or whitespace-only inputs",
                    "write the text or remove the example: training stops on an empty input"),
    "label_conflict": ("the same text with different labels",
                       "give each text one label (fix or drop the wrong copies); `--label-errors --to-store` queues doubtful ones"),
    "leakage": ("examples in both train and validation",
                "remove them from one split: validation should measure examples the model has not trained on"),
    "duplicate": ("exact duplicates in one split",
                  "keep one copy: a duplicate weighs an example twice in training and counts twice in validation"),
    "near_duplicate": ("near duplicates (equal up to case, accents, spaces and punctuation)",
                       "usually harmless; keep one copy if they are the same request"),
    "label_split": ("labels seen in one split only",
                    "add training examples of a validation-only label (the model cannot predict it), or validation examples of a "
                    "training-only label (it is never measured)"),
    "rare_label": ("labels with too few training examples",
                   "add examples (aim for 10 or more per label) or merge the label into another"),
    "imbalance": ("heavy class imbalance", "add examples of the small labels, or weight the loss by label frequency"),
    "length": ("inputs longer than model.max_length (the rest is cut)",
               "raise model.max_length (slower training) or shorten the inputs"),
    "windowed": ("inputs longer than model.max_length (split into overlapping windows)",
                 "nothing is lost; raise model.max_length for fewer windows per input"),
    "vocabulary": ("text the base model's tokenizer cannot read (unknown tokens)",
                   "choose a base model for the data's language via model.base (for Chinese, e.g. a Chinese or multilingual "
                   "encoder), or replace the unknown symbols with words"),
    "ner.partial_word": ("entity spans that start or end inside a word (widened to the whole word)",
                         "move the span to the word's boundary, or accept the wider entity; words are runs of letters and "
                         "digits, single punctuation marks, and single Chinese, Japanese or Thai characters"),
    "label_error": ("training examples whose label is likely wrong (confident learning)",
                    "check each one; `--to-store` sends them to the labelling queue (`builder tui`) with the suspected label as suggestion"),
}

#: how many findings of one check the text report lists (``--limit``); JSON lists up to ``MAX_KEPT``
DEFAULT_LIMIT = 5
MAX_KEPT = 1000


def level_rank(level: str) -> int:
    """0 for info, 1 for warning, 2 for error."""
    return FINDING_LEVELS.index(level)


@dataclass
class CheckGroup:
    """All findings of one check. ``count``: findings; ``examples``: examples they stand for."""

    check: str
    level: str
    count: int = 0
    examples: int = 0
    findings: list[Finding] = field(default_factory=list)
    by_level: dict[str, int] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return CHECKS.get(self.check, (self.check.replace("_", " "), ""))[0]

    @property
    def hint(self) -> str:
        return CHECKS.get(self.check, ("", ""))[1]


@dataclass
class Report:
    """What ``builder data check`` found in a recipe's data."""

    recipe: str
    task: str
    counts: dict[str, int]
    groups: list[CheckGroup]
    seconds: float = 0.0
    held_out: bool = False
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        """Findings per level (every level present, zeros included)."""
        totals = dict.fromkeys(FINDING_LEVELS, 0)
        for group in self.groups:
            for level, n in group.by_level.items():
                totals[level] += n
        return totals

    def worst(self) -> str | None:
        """The highest level among the findings, or None when there are none."""
        return max((g.level for g in self.groups), key=level_rank, default=None)

    def fails(self, fail_on: str) -> bool:
        """True if a finding is at ``fail_on`` or above (``never``: always False)."""
        worst = self.worst()
        return fail_on != "never" and worst is not None and level_rank(worst) >= level_rank(fail_on)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Add findings of checks not in the report yet (e.g. ``label_error``), keeping severity order."""
        self.groups = sorted([*self.groups, *group_findings(findings)], key=lambda g: -level_rank(g.level))

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe, "task": self.task, "examples": self.counts, "held_out_validation": self.held_out,
            "seconds": round(self.seconds, 3), "totals": self.totals, "notes": self.notes,
            "checks": [{"check": g.check, "level": g.level, "title": g.title, "hint": g.hint, "count": g.count, "examples": g.examples,
                        "findings": [asdict(f) | {"related": list(f.related)} for f in g.findings]} for g in self.groups],
            **self.extra,
        }


def group_findings(findings: Iterable[Finding]) -> list[CheckGroup]:
    """Group by check, the most severe first (errors, then warnings, then info; the order of first
    appearance within a level). Each group keeps at most ``MAX_KEPT`` findings, its counts all."""
    groups: dict[str, CheckGroup] = {}
    for finding in findings:
        if finding.level not in FINDING_LEVELS:
            raise ValueError(f"finding of check '{finding.check}' has level {finding.level!r}; expected one of {FINDING_LEVELS}")
        group = groups.get(finding.check)
        if group is None:
            group = groups[finding.check] = CheckGroup(finding.check, finding.level)
        elif level_rank(finding.level) > level_rank(group.level):
            group.level = finding.level
        group.count += 1
        group.examples += finding.count
        group.by_level[finding.level] = group.by_level.get(finding.level, 0) + 1
        if len(group.findings) < MAX_KEPT:
            group.findings.append(finding)
    ordered = list(groups.values())
    ordered.sort(key=lambda g: -level_rank(g.level))
    return ordered


def display(source: str) -> str:
    """A location as the user would type it from the current folder (``data/train.jsonl:17``)."""
    path, sep, rest = source.partition(":") if not source.startswith("/") else _split_abs(source)
    if path.startswith("/"):
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            relative = path
        if not relative.startswith(".." + os.sep + ".."):
            path = relative
    return path + sep + rest


def _split_abs(source: str) -> tuple[str, str, str]:
    """``/a/b.jsonl:17`` -> (``/a/b.jsonl``, ``:``, ``17``); ``/a/b.sqlite#3`` -> (path, ``#``, ``3``)."""
    for sep in (":", "#"):
        if sep in source:
            path, _, rest = source.partition(sep)
            return path, sep, rest
    return source, "", ""


_ABSOLUTE = re.compile(r"(?<![\w/.])(/[^\s:#'\",()]+)(?=[:#])")


def _displayed(message: str) -> str:
    """Absolute locations inside a message, as ``display`` shows them."""
    return _ABSOLUTE.sub(lambda m: display(m.group(1)), message)


def _line(finding: Finding, level: str, related: int = 3) -> str:
    tag = f"({finding.level}) " if finding.level != level else ""
    text = f"  {tag}{display(finding.where)}: {_displayed(finding.message)}"
    if finding.related:
        shown = ", ".join(display(r) for r in finding.related[:related])
        more = f" and {len(finding.related) - related} more" if len(finding.related) > related else ""
        text += f" [also {shown}{more}]"
    return text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: Report) -> str:
    totals = report.totals
    if not any(totals.values()):
        return "no findings"
    words = {"error": "error", "warning": "warning", "info": "note"}
    return ", ".join(_plural(totals[level], words[level]) for level in reversed(FINDING_LEVELS) if totals[level])


def render_text(report: Report, limit: int = DEFAULT_LIMIT) -> str:
    """The full report: a header, each check with its level, counts, first ``limit`` findings and hint."""
    counts = ", ".join(f"{n} {split}" for split, n in report.counts.items())
    held = " (validation held out of train)" if report.held_out else ""
    lines = [f"{display(report.recipe)}: {report.task} data, {counts}{held}; checked in {report.seconds:.1f} s"]
    lines.extend(f"note: {_displayed(note)}" for note in report.notes)
    for group in report.groups:
        lines.append("")
        lines.append(f"{group.level.upper():8} {group.check}: {group.title} — {_plural(group.count, 'finding')}, "
                     f"{_plural(group.examples, 'example')}")
        shown = group.findings[:limit] if limit >= 0 else group.findings
        lines.extend(_line(f, group.level) for f in shown)
        if group.count > len(shown):
            lines.append(f"  ... and {group.count - len(shown)} more (--limit N or --json to list them)")
        if group.hint:
            lines.append(f"  hint: {group.hint}")
    lines.append("")
    lines.append(f"summary: {summary_line(report)}")
    return "\n".join(lines)


def render_short(report: Report, max_checks: int = 4) -> str:
    """A few lines for ``builder run``: the totals, then one line per check (most severe first),
    then the notes (the vocabulary figure; checks that could not run)."""
    head = summary_line(report)
    notes = [f"  note: {_displayed(note)}" for note in report.notes]
    if not report.groups:
        return "\n".join([f"{head} ({sum(report.counts.values())} examples, {report.seconds:.1f} s)", *notes])
    lines = [f"{head}; full report: builder data check {display(report.recipe)}"]
    for group in report.groups[:max_checks]:
        first = group.findings[0] if group.findings else None
        where = f" (first: {display(first.where)})" if first else ""
        lines.append(f"  {group.level} {group.check}: {_plural(group.count, 'finding')}{where}")
    if len(report.groups) > max_checks:
        lines.append(f"  ... {len(report.groups) - max_checks} more checks")
    return "\n".join([*lines, *notes])

