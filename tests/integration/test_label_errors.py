"""`builder data check --label-errors` on a tiny random BERT: flipped labels made here are ranked
first, with file:line, given and suspected label; `--to-store` queues them for the TUI with the
suspected label as the suggestion, and running it again never undoes a person's decision."""

from __future__ import annotations

import json
import random

import pytest

from assistant_builder.cli.main import main
from assistant_builder.labelling.store import LABELLED, REVIEW, LabelStore

pytest.importorskip("cleanlab")

WORDS = {"alarm": "wake alarm morning am clock up set", "weather": "weather rain sun cold hot tomorrow today",
         "music": "play music song songs list jazz hello"}


def dirty_data(tmp_path, flips: int = 4, per_label: int = 40) -> tuple[list[int], dict[int, str]]:
    rng = random.Random(3)
    rows = []
    for label, words in WORDS.items():
        vocab = words.split()
        rows += [(" ".join(rng.choice(vocab) for _ in range(5)), label) for _ in range(per_label)]
    rng.shuffle(rows)
    flipped = sorted(rng.sample(range(len(rows)), flips))
    truth = {}
    for i in flipped:
        text, label = rows[i]
        truth[i + 1] = label
        rows[i] = (text, next(other for other in WORDS if other != label))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps({"text": w.split()[0], "label": y}) + "\n" for y, w in WORDS.items()))
    return [i + 1 for i in flipped], truth


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A tiny random BERT a little wider than the default one (hidden 64): its mean-pooled states
    still separate texts by their words, which is all a linear probe needs here."""
    from assistant_builder.testing import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("encoder"), hidden_size=64)


def test_flipped_labels_are_ranked_and_sent_to_the_store(tmp_path, write_recipe, capsys, encoder):
    flipped, truth = dirty_data(tmp_path)
    recipe = write_recipe(tmp_path, task={"type": "classification"}, data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          model={"base": str(encoder)})
    assert main(["data", "check", str(recipe), "--label-errors", "--json", "--to-store"]) == 0  # label errors are warnings
    report = json.loads(capsys.readouterr().out)
    issues = report["label_errors"]["issues"]
    lines = [int(issue["where"].rsplit(":", 1)[1]) for issue in issues]
    assert set(flipped) <= set(lines[: len(flipped) + 2])  # every flip among the top candidates
    first = next(issue for issue in issues if int(issue["where"].rsplit(":", 1)[1]) == flipped[0])
    assert first["where"] == f"{tmp_path / 'train.jsonl'}:{flipped[0]}" and first["suspected"] == truth[flipped[0]]
    assert first["given"] != first["suspected"] and 0.0 <= first["score"] <= 1.0
    group = next(c for c in report["checks"] if c["check"] == "label_error")
    assert group["count"] == len(issues) and group["level"] == "warning"
    assert report["label_errors"]["store"]["queued"] == len(issues)

    store_path = tmp_path / "recipe.labels.sqlite"
    with LabelStore(store_path) as store:
        queued = list(store.items(REVIEW))
        assert len(queued) == len(issues)
        head = store.next_item()
        assert head is not None and head.status == REVIEW
        item = next(i for i in queued if i.source == f"train.jsonl:{flipped[0]}")
        assert item.gold == first["given"] and item.suggestion["label"] == truth[flipped[0]]
        assert "likely label error" in item.note and item.payload["text"] == first["text"]
        store.decide(item.id, truth[flipped[0]])  # a person fixes it
    assert main(["data", "check", str(recipe), "--label-errors", "--json", "--to-store"]) == 0
    again = json.loads(capsys.readouterr().out)["label_errors"]["store"]
    assert again["queued"] == 0 and again["left_alone"] == len(issues)
    with LabelStore(store_path) as store:
        assert store.item(item.id).gold == truth[flipped[0]] and store.item(item.id).status == LABELLED


def test_ner_tag_errors_are_located_by_word(tmp_path, write_recipe, capsys, encoder):
    rng = random.Random(5)
    sentences = []
    for _ in range(30):
        who, when = rng.choice(["mom", "dad", "john"]), rng.choice(["7", "9", "6"])
        sentences.append([("call", "O"), (who, "B-person"), ("at", "O"), (when, "B-time"), ("pm", "I-time")])
    sentences[4][1] = (sentences[4][1][0], "B-time")  # a person tagged as a time
    (tmp_path / "train.conll").write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")
    recipe = write_recipe(tmp_path, task={"type": "ner"}, data={"train": "train.conll"}, model={"base": str(encoder)})
    assert main(["data", "check", str(recipe), "--label-errors", "--json", "--fail-on", "never"]) == 0
    issues = json.loads(capsys.readouterr().out)["label_errors"]["issues"]
    assert issues and all(" word " in issue["where"] and issue["given"] != issue["suspected"] for issue in issues)
    sentence_line = 1 + 4 * 6  # five words and a blank line per sentence
    flipped = f"{tmp_path / 'train.conll'}:{sentence_line} word 2 ('{sentences[4][1][0]}')"
    assert flipped in [issue["where"] for issue in issues[:3]]
    assert next(i for i in issues if i["where"] == flipped)["suspected"] == "B-person"
    assert main(["data", "check", str(recipe), "--label-errors", "--to-store"]) == 2
    assert "sends classification candidates only" in capsys.readouterr().err


def test_label_errors_is_for_classification_and_ner_only(tmp_path, write_recipe, capsys):
    context = "The bakery opens at 7 am."
    row = {"question": "when does it open", "context": context, "answers": {"text": ["7 am"], "answer_start": [context.index("7 am")]}}
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "valid.jsonl").write_text(json.dumps(row) + "\n")
    recipe = write_recipe(tmp_path, task={"type": "qa"}, data={"train": "train.jsonl", "validation": "valid.jsonl"})
    assert main(["data", "check", str(recipe), "--label-errors"]) == 2
    assert "task 'qa' is neither" in capsys.readouterr().err
    assert main(["data", "check", str(recipe), "--to-store"]) == 2
