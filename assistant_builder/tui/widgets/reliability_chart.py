"""Reliability chart of the Evaluate screen: accuracy per confidence bin on the validation set,
before and after calibration (the bins ``metrics.json`` saves under ``decision_rule.calibration``)."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class ReliabilityChart(PlotextPlot):
    """Redrawn from ``RunEvaluation.calibration`` (the screen owns the data; the chart only draws it)."""

    def draw(self, calibration: dict[str, Any]) -> None:
        """``calibration["reliability"]``: ``{"before": [bin, ...], "after": [...]}``, each bin with
        ``confidence`` (mean) and ``accuracy``; a perfectly calibrated model lies on the diagonal."""
        reliability = calibration.get("reliability") or {}
        #: what is drawn, per series: (mean confidence, accuracy) of each non-empty bin
        self.points = {side: [(b["confidence"], b["accuracy"]) for b in reliability.get(side) or []] for side in ("before", "after")}
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("reliability on validation: accuracy per confidence bin")
        plt.xlabel("confidence")
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.plot([0, 1], [0, 1], label="perfect", marker="dot", color="gray")
        calibrated = calibration.get("method") not in (None, "none")
        for side in ("before", "after") if calibrated else ("after",):  # without calibration both are the same
            points = self.points[side]
            if points:
                plt.plot([x for x, _ in points], [y for _, y in points], label=f"{side} calibration" if calibrated else "validation",
                         marker="braille")
        self.refresh()
