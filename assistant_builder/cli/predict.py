"""``builder predict RUN_DIR_OR_BUNDLE "text" ...``: predict with an exported ONNX bundle, torch-free.

A ``generation`` bundle answers instead (``cli/predict_generation.py``): streamed to the terminal,
or one JSON line per input with ``completion``. Inputs come from the arguments and/or ``--input FILE.jsonl`` (one JSON string or object per
line, ``-`` for stdin); for question answering, ``--question "..."`` (repeatable) with
``--context "..."`` or ``--context-file PATH``. Output is one JSON object per line on stdout: the
input plus the task's prediction (for classification ``label``, ``score`` and ``top``; for
question answering ``answer``, ``start``, ``end`` and ``score``). The runtime is imported only
when the command runs, so ``builder --help`` stays fast.

A bundle whose export failed verification (the variant to predict with, or fp32, the reference
export, as recorded in its manifest) is refused with a ``ModelError`` (exit 2) naming the run and
the failed checks; ``--allow-unverified`` predicts anyway, with a warning on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant_builder.cli.argtypes import positive_int
from assistant_builder.errors import DataError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    from assistant_builder.runtime.bundle import Bundle

#: examples encoded and run together; output is written after each chunk.
CHUNK = 1024




def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``predict`` subcommand to ``subparsers`` and return its parser."""
    parser = subparsers.add_parser(
        "predict",
        help="predict with an exported model (ONNX, no torch needed)",
        description="Run an exported ONNX bundle on texts and print one JSON object per line.",
        epilog='examples:\n  builder predict runs/quickstart-20250101-120000 "wake me up at 7"\n'
               "  builder predict runs/my-run/exports/onnx --input texts.jsonl --variant fp32\n"
               '  builder predict runs/qa-20250101-120000 --question "When does it open?" --context "The shop opens at 9."',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="RUN_DIR_OR_BUNDLE", help="a run directory or its exports/onnx bundle folder")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to predict")
    parser.add_argument("--input", "-i", metavar="FILE.jsonl",
                        help='JSONL file, one JSON string or object (e.g. {"text": "..."}) per line; - reads stdin')
    parser.add_argument("--question", action="append", default=[], metavar="TEXT",
                        help="question answering: a question about --context or --context-file (repeatable)")
    context = parser.add_mutually_exclusive_group()
    context.add_argument("--context", metavar="TEXT", help="question answering: the text the answers are taken from")
    context.add_argument("--context-file", metavar="PATH", help="question answering: read the context from a UTF-8 text file")
    parser.add_argument("--variant", default="auto", help="model variant: auto (int8 if exported, else fp32), fp32 or int8")
    parser.add_argument("--top-k", type=positive_int, default=None, metavar="N",
                        help="how many labels with scores to list (default: the recipe's task.top_k)")
    parser.add_argument("--fallback-threshold", type=float, default=None, metavar="ENERGY",
                        help="classification with a fallback label: reject below this energy score instead of the "
                             "threshold fitted into the bundle (docs/out_of_scope.md)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="examples per model call (default 32)")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="predict even when the run's export failed verification (its fp32 model, or the variant "
                             "chosen, broke a gate in export_report.md); default: refused")
    from assistant_builder.cli.predict_generation import add_arguments

    add_arguments(parser)
    parser.set_defaults(handler=run, trailing_positionals="texts", quick_exit=True)  # see cli.main.entry
    return parser


def _json_lines(name: str, lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """Yield ``("file:line", value)`` for each non-blank line; raise ``DataError`` naming file:line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: expected a JSON string or object, got invalid JSON ({exc.msg} at column {exc.colno})",
                            hint='write one value per line, e.g. "hello" or {"text": "hello"}') from None
        if not isinstance(value, (str, dict)):
            raise DataError(f'{where}: expected a JSON string or object such as {{"text": "..."}}, got {type(value).__name__}')
        yield where, value


def read_inputs(path: str) -> list[tuple[str, Any]]:
    """Read ``(source, raw input)`` pairs from a JSONL file (``-``: stdin)."""
    if path == "-":
        return list(_json_lines("<stdin>", iter(sys.stdin)))
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file; expected a JSONL file of texts for --input")
    try:
        with file.open(encoding="utf-8") as handle:
            return list(_json_lines(str(file), handle))
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: expected UTF-8 text, got undecodable bytes at offset {exc.start}") from None


def read_context(path: str) -> str:
    """The text of ``--context-file`` (UTF-8)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file; expected a UTF-8 text file for --context-file")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: expected UTF-8 text, got undecodable bytes at offset {exc.start}") from None


