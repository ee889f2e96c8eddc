"""``builder predict`` on a ``generation`` bundle: answers streamed to the terminal, or JSON lines.

Texts given as arguments are answered one after the other, each streamed to stdout as it is
generated (one answer per line block). ``--input FILE.jsonl`` (lines of ``"text"``,
``{"prompt": ...}`` or ``{"messages": [...]}``), or ``--json``, prints one JSON object per input
instead: the input, ``completion``, ``tokens`` and ``finish_reason`` (``eos``, ``stop`` or
``length``). Sampling flags override the bundle's defaults (``task.options`` of the run).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generation flags of ``builder predict`` (ignored by the other tasks)."""
    group = parser.add_argument_group("generation bundles")
    group.add_argument("--max-new-tokens", type=int, default=None, metavar="N", help="most tokens per answer (default: the run's)")
    group.add_argument("--temperature", type=float, default=None, metavar="T", help="sampling temperature; 0 = greedy (default: the run's)")
    group.add_argument("--top-p", type=float, default=None, metavar="P", help="nucleus sampling mass (default: the run's)")
    group.add_argument("--seed", type=int, default=None, metavar="N", help="seed of sampling (same seed, same answer)")
    group.add_argument("--stop", action="append", default=None, metavar="TEXT", help="end the answer before TEXT (repeatable)")
    group.add_argument("--json", action="store_true", help="print JSON lines for texts given as arguments too")


def run(args: argparse.Namespace, bundle: Any, variant: str, inputs: list[tuple[str, Any]]) -> int:
    """Answer every input with ``variant`` of ``bundle``; return the exit code."""
    from assistant_builder.errors import DataError
    from assistant_builder.runtime.assistant import Assistant

    assistant = Assistant(bundle, variant)
    try:
        settings = assistant.settings(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                                      seed=args.seed, stop=tuple(args.stop) if args.stop else None)
    except ValueError as error:
        raise DataError(f"builder predict: {error}") from None
    out = sys.stdout
    if args.input or args.json:
        for where, raw in inputs:
            answer = assistant.answer(raw, settings, where)
            out.write(json.dumps({"input": raw, **answer.to_dict()}, ensure_ascii=False) + "\n")
            out.flush()
        return 0
    for index, (where, raw) in enumerate(inputs):
        if index:
            out.write("\n")
        for piece in assistant.stream(raw, settings, where):
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()
    return 0
