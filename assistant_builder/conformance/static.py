"""Torch-free checks of a component class: its contract, name, description, ``Options`` and, for
tasks, the class attributes the engine, the runtime and the TUI read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from assistant_builder.conformance.results import CheckFailed, CheckSkipped, Recorder, expect
from assistant_builder.contracts import LABELLING_KINDS, Task, Trainer
from assistant_builder.errors import BuilderError

NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
UNKNOWN_KEY = "conformance_unknown_key"


def _strings(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, str) and v for v in value)


def check_common(recorder: Recorder, component: type[Any], contract: type[Any]) -> None:
    """Contract, name, description, ``Options`` (forbids unknown keys, builds from defaults), instantiation."""

    def contract_check() -> str:
        expect(isinstance(component, type) and issubclass(component, contract),
               f"expected a subclass of {contract.__module__}.{contract.__name__}, got {component!r}")
        missing = sorted(getattr(component, "__abstractmethods__", ()))
        expect(not missing, f"abstract methods not implemented: {', '.join(missing)}")
        try:
            component()
        except Exception as error:  # noqa: BLE001
            raise CheckFailed(f"the host creates components with no arguments; {component.__name__}() raised "
                              f"{type(error).__name__}: {error}") from error
        return f"{contract.__name__} subclass, instantiable with no arguments"

    def name_check() -> str:
        name = getattr(component, "name", None)
        expect(isinstance(name, str) and NAME.match(name),
               f"expected a lowercase identifier such as 'my_{contract.__name__.lower()}' (letters, digits, _ and -), got {name!r}")
        return repr(name)

    def description_check() -> str:
        text = getattr(component, "description", "")
        expect(isinstance(text, str) and text.strip(), "expected a one-line description (shown by `builder plugins` and "
                                                       f"docs), got {text!r}")
        expect("\n" not in text.strip(), f"expected one line, got {text.count(chr(10)) + 1} lines")
        return ""

    def options_check() -> str | Warning:
        options = getattr(component, "Options", None)
        expect(isinstance(options, type) and issubclass(options, BaseModel),
               f"expected a pydantic model (subclass contracts.ComponentOptions), got {options!r}")
        expect(options.model_config.get("extra") == "forbid",
               f"{options.__name__} must forbid unknown keys (extra='forbid'; ComponentOptions does), "
               f"got extra={options.model_config.get('extra')!r}: a misspelled recipe key would be ignored silently")
        try:
            options.model_validate({UNKNOWN_KEY: 1})
        except ValidationError:
            pass
        else:
            raise CheckFailed(f"{options.__name__} accepted an unknown key '{UNKNOWN_KEY}'")
        try:
            defaults = options()
        except ValidationError as error:
            required = [str(e["loc"][0]) for e in error.errors() if e["type"] == "missing"]
            raise CheckFailed(f"{options.__name__}() must build from defaults (a recipe may omit the table); "
                              f"fields without a default: {', '.join(required) or error}") from None
        try:
            defaults.model_dump(mode="json")
        except Exception as error:  # noqa: BLE001
            raise CheckFailed(f"{options.__name__} defaults are not JSON-serialisable (bundle manifests store them): {error}") from error
        undocumented = [n for n, f in options.model_fields.items() if not f.description]
        if undocumented:
            return Warning(f"options without a description (recipe docs and `builder init` show them bare): {', '.join(undocumented)}")
        return f"{len(options.model_fields)} option(s)"

    recorder.run("contract", contract_check)
    recorder.run("name", name_check)
    recorder.run("description", description_check)
    recorder.run("options", options_check)


def check_task_attributes(recorder: Recorder, task: type[Task]) -> None:
    """The class attributes a task declares, and that ``parse_input`` rejects bad input cleanly."""

    def labelling_kind() -> str:
        kind = getattr(task, "labelling_kind", None)
        expect(kind in LABELLING_KINDS, f"expected one of {', '.join(LABELLING_KINDS)} (the TUI's labelling widgets), got {kind!r}")
        return str(kind)

    def metrics() -> str:
        names = getattr(task, "metric_names", ())
        primary = getattr(task, "primary_metric", None)
        expect(_strings(names) and names, f"metric_names must list every metric evaluate() reports, got {names!r}")
        expect(isinstance(primary, str) and primary in names,
               f"primary_metric must be one of metric_names ({', '.join(names)}), got {primary!r}")
        return f"primary {primary!r} of {len(names)}"

    def outputs() -> str:
        names = getattr(task, "output_names", None)
        expect(_strings(names) and names, f"output_names must be a non-empty tuple of output names, got {names!r}")
        expect(len(set(names)) == len(names), f"output_names has duplicates: {names!r}")
        expect("loss" not in names, "'loss' is returned with targets, it is not an output to export")
        sequence = getattr(task, "sequence_outputs", ())
        expect(isinstance(sequence, (tuple, list)) and set(sequence) <= set(names),
               f"sequence_outputs must be a subset of output_names {tuple(names)}, got {sequence!r}")
        return ", ".join(names)

    def data_formats() -> str:
        formats = getattr(task, "data_formats", ())
        expect(_strings(formats) and formats, f"data_formats must be a non-empty tuple of format names, got {formats!r}")
        bad = [f for f in formats if f != f.lower() or f == "auto"]
        expect(not bad, f"format names must be lowercase and not 'auto' (always accepted), got {bad}")
        example = getattr(task, "predict_example", "")
        expect(isinstance(example, str) and example.strip(), f"predict_example must be a non-empty string, got {example!r}")
        return ", ".join(formats)

    def training_defaults() -> str:
        def rate(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1

        head = getattr(task, "head_learning_rate", None)
        expect(rate(head), f"head_learning_rate must be a number in (0, 1], got {head!r}")
        rates = getattr(task, "learning_rates", {})
        expect(isinstance(rates, Mapping) and all(isinstance(k, str) and rate(v) for k, v in rates.items()),
               f"learning_rates must map trainer names to numbers in (0, 1], got {rates!r}")
        return f"head {head!r}" + "".join(f", {name} {value!r}" for name, value in rates.items())

    def parse_input() -> str:
        try:
            instance = task()
        except Exception as error:  # noqa: BLE001 - reported by the contract check
            raise CheckSkipped(f"cannot instantiate: {error}") from error
        try:
            instance.parse_input(12345)
        except BuilderError:
            return "rejects 12345 with a BuilderError"
        except Exception as error:  # noqa: BLE001
            raise CheckFailed(f"parse_input(12345) raised {type(error).__name__}: {error}; expected a DataError "
                              "(builder predict and serve turn it into a clean message / HTTP 400)") from error
        raise CheckFailed("parse_input(12345) accepted a number; expected a DataError naming the input it wants")

    recorder.run("labelling_kind", labelling_kind)
    recorder.run("metrics", metrics)
    recorder.run("outputs", outputs)
    recorder.run("data formats", data_formats)
    recorder.run("training defaults", training_defaults)
    recorder.run("parse_input", parse_input)


def check_trainer_attributes(recorder: Recorder, trainer: type[Trainer]) -> None:
    def learning_rate() -> str:
        rate = getattr(trainer, "default_learning_rate", None)
        expect(isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 < rate <= 1,
               f"default_learning_rate must be a number in (0, 1], got {rate!r}")
        return repr(rate)

    recorder.run("default_learning_rate", learning_rate)
