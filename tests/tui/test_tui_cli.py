"""``builder tui``: the subcommand stays textual-free until the UI opens; headless import/export;
and killing the app mid-labelling loses no decision it acknowledged on screen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from assistant_builder.cli.main import main
from assistant_builder.labelling.store import LABELLED, LabelStore

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}

HELP_SCRIPT = """
import contextlib, io, json, sys
from assistant_builder.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    for argv in (["--help"], ["tui", "--help"]):
        try:
            main(argv)
        except SystemExit:
            pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "textual_plotext", "torch"))
print(json.dumps({"heavy": heavy, "help": out.getvalue()}))
"""


def test_help_imports_no_textual() -> None:
    result = subprocess.run([sys.executable, "-c", HELP_SCRIPT], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert "tui" in report["help"] and "--import FILE" in report["help"]


def test_import_and_export_without_opening_the_ui(tmp_path: Path, tui_helpers: Any, capsys: Any) -> None:
    recipe = tui_helpers.write_recipe(tmp_path, tui_helpers.LABELS)
    (tmp_path / "more.txt").write_text("turn it up\nwake me at 7\n")
    assert main(["tui", str(recipe), "--import", str(tmp_path / "train.jsonl"), "--import", str(tmp_path / "more.txt")]) == 0
    assert main(["tui", str(recipe), "--export", str(tmp_path / "out.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "train.jsonl: 6 added, 0 already in recipe.labels.sqlite" in out and "more.txt: 1 added, 1 already" in out
    assert "out.jsonl: 6 labelled examples written" in out
    assert [json.loads(line)["intent"] for line in (tmp_path / "out.jsonl").read_text().splitlines()][:3] == ["alarm", "weather", "music"]
    assert main(["tui", str(recipe), "--import", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: file not found" in capsys.readouterr().err


APP_SCRIPT = """
import asyncio, sys
from assistant_builder.registry import build_registry
from assistant_builder.tui.app import BuilderApp
from assistant_builder.tui.project import open_project

async def go():
    app = BuilderApp(open_project(sys.argv[1], build_registry()), build_registry())
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        for index in range(10_000):
            await pilot.press("123"[index % 3])
            if screen.last_ack:
                print(screen.last_ack, flush=True)  # what the screen shows: "#12 = music"

asyncio.run(go())
"""


def test_sigkill_mid_labelling_keeps_every_acknowledged_decision(tmp_path: Path, tui_helpers: Any) -> None:
    recipe = tui_helpers.write_recipe(tmp_path, tui_helpers.LABELS)
    with LabelStore(recipe.with_name("recipe.labels.sqlite")) as store:
        store.add_items(({"text": f"text {i}"}, None, "x", None) for i in range(5000))
    process = subprocess.Popen([sys.executable, "-c", APP_SCRIPT, str(recipe)], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    acknowledged: dict[int, str] = {}
    assert process.stdout is not None
    while len(acknowledged) < 40:
        line = process.stdout.readline()
        assert line, "the app exited early"
        item, _, label = line.strip().removeprefix("#").partition(" = ")
        acknowledged[int(item)] = label
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with LabelStore(recipe.with_name("recipe.labels.sqlite")) as store:
        for item_id, label in acknowledged.items():
            item = store.item(item_id)
            assert (item.status, item.gold) == (LABELLED, label)
