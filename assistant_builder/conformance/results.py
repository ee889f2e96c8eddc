"""Check results and the small runner that turns a check function into one.

A check function raises ``CheckFailed`` (or any exception) to fail, ``CheckSkipped`` to skip, and
returns ``None`` or a short detail string on success (a ``Warning`` instance to pass with a warning). ``run_steps`` runs a pipeline of checks in
order; once one fails, the rest are reported as skipped (they need its result).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PASS, FAIL, SKIP, WARN = "pass", "fail", "skip", "warn"
_HERE = str(Path(__file__).resolve().parent)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one conformance check on one component.

    ``status`` is ``pass``, ``fail``, ``skip`` (could not run here, e.g. no sample data) or
    ``warn`` (works, but something a user will trip over). ``detail`` says what was expected and
    what was found; ``traceback`` holds the plugin's traceback when a check raised.
    """

    component: str
    kind: str
    check: str
    status: str
    detail: str = ""
    plugin: str = ""
    traceback: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckFailed(Exception):
    """Raised by a check: the component does not conform; the message is the detail."""


class CheckSkipped(Exception):
    """Raised by a check that cannot run here; the message says why."""


def expect(condition: Any, message: str) -> None:
    """Fail the current check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def describe_exception(error: BaseException) -> str:
    """``ValueError: bad thing (at my_plugin/task.py:42 in decode)``: the innermost frame outside this package."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_HERE)]
    where = ""
    if frames:
        frame = frames[-1]
        parts = Path(frame.filename).parts
        where = f" (at {'/'.join(parts[-2:])}:{frame.lineno} in {frame.name})"
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}{where}" if message else f"{type(error).__name__}{where}"


@dataclass
class Recorder:
    """Collects the results of the checks run on one component."""

    component: str
    kind: str
    plugin: str = ""

    def __post_init__(self) -> None:
        self.results: list[CheckResult] = []

    def add(self, check: str, status: str, detail: str = "", trace: str = "") -> CheckResult:
        result = CheckResult(self.component, self.kind, check, status, detail, self.plugin, trace)
        self.results.append(result)
        return result

    def run(self, check: str, function: Callable[[], str | Warning | None]) -> bool:
        """Run one check; record pass, warn, skip or fail; return True if it passed (or warned)."""
        try:
            detail = function()
        except CheckSkipped as skipped:
            self.add(check, SKIP, str(skipped))
            return False
        except CheckFailed as failed:
            self.add(check, FAIL, str(failed))
            return False
        except Exception as error:  # noqa: BLE001 - a plugin's bug is a check failure, not a crash
            self.add(check, FAIL, describe_exception(error), traceback.format_exc())
            return False
        if isinstance(detail, Warning):
            self.add(check, WARN, str(detail))
        else:
            self.add(check, PASS, detail or "")
        return True

    def run_steps(self, steps: Sequence[tuple[str, Callable[[], str | Warning | None]]]) -> bool:
        """Run dependent checks in order; after the first that does not pass, skip the rest."""
        for index, (check, function) in enumerate(steps):
            if not self.run(check, function):
                for later, _ in steps[index + 1:]:
                    self.add(later, SKIP, f"needs '{check}', which did not pass")
                return False
        return True
