"""Import hygiene: importing a plugin's modules must not pull in torch & co.

``builder validate``, ``builder plugins`` and the torch-free runtime import every installed plugin,
so a plugin that imports torch at module level slows them all down (or breaks them where torch is
not installed). Checked in a fresh interpreter, since this process may have loaded torch already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable

from assistant_builder.conformance.results import CheckFailed, CheckSkipped, Recorder

HEAVY = ("torch", "transformers", "peft", "onnx", "accelerate", "textual", "sklearn", "tensorboardX", "tensorflow")

_SCRIPT = """
import importlib, json, sys
name = sys.argv[1]
try:
    importlib.import_module(name)
except ModuleNotFoundError as error:
    if error.name and (name == error.name or name.startswith(error.name + ".")):
        print(json.dumps({"unimportable": str(error)}))
        raise SystemExit(0)
    raise
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))
print(json.dumps({"heavy": heavy}))
"""


def heavy_imports(module: str, timeout: float = 120.0) -> list[str] | None:
    """The heavy libraries importing ``module`` loads, in a fresh interpreter; ``None`` if it cannot be imported by name."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", _SCRIPT, module, ",".join(HEAVY)], env=env, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"importing {module} failed: {last}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return None if "unimportable" in report else report["heavy"]


def check_imports(recorder: Recorder, modules: Iterable[str]) -> None:
    """One ``imports`` result covering ``modules`` (the component's module and the plugin's entry-point module)."""
    names = list(dict.fromkeys(m for m in modules if m and m != "__main__"))

    def check() -> str:
        checked = []
        for module in names:
            heavy = heavy_imports(module)
            if heavy is None:
                continue
            if heavy:
                raise CheckFailed(f"importing {module} loads {', '.join(heavy)}; import them inside the methods that "
                                  "need them (validate, plugins and the runtime import every plugin)")
            checked.append(module)
        if not checked:
            raise CheckSkipped(f"{', '.join(names) or 'the module'} cannot be imported by name in a fresh interpreter "
                               "(defined in a test file?)")
        return f"no torch & co. when importing {', '.join(checked)}"

    recorder.run("imports", check)
