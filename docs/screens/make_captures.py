"""Make the text captures of the TUI's main screens in docs/screens/ by walking through docs/tui.md
for real: label 20 examples, train, see the evaluation, fix one error, compare runs, export.

    python docs/screens/make_captures.py                 # about 3-5 minutes on 2 CPU cores
    python docs/screens/make_captures.py --svg           # also write SVG screenshots
    python docs/screens/make_captures.py --epochs 8      # the recipe's own epochs (slower)

It copies recipes/quickstart.toml and its data into a scratch folder, imports the training data
and the 20-text inbox of docs/tui.md into the label store, then drives ``builder tui`` headless at
100x30 with the key presses docs/tui.md lists. Training uses the real
engine and the bundled MiniLM encoder (no download). Figures, timings and run names differ from
one run of this script to the next; everything else is reproducible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
SIZE = (100, 30)
INBOX = 20


#: the labels a user would give the inbox texts of docs/tui.md
TRUTH = {
    "wake me at quarter past six": "set_alarm",
    "is it going to snow this weekend": "weather",
    "put oat milk on the list": "add_to_shopping_list",
    "what's on my calendar friday afternoon": "calendar_query",
    "turn the hallway lights off": "smart_home_lights",
    "remind me to water the plants tonight": "set_reminder",
    "play some jazz while I cook": "play_music",
    "text sam that I'm running late": "send_message",
    "cancel my 7am alarm": "cancel_alarm",
    "how do you say good night in italian": "translate",
    "set a timer for 12 minutes": "timer",
    "hey, how's it going": "small_talk_greeting",
    "add batteries to my shopping list": "add_to_shopping_list",
    "do I have anything booked tomorrow morning": "calendar_query",
    "dim the bedroom lights to 30 percent": "smart_home_lights",
    "play the new album by the weeknd": "play_music",
    "tell mum I'll call her after work": "send_message",
    "no need for the alarm tomorrow": "cancel_alarm",
    "will I need sunglasses today": "weather",
    "start a 5 minute countdown": "timer",
}


def inbox_from_docs() -> list[str]:
    """The 20 texts of the walk-through's ``cat > inbox.txt`` block in docs/tui.md."""
    doc = (ROOT / "docs" / "tui.md").read_text()
    block = re.search(r"cat > inbox.txt <<'EOF'\n(.*?)\nEOF\n", doc, re.S)
    if block is None:
        raise SystemExit("docs/tui.md: the `cat > inbox.txt <<'EOF'` block is missing")
    texts = block.group(1).splitlines()
    unknown = [t for t in texts if t not in TRUTH]
    if unknown:
        raise SystemExit(f"docs/tui.md: inbox texts without a label in TRUTH: {unknown}")
    return texts


def prepare(work: Path, epochs: int) -> Path:
    """Copy the quickstart recipe and data to ``work`` (fewer epochs) and write the inbox of docs/tui.md."""
    demo = work / "assistant"
    (demo / "data").mkdir(parents=True)
    for name in ("intents.train.jsonl", "intents.valid.jsonl"):
        shutil.copy(ROOT / "recipes" / "data" / name, demo / "data" / name)
    text = (ROOT / "recipes" / "quickstart.toml").read_text()
    text = re.sub(r"(?m)^epochs = \d+", f"epochs = {epochs}", text).replace('runs_dir = "../runs"', 'runs_dir = "runs"')
    recipe = demo / "quickstart.toml"
    recipe.write_text(text)
    (demo / "inbox.txt").write_text("".join(line + "\n" for line in inbox_from_docs()))
    return recipe


def keys_for(label: str, labels: list[str]) -> list[str]:
    """Number keys 1-9 label with the first nine labels; the others through the filter (/, name, Enter)."""
    index = labels.index(label)
    if index < 9:
        return [str(index + 1)]
    return ["slash", *("underscore" if c == "_" else c for c in label), "enter"]


