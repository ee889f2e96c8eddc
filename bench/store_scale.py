"""Label store at scale: fetch-next and write-decision latency on a store of N items (default 1M).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/store_scale.py                 # 1M items, 2,000 decisions
    HF_HUB_OFFLINE=1 .venv/bin/python bench/store_scale.py --items 100000 --durable

Builds a fresh store (half the items carry a model suggestion and margin, a tenth are labelled),
then times, per decision: ``next_item`` (uncertainty order, then input order once suggested items
run out) and ``decide`` (one committed transaction), plus ``undo``/``redo`` and the one-off
``progress()`` count. Prints one Markdown table. The target is well under 20 ms for each call on
100k items; no dataset or network needed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant_builder.labelling.store import LabelStore  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.3f} | {percentile(ms, 0.95):.3f} | {percentile(ms, 0.99):.3f} | {max(ms):.3f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--durable", action="store_true", help="synchronous=FULL (fsync every decision)")
    parser.add_argument("--path", type=Path, help="store file (default: a temporary one, deleted afterwards)")
    args = parser.parse_args()

    folder = tempfile.TemporaryDirectory() if args.path is None else None
    path = args.path or Path(folder.name) / "bench.labels.sqlite"  # type: ignore[union-attr]
    rng = random.Random(0)
    labels = [f"label_{i}" for i in range(20)]
    with LabelStore(path, durable=args.durable) as store:
        start = time.perf_counter()
        store.add_items(({"text": f"example number {i} " + "word " * rng.randint(3, 30)},
                         rng.choice(labels) if i % 10 == 0 else None, f"bench:{i}", None) for i in range(args.items))
        build = time.perf_counter() - start
        start = time.perf_counter()
        store.set_suggestions((i, {"label": rng.choice(labels), "score": 0.5}, rng.random()) for i in range(1, args.items + 1, 2))
        suggest = time.perf_counter() - start
        start = time.perf_counter()
        progress = store.progress()
        count = time.perf_counter() - start

        fetch, decide, undo, redo = [], [], [], []
        for n in range(args.decisions):
            order = "uncertainty" if n % 2 else "input order"
            t0 = time.perf_counter()
            item = store.next_item(order)
            t1 = time.perf_counter()
            assert item is not None
            store.decide(item.id, rng.choice(labels))
            t2 = time.perf_counter()
            fetch.append(t1 - t0)
            decide.append(t2 - t1)
            if n % 20 == 19:
                t0 = time.perf_counter()
                store.undo()
                t1 = time.perf_counter()
                store.redo()
                undo.append(t1 - t0)
                redo.append(time.perf_counter() - t1)
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    # opening an existing project store, as `builder tui` does: open, count progress, fetch the next item
    opening, reopen_progress = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        with LabelStore(path, durable=args.durable) as store:
            t1 = time.perf_counter()
            store.progress()
            t2 = time.perf_counter()
            store.next_item("uncertainty")
        opening.append(t1 - t0)
        reopen_progress.append(t2 - t1)

    print(f"label store: {args.items:,} items ({progress.labelled:,} labelled), synchronous={'FULL' if args.durable else 'NORMAL'}, "
          f"{os.cpu_count()} CPUs, {size / 1e6:.0f} MB on disk")
    print(f"build {build:.1f} s, suggestions for half the items {suggest:.1f} s, first progress() count {count * 1000:.0f} ms\n")
    print("| operation | calls | median ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
    for name, values in (("open store", opening), ("progress() on open", reopen_progress), ("next_item", fetch),
                         ("decide (commit)", decide), ("undo", undo), ("redo", redo)):
        print(row(name, values))
    if folder is not None:
        folder.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
