"""``builder data check RECIPE [KEY=VALUE ...]``: what is wrong or risky in a recipe's data.

Exit code 0 (nothing at ``--fail-on`` level), 1 (findings at that level or above, for CI), 2 (the
recipe or the data cannot be read: the usual located error). Torch-free unless ``--label-errors``
is given; see docs/data_quality.md for every check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from assistant_builder.errors import ConfigError, ConfigIssue

FAIL_ON = ("error", "warning", "info", "never")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="check a recipe's data: duplicates, conflicts, leakage, balance, lengths, label errors",
                                   description="Data quality tools for a recipe's training and validation data.")
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND")
    commands.required = True
    check = commands.add_parser("check", help="report what is wrong or risky in the recipe's data (file:line and count per finding)",
                                description="Report duplicates, label conflicts, train/validation leakage, rare and one-split labels, "
                                            "class imbalance, long and empty inputs, text the base model cannot read (unknown tokens), "
                                            "and task checks (NER tags, QA answer offsets). "
                                            "Exit 0: nothing at --fail-on level; 1: findings at that level; 2: unreadable recipe or data.")
    check.add_argument("recipe", help="path to a recipe .toml file")
    check.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. model.max_length=64")
    check.add_argument("--json", action="store_true", help="print the report as JSON (every finding, up to 1000 per check)")
    check.add_argument("--fail-on", choices=FAIL_ON, default="error", help="exit 1 if a finding is at this level or above (default: error)")
    check.add_argument("--limit", type=int, default=5, metavar="N", help="findings listed per check in the text report (default 5; -1: all)")
    errors = check.add_argument_group("label errors (classification; NER per word; needs torch, scikit-learn, cleanlab)")
    errors.add_argument("--label-errors", action="store_true",
                        help="rank training examples whose label is likely wrong: out-of-fold predictions of a linear classifier on "
                             "frozen base-model embeddings, then confident learning (cleanlab)")
    errors.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds for --label-errors (default 5)")
    errors.add_argument("--max-candidates", type=int, default=None, metavar="N", help="keep only the N most likely label errors")
    errors.add_argument("--to-store", action="store_true",
                        help="send the candidates to the recipe's labelling store: `builder tui` shows them first, the suspected label "
                             "pre-filled as the suggestion")
    check.set_defaults(handler=run, trailing_positionals="overrides")


def run(args: argparse.Namespace) -> int:
    from assistant_builder.cli.common import load_registry
    from assistant_builder.dataquality.report import render_text
    from assistant_builder.dataquality.runner import check_recipe
    from assistant_builder.recipe.loader import load_recipe

    if args.to_store and not args.label_errors:
        raise ConfigError("builder data check", [ConfigIssue("--to-store", "sends label-error candidates; add --label-errors")])
    if args.folds < 2:
        raise ConfigError("builder data check", [ConfigIssue("--folds", f"expected 2 or more folds, got {args.folds}")])
    registry = load_registry()
    loaded = load_recipe(args.recipe, args.overrides, registry=registry)
    task = None
    if args.label_errors:
        task = registry.create("task", loaded.recipe.task.type)
        kind = getattr(task, "labelling_kind", "")
        if kind not in ("text_class", "token_spans"):
            raise ConfigError(args.recipe, [ConfigIssue("task.type", f"--label-errors ranks the labels of classification and the tags "
                                                                     f"of NER (token_spans) tasks; task '{task.name}' is neither")])
        if kind == "token_spans" and args.to_store:
            raise ConfigError(args.recipe, [ConfigIssue("--to-store", "sends classification candidates only, so far; "
                                                                      "for NER, fix the listed tags in the data files")])
        from assistant_builder.dataquality.label_errors import require_dependencies

        require_dependencies()
    report, train_views = check_recipe(loaded, registry, keep_train=args.label_errors)
    if args.label_errors:
        _label_errors(args, loaded, task, report, train_views)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(render_text(report, args.limit))
    return 1 if report.fails(args.fail_on) else 0


def _label_errors(args: argparse.Namespace, loaded: Any, task: Any, report: Any, train_views: list[Any]) -> None:
    import time

    from assistant_builder.basemodels import resolve_base_model
    from assistant_builder.dataquality.label_errors import find_label_errors
    from assistant_builder.dataquality.report import display

    started = time.perf_counter()
    recipe = loaded.recipe
    model_dir = resolve_base_model(recipe.model.base, loaded.base_dir)

    def progress(message: str) -> None:
        print(f"label errors: {message}", file=sys.stderr, flush=True)

    if task.labelling_kind == "token_spans":
        from assistant_builder.dataquality.token_errors import find_tag_errors

        search = find_tag_errors(_token_examples(loaded, task), model_dir, recipe.model.max_length, folds=args.folds, seed=recipe.train.seed,
                                 on_progress=progress)
    else:
        search = find_label_errors(train_views, model_dir, recipe.model.max_length, folds=args.folds, seed=recipe.train.seed,
                                   on_progress=progress)
    if args.max_candidates is not None:
        search.issues = search.issues[: max(0, args.max_candidates)]
    report.add_findings([issue.finding() for issue in search.issues])
    report.seconds += time.perf_counter() - started
    unit = "words" if task.labelling_kind == "token_spans" else "examples"
    report.notes.append(f"label errors: {len(search.issues)} of {search.examples} training {unit} flagged ({search.folds}-fold "
                        f"out-of-fold accuracy {search.out_of_fold_accuracy:.3f} on frozen {recipe.model.base} embeddings)"
                        + (f"; not ranked (one example): {', '.join(search.skipped)}" if search.skipped else ""))
    details = search.to_dict()
    if args.to_store:
        from assistant_builder.dataquality.to_store import send_to_store
        from assistant_builder.engine.store_data import is_store
        from assistant_builder.labelling.records import store_path_for

        train = loaded.resolve(recipe.data.train)
        store_path = train if is_store(train) else store_path_for(loaded.source)
        shown = {issue.where: _relative(issue.where, loaded.base_dir) for issue in search.issues}
        queued, left = send_to_store(store_path, search.issues, shown)
        report.notes.append(f"{queued} candidates queued for review in {display(str(store_path))} (`builder tui {display(args.recipe)}`)"
                            + (f"; {left} left alone (already queued, or relabelled by a person)" if left else ""))
        details["store"] = {"path": str(store_path), "queued": queued, "left_alone": left}
    report.extra["label_errors"] = details


def _token_examples(loaded: Any, task: Any) -> list[Any]:
    """The training sentences as the task loads them for training (tokens, IOB2 tags, source)."""
    import tempfile
    import warnings

    from assistant_builder.engine.store_data import materialise_store_data

    recipe = loaded.recipe
    options = task.Options.model_validate(recipe.task.options)
    data = recipe.data.model_copy(update={"train": loaded.resolve(recipe.data.train),
                                          "validation": loaded.resolve(recipe.data.validation) if recipe.data.validation else None})
    with tempfile.TemporaryDirectory(prefix="builder-label-errors-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(task.load_data(materialise_store_data(data, task, options, Path(tmp)), options).train)


def _relative(where: str, base: Path) -> str:
    """``/abs/recipes/data/train.jsonl:17`` -> ``data/train.jsonl:17`` when under the recipe's folder."""
    prefix = str(base) + "/"
    return where[len(prefix):] if where.startswith(prefix) else where
