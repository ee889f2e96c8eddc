"""Generate the toolkit's API reference (``docs/toolkit.md``) from the toolkit's modules.

    python -m assistant_builder.toolkit.reference > docs/toolkit.md

For each module of ``assistant_builder.toolkit``: its docstring, then every name in its ``__all__``
with its signature and docstring (classes with their public methods). ``tests/unit/toolkit/
test_reference.py`` fails when the committed file differs from this output, so the reference
follows the code. Imports the torch modules too (run it where torch is installed).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from types import ModuleType
from typing import Any

from assistant_builder.toolkit import TORCH_FREE_MODULES, TORCH_MODULES

COMMAND = "python -m assistant_builder.toolkit.reference > docs/toolkit.md"

INTRO = f"""\
# Toolkit reference

<!-- Generated from the modules of assistant_builder/toolkit/ by `{COMMAND}`.
     Do not edit by hand: change the docstrings, then regenerate
     (tests/unit/toolkit/test_reference.py checks that this file is current). -->

`assistant_builder.toolkit` holds the building blocks of task plugins: the functions the built-in
`classification`, `ner` and `qa` tasks and the example `joint_nlu` plugin are made of. A third-party
task imports them from here and never from `assistant_builder_tasks`.
[writing_plugins.md](writing_plugins.md#6-writing-a-task) builds a task on them.

The torch-free modules ({", ".join(f"`{m}`" for m in TORCH_FREE_MODULES)}) may be imported at a task
module's top level: `builder predict` and `builder serve` import every task where torch is not
installed. The torch modules ({", ".join(f"`{m}`" for m in TORCH_MODULES)}) import torch: import them
inside `build_model` / `load_model`.
"""


def _docstring(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _signature(obj: Any) -> str:
    """``(a: int, *, b: str = 'x') -> bool`` with annotations as written in the source (no quotes)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    parts: list[str] = []
    keyword_marker = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not keyword_marker:
            parts.append("*")
            keyword_marker = True
        prefix = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        keyword_marker = keyword_marker or parameter.kind is parameter.VAR_POSITIONAL
        text = prefix + parameter.name
        if parameter.annotation is not parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    returns = "" if signature.return_annotation is signature.empty else f" -> {_annotation(signature.return_annotation)}"
    return f"({', '.join(parts)}){returns}"


def _own_methods(cls: type) -> list[tuple[str, Any]]:
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            members.append((name, value))
        elif inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod)):
            members.append((name, inspect.unwrap(getattr(cls, name))))
    return members


def _constant(module: ModuleType, name: str) -> str:
    value = getattr(module, name)
    text = repr(value)
    if len(text) > 100:
        text = f"{type(value).__name__} of {len(value)}" if hasattr(value, "__len__") else type(value).__name__
    return text


def _attribute_doc(module: ModuleType, name: str) -> str:
    """The string literal right after ``name = ...`` at the top level of ``module`` (its attribute docstring)."""
    import ast

    tree = ast.parse(inspect.getsource(module))
    body = tree.body
    for index, node in enumerate(body[:-1]):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            following = body[index + 1]
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
                return inspect.cleandoc(following.value.value)
    return ""


def render_name(module: ModuleType, name: str) -> list[str]:
    """The reference entry of one public name of ``module``."""
    obj = getattr(module, name)
    if inspect.isclass(obj):
        kind = "dataclass" if dataclasses.is_dataclass(obj) else "class"
        bases = [b.__name__ for b in obj.__bases__ if b is not object]
        fields = _signature(obj).removesuffix(" -> None") if dataclasses.is_dataclass(obj) else ""
        lines = [f"### `{kind} {name}{fields}`"
                 + (f" ({', '.join(bases)})" if bases else ""), "", _docstring(obj), ""]
        for method, value in _own_methods(obj):
            if isinstance(value, property):
                lines += [f"- `{method}` (property): {_docstring(value).splitlines()[0] if value.__doc__ else ''}".rstrip()]
            else:
                first = _docstring(value).split("\n\n")[0].replace("\n", " ")
                signature = _signature(value).replace("(self, ", "(", 1).replace("(self)", "()", 1)
                lines += [f"- `{method}{signature}`" + (f": {first}" if first else "")]
        return [*lines, ""] if lines[-1] != "" else lines
    if inspect.isfunction(obj):
        return [f"### `{name}{_signature(obj)}`", "", _docstring(obj), ""]
    if isinstance(obj, ModuleType):
        return [f"### `{name}` (module `{obj.__name__}`)", "", _docstring(obj).split("\n\n")[0], ""]
    doc = _attribute_doc(module, name)
    return [f"### `{name} = {_constant(module, name)}`", "", *([doc, ""] if doc else [])]


def render_module(name: str) -> list[str]:
    module = importlib.import_module(f"assistant_builder.toolkit.{name}")
    kind = "torch" if name in TORCH_MODULES else "torch-free"
    lines = [f"## `assistant_builder.toolkit.{name}` ({kind})", "", _docstring(module), ""]
    for public in getattr(module, "__all__", ()):
        lines += render_name(module, public)
    return lines


def render_reference() -> str:
    """The whole reference, as ``docs/toolkit.md`` holds it."""
    lines = [INTRO, "## Modules", ""]
    lines += [f"- [`{m}`](#assistant_buildertoolkit{m}-{'torch' if m in TORCH_MODULES else 'torch-free'})" for m in (*TORCH_FREE_MODULES, *TORCH_MODULES)]
    lines.append("")
    for name in (*TORCH_FREE_MODULES, *TORCH_MODULES):
        lines += render_module(name)
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def main() -> int:
    sys.stdout.write(render_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
