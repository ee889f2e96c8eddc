"""The engine: data -> task -> trainer -> evaluate -> export -> verify -> report.

It knows no UI; everything it has to say goes through callbacks (``callbacks.py``).
"""

from __future__ import annotations

from assistant_builder.engine.run import RunResult, run

__all__ = ["RunResult", "run"]
