"""A small Prometheus text-format exposition (counters, gauges, histograms with labels).

Enough for ``GET /metrics`` without adding ``prometheus_client``. Thread-safe: model calls finish in
worker threads. With ``--workers N`` each process has its own metrics (the scrape sees one worker).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self.values: dict[LabelValues, float] = {} if label_names else {(): 0.0}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self.values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self.values[labels] = float(value)

    def replace(self, value: float, *labels: str) -> None:
        """Drop every labelled value and set this one (an info gauge after the model changed)."""
        with self._lock:
            self.values = {labels: float(value)}


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float], label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self.series: dict[LabelValues, list[float]] = {}  # per-bucket counts (not cumulative), then sum, count

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            series = self.series.setdefault(labels, [0.0] * (len(self.buckets) + 2))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    series[index] += 1
                    break
            series[-2] += value
            series[-1] += 1

    def count(self, *labels: str) -> int:
        return int(self.series.get(labels, [0.0])[-1])

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self.series.items())
        lines = self.header()
        for key, series in items:
            cumulative = 0.0
            for bound, count in zip(self.buckets, series):
                cumulative += count
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(cumulative)}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(series[-2])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(series[-1])}")
        return lines


class ServeMetrics:
    """The server's metrics; ``render()`` returns the exposition text."""

    def __init__(self) -> None:
        p = "assistant_builder"
        self.requests = Counter(f"{p}_requests_total", "HTTP requests answered, by route and status code.", ("route", "status"))
        self.errors = Counter(f"{p}_errors_total", "Requests that failed, by route and kind "
                              "(client_error, unauthorized, rejected, server_error).", ("route", "kind"))
        self.latency = Histogram(f"{p}_request_duration_seconds", "Time from request start to response, by route.",
                                 (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), ("route",))
        self.in_flight = Gauge(f"{p}_requests_in_flight", "Requests being handled now.")
        self.queue_depth = Gauge(f"{p}_inference_queue_depth", "Prediction requests waiting for a model call.")
        self.batch_size = Histogram(f"{p}_inference_batch_size", "Examples per model call (one call may serve several "
                                    "requests when micro-batching).", (1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.batch_requests = Histogram(f"{p}_inference_batch_requests", "Requests served by one model call.",
                                        (1, 2, 4, 8, 16, 32, 64))
        self.model = Gauge(f"{p}_model_info", "The model answering now (always 1).", ("task", "variant", "version"))
        self.shed = Counter(f"{p}_requests_shed_total", "Prediction requests answered 503 to shed load, by reason "
                            "(queue_full, overloaded: expected wait too long, queue_timeout: waited too long).", ("reason",))
        self.feedback = Counter(f"{p}_feedback_total", "POST /feedback requests recorded in the store, by the status the item "
                                "got (labelled, review).", ("status",))
        self.capture = Counter(f"{p}_captured_predictions_total", "Predictions offered to the store by --capture, by outcome "
                               "(stored, duplicate: input already in the store, dropped: writer queue full, never blocking a "
                               "prediction, evicted: removed by --capture-max, failed: store write error).", ("result",))
        self.capture_queue = Gauge(f"{p}_capture_queue_depth", "Captured predictions waiting for the store writer.")
        self.reloads = Counter(f"{p}_model_reloads_total", "Model reloads, by result (swapped, unchanged, refused, rolled_back) "
                               "and reason of a refusal.", ("result", "reason"))
        self.generated_tokens = Counter(f"{p}_generated_tokens_total", "Tokens generated by POST /generate (end-of-sequence "
                                        "not counted; a generation stopped because its client went away counts what it made).")
        self.generations = Counter(f"{p}_generations_total", "Answers generated by POST /generate, by finish reason (eos, stop, "
                                   "length, cancelled: the client went away).", ("finish_reason",))
        self.learn = Counter(f"{p}_learn_updates_total", "Updates --learn started, by result (swapped, refused: its gate, "
                             "reload_refused, failed).", ("result",))
        self.reload_seconds = Histogram(f"{p}_model_reload_seconds", "Time from a reload request to the swap (swapped reloads).",
                                        (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))

    def render(self) -> str:
        metrics = (self.requests, self.errors, self.latency, self.in_flight, self.queue_depth, self.batch_size,
                   self.batch_requests, self.model, self.shed, self.feedback, self.capture, self.capture_queue, self.reloads,
                   self.reload_seconds, self.learn, self.generated_tokens, self.generations)
        return "\n".join(line for metric in metrics for line in metric.render()) + "\n"