async def walk(recipe: Path, svg: bool) -> list[str]:
    from assistant_builder.registry import build_registry
    from assistant_builder.tui.app import BuilderApp
    from assistant_builder.tui.capture import screen_text
    from assistant_builder.labelling.formats import import_file
    from assistant_builder.tui.project import open_project
    from assistant_builder.labelling.store import LabelStore

    registry = build_registry()
    project = open_project(recipe, registry)
    with LabelStore(project.store_path) as store:
        import_file(store, recipe.parent / "data" / "intents.train.jsonl", project.kind, text_field="text", label_field="intent")
        import_file(store, recipe.parent / "inbox.txt", project.kind)
    written: list[str] = []
    app = BuilderApp(project, registry)

    async def until(pilot: Any, condition: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {timeout:.0f} s on the {app.current_mode} screen:\n{screen_text(app)}")
            await pilot.pause(0.1)

    async def capture(pilot: Any, name: str, note: str) -> None:
        app.clear_notifications()
        label_screen = app.screens_by_mode.get("label")
        if app.screen is label_screen:  # keys pressed by a script make an absurd labelling pace: leave it out
            label_screen.decision_times.clear()
            label_screen.refresh_progress()
        await pilot.pause(0.3)
        text = "\n".join(line.rstrip() for line in screen_text(app).splitlines()).rstrip() + "\n"
        (OUT / f"{name}.txt").write_text(f"# {note}\n{text}")
        written.append(f"{name}.txt")
        if svg:
            (OUT / f"{name}.svg").write_text(app.export_screenshot(title=f"builder tui · {name}"))
            written.append(f"{name}.svg")
        print(f"  {name}: {note}", file=sys.stderr)

    async with app.run_test(size=SIZE) as pilot:
        label = app.screen
        labels = label.labels
        for count in range(INBOX):  # Label (F1): one number key per text
            assert label.current is not None, "the inbox ran out early"
            if count == INBOX - 1:
                await capture(pilot, "label", f"F1 Label: {INBOX - 1} of the {INBOX} inbox texts labelled, one key each")
            await pilot.press(*keys_for(TRUTH[label.current.payload["text"]], labels))
        await pilot.press("f2", "t")  # Train (F2): t trains on the labelled store
        train = app.screen
        await until(pilot, lambda: train.result is not None, 1800)
        if train.result.error:
            raise SystemExit(f"training failed: {train.result.error}")
        await capture(pilot, "train", "F2 Train: t trained on the labelled store; live loss and validation accuracy")
        await pilot.press("f3")  # Evaluate (F3): errors, most confident first
        evaluate = app.screen
        await until(pilot, lambda: evaluate.evaluation is not None, 120)
        await capture(pilot, "evaluate", "F3 Evaluate: the run's validation errors, most confident first (s scores, x confusion)")
        if evaluate.evaluation.errors:
            error = evaluate.evaluation.errors[0]
            await pilot.press("b", "f1")  # send the highlighted error back, then fix it on the Label screen
            await capture(pilot, "fix", "F1 Label after b on the Evaluate screen: the error is back in the queue, marked for review")
            await pilot.press(*keys_for(error.gold, labels))
        await pilot.press("f4")  # Runs (F4)
        await pilot.pause(0.3)
        await capture(pilot, "runs", "F4 Runs: every run of the recipe side by side (Enter evaluates, x exports)")
        await pilot.press("f5", "e")  # Export (F5): the recipe's formats are ticked; e exports and verifies
        export = app.screen
        await until(pilot, lambda: export.result is not None, 1200)
        if export.result.error and not export.result.verification_failed:
            raise SystemExit(f"export failed: {export.result.error}")
        await capture(pilot, "export", "F5 Export: e exported and verified ONNX fp32 + int8 and TorchScript")
        await pilot.press("ctrl+q")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3; the quickstart recipe says 8)")
    parser.add_argument("--svg", action="store_true", help="also write SVG screenshots next to the text captures")
    parser.add_argument("--keep", action="store_true", help="keep the scratch project folder and print where it is")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="builder-tui-captures-"))
    try:
        recipe = prepare(work, args.epochs)
        os.chdir(recipe.parent)  # paths on screen are shown relative to here: runs/quickstart-...
        print(f"walking through docs/tui.md in {recipe.parent} ...", file=sys.stderr)
        written = asyncio.run(walk(recipe, args.svg))
    finally:
        os.chdir(ROOT)
        if args.keep:
            print(f"scratch project kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("wrote " + ", ".join(f"docs/screens/{name}" for name in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
