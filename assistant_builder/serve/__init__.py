"""HTTP serving of an exported ONNX bundle (``builder serve``): Starlette + uvicorn, torch-free.

``create_app(ServeSettings(path=...), predictor=load_predictor(path))`` returns the ASGI app;
``serve(settings)`` runs it under uvicorn. Modules: ``settings`` (options), ``payload`` (request
validation), ``engine`` (bounded queue, thread pool, micro-batching), ``metrics`` (Prometheus
text), ``openapi`` (schema and docs page), ``app`` (routes and middleware), ``server`` (uvicorn,
signals, workers). Imports starlette and the runtime only when those modules are imported.
"""

from __future__ import annotations

from assistant_builder.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
