"""The ner task's tag functions, kept importable here for scripts written against earlier versions
(``bench/optimum_check.py`` imports ``repair`` and ``spans``). They live in the public toolkit:
import ``assistant_builder.toolkit.tags`` in new code."""

from __future__ import annotations

from assistant_builder.toolkit.tags import (SCHEMES, Span, TagError, detect_scheme, repair, split_tag, tag_list, to_iob2,
                                            spans_from_tags as spans)

__all__ = ["SCHEMES", "Span", "TagError", "detect_scheme", "repair", "spans", "split_tag", "tag_list", "to_iob2"]
