"""One error hierarchy for everything the user can get wrong or the run can hit.

Every message states what was expected, what was found and what to do next. The CLI prints
``BuilderError`` subclasses as a titled message on stderr (no traceback) and exits with
``exit_code``.
"""

from __future__ import annotations

from dataclasses import dataclass


class BuilderError(Exception):
    """Base class of all errors assistant-builder reports to the user."""

    title = "error"
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """Return the message as printed by the CLI (title, message, optional hint)."""
        text = f"{self.title}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a recipe: where it is (``key.path``) and what is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(BuilderError):
    """A recipe (or override) is invalid. Carries *all* problems found, not just the first."""

    title = "invalid recipe"
    exit_code = 2

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        lines = [f"{source}: {issue}" for issue in self.issues]
        super().__init__("\n".join(lines) if len(lines) == 1 else "\n" + "\n".join(lines))

    def render(self) -> str:
        count = len(self.issues)
        head = f"{self.title} ({count} problem{'s' if count != 1 else ''})"
        return head + ":\n" + "\n".join(f"  {self.source}: {issue}" for issue in self.issues)


class DataError(BuilderError):
    """Training or validation data is missing or malformed; the message names file and line."""

    title = "invalid data"
    exit_code = 2


class PluginError(BuilderError):
    """A plugin failed to load, registered something invalid, or clashes with another plugin."""

    title = "plugin error"
    exit_code = 2


class ModelError(BuilderError):
    """The base model could not be found or loaded."""

    title = "model error"
    exit_code = 2


class TrainingError(BuilderError):
    """Training could not go on (for example the loss became NaN)."""

    title = "training failed"
    exit_code = 1


class ExportVerificationError(BuilderError):
    """An exported artefact disagrees with the PyTorch model beyond the recipe's thresholds."""

    title = "export verification failed"
    exit_code = 1


class RunInterrupted(BuilderError):
    """The run was stopped by the user (Ctrl+C, SIGTERM or a UI cancel)."""

    title = "run interrupted"
    exit_code = 130


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``"did you mean 'x'? "`` for the closest of ``choices``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""
