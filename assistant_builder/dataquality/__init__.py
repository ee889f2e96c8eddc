"""Data quality: ``builder data check`` and the short check ``builder run`` prints before training.

* ``generic.py``: checks every task gets through ``Task.example_view`` / ``Task.check_examples``
  (duplicates, near duplicates, label conflicts, leakage, label balance, empty and long inputs);
* ``vocabulary.py``: how much of the text the base model's tokenizer turns into unknown tokens;
* ``runner.py``: runs them and the task's own ``Task.check_data`` on a recipe's data;
* ``report.py``: findings grouped by check, levels, text / short / JSON renderings;
* ``label_errors.py`` + ``embeddings.py``: likely label errors by out-of-fold predictions on frozen
  embeddings and confident learning (torch, scikit-learn and cleanlab, imported only there);
* ``to_store.py``: sends those candidates to the labelling queue.

Everything but ``label_errors``/``embeddings`` is torch-free. docs/data_quality.md lists every check.
"""

from __future__ import annotations

from assistant_builder.dataquality.report import CHECKS, Report, render_short, render_text
from assistant_builder.dataquality.runner import check_loaded, check_recipe

__all__ = ["CHECKS", "Report", "check_loaded", "check_recipe", "render_short", "render_text"]
