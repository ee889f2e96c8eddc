"""Live training chart: loss per logged step, and the validation metric per evaluation."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from assistant_builder.tui.training import TrainingState


class LossChart(PlotextPlot):
    """Redrawn from a ``TrainingState`` (the screen owns the data; the chart only draws it)."""

    def draw(self, state: TrainingState) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("training loss" + (f" and validation {state.metric}" if state.eval_values else ""))
        plt.xlabel("step")
        if state.losses:
            plt.plot(state.loss_steps, state.losses, label="loss", marker="braille")
        if state.eval_values:
            plt.plot(state.eval_steps, state.eval_values, label=state.metric, yside="right", marker="dot")
        self.refresh()
