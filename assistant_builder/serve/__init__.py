"""HTTP serving of an exported ONNX bundle (``builder serve``): Starlette + uvicorn, torch-free.

``create_app(ServeSettings(path=...), predictor=load_model(path))`` returns the ASGI app;
``serve(settings)`` runs it under uvicorn. Modules: ``settings`` (options), ``payload`` (request
validation), ``engine`` (bounded queue, thread pool, micro-batching), ``metrics`` (Prometheus
text), ``openapi`` (schema and docs page), ``app`` (routes and middleware), ``state`` (what the
routes share), ``http`` (shared response helpers), ``models`` (the swappable model slot; an encoder
bundle's ``Predictor`` or a generation bundle's ``GenerationModel``), ``generation`` and ``generate``
(``POST /generate``: generation in the worker threads, server-sent events),
``capture`` and ``feedback_api`` (``--feedback``: prediction ids, capture, ``POST /feedback``),
``reload``, ``admin``, ``regression`` and ``watch`` (hot swap), ``server`` (uvicorn, signals, workers). Imports starlette and the runtime only when those modules are imported.
"""

from __future__ import annotations

from assistant_builder.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
