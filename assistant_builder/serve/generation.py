"""Generation models in ``builder serve``: a generation bundle behind the same slot, queue and threads.

``GenerationModel`` wraps the torch-free ``runtime.assistant.Assistant`` with the parts a
``ModelSlot`` reads from a ``Predictor`` (``bundle``, ``variant``, ``task``, ``labels``, ``options``,
``info``, ``parse``), so reloads, ``/info``, metrics and feedback treat both kinds alike. The task is
the class the bundle's manifest names (``runtime.predictor.task_component``), never a built-in
plugin imported by name.

``GenerationJob`` is one ``POST /generate`` request on the scheduler's bounded queue
(``serve/engine.py``): its prompt ids, its ``GenerationSettings``, and an event queue that the worker
thread fills (``start``, then each text piece as soon as it is final). ``GenerationEngine.run``
generates in that worker thread, one job per call (``batchable = False``: generations are never
micro-batched), and checks the job's ``cancelled`` event before every token, so a client that goes
away stops its generation within one token. Answers are what ``Assistant.answer`` returns for the
same prompt and settings (``completion`` stripped of surrounding whitespace, ``tokens``,
``finish_reason`` ``eos`` / ``stop`` / ``length``; ``cancelled`` for a stopped one), and the pieces
join to exactly the ``completion``. Imports the runtime (onnxruntime-genai, tokenizers) and the core only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from assistant_builder.errors import ModelError
from assistant_builder.runtime.bundle import Bundle
from assistant_builder.runtime.inputs import parse_inputs
from assistant_builder.serve.engine import Job
from assistant_builder.serve.settings import ServeError

#: ``ModelSlot.kind`` of a generation model (the other kind is ``prediction``)
GENERATION = "generation"
#: the prompt a reloaded model is tried on (two tokens) before it is swapped in
SMOKE_PROMPT = "Hello"


def strip_pieces(pieces: Iterable[str]) -> Iterator[str]:
    """``pieces`` without the whitespace at the start and end of their concatenation (as ``str.strip``):
    leading whitespace is dropped, trailing whitespace is held back until more text follows it."""
    started, pending = False, ""
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        text = pending + piece
        body = text.rstrip()
        pending = text[len(body):]
        if body:
            yield body


class GenerationModel:
    """One variant of a generation bundle, shaped like a ``Predictor`` for the serve machinery."""

    kind = GENERATION

    def __init__(self, bundle: Bundle, variant: str = "auto", *, options: Mapping[str, Any] | None = None) -> None:
        from assistant_builder.runtime.assistant import Assistant

        if options:
            raise ServeError(f"{', '.join(sorted(options))}: a generation model has no such option (--fallback-threshold is for "
                             "classification models)", hint="serve it without that flag")
        self.bundle = bundle
        self.variant = bundle.choose_variant(variant)
        self.assistant = Assistant(bundle, self.variant)
        self.task = self.assistant.task
        self.labels: list[str] = []
        self.max_length = self.assistant.max_length
        try:
            self.options = self.task.Options.model_validate(self.assistant.options)
        except ValidationError as exc:
            raise ModelError(f"{bundle.manifest_path}: task options invalid for task '{self.task.name}': "
                             f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}",
                             hint="the task plugin changed since export; re-export, or install the version it used") from exc

    @property
    def defaults(self) -> Any:
        """The bundle's ``GenerationSettings`` (what a request that sets nothing gets)."""
        return self.assistant.defaults

    @property
    def info(self) -> dict[str, Any]:
        """What is loaded (``GET /info``): task, kind, variant, its verification metrics, and the generation defaults."""
        manifest = self.bundle.manifest
        d = self.defaults
        return {"task": self.task.name, "kind": GENERATION, "labels": [], "variant": self.variant, "variants": self.bundle.variants,
                "metrics": dict(manifest.get("verification", {}).get(self.variant, {})), "created": manifest.get("created"),
                "base_model": manifest.get("base_model"), "bundle": str(self.bundle.directory),
                "generation": {"max_new_tokens": d.max_new_tokens, "temperature": d.temperature, "top_p": d.top_p,
                               "stop": list(d.stop), "system_prompt": self.assistant.system_prompt, "max_length": self.max_length}}

    def parse(self, inputs: Sequence[Any], sources: Sequence[str] | None = None) -> list[Any]:
        """``task.parse_input`` each raw input (a prompt, ``{"prompt"}`` or ``{"messages"}``); errors name ``sources[i]``."""
        return parse_inputs(self.task, inputs, sources)

    def prompt_ids(self, raw: Any, where: str = "input") -> list[int]:
        """The formatted prompt's token ids (``DataError`` naming ``where`` when it is too long for the model)."""
        return self.assistant.prompt_ids(raw, where)

    def settings_for(self, prompt_ids: Sequence[int], **changes: Any) -> Any:
        """The defaults with ``changes`` (``ValueError`` naming the field), ``max_new_tokens`` cut to what fits
        in ``model.max_length`` after the prompt (as ``Assistant.answer`` does)."""
        settings = self.assistant.settings(**changes)
        if self.max_length:
            settings = replace(settings, max_new_tokens=min(settings.max_new_tokens, max(1, self.max_length - len(prompt_ids))))
        return settings

    def token_ids(self, prompt_ids: Sequence[int], settings: Any) -> Iterator[int]:
        """The new token ids, one model step each (end-of-sequence not included)."""
        return self.assistant.model.stream_ids(prompt_ids, settings)

    def generate(self, prompt_ids: Sequence[int], settings: Any, on_piece: Callable[[str], None] | None = None,
                 cancelled: threading.Event | None = None, token_ids: Iterable[int] | None = None) -> dict[str, Any]:
        """The whole answer (``completion``, ``tokens``, ``finish_reason``), calling ``on_piece`` with each text piece
        as soon as it is final; stops before the next token once ``cancelled`` is set (``finish_reason`` ``cancelled``)."""
        from assistant_builder.runtime.generation import stream_text

        produced: list[int] = []
        stopped = False

        def counted() -> Iterator[int]:
            nonlocal stopped
            for token in token_ids if token_ids is not None else self.token_ids(prompt_ids, settings):
                if cancelled is not None and cancelled.is_set():
                    stopped = True
                    return
                produced.append(token)
                yield token

        pieces = []
        for piece in strip_pieces(stream_text(counted(), self.assistant.tokenizer, settings.stop)):
            pieces.append(piece)
            if on_piece is not None:
                on_piece(piece)
        full = self.assistant.tokenizer.decode(produced, skip_special_tokens=True)
        if stopped:
            reason = "cancelled"
        elif any(stop in full for stop in settings.stop):
            reason = "stop"
        elif len(produced) >= settings.max_new_tokens:
            reason = "length"
        else:
            reason = "eos"
        return {"completion": "".join(pieces), "tokens": len(produced), "finish_reason": reason}

    def smoke(self) -> dict[str, Any]:
        """Two tokens for a short prompt: a reloaded model must do this before it serves."""
        ids = self.prompt_ids(SMOKE_PROMPT)
        return self.generate(ids, self.settings_for(ids, max_new_tokens=2, stop=()))


