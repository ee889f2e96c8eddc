"""Items ``builder serve --feedback`` captured show in the Label screen's queue: ``f`` keeps only
one source, the model's guess is pre-filled, ``a`` confirms it and a label key corrects it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from assistant_builder.labelling.serve_store import Captured, FeedbackStore
from assistant_builder.labelling.store import LABELLED, TODO
from assistant_builder.tui.app import BuilderApp


def guess(label: str, margin: float) -> dict[str, Any]:
    first = (1 + margin) / 2
    return {"label": label, "score": first, "top": [{"label": label, "score": first}, {"label": "alarm", "score": 1 - first}]}


def test_captured_items_are_filtered_by_source_prefilled_and_confirmed_or_corrected(make_project: Any, registry: Any,
                                                                                    tui_helpers: Any) -> None:
    project = make_project()
    with FeedbackStore(project.store_path) as store:
        store.capture([Captured(f"p-{n}", text, {"text": text}, guess(label, margin), margin, "abc123def456", time.time(),
                                "captured by builder serve (confidence 0.10 < 0.5), model abc123def456")
                       for n, (text, label, margin) in enumerate([("dim the lights", "music", 0.1), ("louder please", "music", 0.3)])])

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert screen.current is not None and screen.current.source == "serve"  # least margin first: a captured item
            await pilot.press("o")  # input order: the imported texts come first
            await pilot.pause()
            assert screen.current.source.startswith("texts.txt")
            await pilot.press("f")  # sources in the queue: serve, texts.txt
            await pilot.pause()
            assert screen.source == "serve" and screen.current.payload["text"] == "dim the lights"
            text = tui_helpers.screen_text(app)
            assert "model suggests: music" in text and "source serve" in text and "abc123def456" in text
            await pilot.press("a")  # the guess was right
            await pilot.pause()
            assert screen.current.payload["text"] == "louder please"
            await pilot.press("2")  # the guess was wrong: weather
            await pilot.pause()
            assert screen.current is None and "Queue empty" in tui_helpers.screen_text(app)
            await pilot.press("f")
            await pilot.pause()
            assert screen.source == "texts.txt" and screen.current.source.startswith("texts.txt")
            await pilot.press("f")
            await pilot.pause()
            assert screen.source is None

    asyncio.run(scenario())
    with FeedbackStore(project.store_path) as store:
        served = {i.payload["text"]: (i.status, i.gold) for i in store.items() if i.source == "serve"}
        assert served == {"dim the lights": (LABELLED, "music"), "louder please": (LABELLED, "weather")}
        assert store.queue_sources() == {"texts.txt": 6} and store.progress().by_status[TODO] == 6
