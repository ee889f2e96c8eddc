"""Training progress on stderr: a live bar on a terminal, plain periodic lines elsewhere, from the same events."""

from __future__ import annotations

import io
import sys

import pytest

from assistant_builder.callbacks import StageStarted, StepEnded, TrainingStarted
from assistant_builder.cli.progress import ConsoleProgress, format_duration, is_terminal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def train(progress: ConsoleProgress, clock: Clock, steps: range, total: int, initial: int = 0) -> None:
    progress.on_train_start(TrainingStarted(total_steps=total, steps_per_epoch=total // 2, epochs=2, device="cpu", initial_step=initial))
    for step in steps:
        clock.now += 1.0
        progress.on_step_end(StepEnded(step=step, epoch=step / (total // 2), loss=1.0 / step, learning_rate=1e-4,
                                       examples_per_second=212.4))


def lines_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("step ")]


def test_without_a_terminal_progress_is_plain_lines_at_most_every_interval(capsys):
    clock = Clock()
    progress = ConsoleProgress(live=False, interval=10.0, clock=clock)
    train(progress, clock, range(1, 36), total=35)
    progress.on_stage_start(StageStarted("evaluate"))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = lines_of(err)
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [1, 11, 21, 31, 35]  # first, every 10 s, last
    assert lines[0] == "step 1/35 (epoch 0.06): loss 1.0000, 212 ex/s, eta 34s"
    assert lines[1] == "step 11/35 (epoch 0.65): loss 0.0909, 212 ex/s, eta 24s"
    assert lines[-1] == "step 35/35 (epoch 2.06): loss 0.0286, 212 ex/s"  # done: no eta
    assert "  2 epochs × 17 steps on cpu" in err and "• evaluate" in err


def test_a_training_that_stops_early_still_shows_its_last_step(capsys):
    clock = Clock()
    progress = ConsoleProgress(live=False, interval=10.0, clock=clock)
    train(progress, clock, range(41, 56), total=200, initial=40)  # resumed at step 40, stopped at 55
    progress.on_stage_start(StageStarted("evaluate"))
    lines = lines_of(capsys.readouterr().err)
    assert [line.split(" (")[0] for line in lines] == ["step 41/200", "step 51/200", "step 55/200"]
    assert lines[1].endswith("eta 2m29s")  # 11 steps in 11 s since the resume, 149 to go


def test_on_a_terminal_it_is_a_live_bar(capsys):
    clock = Clock()
    progress = ConsoleProgress(live=True, clock=clock)
    train(progress, clock, range(1, 6), total=5)
    progress.on_stage_start(StageStarted("evaluate"))
    err = capsys.readouterr().err
    assert "\r" in err and "training" in err and "5/5" in err and "loss=" in err
    assert lines_of(err) == []


def test_the_mode_follows_whether_stderr_is_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not is_terminal(io.StringIO()) and is_terminal(Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert ConsoleProgress()._live()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not ConsoleProgress()._live()


def test_quiet_prints_nothing(capsys):
    clock = Clock()
    train(ConsoleProgress(quiet=True, live=False, clock=clock), clock, range(1, 4), total=3)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (35.4, "35s"), (250, "4m10s"), (3720, "1h02m"), (-3, "0s")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text
