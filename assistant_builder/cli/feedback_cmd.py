"""``builder feedback STORE_OR_RECIPE [--purge SOURCE]``: what a labelling store keeps, per source; purge a source.

Without ``--purge`` it prints, per source family (``serve`` for what ``builder serve --feedback``
recorded, an imported file's name...), how many items wait to be labelled, are labelled or skipped,
and how many serving events (captured predictions, feedback requests) are stored; then what waits
to be **learned**: the labelled items the latest finished run of the recipe (or ``--run RUN_DIR``)
has not trained on (``assistant_builder/unlearned.py``), and the command that learns them. With ``--purge SOURCE``
it shows what would be deleted, and with ``--yes`` deletes it: the items' text, labels, history
and serving events, overwritten in the file (``FeedbackStore.purge``). ``--unlabelled-only``
keeps what was labelled. Standard library and the core only (no torch, no server).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from assistant_builder.errors import BuilderError

KEPT = ("What the store keeps for each item from builder serve: the input (text, or question and context), "
        "the model's prediction and confidence, the model version, the time, and the label or correction a user sent. "
        "Nothing else about the request (no client address, no headers).")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "feedback", help="what a labelling store keeps, per source; purge a source (e.g. what builder serve captured)",
        description="Show what a labelling store keeps per source, or delete every item of one source.",
        epilog="examples:\n  builder feedback recipes/quickstart.toml\n"
               "  builder feedback recipes/quickstart.toml --purge serve --unlabelled-only --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", metavar="STORE_OR_RECIPE", help="a labelling store (*.labels.sqlite) or a recipe, whose store is used")
    parser.add_argument("--run", metavar="RUN_DIR", default=None,
                        help="count what waits to be learned against this run (default: the recipe's latest finished run)")
    parser.add_argument("--purge", metavar="SOURCE", default=None,
                        help="delete the items of this source (serve, or an imported file's name) with their history and events")
    parser.add_argument("--unlabelled-only", action="store_true", help="with --purge: keep the labelled items")
    parser.add_argument("--yes", action="store_true", help="with --purge: really delete (otherwise only show what would go)")
    parser.set_defaults(handler=run)
    return parser


def _store_path(value: str) -> Path:
    from assistant_builder.labelling.records import STORE_SUFFIX, store_path_for

    path = Path(value)
    store = store_path_for(path) if path.suffix == ".toml" else path
    if not str(store).endswith(STORE_SUFFIX):
        raise BuilderError(f"{value}: expected a labelling store (*{STORE_SUFFIX}) or a recipe (*.toml)")
    if not store.is_file():
        raise BuilderError(f"{store}: no labelling store there yet", hint="builder serve --feedback and builder tui create it")
    return store


def run(args: argparse.Namespace) -> int:
    from assistant_builder.labelling.serve_store import FeedbackStore

    store_path = _store_path(args.store)
    with FeedbackStore(store_path, durable=True) as store:
        counts = store.source_counts()
        events = dict(store.db.execute("SELECT kind, count(*) FROM serve_events GROUP BY kind").fetchall())
        if args.purge is not None:
            return _purge(args, store, store_path, counts)
    print(f"{store_path}:")
    print(f"  {'source':<24} {'to label':>8} {'labelled':>9} {'skipped':>8}")
    for source, by_status in sorted(counts.items()):
        waiting = by_status.get("todo", 0) + by_status.get("review", 0)
        print(f"  {source:<24} {waiting:>8} {by_status.get('labelled', 0):>9} {by_status.get('skipped', 0):>8}")
    print(f"  serving events: {events.get('capture', 0)} captured predictions, "
          f"{events.get('feedback', 0) + events.get('wrong', 0)} feedback requests")
    print(f"  {KEPT}")
    print(_to_learn(args, store_path))
    return 0


def _to_learn(args: argparse.Namespace, store_path: Path) -> str:
    """The "waiting to be learned" lines: against ``--run``, else the recipe's latest finished run."""
    from assistant_builder.unlearned import latest_run, unlearned

    recipe = Path(args.store) if Path(args.store).suffix == ".toml" else None
    if args.run:
        run: Path | None = Path(args.run)
        if not (run / "summary.json").is_file():
            raise BuilderError(f"--run {args.run}: not a finished run directory (no summary.json)")
    else:
        run = latest_run(recipe) if recipe is not None else None
    found = unlearned(store_path, run)
    if run is None:
        where = "no finished run of this recipe yet" if recipe is not None else "no run given (--run RUN_DIR, or pass the recipe)"
        return f"  to learn: {found.waiting} labelled items ({where})"
    if not found.run_reads_store:
        return (f"  to learn: {found.waiting} labelled items: {run.name} did not read this store (its recipe's data.extra does not "
                f"list {store_path.name}); add it there to train on them")
    if not found.waiting:
        return f"  to learn: nothing; {run.name} trained on every labelled item"
    sources = ", ".join(f"{n} {source}" for source, n in found.by_source.items())
    since = found.describe()["oldest_waiting"]
    command = f"builder run {args.store} --from {run}" if recipe is not None else f"builder run RECIPE --from {run}"
    return (f"  to learn: {found.waiting} labelled items not in {run.name} ({found.new} new, {found.corrected} corrected; {sources}; "
            f"oldest since {since}); `{command}` learns them (or builder serve --learn)")


def _purge(args: argparse.Namespace, store: Any, store_path: Path, counts: dict[str, dict[str, int]]) -> int:
    by_status = counts.get(args.purge)
    if not by_status:
        known = ", ".join(sorted(counts)) or "none"
        raise BuilderError(f"--purge {args.purge}: no items of that source in {store_path}; sources: {known}")
    doomed = sum(n for status, n in by_status.items() if not args.unlabelled_only or status != "labelled")
    if not args.yes:
        print(f"would delete {doomed} items of source {args.purge!r} from {store_path} "
              f"({'keeping' if args.unlabelled_only else 'including'} {by_status.get('labelled', 0)} labelled); "
              "add --yes to delete them")
        return 0
    result = store.purge(args.purge, unlabelled_only=args.unlabelled_only)
    print(f"deleted {result.items} items of source {args.purge!r} ({result.labelled} labelled), {result.history} history rows "
          f"and {result.events} serving events from {store_path}; the deleted text was overwritten in the file")
    return 0