@dataclass
class GenerationJob(Job):
    """One ``POST /generate`` request on the scheduler's queue (``examples``: its one parsed conversation)."""

    prompt_ids: list[int] = field(default_factory=list)
    settings: Any = None
    #: set when the client went away: the worker stops before the next token
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    #: what the worker reports, on the event loop: ``("start", None)`` then ``("text", piece)`` for each piece
    events: asyncio.Queue[tuple[str, Any]] | None = field(default=None, repr=False)
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    #: ``ServeMetrics`` that count generated tokens (from the worker thread; its counters are thread-safe)
    metrics: Any = field(default=None, repr=False)

    def emit(self, kind: str, value: Any = None) -> None:
        """Hand an event to the event loop (from the worker thread); a closed loop cancels the job."""
        if self.loop is None or self.events is None:
            return
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self.cancelled.set()


class GenerationEngine:
    """Runs ``GenerationJob``s in the scheduler's worker threads, one per call."""

    batchable = False

    def __init__(self, model: GenerationModel) -> None:
        self.model = model
        self.predictor = model

    def token_ids(self, job: GenerationJob) -> Iterable[int]:
        """The job's new token ids (a test may slow this down or count it)."""
        return self.model.token_ids(job.prompt_ids, job.settings)

    def run(self, jobs: Sequence[Job]) -> list[list[dict[str, Any]] | BaseException]:
        results: list[list[dict[str, Any]] | BaseException] = []
        for job in jobs:
            try:
                results.append([self.generate(job)])  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - reported to its request
                results.append(exc)
        return results

    def generate(self, job: GenerationJob) -> dict[str, Any]:
        if job.cancelled.is_set():
            return {"completion": "", "tokens": 0, "finish_reason": "cancelled"}
        job.emit("start")
        answer = self.model.generate(job.prompt_ids, job.settings, lambda piece: job.emit("text", piece), job.cancelled,
                                     token_ids=self.token_ids(job))
        if job.metrics is not None:
            job.metrics.generated_tokens.inc(amount=answer["tokens"])
            job.metrics.generations.inc(answer["finish_reason"])
        return answer