def question_inputs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(source, {"question", "context"})`` for each ``--question``, with the shared context."""
    has_context = args.context is not None or args.context_file is not None
    if not args.question:
        if has_context:
            raise DataError("--context/--context-file given without --question; expected at least one --question TEXT",
                            hint=f'builder predict {args.path} --question "..." --context "..."')
        return []
    if not has_context:
        raise DataError("--question given without a context; expected --context TEXT or --context-file PATH",
                        hint=f'builder predict {args.path} --question "{args.question[0]}" --context "..."')
    context = args.context if args.context is not None else read_context(args.context_file)
    return [(f"--question {i}", {"question": q, "context": context}) for i, q in enumerate(args.question, start=1)]


def check_verified(bundle: Bundle, variant: str, path: str, *, allow: bool = False) -> None:
    """Raise ``ModelError`` naming the run and the failed checks when ``bundle.failed_verification(variant)`` finds
    any; with ``allow`` (``--allow-unverified``) print that as a warning on stderr instead."""
    failed = bundle.failed_verification(variant)
    if not failed:
        return
    run_dir = bundle.run_directory
    where = str(run_dir) if run_dir is not None else path
    checks = "; ".join(f"{name} model: {'; '.join(reasons)}" for name, reasons in failed.items())
    report = run_dir / "export_report.md" if run_dir is not None and (run_dir / "export_report.md").is_file() else None
    message = (f"{where}: expected an export that passed verification, got one that failed it ({checks}); its "
               "predictions may not match the trained model's")
    if allow:
        print(f"warning: {message}; predicting anyway (--allow-unverified)", file=sys.stderr)
        return
    raise ModelError(message, hint=(f"see {report}; " if report else "") + "fix what failed and run again, or pass "
                     "--allow-unverified to predict with this export anyway")


def run(args: argparse.Namespace) -> int:
    """Load the bundle, predict every input and print JSON lines; return the exit code."""
    inputs: list[tuple[str, Any]] = [(f"argument {i}", text) for i, text in enumerate(args.texts, start=1)]
    inputs.extend(question_inputs(args))
    if args.input:
        inputs.extend(read_inputs(args.input))
    if not inputs:
        raise DataError("no inputs: expected texts after the path or --input FILE.jsonl (for question answering: --question with --context)",
                        hint=f'builder predict {args.path} "some text"')

    from assistant_builder.runtime import Predictor
    from assistant_builder.runtime.bundle import read_bundle

    bundle = read_bundle(args.path)
    variant = bundle.choose_variant(args.variant)
    check_verified(bundle, variant, args.path, allow=args.allow_unverified)
    from assistant_builder.runtime.assistant import is_generation_bundle

    if is_generation_bundle(bundle):  # a causal LM: answers generated token by token (cli/predict_generation.py)
        from assistant_builder.cli import predict_generation

        return predict_generation.run(args, bundle, variant, inputs)
    options = {k: v for k, v in (("top_k", args.top_k), ("fallback_threshold", args.fallback_threshold)) if v is not None} or None
    predictor = Predictor(bundle, variant, options=options)
    examples = predictor.parse([raw for _, raw in inputs], [where for where, _ in inputs])
    out = sys.stdout
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start : start + CHUNK]
        for (_, raw), prediction in zip(inputs[start : start + CHUNK], predictor.predict_examples(chunk, args.batch_size)):
            out.write(json.dumps({"input": raw, **prediction}, ensure_ascii=False) + "\n")
        out.flush()
    return 0
